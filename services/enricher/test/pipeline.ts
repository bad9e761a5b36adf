import { provisionTopics, Serde, topicCatalog, valueSubjectOf, type ActivityEvent, type CatalogItem, type EnrichedEvent } from '@sluice/contracts';
import {
  changelogKey,
  checkStageEffects,
  eventIdOf,
  readTopic,
  runningStack,
  startTestService,
  testKafka,
  uniqueName,
  withAdmin,
  type ReadRecord,
  type StageEffectsReport,
  type TestService,
} from '@sluice/testing';
import { Partitioners, type Kafka, type Producer } from 'kafkajs';

/** Topics of their own, an application id of its own, and helpers to feed and read them. */
export interface EnricherFixture {
  kafka: Kafka;
  topics: { raw: string; catalog: string; enriched: string; dlq: string };
  applicationId: string;
  serde: Serde;
  start(options?: { env?: Record<string, string>; name?: string }): Promise<TestService>;
  sendEvents(events: ActivityEvent[], headers?: Record<string, string>): Promise<void>;
  sendRaw(key: string, value: Buffer): Promise<void>;
  upsertCatalog(items: CatalogItem[]): Promise<void>;
  /** Raw bytes on the catalog topic, as a producer that does not follow the contract would write them. */
  sendRawCatalog(key: string, value: Buffer): Promise<void>;
  readEnriched(expected: number, timeoutMs?: number): Promise<(EnrichedEvent & { record: ReadRecord })[]>;
  readDeadLetters(expected: number, timeoutMs?: number): Promise<ReadRecord[]>;
  /** The exactly-once invariant from Kafka alone: every input below the group's offsets has its output (or dead letter) once and its seen-event record. */
  checkEffects(): Promise<StageEffectsReport>;
  close(): Promise<void>;
}

export async function enricherFixture(partitions = 3): Promise<EnricherFixture> {
  const kafka = testKafka();
  const prefix = `${uniqueName('enr')}.`;
  const catalog = topicCatalog({ prefix, partitions });
  await withAdmin(kafka, (admin) => provisionTopics(admin, catalog));
  const topics = { raw: `${prefix}events.raw`, catalog: `${prefix}catalog.items`, enriched: `${prefix}events.enriched`, dlq: `${prefix}events.raw.dlq` };
  const serde = new Serde(runningStack().schemaRegistryUrl);
  const eventEncoder = await serde.encoder<ActivityEvent>(valueSubjectOf(topics.raw), 'ActivityEvent');
  const catalogEncoder = await serde.encoder<CatalogItem>(valueSubjectOf(topics.catalog), 'CatalogItem');
  const enrichedDecoder = serde.decoder<EnrichedEvent>('EnrichedEvent');
  const producer: Producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  const services: TestService[] = [];
  const applicationId = uniqueName('enricher');
  return {
    kafka,
    topics,
    applicationId,
    serde,
    async start(options = {}) {
      const service = await startTestService('enricher', {
        ...(options.name ? { name: options.name } : {}),
        env: {
          ENRICHER_APPLICATION_ID: applicationId,
          ENRICHER_INPUT_TOPIC: topics.raw,
          ENRICHER_CATALOG_TOPIC: topics.catalog,
          ENRICHER_OUTPUT_TOPIC: topics.enriched,
          ENRICHER_CATALOG_WAIT_MS: '1000',
          STREAM_SESSION_TIMEOUT_MS: '6000',
          LOG_LEVEL: 'info',
          ...options.env,
        },
      });
      services.push(service);
      return service;
    },
    async sendEvents(events, headers) {
      await producer.send({ topic: topics.raw, acks: -1, messages: events.map((e) => ({ key: e.entityId, value: eventEncoder.encode(e), ...(headers ? { headers } : {}) })) });
    },
    async sendRaw(key, value) {
      await producer.send({ topic: topics.raw, acks: -1, messages: [{ key, value }] });
    },
    async upsertCatalog(items) {
      await producer.send({ topic: topics.catalog, acks: -1, messages: items.map((i) => ({ key: i.entityId, value: catalogEncoder.encode(i) })) });
    },
    async sendRawCatalog(key, value) {
      await producer.send({ topic: topics.catalog, acks: -1, messages: [{ key, value }] });
    },
    async readEnriched(expected, timeoutMs = 60_000) {
      const records = await readTopic(kafka, topics.enriched, { done: (r) => r.length >= expected, timeoutMs });
      return Promise.all(records.map(async (record) => ({ ...(await enrichedDecoder.decode(record.value)), record })));
    },
    async readDeadLetters(expected, timeoutMs = 60_000) {
      return readTopic(kafka, topics.dlq, { done: (r) => r.length >= expected, timeoutMs });
    },
    async checkEffects() {
      const activityDecoder = serde.decoder<ActivityEvent>('ActivityEvent');
      return checkStageEffects({
        kafka,
        group: applicationId,
        input: { topic: topics.raw, identify: eventIdOf(activityDecoder) },
        outputs: [
          { topic: topics.enriched, identify: eventIdOf(enrichedDecoder) },
          { topic: topics.dlq, identify: eventIdOf(activityDecoder), stateless: true },
        ],
        state: [{ topic: `${applicationId}-seen-events-changelog`, identify: changelogKey }],
      });
    },
    async close() {
      await Promise.all(services.map((s) => s.stop()));
      await producer.disconnect();
    },
  };
}

export function catalogItem(entityId: string, category = 'kitchen'): CatalogItem {
  return { entityId, name: `Item ${entityId}`, category, price: 10, attributes: {}, updatedAt: Date.now() };
}

let sequence = 0;
export function activity(entityId: string, eventId = `ev-${++sequence}-${Math.random().toString(36).slice(2, 8)}`): ActivityEvent {
  return { eventId, type: 'view', entityId, userId: null, occurredAt: Date.now(), value: 1, attributes: {} };
}
