import { provisionTopics, Serde, topicCatalog, valueSubjectOf, type EnrichedEvent, type WindowAggregate } from '@sluice/contracts';
import {
  checkStageEffects,
  eventIdOf,
  readTopic,
  runningStack,
  startTestService,
  testKafka,
  uniqueName,
  withAdmin,
  withoutWatermarks,
  type ReadRecord,
  type StageEffectsReport,
  type TestService,
} from '@sluice/testing';
import { followTopic } from '@sluice/streams';
import { Partitioners, type Kafka, type KafkaMessage, type Producer } from 'kafkajs';

export const WINDOW_MS = 60_000;
export const GRACE_MS = 60_000;

export interface AggregatorFixture {
  kafka: Kafka;
  topics: { enriched: string; aggregates: string; late: string };
  applicationId: string;
  start(env?: Record<string, string>): Promise<TestService>;
  send(events: EnrichedEvent[]): Promise<void>;
  /** Sends to one partition of events.enriched, as one upstream partition (one enricher task) would. */
  sendTo(partition: number, events: EnrichedEvent[]): Promise<void>;
  /**
   * Each list of `groups` to one partition by a transactional producer of its own, every transaction open at once,
   * then committed one after the other: the partition ends with a marker of each, as an input written by several
   * upstream tasks committing together does.
   */
  sendInTransactions(partition: number, groups: EnrichedEvent[][]): Promise<void>;
  /** Every record of aggregates (decoded), in the order of each partition. */
  allAggregates(): Promise<WindowAggregate[]>;
  /** The newest record of every key in aggregates, once `done` is satisfied (or as it is when time runs out). */
  latestAggregates(done: (latest: Map<string, WindowAggregate>) => boolean, timeoutMs?: number): Promise<Map<string, WindowAggregate>>;
  readLate(expected: number): Promise<ReadRecord[]>;
  /**
   * The exactly-once invariant of the entity stage from Kafka alone: every event below the group's
   * offsets on events.enriched is forwarded to the category repartition topic exactly once (late or not).
   */
  checkEntityStage(): Promise<StageEffectsReport>;
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
    async sendTo(partition, events) {
      await producer.send({ topic: topics.enriched, acks: -1, messages: events.map((e) => ({ key: e.entityId, value: encoder.encode(e), partition })) });
    },
    async sendInTransactions(partition, groups) {
      const producers = groups.map((_, i) => kafka.producer({ transactionalId: `${applicationId}-upstream-${i}`, idempotent: true, maxInFlightRequests: 1 }));
      try {
        const transactions = [];
        for (const [i, p] of producers.entries()) {
          await p.connect();
          const transaction = await p.transaction();
          await transaction.send({ topic: topics.enriched, acks: -1, messages: groups[i]!.map((e) => ({ key: e.entityId, value: encoder.encode(e), partition })) });
          transactions.push(transaction);
        }
        for (const transaction of transactions) await transaction.commit();
      } finally {
        await Promise.all(producers.map((p) => p.disconnect()));
      }
    },
    async allAggregates() {
      const records: KafkaMessage[] = [];
      const follower = await followTopic(kafka, topics.aggregates, { onRecord: (_partition, message) => records.push(message) });
      await follower.caughtUp;
      await follower.stop();
      return Promise.all(records.map((r) => decoder.decode(r.value)));
    },
    async latestAggregates(done, timeoutMs = 120_000) {
      const deadline = Date.now() + timeoutMs;
      let latest = new Map<string, WindowAggregate>();
      while (Date.now() < deadline) {
        // Everything up to the end the topic has now (not a time-boxed read, which a loaded machine cuts short).
        const records: KafkaMessage[] = [];
        const follower = await followTopic(kafka, topics.aggregates, { onRecord: (_partition, message) => records.push(message) });
        await follower.caughtUp;
        await follower.stop();
        // Per key, the record with the highest revision: what a reader of the compacted topic keeps.
        latest = new Map<string, WindowAggregate>();
        for (const r of records) {
          const value = await decoder.decode(r.value);
          const key = r.key!.toString();
          const current = latest.get(key);
          if (!current || value.revision > current.revision) latest.set(key, value);
        }
        if (done(latest)) return latest;
        await new Promise((resolve) => setTimeout(resolve, 1_000));
      }
      // Not reached in time: the caller's assertions show how far off it is.
      return latest;
    },
    async readLate(expected) {
      return readTopic(kafka, topics.late, { done: (r) => r.length >= expected, timeoutMs: 30_000 });
    },
    async checkEntityStage() {
      const events = serde.decoder<EnrichedEvent>('EnrichedEvent');
      return checkStageEffects({
        kafka,
        group: applicationId,
        input: { topic: topics.enriched, identify: eventIdOf(events) },
        outputs: [{ topic: `${applicationId}-by-category-repartition`, identify: withoutWatermarks(eventIdOf(events)) }],
      });
    },
    async close() {
      await Promise.all(services.map((s) => s.stop()));
      await producer.disconnect();
    },
  };
}
