import { eventually, openApiChecker, type TestService } from '@sluice/testing';
import { event, replayerFixture, TOKEN, type ReplayerFixture } from './replayer-fixture';

jest.setTimeout(180_000);

let dlq: ReplayerFixture;
let api: TestService;

type Row = { id: string; key: string; [k: string]: unknown };

/** Dead letters in the index (filtered) once `done` says enough of them are there. */
async function indexed(done: (rows: Row[]) => boolean, filter = ''): Promise<Row[]> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const res = await dlq.call(api, 'GET', `/admin/dlq?limit=1000${filter}`);
    const rows = (res.body.deadLetters ?? []) as Row[];
    if (done(rows) || Date.now() > deadline) return rows;
    await new Promise((r) => setTimeout(r, 200));
  }
}
const withKey = (prefix: string, n: number) => (rows: Row[]) => rows.filter((r) => r.key.startsWith(prefix)).length >= n;

beforeAll(async () => {
  dlq = await replayerFixture();
  api = await dlq.start();
});
afterAll(async () => {
  await dlq.close();
});

test('without a token the replayer refuses to start, unless the admin endpoint is disabled', async () => {
  await expect(dlq.start({ DLQ_ADMIN_TOKEN: '' })).rejects.toThrow(/exited while starting/);
  const indexOnly = await dlq.start({ DLQ_ADMIN_TOKEN: '', DLQ_ADMIN_ENABLED: 'false' });
  expect((await fetch(`${indexOnly.url}/admin/dlq`)).status).toBe(404);
  await indexOnly.stop();
});

test('missing or wrong token: 401 on every admin route', async () => {
  const routes: [string, string, unknown?][] = [
    ['GET', '/admin/dlq'],
    ['GET', '/admin/dlq/1'],
    ['POST', '/admin/dlq/replays', { ids: ['1'] }],
    ['GET', '/admin/dlq/replays/00000000-0000-0000-0000-000000000000'],
    ['POST', '/admin/dlq/replays/00000000-0000-0000-0000-000000000000/cancel'],
    ['POST', '/admin/dlq/1/discard', { reason: 'x' }],
  ];
  for (const [method, path, body] of routes) {
    for (const token of [null, 'wrong', `${TOKEN}x`]) {
      const res = await dlq.call(api, method, path, body, token);
      expect({ method, path, token, status: res.status, code: res.body.error?.code }).toEqual({ method, path, token, status: 401, code: 'UNAUTHORIZED' });
    }
  }
});

test('dead letters are indexed once each, filterable, paged, and shown with headers, raw value and decoded payload', async () => {
  const events = [event('ghost'), event('ghost'), event('ghost'), event('ghost')];
  await dlq.deadLetter(events);
  const rows = await indexed((r) => r.length >= 4);
  expect(rows).toHaveLength(4);
  const page = await dlq.call(api, 'GET', '/admin/dlq?limit=3&code=catalog.missing&status=pending');
  expect(page.body.deadLetters).toHaveLength(3);
  const rest = await dlq.call(api, 'GET', `/admin/dlq?limit=3&code=catalog.missing&status=pending&cursor=${page.body.nextCursor}`);
  expect(rest.body.deadLetters).toHaveLength(1);
  expect((await dlq.call(api, 'GET', `/admin/dlq?key=${events[0]!.entityId}`)).body.deadLetters.length).toBeGreaterThanOrEqual(1);
  const one = (await dlq.call(api, 'GET', `/admin/dlq/${rows[0]!.id}`)).body;
  expect(one).toMatchObject({ errorCode: 'catalog.missing', stage: 'enricher', status: 'pending', sourceTopic: dlq.topics.raw });
  expect(one.headers['dlq.error.code']).toBe('catalog.missing');
  expect(Buffer.from(one.valueBase64, 'base64')[0]).toBe(0);
  const original = events.find((e) => e.eventId === one.decoded?.eventId);
  expect(original).toBeDefined();
  expect(one.decoded).toMatchObject({ eventId: original!.eventId, entityId: original!.entityId, value: original!.value });
  expect((await dlq.call(api, 'GET', '/admin/dlq?status=lost')).status).toBe(422);
  expect((await dlq.call(api, 'GET', '/admin/dlq/999999999')).status).toBe(404);
});

test('a replay produces the original key, value and headers plus the replay headers, once; again without force changes nothing; with force the count grows', async () => {
  const events = [event('replay'), event('replay')];
  await dlq.deadLetter(events);
  const ids = (await indexed(withKey('replay', 2))).filter((r) => r.key.startsWith('replay')).map((r) => r.id);
  expect(ids).toHaveLength(2);
  const dry = await dlq.call(api, 'POST', '/admin/dlq/replays', { ids, dryRun: true });
  expect(dry).toMatchObject({ status: 200, body: { dryRun: true, selected: 2 } });

  // Whatever replays of other tests wrote to events.raw before: this test counts only what it adds.
  const before = (await dlq.readRaw(0)).length;
  const started = await dlq.call(api, 'POST', '/admin/dlq/replays', { ids, ratePerSec: 50 });
  expect(started.status).toBe(202);
  expect(started.body.selected).toBe(2);
  await dlq.waitFor(api, started.body.replayId, 'completed');
  let raw = await dlq.readRaw(before + 2);
  const replayed = raw.filter((r) => r.headers['dlq.replay.id'] === started.body.replayId);
  expect(replayed).toHaveLength(2);
  for (const r of replayed) {
    expect(r.headers['dlq.replay.count']).toBe('1');
    // The same trace, one step further.
    expect(r.headers.traceparent?.split('-')[1]).toBe('0af7651916cd43dd8448eb211c80319c');
    expect(r.headers['dlq.error.code']).toBeUndefined();
  }
  expect(raw.length).toBe(before + 2);

  const again = await dlq.call(api, 'POST', '/admin/dlq/replays', { ids });
  expect(again.body).toMatchObject({ selected: 0, skipped: [{ reason: expect.stringContaining('already replayed') }, expect.anything()] });
  await dlq.waitFor(api, again.body.replayId, 'completed');
  expect((await dlq.readRaw(before + 3, 3_000)).length).toBe(before + 2);

  const forced = await dlq.call(api, 'POST', '/admin/dlq/replays', { ids, force: true });
  expect(forced.body.selected).toBe(2);
  await dlq.waitFor(api, forced.body.replayId, 'completed');
  raw = await dlq.readRaw(before + 4);
  expect(raw.filter((r) => r.headers['dlq.replay.id'] === forced.body.replayId).map((r) => r.headers['dlq.replay.count'])).toEqual(['2', '2']);
  const one = (await dlq.call(api, 'GET', `/admin/dlq/${ids[0]}`)).body;
  expect(one).toMatchObject({ status: 'replayed', replayCount: 2, lastReplayId: forced.body.replayId });
});

test('the loop guard refuses a record replayed too often', async () => {
  await dlq.deadLetter([event('looping')], { 'dlq.replay.count': '3' });
  let all: { id: string; replayCount: number }[] = [];
  for (let i = 0; i < 50 && all.length === 0; i++) {
    all = (await dlq.call(api, 'GET', '/admin/dlq?limit=1000')).body.deadLetters.filter((d: { replayCount: number }) => d.replayCount >= 3);
    if (all.length === 0) await new Promise((r) => setTimeout(r, 200));
  }
  expect(all).toHaveLength(1);
  const looping = all[0]!;
  const res = await dlq.call(api, 'POST', '/admin/dlq/replays', { ids: [looping.id] });
  expect(res.body).toMatchObject({ selected: 0, refused: [{ id: looping.id, reason: expect.stringContaining('limit 3') }] });
});

test('the rate limit holds, a conflicting replay gets 409, and cancel stops a running replay', async () => {
  const events = Array.from({ length: 12 }, () => event('slow'));
  await dlq.deadLetter(events);
  const pending = await indexed(withKey('slow', 12), '&status=pending');
  const ids = pending.filter((d) => d.key.startsWith('slow')).map((d) => d.id);
  expect(ids.length).toBeGreaterThanOrEqual(12);
  const startedAt = Date.now();
  const slow = await dlq.call(api, 'POST', '/admin/dlq/replays', { ids: ids.slice(0, 12), ratePerSec: 4 });
  expect(slow.status).toBe(202);
  const conflict = await dlq.call(api, 'POST', '/admin/dlq/replays', { ids: ids.slice(5, 7) });
  expect(conflict).toMatchObject({ status: 409, body: { error: { code: 'REPLAY_CONFLICT' } } });
  const progress = async () => ((await dlq.call(api, 'GET', `/admin/dlq/replays/${slow.body.replayId}`)).body.counts?.replayed as number | undefined) ?? 0;
  // Cancelled while running: some replayed, most not yet.
  await eventually('the slow replay is under way', progress, (replayed) => replayed >= 2, 30_000);
  const cancelled = await dlq.call(api, 'POST', `/admin/dlq/replays/${slow.body.replayId}/cancel`);
  expect(cancelled.body.status).toBe('cancelled');
  await new Promise((r) => setTimeout(r, 1_500));
  const final = (await dlq.call(api, 'GET', `/admin/dlq/replays/${slow.body.replayId}`)).body;
  const produced = final.counts.replayed ?? 0;
  // At 4 per second, never more than the time allows (the first goes at once), and not all of them.
  expect(produced).toBeGreaterThan(0);
  expect(produced).toBeLessThanOrEqual(Math.floor(((Date.now() - startedAt) / 1000) * 4) + 1);
  expect(produced).toBeLessThan(12);
  expect(final.counts.pending).toBe(12 - produced);
});

test('discard takes a reason, and every admin action is in the audit log', async () => {
  await dlq.deadLetter([event('discard'), event('audited'), event('audited')]);
  const rows = await indexed((r) => withKey('discard', 1)(r) && withKey('audited', 2)(r), '&status=pending');
  const target = rows.find((d) => d.key.startsWith('discard'))!;
  // This test's own replay actions: a dry run, a start and a cancel.
  const audited = rows.filter((d) => d.key.startsWith('audited')).map((d) => d.id);
  expect((await dlq.call(api, 'POST', '/admin/dlq/replays', { ids: audited, dryRun: true })).status).toBe(200);
  const replaying = await dlq.call(api, 'POST', '/admin/dlq/replays', { ids: audited, ratePerSec: 1 });
  expect(replaying.status).toBe(202);
  expect((await dlq.call(api, 'POST', `/admin/dlq/replays/${replaying.body.replayId}/cancel`)).status).toBe(200);
  expect((await dlq.call(api, 'POST', `/admin/dlq/${target.id}/discard`, {})).status).toBe(400);
  const res = await dlq.call(api, 'POST', `/admin/dlq/${target.id}/discard`, { reason: 'test data' });
  expect(res.body).toMatchObject({ status: 'discarded' });
  expect((await dlq.call(api, 'POST', `/admin/dlq/${target.id}/discard`, { reason: 'again' })).status).toBe(409);
  const replay = await dlq.call(api, 'POST', '/admin/dlq/replays', { ids: [target.id], force: true });
  expect(replay.body.refused).toEqual([{ id: target.id, reason: 'discarded' }]);
  const audit = await dlq.sql("select actor, action, target, count from audit_log where action = 'dead-letter.discard'");
  expect(audit).toEqual([{ actor: 'test-suite', action: 'dead-letter.discard', target: target.id, count: 1 }]);
  const replayActions = await dlq.sql('select action from audit_log where target = $1 order by id', [replaying.body.replayId]);
  expect(replayActions.map((r: { action: string }) => r.action)).toEqual(['replay.start', 'replay.cancel']);
  const dryRuns = await dlq.sql("select actor, count from audit_log where action = 'replay.dry-run' and details->'ids' = $1::jsonb", [JSON.stringify(audited)]);
  expect(dryRuns).toEqual([{ actor: 'test-suite', count: 2 }]);
});

test('kill -9 during a replay, then restart: it resumes, nothing lost, nothing produced twice', async () => {
  await dlq.deadLetter(Array.from({ length: 30 }, () => event('crash')));
  const rows = await indexed(withKey('crash', 30), '&status=pending');
  const ids = rows.filter((d) => d.key.startsWith('crash')).map((d) => d.id);
  expect(ids).toHaveLength(30);
  const started = await dlq.call(api, 'POST', '/admin/dlq/replays', { ids, ratePerSec: 10 });
  // Killed mid-way: some replayed, some not.
  await eventually('the replay is under way', async () => ((await dlq.call(api, 'GET', `/admin/dlq/replays/${started.body.replayId}`)).body.counts?.replayed as number | undefined) ?? 0, (replayed) => replayed >= 5, 30_000);
  await api.kill();
  await api.restart();
  await dlq.waitFor(api, started.body.replayId, 'completed', 90_000);
  const raw = await dlq.readRaw(10_000, 8_000);
  const produced = raw.filter((r) => r.headers['dlq.replay.id'] === started.body.replayId).map((r) => r.headers['dlq.replay.item']);
  expect(produced.sort()).toEqual([...ids].sort());
});

test('real responses match /openapi.json, on every operation', async () => {
  const doc = (await dlq.call(api, 'GET', '/openapi.json')).body;
  const checker = openApiChecker(doc);
  const problems: string[] = [];
  const call = async (route: string, method: string, path: string, body?: unknown, token?: string | null) => {
    const res = await dlq.call(api, method, path, body, token);
    problems.push(...checker.check(route, method, res));
    return res;
  };
  await dlq.deadLetter([event('openapi'), event('openapi'), event('openapi')]);
  const rows = await indexed(withKey('openapi', 3), '&status=pending');
  const [a, b, c] = rows.filter((d) => d.key.startsWith('openapi')).map((d) => d.id);

  await call('/admin/dlq', 'get', '/admin/dlq?key=openapi&limit=2');
  await call('/admin/dlq', 'get', '/admin/dlq?limit=0');
  await call('/admin/dlq', 'get', '/admin/dlq', undefined, null);
  await call('/admin/dlq/export', 'get', '/admin/dlq/export?key=openapi&format=csv');
  await call('/admin/dlq/export', 'get', '/admin/dlq/export?format=xml');
  await call('/admin/overview', 'get', '/admin/overview');
  await call('/admin/audit', 'get', '/admin/audit?limit=5');
  await call('/admin/audit', 'get', '/admin/audit?limit=0');
  await call('/admin/dlq/{id}', 'get', `/admin/dlq/${a}`);
  await call('/admin/dlq/{id}', 'get', '/admin/dlq/999999999999');
  await call('/admin/dlq/{id}/discard', 'post', `/admin/dlq/${c}/discard`, {});
  await call('/admin/dlq/{id}/discard', 'post', `/admin/dlq/${c}/discard`, { reason: 'openapi test' });
  await call('/admin/dlq/{id}/discard', 'post', `/admin/dlq/${c}/discard`, { reason: 'again' });
  await call('/admin/dlq/{id}/discard', 'post', '/admin/dlq/999999999999/discard', { reason: 'none' });
  await call('/admin/dlq/replays', 'post', '/admin/dlq/replays', { ids: [a, b], dryRun: true });
  await call('/admin/dlq/replays', 'post', '/admin/dlq/replays', []);
  await call('/admin/dlq/replays', 'post', '/admin/dlq/replays', { ids: [a], bogus: 1 });
  const started = await call('/admin/dlq/replays', 'post', '/admin/dlq/replays', { ids: [a, b], ratePerSec: 1 });
  await call('/admin/dlq/replays', 'post', '/admin/dlq/replays', { ids: [b] });
  await call('/admin/dlq/replays/{id}', 'get', `/admin/dlq/replays/${started.body.replayId}`);
  await call('/admin/dlq/replays/{id}', 'get', '/admin/dlq/replays/00000000-0000-0000-0000-000000000000');
  await call('/admin/dlq/replays/{id}/cancel', 'post', `/admin/dlq/replays/${started.body.replayId}/cancel`);
  await call('/admin/dlq/replays/{id}/cancel', 'post', '/admin/dlq/replays/00000000-0000-0000-0000-000000000000/cancel');
  expect(started.status).toBe(202);
  expect(problems).toEqual([]);
  expect(checker.unchecked()).toEqual([]);
});
