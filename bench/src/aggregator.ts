import { provisionTopics, Serde, topicCatalog, valueSubjectOf, type EnrichedEvent } from '@sluice/contracts';
import { runningStack, startTestService, testKafka, uniqueName, withAdmin } from '@sluice/testing';
import { Partitioners } from 'kafkajs';
import { scrape, timeUntil } from './metrics';
import { writeResults } from './results';

const EVENTS = 100_000;

/**
 * Aggregator scenario: 100,000 enriched events, each for its own entity, so
 * that 100,000 entity windows are open at the end (plus 10 category windows).
 * Aggregation events/s (both stages), and memory before and after.
 */
export async function aggregatorBench(): Promise<string> {
  const kafka = testKafka();
  const prefix = `${uniqueName('benchagg')}.`;
  await withAdmin(kafka, (admin) => provisionTopics(admin, topicCatalog({ prefix, partitions: 6 })));
  const topic = `${prefix}events.enriched`;
  const serde = new Serde(runningStack().schemaRegistryUrl);
  const encoder = await serde.encoder<EnrichedEvent>(valueSubjectOf(topic), 'EnrichedEvent');
  const application = uniqueName('bench-aggregator');
  const aggregator = await startTestService('aggregator', {
    env: { AGGREGATOR_APPLICATION_ID: application, AGGREGATOR_INPUT_TOPIC: topic, AGGREGATOR_OUTPUT_TOPIC: `${prefix}aggregates`, AGGREGATOR_LATE_TOPIC: `${prefix}events.late`, LOG_LEVEL: 'warn' },
  });
  try {
    await new Promise((r) => setTimeout(r, 3_000));
    const rssBefore = await scrape(aggregator.url, 'process_resident_memory_bytes');
    const heapBefore = await scrape(aggregator.url, 'nodejs_heap_size_used_bytes');
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, createPartitioner: Partitioners.DefaultPartitioner });
    await producer.connect();
    const now = Date.now();
    for (let start = 0; start < EVENTS; start += 2_000) {
      await producer.send({
        topic,
        acks: -1,
        messages: Array.from({ length: 2_000 }, (_, j) => {
          const i = start + j;
          const e: EnrichedEvent = {
            eventId: `b${i}`, type: 'view', entityId: `entity-${i}`, userId: null, occurredAt: now + (i % 1000), value: i % 10,
            attributes: {}, name: 'n', category: `c${i % 10}`, enrichedAt: now, sourcePartition: 0, sourceOffset: i,
          };
          return { key: e.entityId, value: encoder.encode(e) };
        }),
      });
    }
    await producer.disconnect();
    const { firstMs, doneMs } = await timeUntil(aggregator.url, 'stream_records_in_total', 2 * EVENTS);
    await new Promise((r) => setTimeout(r, 2_000));
    const openWindows = await scrape(aggregator.url, 'aggregator_open_windows');
    const rssAfter = await scrape(aggregator.url, 'process_resident_memory_bytes');
    const heapAfter = await scrape(aggregator.url, 'nodejs_heap_size_used_bytes');
    const seconds = (doneMs - firstMs) / 1000;
    const perWindows = (bytes: number) => Math.round(((bytes / openWindows) * 100_000) / 2 ** 20);
    return writeResults('aggregator', {
      events: EVENTS,
      partitions: 6,
      recordsProcessed: 2 * EVENTS,
      note: 'each event is processed twice: entity windows, then category windows after the repartition topic',
      seconds,
      eventsPerSecond: Math.round(EVENTS / seconds),
      openWindows,
      memory: {
        rssMiB: { before: Math.round(rssBefore / 2 ** 20), after: Math.round(rssAfter / 2 ** 20) },
        heapUsedMiB: { before: Math.round(heapBefore / 2 ** 20), after: Math.round(heapAfter / 2 ** 20) },
        heapMiBPer100kOpenWindows: perWindows(heapAfter - heapBefore),
        rssMiBPer100kOpenWindows: perWindows(rssAfter - rssBefore),
      },
    });
  } finally {
    await aggregator.stop();
  }
}
