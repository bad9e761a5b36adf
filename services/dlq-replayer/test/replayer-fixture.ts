import type { JsonBody as Json } from '@sluice/testing';
import { provisionTopics, Serde, topicCatalog, valueSubjectOf, type ActivityEvent } from '@sluice/contracts';
import { createTestDatabase, httpJson, sqlClient, readTopic, runningStack, startTestService, testKafka, uniqueName, withAdmin, type ReadRecord, type TestService } from '@sluice/testing';
import { Partitioners, type IHeaders, type Kafka, type Producer } from 'kafkajs';

export const TOKEN = 'test-admin-token';

export interface ReplayerFixture {
  kafka: Kafka;
  topics: { raw: string; dlq: string };
  databaseUrl: string;
  start(env?: Record<string, string>): Promise<TestService>;
  /** Dead letters as the enricher writes them: the original record, plus the dlq headers. */
  deadLetter(events: ActivityEvent[], headers?: IHeaders): Promise<void>;
  /** Raw records straight to the dead-letter topic's partition 0, whatever they hold. */
  produce(messages: { key: string | Buffer | null; value: Buffer | null; headers: IHeaders }[]): Promise<void>;
  call(service: TestService, method: string, path: string, body?: unknown, token?: string | null): Promise<{ status: number; body: Json }>;
  waitFor(service: TestService, replayId: string, status: string, timeoutMs?: number): Promise<Json>;
  readRaw(expected: number, timeoutMs?: number): Promise<ReadRecord[]>;
  sql(text: string, params?: unknown[]): Promise<Json[]>;
  close(): Promise<void>;
}

export async function replayerFixture(): Promise<ReplayerFixture> {
  const kafka = testKafka();
  const prefix = `${uniqueName('dlq')}.`;
  await withAdmin(kafka, (admin) => provisionTopics(admin, topicCatalog({ prefix, partitions: 3 })));
  const topics = { raw: `${prefix}events.raw`, dlq: `${prefix}events.raw.dlq` };
  const databaseUrl = await createTestDatabase('dlq');
  const serde = new Serde(runningStack().schemaRegistryUrl);
  const encoder = await serde.encoder<ActivityEvent>(valueSubjectOf(topics.raw), 'ActivityEvent');
  const producer: Producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  const services: TestService[] = [];
  const db = sqlClient(databaseUrl);
  const group = uniqueName('dlq-index');
  let n = 0;
  const call: ReplayerFixture['call'] = async (service, method, path, body, token = TOKEN) => {
    const headers: Record<string, string> = { 'x-operator': 'test-suite' };
    if (token !== null) headers.authorization = `Bearer ${token}`;
    const { status, body: parsed } = await httpJson(`${service.url}${path}`, method, body, headers);
    return { status, body: parsed };
  };
  return {
    kafka,
    topics,
    databaseUrl,
    async start(env = {}) {
      const service = await startTestService('dlq-replayer', {
        env: {
          DATABASE_URL: databaseUrl,
          DLQ_TOPICS: topics.dlq,
          DLQ_CONSUMER_GROUP: group,
          DLQ_REPLAY_ALLOWED_TOPICS: topics.raw,
          DLQ_ADMIN_TOKEN: TOKEN,
          DLQ_SESSION_TIMEOUT_MS: '6000',
          LOG_LEVEL: 'info',
          ...env,
        },
      });
      services.push(service);
      return service;
    },
    async deadLetter(events, headers = {}) {
      await producer.send({
        topic: topics.dlq,
        acks: -1,
        messages: events.map((e) => ({
          key: e.entityId,
          value: encoder.encode(e),
          headers: {
            traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
            'dlq.original.topic': topics.raw,
            'dlq.original.partition': '0',
            'dlq.original.offset': String(n++),
            'dlq.original.timestamp': String(Date.now()),
            'dlq.stage': 'enricher',
            'dlq.error.code': 'catalog.missing',
            'dlq.error.message': `no catalog entry for entity "${e.entityId}"`,
            'dlq.failed.at': new Date().toISOString(),
            ...headers,
          },
        })),
      });
    },
    async produce(messages) {
      await producer.send({ topic: topics.dlq, acks: -1, messages: messages.map((m) => ({ ...m, partition: 0 })) });
    },
    call,
    async waitFor(service, replayId, status, timeoutMs = 60_000) {
      const deadline = Date.now() + timeoutMs;
      let last: Json;
      while (Date.now() < deadline) {
        last = (await call(service, 'GET', `/admin/dlq/replays/${replayId}`)).body;
        if (last?.status === status) return last;
        await new Promise((r) => setTimeout(r, 200));
      }
      throw new Error(`replay ${replayId} did not become ${status}: ${JSON.stringify(last)}`);
    },
    readRaw: (expected, timeoutMs = 20_000) => readTopic(kafka, topics.raw, { done: (r) => r.length >= expected, timeoutMs }),
    sql: (text, params) => db.sql(text, params),
    async close() {
      await Promise.all(services.map((s) => s.stop()));
      await producer.disconnect();
      await db.close();
    },
  };
}

let seq = 0;
export function event(entityId = 'ghost'): ActivityEvent {
  seq += 1;
  return { eventId: `dl-${Date.now().toString(36)}-${seq}`, type: 'view', entityId: `${entityId}-${seq % 3}`, userId: null, occurredAt: Date.now(), value: seq, attributes: { n: String(seq) } };
}
