import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createTestDatabase } from '@sluice/testing';
import { Client, Pool } from 'pg';

jest.setTimeout(120_000);

const run = promisify(execFile);
const DAY = 86_400_000;

let url: string;
let pool: Pool;

beforeAll(async () => {
  url = await createTestDatabase('prune');
  pool = new Pool({ connectionString: url, max: 2 });
  // The service's migrations, up parts only, in order.
  const dir = join(__dirname, '..', 'migrations');
  for (const file of readdirSync(dir).sort()) await pool.query(readFileSync(join(dir, file), 'utf8').split('-- Down Migration')[0]!);
});

afterAll(async () => {
  await pool.end();
});

const prune = (...flags: string[]) =>
  run(process.execPath, [join(__dirname, '..', 'dist', 'maintenance-cli.js'), 'prune', ...flags], { env: { ...process.env, DATABASE_URL: url, DLQ_INDEX_RETENTION_DAYS: '30' } });

let offset = 0;
async function entry(status: 'pending' | 'replayed' | 'discarded', ageDays: number): Promise<string> {
  const { rows } = await pool.query(
    `insert into dead_letters (dlq_topic, dlq_partition, dlq_offset, source_topic, headers, error_code, error_message, stage, failed_at, status)
     values ('events.raw.dlq', 0, $1, 'events.raw', '{}', 'catalog.missing', 'no entry', 'enricher', $2, $3) returning id`,
    [offset++, new Date(Date.now() - ageDays * DAY).toISOString(), status],
  );
  return String(rows[0].id);
}

test('the dead-letter index prune deletes replayed and discarded entries past the retention, never pending ones nor ones a replay is still sending', async () => {
  const kept = [await entry('pending', 90), await entry('pending', 1), await entry('replayed', 29), await entry('discarded', 2)];
  const due = [await entry('replayed', 31), await entry('discarded', 45), await entry('replayed', 400)];
  const sending = await entry('replayed', 60);
  // A replay with a finished item for a due entry, and an item still being sent for another.
  await pool.query(`insert into replays (id, requested_by, request, rate_per_sec, force, status, selected, refused) values ('00000000-0000-0000-0000-000000000001', 'ops', '{}', 10, false, 'running', 2, 0)`);
  await pool.query(
    `insert into replay_items (replay_id, dead_letter_id, position, target_topic, target_partition, status)
     values ('00000000-0000-0000-0000-000000000001', $1, 0, 'events.raw', 0, 'replayed'), ('00000000-0000-0000-0000-000000000001', $2, 1, 'events.raw', 0, 'producing')`,
    [due[0], sending],
  );

  const dry = await prune('--dry-run');
  expect(dry.stdout).toMatch(/^dlq-index-prune \(dry run\): would delete 3 replayed or discarded entries that failed before /);
  expect(Number((await pool.query('select count(*) from dead_letters')).rows[0].count)).toBe(8);

  const holder = new Client({ connectionString: url });
  await holder.connect();
  await holder.query(`select pg_advisory_lock(hashtext('sluice.maintenance.dlq-index-prune'))`);
  expect((await prune()).stdout.trim()).toBe('dlq-index-prune: another run holds the lock; nothing done');
  await holder.end();

  const [first, second] = await Promise.all([prune(), prune()]);
  const summaries = [first.stdout.trim(), second.stdout.trim()].sort();
  // Whichever ran second found the lock taken, or found nothing left to do.
  expect(summaries.some((s) => /^dlq-index-prune: deleted 3 replayed or discarded entries that failed before .* \(and 1 finished replay items\)$/.test(s))).toBe(true);
  expect(summaries.every((s) => /deleted 3 |deleted 0 |another run holds the lock/.test(s))).toBe(true);
  const left = (await pool.query('select id::text from dead_letters order by id')).rows.map((r) => r.id as string);
  expect(left).toEqual([...kept, sending].sort((a, b) => Number(a) - Number(b)));
  expect((await pool.query('select dead_letter_id::text as id, status from replay_items')).rows).toEqual([{ id: sending, status: 'producing' }]);
});
