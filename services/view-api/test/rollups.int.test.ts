import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { WindowAggregate } from '@sluice/contracts';
import { createTestDatabase } from '@sluice/testing';
import fc from 'fast-check';
import { Pool } from 'pg';
import type { TopQuery } from '../src/query';
import { ROLLUP_GRAINS_SECONDS } from '../src/rollups';
import { topSql, ViewStore } from '../src/store';

jest.setTimeout(300_000);

const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;
const BASE = Date.UTC(2026, 2, 1);

let pool: Pool;
let store: ViewStore;

async function migrate(databaseUrl: string): Promise<void> {
  await promisify(execFile)(process.execPath, [join(__dirname, '..', 'dist', 'migrate-cli.js')], { env: { ...process.env, DATABASE_URL: databaseUrl } });
}

beforeAll(async () => {
  const url = await createTestDatabase('rollups');
  await migrate(url);
  pool = new Pool({ connectionString: url, max: 4 });
  store = new ViewStore(pool);
});

afterAll(async () => {
  await pool.end();
});

function windowRecord(dimension: 'entity' | 'category', key: string, windowStart: number, count: number, sum: number, revision: number): WindowAggregate {
  return { dimension, key, windowStart, windowEnd: windowStart + MIN, count, sum, min: 0, max: 0, isFinal: false, revision, lastEventAt: windowStart };
}

/** Each batch in its own transaction, as the projection applies them. */
async function applyBatches(batches: WindowAggregate[][]): Promise<void> {
  let offset = 0;
  for (const [i, batch] of batches.entries()) {
    const client = await pool.connect();
    try {
      await client.query('begin');
      await store.apply(client, i % 3, batch.map((record) => ({ record, partition: i % 3, offset: String(offset++) })));
      await client.query('commit');
    } finally {
      client.release();
    }
  }
}

/** What the view must hold: per window, the first record with the highest revision seen. */
function model(batches: WindowAggregate[][]): WindowAggregate[] {
  const windows = new Map<string, WindowAggregate>();
  for (const r of batches.flat()) {
    const id = `${r.dimension}|${r.key}|${r.windowStart}`;
    const current = windows.get(id);
    if (!current || r.revision > current.revision) windows.set(id, r);
  }
  return [...windows.values()];
}

function expectedTop(windows: WindowAggregate[], q: TopQuery): { key: string; value: number; windows: number }[] {
  const totals = new Map<string, { value: number; windows: number }>();
  for (const w of windows) {
    if (w.dimension !== q.dimension || w.windowStart < q.from || w.windowStart >= q.to) continue;
    const t = totals.get(w.key) ?? { value: 0, windows: 0 };
    t.value += q.metric === 'sum' ? w.sum : w.count;
    t.windows += 1;
    totals.set(w.key, t);
  }
  return [...totals.entries()]
    .map(([key, t]) => ({ key, ...t }))
    .sort((a, b) => b.value - a.value || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
    .slice(0, q.limit);
}

// Window starts near the edges that matter: day and hour boundaries, inside and across them, over four days.
const windowStart = fc.oneof(
  fc.integer({ min: 0, max: 4 * 24 * 60 - 1 }).map((m) => BASE + m * MIN),
  fc.tuple(fc.integer({ min: 0, max: 3 }), fc.constantFrom(-1, 0, 1, 59, 60, 61)).map(([d, m]) => BASE + d * DAY + m * MIN),
);
// Keys compare as Postgres orders text in this database; plain ASCII letters keep the tie-break the same in JavaScript.
const record = fc
  .tuple(fc.constantFrom('entity', 'category') as fc.Arbitrary<'entity' | 'category'>, fc.constantFrom('a', 'b', 'c', 'd', 'e'), windowStart, fc.integer({ min: 0, max: 50 }), fc.integer({ min: -4000, max: 4000 }), fc.integer({ min: 1, max: 4 }))
  // Quarters are exact in binary floating point: the sums of the rollups and of the windows are equal, not merely close.
  .map(([d, k, ws, c, s, r]) => windowRecord(d, k, ws, c, s / 4, r));
const edge = fc.oneof(
  fc.integer({ min: -1, max: 4 * 24 * 60 + 1 }).map((m) => BASE + m * MIN),
  fc.integer({ min: 0, max: 4 * 24 }).map((h) => BASE + h * HOUR),
  fc.integer({ min: 0, max: 4 * 24 * 60 * 60 }).map((s) => BASE + s * 1000),
);

test('top-N read from the rollups equals the totals of the windows, corrections and stale revisions included', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.array(record, { minLength: 1, maxLength: 40 }), { minLength: 1, maxLength: 8 }),
      fc.array(fc.tuple(edge, edge, fc.constantFrom('entity', 'category') as fc.Arbitrary<'entity' | 'category'>, fc.constantFrom('count', 'sum') as fc.Arbitrary<'count' | 'sum'>, fc.integer({ min: 1, max: 6 })), {
        minLength: 1,
        maxLength: 12,
      }),
      async (batches, ranges) => {
        await pool.query('truncate window_aggregates, window_rollups');
        await applyBatches(batches);
        const windows = model(batches);
        for (const [a, b, dimension, metric, limit] of ranges) {
          if (a === b) continue;
          const q: TopQuery = { dimension, metric, limit, from: Math.min(a, b), to: Math.max(a, b) };
          expect({ q, top: await store.top(q) }).toEqual({ q, top: expectedTop(windows, q) });
        }
        // The whole range of the data, which reads whole days and hours.
        const all: TopQuery = { dimension: 'entity', metric: 'count', limit: 10, from: BASE - DAY, to: BASE + 5 * DAY };
        expect(await store.top(all)).toEqual(expectedTop(windows, all));
      },
    ),
    { numRuns: 40 },
  );
});

test('a range of whole days reads the rollups, not the windows', () => {
  const { sql } = topSql({ dimension: 'entity', metric: 'count', limit: 10, from: BASE, to: BASE + 2 * DAY });
  expect(sql).toContain('window_rollups');
  expect(sql).not.toContain('window_aggregates');
});

test('the migration that adds the rollups fills them from the windows already there', async () => {
  const url = await createTestDatabase('rollups_backfill');
  await migrate(url);
  const other = new Pool({ connectionString: url, max: 2 });
  try {
    const otherStore = new ViewStore(other);
    const windows = Array.from({ length: 300 }, (_, i) => windowRecord(i % 2 ? 'entity' : 'category', `k${i % 7}`, BASE + ((i * 37) % (3 * 24 * 60)) * MIN, i % 11, (i % 13) / 4, 1));
    const client = await other.connect();
    try {
      await client.query('begin');
      await otherStore.apply(client, 0, windows.map((record, i) => ({ record, partition: 0, offset: String(i) })));
      await client.query('commit');
    } finally {
      client.release();
    }
    const before = await other.query('select * from window_rollups order by dimension, grain_seconds, bucket_start, key');
    // As a database of the version before rollups: the table gone and the migration not yet applied.
    await other.query(`drop table window_rollups; delete from view_api_migrations where name like '%window-rollups'`);
    await migrate(url);
    const after = await other.query('select * from window_rollups order by dimension, grain_seconds, bucket_start, key');
    expect(after.rows.length).toBeGreaterThan(0);
    expect(after.rows).toEqual(before.rows);
    const q: TopQuery = { dimension: 'category', metric: 'sum', limit: 5, from: BASE, to: BASE + 3 * DAY };
    expect(await otherStore.top(q)).toEqual(expectedTop(windows, q));
  } finally {
    await other.end();
  }
});

test('writers racing on the same windows leave the rollups equal to the totals of the windows', async () => {
  await pool.query('truncate window_aggregates, window_rollups');
  // Four writers, each applying its own transactions of corrections to the same few windows, as a projection
  // and a replica that has not yet noticed it lost the partition would; a deadlock is retried, as the sink does.
  const writer = async (w: number) => {
    for (let t = 0; t < 40; t++) {
      const batch = Array.from({ length: 6 }, (_, i) => windowRecord('entity', `k${(w + i + t) % 4}`, BASE + ((t + i) % 3) * MIN, (w * 7 + t + i) % 20, (t % 9) / 4, 1 + ((w + t * 3 + i) % 25)));
      for (;;) {
        const client = await pool.connect();
        try {
          await client.query('begin');
          await store.apply(client, w, batch.map((record, i) => ({ record, partition: w, offset: String(t * 10 + i) })));
          await client.query('commit');
          break;
        } catch (err) {
          await client.query('rollback');
          if ((err as { code?: string }).code !== '40P01') throw err;
        } finally {
          client.release();
        }
      }
    }
  };
  await Promise.all([0, 1, 2, 3].map(writer));
  const fromWindows = await pool.query(
    `select dimension, g as grain_seconds, to_timestamp(floor(extract(epoch from window_start) / g) * g) as bucket_start, key, sum(count)::bigint as count, sum(sum) as sum, count(*) as windows
     from window_aggregates cross join unnest($1::integer[]) as g group by 1, 2, 3, 4 order by 1, 2, 3, 4`,
    [ROLLUP_GRAINS_SECONDS],
  );
  const rollups = await pool.query('select dimension, grain_seconds, bucket_start, key, count, sum, windows from window_rollups order by 1, 2, 3, 4');
  expect(rollups.rows).toEqual(fromWindows.rows);
});
