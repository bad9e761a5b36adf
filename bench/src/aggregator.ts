import { provisionTopics, Serde, topicCatalog, valueSubjectOf, type EnrichedEvent } from '@sluice/contracts';
import { encodeEntry, PartitionStore } from '@sluice/streams';
import { runningStack, startTestService, testKafka, uniqueName, withAdmin } from '@sluice/testing';
import { Partitioners } from 'kafkajs';
import { scrape } from './metrics';
import { writeResults } from './results';

/** Events measured at each number of open windows: updates of 1,000 entities, every one in an open window. */
const MEASURED = 100_000;
const HOT_ENTITIES = 1_000;

/**
 * Aggregator scenario: how its cost grows with the windows it holds open. The
 * same 100,000 events are measured with 10,000 and with 1,000,000 entity windows
 * already open (each opened by an event of its own entity); events/s through
 * both stages, and memory per open window: the service's heap growth (garbage
 * included) and the window store's own heap after a forced collection.
 */
export async function aggregatorBench(): Promise<string> {
  const runs = [];
  for (const open of [10_000, 1_000_000]) runs.push(await withOpenWindows(open));
  const store = storeHeapPerWindow(200_000);
  const [small, large] = runs;
  return writeResults('aggregator', {
    partitions: 6,
    note: 'each event is processed twice: entity windows, then category windows after the repartition topic',
    measuredEvents: MEASURED,
    runs,
    eventsPerSecondRatio: large && small ? Number((large.eventsPerSecond / small.eventsPerSecond).toFixed(2)) : null,
    windowStoreBytesPerOpenWindow: store,
  });
}

async function withOpenWindows(open: number) {
  const kafka = testKafka();
  const prefix = `${uniqueName('benchagg')}.`;
  await withAdmin(kafka, (admin) => provisionTopics(admin, topicCatalog({ prefix, partitions: 6 })));
  const topic = `${prefix}events.enriched`;
  const serde = new Serde(runningStack().schemaRegistryUrl);
  const encoder = await serde.encoder<EnrichedEvent>(valueSubjectOf(topic), 'EnrichedEvent');
  const aggregator = await startTestService('aggregator', {
    env: {
      AGGREGATOR_APPLICATION_ID: uniqueName('bench-aggregator'),
      AGGREGATOR_INPUT_TOPIC: topic,
      AGGREGATOR_OUTPUT_TOPIC: `${prefix}aggregates`,
      AGGREGATOR_LATE_TOPIC: `${prefix}events.late`,
      LOG_LEVEL: 'warn',
      NODE_OPTIONS: '--max-old-space-size=4096',
    },
  });
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  // Every event in one window (well within its size), so nothing closes during the run.
  const windowStart = Math.floor(Date.now() / 60_000) * 60_000;
  const send = async (count: number, entityOf: (i: number) => number, first: number) => {
    for (let start = 0; start < count; start += 2_000) {
      await producer.send({
        topic,
        acks: -1,
        messages: Array.from({ length: Math.min(2_000, count - start) }, (_, j) => {
          const i = first + start + j;
          const entity = entityOf(i);
          const e: EnrichedEvent = {
            eventId: `b${i}`, type: 'view', entityId: `entity-${entity}`, userId: null, occurredAt: windowStart + (i % 30_000), value: i % 10,
            attributes: {}, name: 'n', category: `c${entity % 10}`, enrichedAt: Date.now(), sourcePartition: 0, sourceOffset: i,
          };
          return { key: e.entityId, value: encoder.encode(e) };
        }),
      });
    }
  };
  const processed = () => scrape(aggregator.url, 'stream_records_in_total');
  const until = async (target: number) => {
    while ((await processed()) < target) await new Promise((r) => setTimeout(r, 100));
    return Date.now();
  };
  try {
    await new Promise((r) => setTimeout(r, 3_000));
    const heapBefore = await scrape(aggregator.url, 'nodejs_heap_size_used_bytes');
    await send(open, (i) => i, 0);
    await until(2 * open);
    const openWindows = await scrape(aggregator.url, 'aggregator_open_windows');
    const heapOpen = await scrape(aggregator.url, 'nodejs_heap_size_used_bytes');
    const rssOpen = await scrape(aggregator.url, 'process_resident_memory_bytes');
    const started = Date.now();
    await send(MEASURED, (i) => i % HOT_ENTITIES, open);
    const done = await until(2 * (open + MEASURED));
    const seconds = (done - started) / 1000;
    return {
      openWindows,
      eventsPerSecond: Math.round(MEASURED / seconds),
      seconds,
      serviceHeapBytesPerOpenWindow: Math.round((heapOpen - heapBefore) / openWindows),
      rssMiBWithOpenWindows: Math.round(rssOpen / 2 ** 20),
    };
  } finally {
    await producer.disconnect();
    await aggregator.stop();
  }
}

/** Heap of the window store itself per open window, after forced collections (run with --expose-gc). */
function storeHeapPerWindow(count: number): number | null {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) return null;
  gc();
  const before = process.memoryUsage().heapUsed;
  // Two indexes by window end, as the aggregator's window stores keep (open windows, every window).
  const byEnd = (_key: string, value: unknown) => (value as { windowEnd: number }).windowEnd;
  const store = new PartitionStore<unknown>('entity-windows', undefined, { open: byEnd, all: byEnd });
  const start = Math.floor(Date.now() / 60_000) * 60_000;
  for (let i = 0; i < count; i++) {
    const value = { dimension: 'entity', key: `entity-${i}`, windowStart: start, windowEnd: start + 60_000, count: 1, sum: i % 10, min: i % 10, max: i % 10, lastEventAt: start + (i % 1000), revision: 1, closed: false };
    store.restore(`entity|entity-${i}|${start}`, encodeEntry({ value, expiresAt: undefined }));
  }
  gc();
  const bytes = Math.round((process.memoryUsage().heapUsed - before) / count);
  if (store.indexSize('open') !== count) throw new Error('the store did not index every window');
  return bytes;
}
