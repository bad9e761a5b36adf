import fc from 'fast-check';
import { openApiChecker, serverSentEvents, type TestService } from '@sluice/testing';
import { aggregatesSql, changesSql, topSql } from '../src/store';
import { BASE, revisions, viewFixture, type ViewFixture } from './view-fixture';

jest.setTimeout(180_000);

const MIN = 60_000;
let view: ViewFixture;
let api: TestService;

beforeAll(async () => {
  view = await viewFixture(2);
  api = await view.start();
  // 30 windows of one entity, 12 category keys with their revisions, all through the topic.
  await view.send(Array.from({ length: 30 }, (_, i) => revisions('entity', 'sku-1', i, 1)[0]!));
  await view.send(Array.from({ length: 12 }, (_, k) => revisions('category', `cat-${k}`, 0, 3)).flat());
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    const [{ n }] = (await view.sql<{ n: string }>('select count(*) as n from window_aggregates')) as [{ n: string }];
    if (Number(n) === 42) break;
    await new Promise((r) => setTimeout(r, 300));
  }
});

afterAll(async () => {
  await view.close();
});

test('windows come a page at a time in a stable order, and the cursors walk through all of them once', async () => {
  const seen: string[] = [];
  let cursor: string | null = null;
  do {
    const res = await view.get(api, `/v1/aggregates?dimension=entity&key=sku-1&limit=7${cursor ? `&cursor=${cursor}` : ''}`);
    expect(res.status).toBe(200);
    seen.push(...res.body.windows.map((w: { windowStart: string }) => w.windowStart));
    cursor = res.body.nextCursor;
  } while (cursor);
  expect(seen).toEqual(Array.from({ length: 30 }, (_, i) => new Date(BASE + i * MIN).toISOString()));
});

test('a time range selects windows by their start', async () => {
  const from = new Date(BASE + 10 * MIN).toISOString();
  const to = new Date(BASE + 13 * MIN).toISOString();
  const res = await view.get(api, `/v1/aggregates?dimension=entity&from=${from}&to=${to}`);
  expect(res.body.windows.map((w: { windowStart: string }) => w.windowStart)).toEqual([10, 11, 12].map((i) => new Date(BASE + i * MIN).toISOString()));
  expect(res.body.nextCursor).toBeNull();
});

test('only the highest revision is served', async () => {
  const res = await view.get(api, '/v1/aggregates?dimension=category&key=cat-3');
  expect(res.body.windows).toEqual([expect.objectContaining({ key: 'cat-3', revision: 3, count: 3, isFinal: true })]);
});

test('top ranks keys by the total of a metric over the range', async () => {
  await view.send([{ ...revisions('category', 'cat-5', 1, 1)[0]!, count: 50, sum: 7, revision: 9 }]);
  const from = new Date(BASE - MIN).toISOString();
  const to = new Date(BASE + 5 * MIN).toISOString();
  let res = await view.get(api, `/v1/top?dimension=category&from=${from}&to=${to}&limit=2`);
  for (let i = 0; i < 50 && res.body.top[0]?.value !== 53; i++) {
    await new Promise((r) => setTimeout(r, 200));
    res = await view.get(api, `/v1/top?dimension=category&from=${from}&to=${to}&limit=2`);
  }
  expect(res.body.top).toEqual([
    { key: 'cat-5', value: 53, windows: 2 },
    { key: 'cat-0', value: 3, windows: 1 },
  ]);
  const bySum = await view.get(api, `/v1/top?dimension=category&from=${from}&to=${to}&metric=sum&limit=1`);
  expect(bySum.body.top[0]).toEqual({ key: 'cat-5', value: 37, windows: 2 });
});

test('a kept top answer serves the same question until a window of its range changes', async () => {
  const hits = async () => Number(/^view_top_requests_total\{cache="hit"[^}]*\} (\d+)/m.exec(await (await fetch(`${api.url}/metrics`)).text())?.[1] ?? 0);
  const from = new Date(BASE + 20 * MIN).toISOString();
  const to = new Date(BASE + 22 * MIN).toISOString();
  const path = `/v1/top?dimension=category&from=${from}&to=${to}&limit=3`;
  await view.send([{ ...revisions('category', 'cache-1', 20, 1)[0]!, count: 5 }]);
  let first = await view.get(api, path);
  for (let i = 0; i < 50 && first.body.top[0]?.value !== 5; i++) {
    await new Promise((r) => setTimeout(r, 200));
    first = await view.get(api, path);
  }
  expect(first.body.top).toEqual([{ key: 'cache-1', value: 5, windows: 1 }]);
  // The answer that first showed the change may have been computed while its notification arrived: not kept.
  await view.get(api, path);
  const before = await hits();
  expect((await view.get(api, path)).body.top).toEqual(first.body.top);
  expect(await hits()).toBe(before + 1);

  // A change outside the range leaves the answer kept; one inside drops it, and the next answer holds the change.
  await view.send([{ ...revisions('category', 'cache-1', 22, 1)[0]!, count: 7 }]);
  await view.send([{ ...revisions('category', 'cache-2', 21, 1)[0]!, count: 9 }]);
  let after = await view.get(api, path);
  for (let i = 0; i < 50 && after.body.top[0]?.key !== 'cache-2'; i++) {
    await new Promise((r) => setTimeout(r, 200));
    after = await view.get(api, path);
  }
  expect(after.body.top).toEqual([
    { key: 'cache-2', value: 9, windows: 1 },
    { key: 'cache-1', value: 5, windows: 1 },
  ]);
});

test('GETs carry an ETag and answer 304 when nothing changed', async () => {
  const first = await view.get(api, '/v1/aggregates?dimension=entity&key=sku-1&limit=3');
  const etag = first.headers.get('etag');
  expect(etag).toBeTruthy();
  // fetch() adds Cache-Control: no-cache to a conditional request unless told otherwise (as a browser revalidating does).
  const again = await fetch(`${api.url}/v1/aggregates?dimension=entity&key=sku-1&limit=3`, { headers: { 'if-none-match': etag!, 'cache-control': 'max-age=0' } });
  expect(again.status).toBe(304);
});

test('bad parameters get 400 INVALID_PARAMETER naming each one', async () => {
  for (const query of ['dimension=sku', 'dimension=entity&from=yesterday', 'dimension=entity&limit=0', 'dimension=entity&limit=5000', 'dimension=entity&cursor=abc', 'dimension=entity&sort=desc', '']) {
    const res = await view.get(api, `/v1/aggregates?${query}`);
    expect({ query, status: res.status, code: res.body.error?.code }).toEqual({ query, status: 400, code: 'INVALID_PARAMETER' });
  }
  expect((await view.get(api, '/v1/top?dimension=entity&metric=avg')).status).toBe(400);
  expect((await view.get(api, '/v1/stream?key=x')).status).toBe(400);
});

test('fuzzed query parameters never get a 5xx', async () => {
  const value = fc.oneof(fc.string(), fc.constantFrom('entity', 'category', '2026-01-01T00:00:00Z', '0', '-1', '1e309', 'NaN'), fc.integer().map(String));
  const name = fc.constantFrom('dimension', 'key', 'from', 'to', 'limit', 'cursor', 'metric', 'x', 'dimension[]');
  await fc.assert(
    fc.asyncProperty(fc.array(fc.tuple(name, value), { maxLength: 6 }), fc.constantFrom('/v1/aggregates', '/v1/top'), async (params, path) => {
      const qs = params.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&');
      const res = await fetch(`${api.url}${path}?${qs}`);
      await res.arrayBuffer();
      return res.status < 500;
    }),
    { numRuns: 300 },
  );
});

test('responses match /openapi.json, on every operation', async () => {
  const doc = (await view.get(api, '/openapi.json')).body;
  const checker = openApiChecker(doc);
  const check = async (path: string, route: string) => checker.check(route, 'get', await view.get(api, path));
  // The stream's 200 is text/event-stream: its status and type are checked, the stream is not read.
  const controller = new AbortController();
  const stream = await fetch(`${api.url}/v1/stream?dimension=entity`, { signal: controller.signal });
  const streamType = stream.headers.get('content-type');
  controller.abort();
  expect(streamType).toMatch(/^text\/event-stream/);
  const problems = [
    await check('/v1/aggregates?dimension=entity&key=sku-1&limit=2', '/v1/aggregates'),
    await check('/v1/aggregates?dimension=bad', '/v1/aggregates'),
    await check('/v1/top?dimension=category', '/v1/top'),
    await check('/v1/top?dimension=category&metric=avg', '/v1/top'),
    checker.check('/v1/stream', 'get', { status: stream.status, body: undefined }),
    await check('/v1/stream?dimension=bad', '/v1/stream'),
  ].flat();
  expect(problems).toEqual([]);
  expect(checker.unchecked()).toEqual([]);
});

/** Reads server-sent events until `count` window events arrived. */
async function readEvents(url: string, count: number, headers: Record<string, string> = {}): Promise<{ id: string; data: { key: string; revision: number } }[]> {
  const controller = new AbortController();
  const res = await fetch(url, { headers, signal: controller.signal });
  const events: { id: string; data: { key: string; revision: number } }[] = [];
  const deadline = setTimeout(() => controller.abort(), 30_000);
  try {
    for await (const e of serverSentEvents(res)) {
      if (e.id && e.data && e.event === 'window') events.push({ id: e.id, data: JSON.parse(e.data) });
      if (events.length >= count) break;
    }
  } catch (err) {
    // The deadline aborted the stream: the caller sees the events that came.
    if (!controller.signal.aborted) throw err;
  } finally {
    clearTimeout(deadline);
  }
  controller.abort();
  return events;
}

test('a stream subscriber sees every update for its filter, in order, and resumes after a reconnect', async () => {
  const url = `${api.url}/v1/stream?dimension=entity&key=sse-1`;
  const live = readEvents(url, 3);
  await new Promise((r) => setTimeout(r, 500));
  const first = revisions('entity', 'sse-1', 0, 6);
  for (const r of first.slice(0, 3)) {
    await view.send([r, { ...r, key: 'other-key' }]);
    await new Promise((res) => setTimeout(res, 300));
  }
  const seen = await live;
  expect(seen.map((e) => [e.data.key, e.data.revision])).toEqual([
    ['sse-1', 1],
    ['sse-1', 2],
    ['sse-1', 3],
  ]);
  // Disconnected: revision 4 of window 0 and a new window 1 happen meanwhile.
  await view.send([first[3]!, revisions('entity', 'sse-1', 1, 1)[0]!]);
  await new Promise((r) => setTimeout(r, 1_500));
  const resumed = readEvents(url, 3, { 'last-event-id': seen[2]!.id });
  await new Promise((r) => setTimeout(r, 500));
  await view.send([first[4]!]);
  const after = await resumed;
  expect(after.map((e) => e.data.revision)).toEqual([4, 1, 5]);
  expect(after.every((e, i) => i === 0 || BigInt(e.id) > BigInt(after[i - 1]!.id))).toBe(true);
});

test('every query has an index behind it: no sequential scan over a large table', async () => {
  await view.sql(`insert into window_aggregates (dimension, key, window_start, window_end, count, sum, min, max, last_event_at, is_final, revision, source_partition, source_offset, change_seq)
    select case when i % 2 = 0 then 'entity' else 'category' end, 'bulk-' || (i % 5000), to_timestamp(1500000000 + (i / 5000) * 60), to_timestamp(1500000060 + (i / 5000) * 60),
           1, 1, 1, 1, to_timestamp(1500000000), true, 1, 0, 0, nextval('window_aggregates_change_seq')
    from generate_series(1, 200000) as i`);
  // Rollups of these windows over three days before them too, as the migration computes them from windows.
  await view.sql(`insert into window_rollups (dimension, grain_seconds, bucket_start, key, count, sum, windows)
    select d, g, to_timestamp(floor((1500000000 - 3 * 86400) / g) * g + h * g), 'bulk-' || k, 1, 1, 1
    from (values ('entity'), ('category')) as dims(d), (values (600), (3600), (86400)) as grains(g), generate_series(0, 80) as h, generate_series(0, 999) as k
    where h * g < 4 * 86400
    on conflict do nothing`);
  await view.sql('analyze window_aggregates');
  await view.sql('analyze window_rollups');
  const t = (minutes: number) => (1_500_000_000 + minutes * 60) * 1000;
  const plans = [
    aggregatesSql({ dimension: 'entity', key: 'bulk-42', limit: 100 }),
    aggregatesSql({ dimension: 'entity', key: 'bulk-42', from: t(3), to: t(9), limit: 100 }),
    aggregatesSql({ dimension: 'category', from: t(10), to: t(12), limit: 100 }),
    aggregatesSql({ dimension: 'category', limit: 100, after: { windowStart: t(20), key: 'bulk-7' } }),
    topSql({ dimension: 'entity', from: t(5), to: t(8), metric: 'count', limit: 10 }),
    topSql({ dimension: 'entity', from: t(5), to: t(8), metric: 'sum', limit: 10 }),
    // Whole hours and days from the rollups, the edges from the windows.
    topSql({ dimension: 'category', from: t(-3 * 1440 + 7), to: t(95), metric: 'count', limit: 10 }),
    changesSql(190_000n, { dimension: 'entity' }, 1000),
  ];
  for (const { sql, params } of plans) {
    const plan = (await view.sql<{ 'QUERY PLAN': string }>(`explain ${sql}`, params)).map((r) => r['QUERY PLAN']).join('\n');
    expect({ sql, seqScan: /Seq Scan/.test(plan), plan }).toMatchObject({ sql, seqScan: false });
  }
});
