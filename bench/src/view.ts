import { provisionTopics, Serde, topicCatalog, valueSubjectOf, type WindowAggregate } from '@sluice/contracts';
import { createTestDatabase, runningStack, startTestService, testKafka, uniqueName, withAdmin } from '@sluice/testing';
import autocannon from 'autocannon';
import { Partitioners } from 'kafkajs';
import { Client } from 'pg';
import { scrape, timeUntil } from './metrics';
import { openLoop } from './open-loop';
import { serviceNodeOptions, serviceNodeOptionsUsed, writeResults } from './results';

const PROJECTED = 100_000;
const TABLE = 1_000_000;

/**
 * view-api scenario: projection rows/s (100,000 window records through Kafka
 * into Postgres), then query latency at fixed request rates over a table of
 * 1,000,000 windows (45 minutes of 10,000 keys per dimension), with a replica
 * that keeps top answers and one that reads Postgres for every top query.
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

  const view = await startTestService('view-api', { env: { DATABASE_URL: url.toString(), VIEW_INPUT_TOPIC: topic, VIEW_CONSUMER_GROUP: uniqueName('bench-view'), LOG_LEVEL: 'warn', ...serviceNodeOptions() } });
  try {
    const { firstMs, doneMs } = await timeUntil(view.url, 'view_projected_rows_total', PROJECTED);
    const projectionSeconds = (doneMs - firstMs) / 1000;

    const db = new Client({ connectionString: url.toString() });
    await db.connect();
    await db.query(`insert into window_aggregates (dimension, key, window_start, window_end, count, sum, min, max, last_event_at, is_final, revision, source_partition, source_offset, change_seq)
      select case when i % 2 = 0 then 'entity' else 'category' end, 'bulk-' || (i % 20000), to_timestamp(1600000000 + (i / 20000) * 60), to_timestamp(1600000060 + (i / 20000) * 60),
             i % 50, i % 97, 0, 9, to_timestamp(1600000000), true, 1, 0, 0, nextval('window_aggregates_change_seq')
      from generate_series(1, ${TABLE - PROJECTED}) as i`);
    // The rollups of those windows, as the projection (or the migration) would have made them.
    await db.query(`insert into window_rollups (dimension, grain_seconds, bucket_start, key, count, sum, windows)
      select dimension, g, to_timestamp(floor(extract(epoch from window_start) / g) * g), key, sum(count), sum(sum), count(*)
      from window_aggregates cross join (values (600), (3600), (86400)) as grains(g) where key like 'bulk-%' group by 1, 2, 3, 4`);
    // What an operator does after a bulk load, and what autovacuum would otherwise do in the middle of the
    // measurement on the same two cores (the 900,000 inserted rows pass its insert threshold).
    await db.query('vacuum analyze window_aggregates');
    await db.query('vacuum analyze window_rollups');
    const [{ rows }] = (await db.query<{ rows: string }>('select count(*) as rows from window_aggregates')).rows as [{ rows: string }];
    await db.end();

    // A second replica that answers queries only and keeps no top answers: every top query reads Postgres.
    const cold = await startTestService('view-api', {
      name: 'view-api-cold',
      env: { DATABASE_URL: url.toString(), VIEW_PROJECTION_ENABLED: 'false', VIEW_TOP_CACHE_ENTRIES: '0', LOG_LEVEL: 'warn', ...serviceNodeOptions() },
    });
    try {
      const iso = (s: number) => new Date((1_600_000_000 + s) * 1000).toISOString();
      // At a fixed rate: requests evenly spaced, each timed from when it was due (see openLoop). At most: autocannon.
      const run = async (base: string, path: string, rate: number | undefined) => {
        if (rate) return { path, ...(await openLoop(`${base}${path}`, rate, 10)) };
        const result = await autocannon({ url: `${base}${path}`, connections: 8, duration: 10 });
        return { path, targetRate: 'max', requestsPerSecond: Math.round(result.requests.average), p50Ms: result.latency.p50, p99Ms: result.latency.p99, maxMs: result.latency.max, non2xx: result.non2xx };
      };
      const top10m = `/v1/top?dimension=entity&from=${iso(600)}&to=${iso(1200)}&limit=10`;
      // 24 hours that end inside the data and start inside no bucket: days, hours, ten minutes and windows all read.
      const top24h = `/v1/top?dimension=entity&from=${iso(1230 - 86_400)}&to=${iso(1230)}&limit=10`;
      // One request of each top query first: the replica that keeps answers is measured in its steady state (what
      // a dashboard asking again sees); the first answer costs what the other replica's figures show.
      const oneKey = '/v1/aggregates?dimension=entity&key=bulk-42&limit=100';
      const range = `/v1/aggregates?dimension=category&from=${iso(600)}&to=${iso(660)}&limit=100`;
      for (const path of [top10m, top24h]) await fetch(`${view.url}${path}`).then((r) => r.arrayBuffer());
      // Every query path warmed by a second of its own load first (the pool's connections opened, the
      // statements planned, the code optimised), as a replica that has served for a while is.
      for (const path of [oneKey, range]) await autocannon({ url: `${view.url}${path}`, connections: 8, overallRate: 200, duration: 1 });
      const queries = [
        await run(view.url, oneKey, 500),
        await run(view.url, range, 200),
        await run(view.url, top10m, 1_000),
        await run(view.url, top24h, 1_000),
      ];
      const coldQueries = [await run(cold.url, top10m, undefined), await run(cold.url, top24h, undefined), await run(cold.url, top24h, 20)];
      const rssMb = Math.round((await scrape(view.url, 'process_resident_memory_bytes')) / 2 ** 20);
      return writeResults('view', {
        projection: { rows: PROJECTED, seconds: projectionSeconds, rowsPerSecond: Math.round(PROJECTED / projectionSeconds) },
        table: { windows: Number(rows) },
        queries,
        topWithoutKeptAnswers: coldQueries,
        viewApiRssMb: rssMb,
        serviceNodeOptions: serviceNodeOptionsUsed(),
      });
    } finally {
      await cold.stop();
    }
  } finally {
    await view.stop();
  }
}
