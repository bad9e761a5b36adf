import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { WindowAggregate } from '@sluice/contracts';
import { createTestDatabase } from '@sluice/testing';
import { Client, Pool } from 'pg';
import { retentionCutoff } from '../src/retention';
import { ViewStore } from '../src/store';

jest.setTimeout(180_000);

const run = promisify(execFile);
const MIN = 60_000;
const DAY = 86_400_000;

let url: string;
let pool: Pool;
let store: ViewStore;

beforeAll(async () => {
  url = await createTestDatabase('retention');
  await run(process.execPath, [join(__dirname, '..', 'dist', 'migrate-cli.js')], { env: { ...process.env, DATABASE_URL: url } });
  pool = new Pool({ connectionString: url, max: 4 });
  store = new ViewStore(pool);
});

afterAll(async () => {
  await pool.end();
});

const retention = (...flags: string[]) =>
  run(process.execPath, [join(__dirname, '..', 'dist', 'maintenance-cli.js'), 'retention', ...flags], { env: { ...process.env, DATABASE_URL: url, VIEW_RETENTION_DAYS: '3' } });

let offset = 0;
async function write(records: WindowAggregate[]): Promise<void> {
  const client = await pool.connect();
  try {
    await client.query('begin');
    await store.apply(client, 0, records.map((record) => ({ record, partition: 0, offset: String(offset++) })));
    await client.query('commit');
  } finally {
    client.release();
  }
}

const window = (key: string, windowStart: number, count: number): WindowAggregate => ({
  dimension: key.startsWith('c') ? 'category' : 'entity',
  key,
  windowStart,
  windowEnd: windowStart + MIN,
  count,
  sum: count * 2,
  min: 1,
  max: 3,
  isFinal: true,
  revision: 1,
  lastEventAt: windowStart,
});

async function counts(cutoff: number): Promise<{ oldWindows: number; newWindows: number; oldRollups: number }> {
  const { rows } = await pool.query(
    `select (select count(*) from window_aggregates where window_start < $1)::int as "oldWindows",
            (select count(*) from window_aggregates where window_start >= $1)::int as "newWindows",
            (select count(*) from window_rollups where bucket_start < $1)::int as "oldRollups"`,
    [new Date(cutoff).toISOString()],
  );
  return rows[0];
}

/** The rollups as the windows that remain sum them: they must be equal after any run. */
async function rollupsMatchWindows(): Promise<void> {
  const recomputed = await pool.query(
    `select w.dimension, g.s as grain_seconds, to_timestamp(floor(extract(epoch from w.window_start) / g.s) * g.s) as bucket_start, w.key,
            sum(w.count)::bigint::text as count, sum(w.sum) as sum, count(*)::bigint::text as windows
       from window_aggregates w cross join (values (86400), (3600), (600)) as g(s)
      group by 1, 2, 3, 4 order by 1, 2, 3, 4`,
  );
  const kept = await pool.query(`select dimension, grain_seconds, bucket_start, key, count::text, sum, windows::text from window_rollups order by 1, 2, 3, 4`);
  expect(kept.rows).toEqual(recomputed.rows);
}

test('view retention deletes exactly the windows and rollups of the days before the cutoff, whole days, while the projection writes; a second run at once does nothing', async () => {
  const now = Date.now();
  const cutoff = retentionCutoff(now, 3);
  // Windows on each of the last seven days, at several times of day.
  const old: WindowAggregate[] = [];
  for (let d = 7; d >= 0; d--) for (const h of [0, 5, 13, 23]) for (const key of ['e-1', 'e-2', 'c-1']) old.push(window(key, Math.floor((now - d * DAY) / MIN) * MIN - h * 3_600_000, d + h + 1));
  for (let i = 0; i < old.length; i += 20) await write(old.slice(i, i + 20));
  const before = await counts(cutoff);
  expect(before.oldWindows).toBeGreaterThan(40);
  expect(before.newWindows).toBeGreaterThan(20);

  const dry = await retention('--dry-run');
  expect(dry.stdout.trim()).toBe(`view-retention (dry run): would delete ${before.oldWindows} windows and ${before.oldRollups} rollup rows that start before ${new Date(cutoff).toISOString()}`);
  expect(await counts(cutoff)).toEqual(before);

  // Another run holds the lock: this one does nothing.
  const holder = new Client({ connectionString: url });
  await holder.connect();
  await holder.query(`select pg_advisory_lock(hashtext('sluice.maintenance.view-retention'))`);
  expect((await retention()).stdout.trim()).toBe('view-retention: another run holds the lock; nothing done');
  await holder.end();
  expect(await counts(cutoff)).toEqual(before);

  // The projection keeps writing recent windows while the retention runs.
  let writing = true;
  let written = 0;
  const projection = (async () => {
    for (let i = 0; writing || i < 5; i++) {
      await write([window(`e-live-${i % 5}`, Math.floor(now / MIN) * MIN - (i % 50) * MIN, i + 1), window('c-1', cutoff + (i % 40) * 600_000, 1)]);
      written++;
    }
  })();
  const { stdout } = await retention();
  writing = false;
  await projection;
  expect(stdout.trim()).toBe(`view-retention: deleted ${before.oldWindows} windows and ${before.oldRollups} rollup rows that started before ${new Date(cutoff).toISOString()}`);
  const after = await counts(cutoff);
  expect(after.oldWindows).toBe(0);
  expect(after.oldRollups).toBe(0);
  expect(after.newWindows).toBeGreaterThanOrEqual(before.newWindows);
  expect(written).toBeGreaterThan(5);
  await rollupsMatchWindows();
  // Nothing at or after the cutoff was touched: every window written there is still there.
  const due = new Set(old.filter((w) => w.windowStart >= cutoff).map((w) => `${w.dimension}|${w.key}|${w.windowStart}`));
  const present = await pool.query(`select dimension || '|' || key || '|' || (extract(epoch from window_start) * 1000)::bigint as id from window_aggregates`);
  const ids = new Set(present.rows.map((r) => r.id as string));
  expect([...due].filter((id) => !ids.has(id))).toEqual([]);
});
