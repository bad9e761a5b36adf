import { provisionTopics, Serde, topicCatalog, valueSubjectOf, type EnrichedEvent, type WindowAggregate } from '@sluice/contracts';
import { readTopic, runningStack, startTestService, testKafka, uniqueName, withAdmin, type ReadRecord, type TestService } from '@sluice/testing';
import { Partitioners, type Kafka, type Producer } from 'kafkajs';

export const WINDOW_MS = 60_000;
export const GRACE_MS = 60_000;

export interface AggregatorFixture {
  kafka: Kafka;
  topics: { enriched: string; aggregates: string; late: string };
  applicationId: string;
  start(env?: Record<string, string>): Promise<TestService>;
  send(events: EnrichedEvent[]): Promise<void>;
  /** The newest record of every key in aggregates, once `done` is satisfied. */
  latestAggregates(done: (latest: Map<string, WindowAggregate>) => boolean, timeoutMs?: number): Promise<Map<string, WindowAggregate>>;
  readLate(expected: number): Promise<ReadRecord[]>;
  close(): Promise<void>;
}

export async function aggregatorFixture(partitions = 3): Promise<AggregatorFixture> {
  const kafka = testKafka();
  const prefix = `${uniqueName('agg')}.`;
  await withAdmin(kafka, (admin) => provisionTopics(admin, topicCatalog({ prefix, partitions })));
  const topics = { enriched: `${prefix}events.enriched`, aggregates: `${prefix}aggregates`, late: `${prefix}events.late` };
  const applicationId = uniqueName('aggregator');
  const serde = new Serde(runningStack().schemaRegistryUrl);
  const encoder = await serde.encoder<EnrichedEvent>(valueSubjectOf(topics.enriched), 'EnrichedEvent');
  const decoder = serde.decoder<WindowAggregate>('WindowAggregate');
  const producer: Producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  const services: TestService[] = [];
  return {
    kafka,
    topics,
    applicationId,
    async start(env = {}) {
      const service = await startTestService('aggregator', {
        env: {
          AGGREGATOR_APPLICATION_ID: applicationId,
          AGGREGATOR_INPUT_TOPIC: topics.enriched,
          AGGREGATOR_OUTPUT_TOPIC: topics.aggregates,
          AGGREGATOR_LATE_TOPIC: topics.late,
          WINDOW_SIZE_MS: String(WINDOW_MS),
          WINDOW_GRACE_MS: String(GRACE_MS),
          STREAM_SESSION_TIMEOUT_MS: '6000',
          LOG_LEVEL: 'info',
          ...env,
        },
      });
      services.push(service);
      return service;
    },
    async send(events) {
      await producer.send({ topic: topics.enriched, acks: -1, messages: events.map((e) => ({ key: e.entityId, value: encoder.encode(e) })) });
    },
    async latestAggregates(done, timeoutMs = 120_000) {
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline) {
        const records = await readTopic(kafka, topics.aggregates, { done: () => false, timeoutMs: 3_000, settleMs: 0 });
        // Per key, the record with the highest revision: what a reader of the compacted topic keeps.
        const latest = new Map<string, WindowAggregate>();
        for (const r of records) {
          const value = await decoder.decode(r.value);
          const current = latest.get(r.key!);
          if (!current || value.revision > current.revision) latest.set(r.key!, value);
        }
        if (done(latest)) return latest;
      }
      throw new Error('aggregates did not reach the expected state in time');
    },
    async readLate(expected) {
      return readTopic(kafka, topics.late, { done: (r) => r.length >= expected, timeoutMs: 30_000, settleMs: 2_000 });
    },
    async close() {
      await Promise.all(services.map((s) => s.stop()));
      await producer.disconnect();
    },
  };
}
