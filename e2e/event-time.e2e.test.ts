import { readTopic, testKafka, type TestService } from '@sluice/testing';
import { cleanStageReport, eventually, startPipeline, type JsonBody as Json, type Pipeline } from '@sluice/testing';

// Event time under adversarial timing (issue 13), through the whole pipeline:
// event time runs about 25 times faster than wall time, one of two enricher
// instances is stopped (SIGSTOP) far past the grace period while the other's
// partitions race ahead, or instances of both stages are killed (kill -9). Every
// final the view serves, per entity and per category, equals an independent
// computation, and only the truly late events reach events.late.
jest.setTimeout(600_000);

const MIN = 60_000;
const GRACE = 10_000;
const STEP = 5_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const iso = (ms: number) => new Date(ms).toISOString();

interface Sent {
  entityId: string;
  category: string;
  at: number;
  value: number;
  late: boolean;
}

let p: Pipeline;
afterEach(async () => {
  await p?.close();
});

/** A pipeline on three partitions, with a catalog for `entities` entities over three categories. */
async function pipeline(tag: string, entities: number) {
  p = await startPipeline({ windowRetentionMs: 24 * 3_600_000 });
  const catalog = Array.from({ length: entities }, (_, i) => ({ entityId: `${tag}-e${i}`, category: `${tag}-c${i % 3}` }));
  for (const e of catalog) expect((await p.http(p.gateway, 'PUT', `/v1/catalog/${e.entityId}`, { name: e.entityId, category: e.category })).status).toBe(200);
  const sent: Sent[] = [];
  let seq = 0;
  const send = async (events: Omit<Sent, 'value'>[]) => {
    const withValues = events.map((e) => ({ ...e, value: 1 + ((seq * 7) % 50) }));
    const body = { events: withValues.map((e) => ({ eventId: `${tag}-${++seq}`, type: 'view', entityId: e.entityId, occurredAt: iso(e.at), value: e.value })) };
    const res = await p.http(p.gateway, 'POST', '/v1/events', body);
    expect(res.status).toBe(202);
    sent.push(...withValues);
  };
  /** One request: an event for every entity at `at`, in event-time order with everything sent before. */
  const round = (at: number) => send(catalog.map((e) => ({ ...e, at, late: false })));
  return { catalog, sent, send, round };
}

type Window = { count: number; sum: number; min: number; max: number; lastEventAt: string };

/** The independent computation: every window of the events that are not late, by dimension, key and start. */
function compute(sent: Sent[]): Map<string, Window> {
  const out = new Map<string, Window & { last: number }>();
  for (const e of sent.filter((s) => !s.late)) {
    const start = Math.floor(e.at / MIN) * MIN;
    for (const id of [`entity|${e.entityId}|${start}`, `category|${e.category}|${start}`]) {
      const w = out.get(id);
      const last = Math.max(w?.last ?? e.at, e.at);
      out.set(id, {
        count: (w?.count ?? 0) + 1,
        sum: (w?.sum ?? 0) + e.value,
        min: Math.min(w?.min ?? e.value, e.value),
        max: Math.max(w?.max ?? e.value, e.value),
        last,
        lastEventAt: iso(last),
      });
    }
  }
  return new Map([...out].map(([k, { last: _last, ...w }]) => [k, w]));
}

/** Every window the view serves for a dimension in [from, to), page after page. */
async function served(dimension: string, from: number, to: number): Promise<Map<string, Json>> {
  const out = new Map<string, Json>();
  let cursor: string | null = null;
  do {
    const query: string = `/v1/aggregates?dimension=${dimension}&from=${iso(from)}&to=${iso(to)}&limit=500${cursor ? `&cursor=${cursor}` : ''}`;
    const res = await p.http(p.view, 'GET', query);
    expect(res.status).toBe(200);
    for (const w of res.body.windows as Json[]) out.set(`${dimension}|${w.key}|${Date.parse(w.windowStart)}`, w);
    cursor = res.body.nextCursor;
  } while (cursor);
  return out;
}

/** Waits until every window that closed before `closingAt` is final in the view, then compares them all with the computation. */
async function expectFinalsExact(sent: Sent[], from: number, closingAt: number): Promise<void> {
  const expected = new Map([...compute(sent)].filter(([id]) => Number(id.split('|').at(-1)) + MIN + GRACE <= closingAt));
  expect([...expected.keys()].filter((k) => k.startsWith('category|')).length).toBeGreaterThan(10);
  const view = await eventually(
    'every closed window is final in the view',
    async () => new Map([...(await served('entity', from, closingAt)), ...(await served('category', from, closingAt))]),
    (v) => [...expected].every(([id, w]) => v.get(id)?.isFinal === true && v.get(id)?.count === w.count),
    180_000,
  ).catch(async () => new Map([...(await served('entity', from, closingAt)), ...(await served('category', from, closingAt))]));
  const got = [...expected.keys()].map((id) => {
    const w = view.get(id);
    return { id, ...(w ? { count: w.count, sum: w.sum, min: w.min, max: w.max, lastEventAt: w.lastEventAt, isFinal: w.isFinal } : {}) };
  });
  expect(got).toEqual([...expected].map(([id, w]) => ({ id, ...w, isFinal: true })));
  // And nothing else closed in the range: no window the computation does not have.
  const extra = [...view].filter(([id, w]) => w.isFinal && !expected.has(id) && Number(id.split('|').at(-1)) + MIN + GRACE <= closingAt);
  expect(extra).toEqual([]);
}

async function lateRecords(expected: number) {
  // Expecting none: whatever is there after everything else was checked.
  return readTopic(testKafka(), p.topic('events.late'), { done: (r) => r.length >= expected, timeoutMs: 30_000 });
}

/** Both instances own partitions of their group. */
async function bothAssigned(a: TestService, b: TestService): Promise<void> {
  const assigned = async (s: TestService) => Number(/stream_assigned_partitions\{[^}]*\} (\d+)/.exec(await (await fetch(`${s.url}/metrics`)).text())?.[1] ?? 0);
  await eventually('both instances own partitions', async () => [await assigned(a), await assigned(b)], ([x, y]) => x! > 0 && y! > 0);
}

test('one of two enricher instances stopped (SIGSTOP) far past the grace period while the other races ahead: every final exact, only the late event is late', async () => {
  const tag = `st${Date.now().toString(36)}`;
  const T = Math.floor(Date.now() / MIN) * MIN - 180 * MIN;
  const { catalog, sent, send, round } = await pipeline(tag, 12);
  const second = await p.scale('enricher');
  await bothAssigned(p.enricher, second);

  let at = T + 1_000;
  for (let i = 0; i < 6; i++, at += STEP) await round(at);
  process.kill(second.pid(), 'SIGSTOP');
  try {
    // 25 rounds, two minutes of event time, in a few seconds of wall time: longer than the group's session timeout too.
    for (let i = 0; i < 25; i++, at += STEP) {
      await round(at);
      await sleep(250);
    }
    // A truly late event: five minutes behind what its own partition has already seen.
    await send([{ ...catalog[0]!, at: at - 5 * MIN, late: true }]);
  } finally {
    process.kill(second.pid(), 'SIGCONT');
  }
  for (let i = 0; i < 10; i++, at += STEP) await round(at);
  const closingAt = at + 2 * MIN;
  await round(closingAt);

  await expectFinalsExact(sent, T, closingAt);
  const late = await lateRecords(2);
  expect(late.map((r) => [r.headers['late.dimension'], r.headers['late.reason'], r.key]).sort()).toEqual([
    // Keyed as in the stage that found it late: by category after the repartition, by entity before.
    ['category', 'window.closed', catalog[0]!.category],
    ['entity', 'window.closed', catalog[0]!.entityId],
  ]);
  // Both stages committed each event's output, state change and offset together: nothing missing, nothing doubled.
  expect(await p.checkStages()).toEqual({ enricher: cleanStageReport(sent.length), aggregator: cleanStageReport(sent.length) });
});

test('kill -9 of one of two aggregator instances and one of two enricher instances while event time runs ahead of wall time: every final exact, nothing late', async () => {
  const tag = `kl${Date.now().toString(36)}`;
  const T = Math.floor(Date.now() / MIN) * MIN - 180 * MIN;
  const { sent, round } = await pipeline(tag, 12);
  const enricher = await p.scale('enricher');
  const aggregator = await p.scale('aggregator');
  await bothAssigned(p.enricher, enricher);
  await bothAssigned(p.aggregator, aggregator);

  let at = T + 1_000;
  const victims = [enricher, aggregator];
  for (let k = 0; k < 4; k++) {
    const victim = victims[k % 2]!;
    const rounds = 4 + Math.floor(Math.random() * 6);
    for (let i = 0; i < rounds; i++, at += STEP) await round(at);
    await victim.kill();
    // Traffic goes on while it is dead (longer than the session timeout: its partitions move), then it comes back.
    for (let i = 0; i < 12; i++, at += STEP) {
      await round(at);
      await sleep(400);
    }
    await victim.restart();
  }
  for (let i = 0; i < 5; i++, at += STEP) await round(at);
  const closingAt = at + 2 * MIN;
  await round(closingAt);

  await expectFinalsExact(sent, T, closingAt);
  expect(await lateRecords(0)).toEqual([]);
  expect(await p.checkStages()).toEqual({ enricher: cleanStageReport(sent.length), aggregator: cleanStageReport(sent.length) });
});
