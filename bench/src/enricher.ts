import { provisionTopics, Serde, topicCatalog, valueSubjectOf, type ActivityEvent, type CatalogItem } from '@sluice/contracts';
import { runningStack, startTestService, testKafka, uniqueName, withAdmin } from '@sluice/testing';
import { Partitioners } from 'kafkajs';
import { scrape, timeUntil } from './metrics';
import { writeResults } from './results';

const EVENTS = 100_000;
const ENTITIES = 200;

/**
 * Enricher scenario, one broker, same data: throughput with exactly-once next
 * to the same processor at-least-once, and the time to restore the
 * de-duplication store (one entry per event) after a restart.
 */
export async function enricherBench(): Promise<string> {
  const kafka = testKafka();
  const prefix = `${uniqueName('bench')}.`;
  await withAdmin(kafka, (admin) => provisionTopics(admin, topicCatalog({ prefix, partitions: 6 })));
  const topics = { raw: `${prefix}events.raw`, catalog: `${prefix}catalog.items`, enriched: `${prefix}events.enriched` };
  const serde = new Serde(runningStack().schemaRegistryUrl);
  const events = await serde.encoder<ActivityEvent>(valueSubjectOf(topics.raw), 'ActivityEvent');
  const items = await serde.encoder<CatalogItem>(valueSubjectOf(topics.catalog), 'CatalogItem');
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  await producer.send({
    topic: topics.catalog,
    messages: Array.from({ length: ENTITIES }, (_, i) => ({
      key: `sku-${i}`,
      value: items.encode({ entityId: `sku-${i}`, name: `Item ${i}`, category: `c${i % 10}`, price: null, attributes: {}, updatedAt: Date.now() }),
    })),
  });
  for (let start = 0; start < EVENTS; start += 2_000) {
    await producer.send({
      topic: topics.raw,
      acks: -1,
      messages: Array.from({ length: 2_000 }, (_, j) => {
        const i = start + j;
        const event: ActivityEvent = { eventId: `bench-${i}`, type: 'view', entityId: `sku-${i % ENTITIES}`, userId: null, occurredAt: Date.now(), value: i % 7, attributes: {} };
        return { key: event.entityId, value: events.encode(event) };
      }),
    });
  }
  await producer.disconnect();

  const env = (application: string, guarantee: string) => ({
    ENRICHER_APPLICATION_ID: application,
    ENRICHER_INPUT_TOPIC: topics.raw,
    ENRICHER_CATALOG_TOPIC: topics.catalog,
    ENRICHER_OUTPUT_TOPIC: topics.enriched,
    STREAM_PROCESSING_GUARANTEE: guarantee,
    LOG_LEVEL: 'warn',
  });
  const run = async (guarantee: string) => {
    const application = uniqueName(`bench-${guarantee}`);
    const enricher = await startTestService('enricher', { env: env(application, guarantee) });
    const { firstMs, doneMs } = await timeUntil(enricher.url, 'stream_records_in_total', EVENTS);
    return { application, enricher, seconds: (doneMs - firstMs) / 1000, perSecond: Math.round(EVENTS / ((doneMs - firstMs) / 1000)) };
  };
  const exactlyOnce = await run('exactly-once');
  const atLeastOnce = await run('at-least-once');
  await atLeastOnce.enricher.stop();

  // Restore: the same application again; its de-duplication store holds one entry per event.
  await exactlyOnce.enricher.stop();
  const restarted = await startTestService('enricher', { env: env(exactlyOnce.application, 'exactly-once') });
  let restoreSeconds = 0;
  const deadline = Date.now() + 300_000;
  while (Date.now() < deadline) {
    restoreSeconds = await scrape(restarted.url, 'stream_restore_duration_seconds_sum');
    if (restoreSeconds > 0) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  await restarted.stop();

  return writeResults('enricher', {
    events: EVENTS,
    partitions: 6,
    exactlyOnce: { seconds: exactlyOnce.seconds, eventsPerSecond: exactlyOnce.perSecond },
    atLeastOnce: { seconds: atLeastOnce.seconds, eventsPerSecond: atLeastOnce.perSecond },
    ratioExactlyOnceToAtLeastOnce: +(exactlyOnce.perSecond / atLeastOnce.perSecond).toFixed(3),
    restore: { entries: EVENTS, seconds: +restoreSeconds.toFixed(2), secondsPer100k: +((restoreSeconds * 100_000) / EVENTS).toFixed(2) },
  });
}
