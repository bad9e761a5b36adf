import type { JsonBody as Json } from '@sluice/testing';
import { provisionTopics, Serde, topicCatalog, valueSubjectOf, type WindowAggregate } from '@sluice/contracts';
import { createTestDatabase, httpJson, sqlClient, runningStack, startTestService, testKafka, uniqueName, withAdmin, type TestService } from '@sluice/testing';
import { Partitioners, type Kafka, type Producer } from 'kafkajs';

/** A database, a topic and a consumer group of its own; view-api processes started against them. */
export interface ViewFixture {
  kafka: Kafka;
  topic: string;
  group: string;
  databaseUrl: string;
  start(env?: Record<string, string>): Promise<TestService>;
  send(records: WindowAggregate[]): Promise<void>;
  /** Sends to one partition, in order: raw values (bytes that may not even decode) or records. */
  sendTo(partition: number, values: (WindowAggregate | Buffer)[]): Promise<void>;
  get(service: TestService, path: string, headers?: Record<string, string>): Promise<{ status: number; body: Json; headers: Headers }>;
  sql<T extends Record<string, unknown>>(text: string, params?: unknown[]): Promise<T[]>;
  close(): Promise<void>;
}

export async function viewFixture(partitions = 3): Promise<ViewFixture> {
  const kafka = testKafka();
  const prefix = `${uniqueName('view')}.`;
  await withAdmin(kafka, (admin) => provisionTopics(admin, topicCatalog({ prefix, partitions })));
  const topic = `${prefix}aggregates`;
  const databaseUrl = await createTestDatabase('view');
  const group = uniqueName('view-projection');
  const serde = new Serde(runningStack().schemaRegistryUrl);
  const encoder = await serde.encoder<WindowAggregate>(valueSubjectOf(topic), 'WindowAggregate');
  const producer: Producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  const services: TestService[] = [];
  const db = sqlClient(databaseUrl);
  return {
    kafka,
    topic,
    group,
    databaseUrl,
    async start(env = {}) {
      const service = await startTestService('view-api', {
        env: { DATABASE_URL: databaseUrl, VIEW_INPUT_TOPIC: topic, VIEW_CONSUMER_GROUP: group, LOG_LEVEL: 'info', VIEW_RETRY_MAX_MS: '500', VIEW_SESSION_TIMEOUT_MS: '6000', ...env },
      });
      services.push(service);
      return service;
    },
    async send(records) {
      await producer.send({
        topic,
        acks: -1,
        messages: records.map((r) => ({ key: `${r.dimension}|${r.key}|${r.windowStart}`, value: encoder.encode(r) })),
      });
    },
    async sendTo(partition, values) {
      await producer.send({
        topic,
        acks: -1,
        messages: values.map((v) => (Buffer.isBuffer(v) ? { key: 'raw', value: v, partition } : { key: `${v.dimension}|${v.key}|${v.windowStart}`, value: encoder.encode(v), partition })),
      });
    },
    get: (service, path, headers = {}) => httpJson(`${service.url}${path}`, 'GET', undefined, headers),
    sql: (text, params) => db.sql(text, params),
    async close() {
      await Promise.all(services.map((s) => s.stop()));
      await producer.disconnect();
      await db.close();
    },
  };
}

const MIN = 60_000;
export const BASE = Date.UTC(2026, 0, 1, 12, 0, 0);

/** Revisions 1..n of a window, counts growing, the last one final. */
export function revisions(dimension: 'entity' | 'category', key: string, windowIndex: number, n: number): WindowAggregate[] {
  const windowStart = BASE + windowIndex * MIN;
  return Array.from({ length: n }, (_, i) => ({
    dimension,
    key,
    windowStart,
    windowEnd: windowStart + MIN,
    count: i + 1,
    sum: (i + 1) * 10,
    min: 1,
    max: i + 1,
    isFinal: i === n - 1,
    revision: i + 1,
    lastEventAt: windowStart + i * 100,
  }));
}
