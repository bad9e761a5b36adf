import { ADMIN_TOKEN, eventually, startPipeline, type JsonBody as Json, type Pipeline } from '@sluice/testing';

// Replayed dead letters must count: an event for an entity without a catalog
// entry is dead-lettered, traffic closes its window, the entry is added, the
// dead letters are replayed from the admin endpoint, and the served windows
// equal an independent computation over all events, exactly once. Everything
// goes through the HTTP surfaces of the real services.
jest.setTimeout(300_000);

const MIN = 60_000;
// A window start two hours back, aligned: W0 = [T, T + 60 s).
const T = Math.floor(Date.now() / MIN) * MIN - 120 * MIN;
const iso = (ms: number) => new Date(ms).toISOString();
const admin = { authorization: `Bearer ${ADMIN_TOKEN}`, 'x-operator': 'e2e' };

let p: Pipeline;
afterAll(async () => {
  await p?.close();
});

let seq = 0;
const ev = (entityId: string, at: number, value: number) => ({ eventId: `e2e-${Date.now().toString(36)}-${++seq}`, type: 'view', entityId, occurredAt: iso(at), value });

async function send(events: ReturnType<typeof ev>[]): Promise<void> {
  const res = await p.http(p.gateway, 'POST', '/v1/events', { events });
  expect(res.status).toBe(202);
}

async function window(dimension: string, key: string, start: number): Promise<Json | undefined> {
  const res = await p.http(p.view, 'GET', `/v1/aggregates?dimension=${dimension}&key=${key}&from=${iso(start)}&to=${iso(start + 1)}`);
  return res.body.windows?.[0];
}

/** The independent computation: count, sum, min, max and last event time of events in a window. */
function expected(events: ReturnType<typeof ev>[]) {
  const values = events.map((e) => e.value);
  return {
    count: events.length,
    sum: values.reduce((a, b) => a + b, 0),
    min: Math.min(...values),
    max: Math.max(...values),
    lastEventAt: iso(Math.max(...events.map((e) => Date.parse(e.occurredAt)))),
  };
}

async function deadLetters(query: string): Promise<Json[]> {
  return (await p.http(p.replayer, 'GET', `/admin/dlq?limit=1000&${query}`, undefined, admin)).body.deadLetters ?? [];
}

async function replay(body: unknown): Promise<Json> {
  const started = await p.http(p.replayer, 'POST', '/admin/dlq/replays', body, admin);
  expect(started.status).toBe(202);
  return eventually('replay completes', async () => (await p.http(p.replayer, 'GET', `/admin/dlq/replays/${started.body.replayId}`, undefined, admin)).body, (r) => r.status === 'completed');
}

test('dead letters replayed after the catalog is fixed correct their closed windows exactly once; a second replay changes nothing; a replay past retention is late', async () => {
  p = await startPipeline({ windowRetentionMs: 4 * MIN });
  const tag = Date.now().toString(36);
  const A = `a-${tag}`;
  const B = `b-${tag}`;
  const X = `x-${tag}`;
  const Y = `y-${tag}`;
  const C1 = `c1-${tag}`;
  const advancers = Array.from({ length: 30 }, (_, i) => `adv-${i}-${tag}`);
  for (const entity of [A, B]) expect((await p.http(p.gateway, 'PUT', `/v1/catalog/${entity}`, { name: entity, category: C1 })).status).toBe(200);
  for (const entity of advancers) await p.http(p.gateway, 'PUT', `/v1/catalog/${entity}`, { name: entity, category: `c2-${tag}` });

  const known = [ev(A, T + 1_000, 3), ev(A, T + 2_000, 5), ev(A, T + 3_000, 1), ev(B, T + 4_000, 10), ev(B, T + 5_000, 2)];
  const missing = [ev(X, T + 10_000, 7), ev(X, T + 20_000, 4)];
  await send([...known, ...missing]);
  await eventually('X is dead-lettered', () => deadLetters(`code=catalog.missing&key=${X}`), (d) => d.length === 2);

  // Stream time moves well past W0's end plus grace, in every partition.
  await send([A, B, ...advancers].map((e) => ev(e, T + 3 * MIN, 1)));
  const closed = await eventually('the category window closes', () => window('category', C1, T), (w) => w?.isFinal === true);
  expect(closed).toMatchObject(expected(known));

  expect((await p.http(p.gateway, 'PUT', `/v1/catalog/${X}`, { name: X, category: C1 })).status).toBe(200);
  const first = await replay({ filter: { code: 'catalog.missing', key: X } });
  expect(first.counts).toEqual({ replayed: 2 });

  const corrected = await eventually('the corrected final is served', () => window('category', C1, T), (w) => w?.count === 7);
  expect(corrected).toMatchObject({ ...expected([...known, ...missing]), isFinal: true });
  expect(corrected.revision).toBeGreaterThan(closed.revision);
  const xWindow = await eventually('the entity window of X is served', () => window('entity', X, T), (w) => w?.count === 2);
  expect(xWindow).toMatchObject({ ...expected(missing) });
  expect(await window('entity', A, T)).toMatchObject({ ...expected(known.filter((e) => e.entityId === A)), isFinal: true });

  // The same dead letters again, forced: the enricher has seen their eventIds, so nothing changes.
  const ids = (await deadLetters(`key=${X}`)).map((d: Json) => d.id);
  const again = await replay({ ids, force: true });
  expect(again.counts).toEqual({ replayed: 2 });
  // Once the enricher has dropped both copies, nothing of them can reach the windows.
  await eventually(
    'the enricher drops both copies',
    async () => (await fetch(`${p.enricher.url}/metrics`)).text(),
    (metrics) => /enricher_duplicates_total\{[^}]*\} 2\n/.test(metrics),
  );
  expect(await window('category', C1, T)).toEqual(corrected);
  expect(await window('entity', X, T)).toEqual(xWindow);

  // Past retention: stream time far beyond W0's end, grace and 4 minutes; a late dead letter of W0 is then expired.
  await send([A, B, ...advancers].map((e) => ev(e, T + 30 * MIN, 1)));
  await eventually('stream time passes retention', () => window('category', C1, T + 30 * MIN), (w) => w !== undefined);
  await send([ev(Y, T + 30_000, 9)]);
  await eventually('Y is dead-lettered', () => deadLetters(`code=catalog.missing&key=${Y}`), (d) => d.length === 1);
  await p.http(p.gateway, 'PUT', `/v1/catalog/${Y}`, { name: Y, category: C1 });
  await replay({ filter: { code: 'catalog.missing', key: Y } });
  await eventually(
    'the expired replay is reported late',
    async () => (await fetch(`${p.aggregator.url}/metrics`)).text(),
    (text) => /aggregator_late_events_total\{[^}]*reason="window.expired"[^}]*\} [1-9]/.test(text),
  );
  expect(await window('entity', Y, T)).toBeUndefined();
  expect(await window('category', C1, T)).toEqual(corrected);
});
