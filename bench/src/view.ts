import { provisionTopics, Serde, topicCatalog, valueSubjectOf, type WindowAggregate } from '@sluice/contracts';
import { createTestDatabase, runningStack, startTestService, testKafka, uniqueName, withAdmin } from '@sluice/testing';
import autocannon from 'autocannon';
import { Partitioners } from 'kafkajs';
import { Client } from 'pg';
import { timeUntil } from './metrics';
import { writeResults } from './results';

const PROJECTED = 100_000;
const TABLE = 1_000_000;

/**
 * view-api scenario: projection rows/s (100,000 window records through Kafka
 * into Postgres), then query latency at a fixed request rate over a table of
 * 1,000,000 windows.
 */
export async function viewBench(): Promise<string> {
  const kafka = testKafka();
  const prefix = `${uniqueName('benchview')}.`;
  await withAdmin(kafka, (admin) => provisionTopics(admin, topicCatalog({ prefix, partitions: 6 })));
  const topic = `${prefix}aggregates`;
  const url = new URL(await createTestDatabase('benchview'));

  const serde = new Serde(runningStack().schemaRegistryUrl);
  const encoder = await serde.encoder<WindowAggregate>(valueSubjectOf(topic), 'WindowAggregate');
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  const base = Date.UTC(2026, 0, 1);
  for (let start = 0; start < PROJECTED; start += 2_000) {
    await producer.send({
      topic,
      acks: -1,
      messages: Array.from({ length: 2_000 }, (_, j) => {
        const i = start + j;
        const record: WindowAggregate = {
          dimension: i % 2 ? 'entity' : 'category', key: `k-${i % 10_000}`, windowStart: base + Math.floor(i / 10_000) * 60_000,
          windowEnd: base + Math.floor(i / 10_000) * 60_000 + 60_000, count: i % 50, sum: i % 97, min: 0, max: 9, isFinal: true, revision: 1, lastEventAt: base,
        };
        return { key: `${record.dimension}|${record.key}|${record.windowStart}`, value: encoder.encode(record) };
      }),
    });
  }
  await producer.disconnect();

  const view = await startTestService('view-api', { env: { DATABASE_URL: url.toString(), VIEW_INPUT_TOPIC: topic, VIEW_CONSUMER_GROUP: uniqueName('bench-view'), LOG_LEVEL: 'warn' } });
  try {
    const { firstMs, doneMs } = await timeUntil(view.url, 'view_projected_rows_total', PROJECTED);
    const projectionSeconds = (doneMs - firstMs) / 1000;

    const db = new Client({ connectionString: url.toString() });
    await db.connect();
    await db.query(`insert into window_aggregates (dimension, key, window_start, window_end, count, sum, min, max, last_event_at, is_final, revision, source_partition, source_offset, change_seq)
      select case when i % 2 = 0 then 'entity' else 'category' end, 'bulk-' || (i % 20000), to_timestamp(1600000000 + (i / 20000) * 60), to_timestamp(1600000060 + (i / 20000) * 60),
             i % 50, i % 97, 0, 9, to_timestamp(1600000000), true, 1, 0, 0, nextval('window_aggregates_change_seq')
      from generate_series(1, ${TABLE - PROJECTED}) as i`);
    await db.query('analyze window_aggregates');
    const [{ rows }] = (await db.query<{ rows: string }>('select count(*) as rows from window_aggregates')).rows as [{ rows: string }];
    await db.end();

    const iso = (s: number) => new Date((1_600_000_000 + s) * 1000).toISOString();
    const run = async (path: string) => {
      const result = await autocannon({ url: `${view.url}${path}`, connections: 8, overallRate: 200, duration: 10 });
      return { path, requestsPerSecond: Math.round(result.requests.average), p50Ms: result.latency.p50, p99Ms: result.latency.p99, maxMs: result.latency.max, non2xx: result.non2xx };
    };
    const queries = [
      await run('/v1/aggregates?dimension=entity&key=bulk-42&limit=100'),
      await run(`/v1/aggregates?dimension=category&from=${iso(600)}&to=${iso(660)}&limit=100`),
      await run(`/v1/top?dimension=entity&from=${iso(600)}&to=${iso(1200)}&limit=10`),
    ];
    return writeResults('view', {
      projection: { rows: PROJECTED, seconds: projectionSeconds, rowsPerSecond: Math.round(PROJECTED / projectionSeconds) },
      table: { windows: Number(rows) },
      queriesAt200RequestsPerSecond: queries,
    });
  } finally {
    await view.stop();
  }
}
