import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { eventually, startPipeline, type JsonBody as Json, type Pipeline } from '@sluice/testing';

// The archive against the view (issue 19): events go through the whole pipeline, the archiver writes
// events.enriched to Parquet, and `sluice archive query` computes every window's count and sum per entity
// and per category from the archive. They must equal the finals view-api serves for the same windows.
jest.setTimeout(300_000);

const MIN = 60_000;
const GRACE = 10_000;
const iso = (ms: number) => new Date(ms).toISOString();
const run = promisify(execFile);

let p: Pipeline;
afterEach(async () => {
  await p?.close();
});

async function archiveQuery(archive: string, sql: string): Promise<Json[]> {
  const { stdout } = await run(process.execPath, [join(__dirname, '..', 'services', 'archiver', 'dist', 'cli.js'), 'query', sql, '--json'], {
    env: { ...process.env, ARCHIVE_URL: archive },
    maxBuffer: 64 * 1024 * 1024,
  });
  return JSON.parse(stdout) as Json[];
}

async function served(dimension: string, from: number, to: number): Promise<Map<string, Json>> {
  const out = new Map<string, Json>();
  let cursor: string | null = null;
  do {
    const res = await p.http(p.view, 'GET', `/v1/aggregates?dimension=${dimension}&from=${iso(from)}&to=${iso(to)}&limit=500${cursor ? `&cursor=${cursor}` : ''}`);
    expect(res.status).toBe(200);
    for (const w of res.body.windows as Json[]) out.set(`${dimension}|${w.key}|${Date.parse(w.windowStart)}`, w);
    cursor = res.body.nextCursor;
  } while (cursor);
  return out;
}

test('window counts and sums computed from the archive with DuckDB equal the finals the view serves', async () => {
  const archive = mkdtempSync(join(tmpdir(), 'sluice-e2e-archive-'));
  p = await startPipeline({ windowRetentionMs: 24 * 3_600_000, archiveUrl: archive });
  const entities = Array.from({ length: 12 }, (_, i) => ({ entityId: `arch-é${i}-\u{1F4E6}`, category: `cat-${i % 3}` }));
  for (const e of entities) expect((await p.http(p.gateway, 'PUT', `/v1/catalog/${encodeURIComponent(e.entityId)}`, { name: e.entityId, category: e.category })).status).toBe(200);
  const base = Math.floor(Date.now() / MIN) * MIN - 60 * MIN;
  let seq = 0;
  let sent = 0;
  const round = async (at: number) => {
    const events = entities.map((e) => ({ eventId: `arch-${++seq}`, type: 'view', entityId: e.entityId, occurredAt: iso(at + (seq % 7) * 1_000), value: 1 + ((seq * 7) % 50) }));
    expect((await p.http(p.gateway, 'POST', '/v1/events', { events })).status).toBe(202);
    sent += events.length;
  };
  // Seven windows, then a round far enough ahead that every one of them closes.
  for (let r = 0; r < 21; r++) await round(base + r * 20_000);
  const closingAt = base + 10 * MIN;
  await round(closingAt);
  const table = p.topic('events.enriched').replace(/[^A-Za-z0-9_]/g, '_');

  await eventually('every event archived', async () => Number((await archiveQuery(archive, `select count(*) as n from ${table}`))[0]?.n ?? 0), (n) => n >= sent, 120_000);
  const [counts] = await archiveQuery(archive, `select count(*) as n, count(distinct event_id) as ids from ${table}`);
  expect(counts).toEqual({ n: String(sent), ids: String(sent) });

  const rows = await archiveQuery(
    archive,
    `select 'entity' as dimension, entity_id as key, (epoch_ms(occurred_at) // 60000) * 60000 as window_start, count(*) as count, sum(value) as sum
       from ${table} group by all
     union all
     select 'category', category, (epoch_ms(occurred_at) // 60000) * 60000, count(*), sum(value)
       from ${table} group by all`,
  );
  const fromArchive = new Map(
    rows.filter((r) => Number(r.window_start) + MIN + GRACE <= closingAt).map((r) => [`${r.dimension}|${r.key}|${Number(r.window_start)}`, { count: Number(r.count), sum: Number(r.sum) }]),
  );
  expect(fromArchive.size).toBe(7 * (12 + 3));
  const view = await eventually(
    'every closed window final in the view',
    async () => new Map([...(await served('entity', base, closingAt)), ...(await served('category', base, closingAt))]),
    (v) => [...fromArchive.keys()].every((id) => v.get(id)?.isFinal === true),
    180_000,
  );
  const fromView = new Map([...view].filter(([, w]) => w.isFinal).map(([id, w]) => [id, { count: w.count, sum: w.sum }]));
  expect(fromView).toEqual(fromArchive);
});
