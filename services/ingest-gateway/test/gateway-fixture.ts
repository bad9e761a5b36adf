import type { JsonBody as Json } from '@sluice/testing';
import { provisionTopics, Serde, topicCatalog, type ActivityEvent, type CatalogItem } from '@sluice/contracts';
import { httpJson, readTopic, runningStack, startTestService, testKafka, uniqueName, withAdmin, type ReadRecord, type TestService } from '@sluice/testing';
import type { Kafka } from 'kafkajs';

export interface GatewayFixture {
  kafka: Kafka;
  topics: { events: string; catalog: string };
  gateway: TestService;
  post(path: string, body: unknown, headers?: Record<string, string>, method?: string): Promise<{ status: number; body: Json; headers: Headers }>;
  readEvents(expected: number, timeoutMs?: number): Promise<(ReadRecord & { event: ActivityEvent })[]>;
  readCatalog(expected: number): Promise<(ReadRecord & { item: CatalogItem | null })[]>;
  close(): Promise<void>;
}

export async function gatewayFixture(env: Record<string, string> = {}, partitions = 3): Promise<GatewayFixture> {
  const kafka = testKafka();
  const prefix = `${uniqueName('gw')}.`;
  await withAdmin(kafka, (admin) => provisionTopics(admin, topicCatalog({ prefix, partitions })));
  const topics = { events: `${prefix}events.raw`, catalog: `${prefix}catalog.items` };
  const gateway = await startTestService('ingest-gateway', {
    env: { GATEWAY_EVENTS_TOPIC: topics.events, GATEWAY_CATALOG_TOPIC: topics.catalog, LOG_LEVEL: 'warn', ...env },
  });
  const serde = new Serde(runningStack().schemaRegistryUrl);
  return {
    kafka,
    topics,
    gateway,
    post: (path, body, headers = {}, method = 'POST') => httpJson(`${gateway.url}${path}`, method, body, headers),
    async readEvents(expected, timeoutMs = 30_000) {
      const records = await readTopic(kafka, topics.events, { done: (r) => r.length >= expected, timeoutMs });
      const decoder = serde.decoder<ActivityEvent>('ActivityEvent');
      return Promise.all(records.map(async (r) => ({ ...r, event: await decoder.decode(r.value) })));
    },
    async readCatalog(expected) {
      const records = await readTopic(kafka, topics.catalog, { done: (r) => r.length >= expected });
      const decoder = serde.decoder<CatalogItem>('CatalogItem');
      return Promise.all(records.map(async (r) => ({ ...r, item: r.value ? await decoder.decode(r.value) : null })));
    },
    close: async () => {
      await gateway.stop();
    },
  };
}

let n = 0;
export function eventBody(entityId = 'sku-1', over: Record<string, unknown> = {}) {
  n += 1;
  return { eventId: `ev-${Date.now().toString(36)}-${n}`, type: 'view', entityId, occurredAt: '2026-11-29T10:00:00.000Z', value: n, attributes: { n: String(n) }, ...over };
}
