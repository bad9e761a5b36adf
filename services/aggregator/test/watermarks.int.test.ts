import type { EnrichedEvent, WindowAggregate } from '@sluice/contracts';
import { cleanStageReport, eventually } from '@sluice/testing';
import { Partitioners } from 'kafkajs';
import { aggregatorFixture, type AggregatorFixture } from './aggregator-fixture';

// Category windows merge every entity partition. Their event time is the minimum
// over those partitions (watermarks), so a partition that falls behind, stalls or
// restarts never makes the others' progress close its windows early. Each test
// compares what the aggregator writes with an independent computation.
jest.setTimeout(300_000);

const SIZE = 10_000;
const GRACE = 2_000;
const windowEnv = { WINDOW_SIZE_MS: String(SIZE), WINDOW_GRACE_MS: String(GRACE), STREAM_MAX_BATCH_SIZE: '50' };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
// Aligned, an hour back: event time here runs far ahead of wall time.
const T0 = Math.floor(Date.now() / 3_600_000) * 3_600_000 - 3_600_000;

let seq = 0;
function event(partition: number, category: string, occurredAt: number, value: number): EnrichedEvent {
  seq += 1;
  const entityId = `p${partition}-${category}`;
  return {
    eventId: `wm-${seq}`,
    type: 'view',
    entityId,
    userId: null,
    occurredAt,
    value,
    attributes: {},
    name: entityId,
    category,
    enrichedAt: Date.now(),
    sourcePartition: partition,
    sourceOffset: seq,
  };
}

type Sent = { partition: number; event: EnrichedEvent };
type Expected = Omit<WindowAggregate, 'revision' | 'isFinal'>;

/**
 * The independent computation. An event is late when its own partition had already seen an event
 * time at or past its window's end plus grace (then it is late for its entity and its category);
 * every other event counts in both windows.
 */
function compute(sent: Sent[]): { windows: Map<string, Expected>; late: EnrichedEvent[] } {
  const streamTime = new Map<number, number>();
  const windows = new Map<string, Expected>();
  const late: EnrichedEvent[] = [];
  for (const { partition, event: e } of sent) {
    const start = Math.floor(e.occurredAt / SIZE) * SIZE;
    const seen = streamTime.get(partition);
    streamTime.set(partition, Math.max(seen ?? e.occurredAt, e.occurredAt));
    if (seen !== undefined && seen >= start + SIZE + GRACE) {
      late.push(e);
      continue;
    }
    for (const [dimension, key] of [['entity', e.entityId], ['category', e.category]] as const) {
      const id = `${dimension}|${key}|${start}`;
      const w = windows.get(id);
      windows.set(
        id,
        w
          ? { ...w, count: w.count + 1, sum: w.sum + e.value, min: Math.min(w.min, e.value), max: Math.max(w.max, e.value), lastEventAt: Math.max(w.lastEventAt, e.occurredAt) }
          : { dimension, key, windowStart: start, windowEnd: start + SIZE, count: 1, sum: e.value, min: e.value, max: e.value, lastEventAt: e.occurredAt },
      );
    }
  }
  return { windows, late };
}

const pick = ({ dimension, key, windowStart, windowEnd, count, sum, min, max, lastEventAt }: WindowAggregate): Expected => ({ dimension, key, windowStart, windowEnd, count, sum, min, max, lastEventAt });

/** Every window of `keys` is final and equals the computation; no window has two finals. */
async function expectFinals(agg: AggregatorFixture, expected: Map<string, Expected>, keys: string[]): Promise<void> {
  const latest = await agg.latestAggregates((l) => keys.every((k) => l.get(k)?.isFinal === true));
  for (const key of keys) {
    const got = latest.get(key);
    expect({ window: key, isFinal: got?.isFinal, ...(got ? pick(got) : {}) }).toEqual({ window: key, isFinal: true, ...expected.get(key)! });
  }
  const finals = new Map<string, number>();
  for (const r of await agg.allAggregates()) if (r.isFinal) finals.set(`${r.dimension}|${r.key}|${r.windowStart}`, (finals.get(`${r.dimension}|${r.key}|${r.windowStart}`) ?? 0) + 1);
  expect([...finals].filter(([, n]) => n > 1)).toEqual([]);
}

/** The service's metrics once the first group of `pattern` satisfies `done`. */
const eventuallyMetrics = (url: string, pattern: RegExp, done: (value: number) => boolean): Promise<string> =>
  eventually(
    `metrics matching ${pattern}`,
    async () => (await fetch(`${url}/metrics`)).text(),
    (text) => {
      const match = pattern.exec(text);
      return match !== null && done(Number(match[1]));
    },
    60_000,
  );

/**
 * Partitions 0 and 1 deliver an event of category c0 every second of event time (recorded in `sent`) until the
 * category window at T0 is final, or 200 s of event time have passed.
 */
async function deliverUntilFirstCategoryFinal(sent: Sent[]): Promise<void> {
  let closed: WindowAggregate | undefined;
  for (let t = T0 + 1_000; !closed && t < T0 + 200_000; t += 1_000) {
    for (const p of [0, 1]) {
      const e = event(p, 'c0', t, p + 1);
      await agg.sendTo(p, [e]);
      sent.push({ partition: p, event: e });
    }
    await sleep(300);
    if (t % 5_000 === 0) closed = (await agg.allAggregates()).find((r) => r.dimension === 'category' && r.windowStart === T0 && r.isFinal);
  }
}

let agg: AggregatorFixture;
afterEach(async () => {
  await agg?.close();
});

test('one partition stalls past the grace period while the others race ahead in event time: category finals stay exact', async () => {
  agg = await aggregatorFixture(3);
  const aggregatorUrl = (await agg.start(windowEnv)).url;
  const sent: Sent[] = [];
  const send = async (partition: number, events: EnrichedEvent[]) => {
    await agg.sendTo(partition, events);
    sent.push(...events.map((e) => ({ partition, event: e })));
  };
  const categories = ['c0', 'c1'];
  // Every partition starts in the first windows.
  for (const p of [0, 1, 2]) await send(p, categories.map((c, i) => event(p, c, T0 + 1_000 + i, p + 1)));
  // Partitions 0 and 1 race: 5 s of event time every 100 ms, 300 s in all. Partition 2 delivers nothing.
  for (let t = T0 + 5_000; t < T0 + 300_000; t += 5_000) {
    for (const p of [0, 1]) await send(p, categories.map((c) => event(p, c, t, 2)));
    await sleep(100);
  }
  // What an operator sees meanwhile: category time held back, by partition 2.
  const held = await eventuallyMetrics(aggregatorUrl, /aggregator_watermark_lag_ms\{dimension="category"[^}]*\} (\d+)/, (lag) => lag > 200_000);
  expect(held).toMatch(/stream_watermark_held_by\{[^}]*\} 2/);
  // Partition 2's backlog, in its own event-time order (on time for it), then one truly late event.
  for (let t = T0 + 2_000; t < T0 + 60_000; t += 3_000) await send(2, categories.map((c) => event(2, c, t, 3)));
  await send(2, [event(2, 'c0', T0 + 4_000, 100)]);
  // All move past every window.
  for (const p of [0, 1, 2]) await send(p, categories.map((c) => event(p, c, T0 + 400_000, 1)));

  const { windows, late } = compute(sent);
  expect(late).toHaveLength(1);
  const due = [...windows.keys()].filter((k) => windows.get(k)!.windowEnd + GRACE <= T0 + 400_000);
  expect(due.filter((k) => k.startsWith('category|')).length).toBeGreaterThan(50);
  await expectFinals(agg, windows, due);
  const lateRecords = await agg.readLate(2);
  expect(lateRecords.map((r) => [r.headers['late.dimension'], r.headers['late.reason']]).sort()).toEqual([
    ['category', 'window.closed'],
    ['entity', 'window.closed'],
  ]);
});

test('a partition that receives nothing is idle after the idle timeout: category windows close without it; its old data afterwards is late for the category', async () => {
  agg = await aggregatorFixture(3);
  const aggregator = await agg.start({ ...windowEnv, WINDOW_IDLE_TIMEOUT_MS: '3000' });
  const sent: Sent[] = [];
  // Partitions 0 and 1 keep delivering (never idle); partition 2 receives nothing at all.
  const first = `category|c0|${T0}`;
  await deliverUntilFirstCategoryFinal(sent);
  const { windows } = compute(sent);
  await expectFinals(agg, windows, [first]);
  const metrics = await (await fetch(`${aggregator.url}/metrics`)).text();
  expect(metrics).toMatch(/stream_watermark_idle_sources\{[^}]*\} 1/);

  // Partition 2 comes back with data for the closed window: its own partition has seen nothing, so the
  // entity window takes it; the category window is closed: late, with the reason, never silently dropped.
  await agg.sendTo(2, [event(2, 'c0', T0 + 2_000, 9)]);
  const lateRecords = await agg.readLate(1);
  expect(lateRecords.map((r) => [r.headers['late.dimension'], r.headers['late.reason']])).toEqual([['category', 'window.closed']]);
  const latest = await agg.latestAggregates((l) => l.get(`entity|p2-c0|${T0}`)?.count === 1);
  expect(latest.get(`entity|p2-c0|${T0}`)).toMatchObject({ count: 1, sum: 9, isFinal: false });
  expect(pick(latest.get(first)!)).toEqual(windows.get(first));
});

test('a partition whose last records came from several transactional producers at once (it ends with a marker of each) is still found idle', async () => {
  agg = await aggregatorFixture(3);
  const aggregator = await agg.start({ ...windowEnv, WINDOW_IDLE_TIMEOUT_MS: '3000' });
  const sent: Sent[] = [];
  // Partition 2: three events from three producers whose transactions end together, then nothing: its committed
  // offset stays three markers short of its end.
  const fromThree = [1, 2, 3].map((v) => event(2, 'c0', T0 + 1_000, v));
  await agg.sendInTransactions(2, fromThree.map((e) => [e]));
  for (const e of fromThree) sent.push({ partition: 2, event: e });
  const first = `category|c0|${T0}`;
  await deliverUntilFirstCategoryFinal(sent);
  await expectFinals(agg, compute(sent).windows, [first]);
  expect(await (await fetch(`${aggregator.url}/metrics`)).text()).toMatch(/stream_watermark_idle_sources\{[^}]*\} 1/);
});

test('kill -9 of the aggregator while one partition holds category time back: per-source progress is restored, no window closes early or twice', async () => {
  agg = await aggregatorFixture(2);
  const aggregator = await agg.start(windowEnv);
  const sent: Sent[] = [];
  const send = async (partition: number, events: EnrichedEvent[]) => {
    await agg.sendTo(partition, events);
    sent.push(...events.map((e) => ({ partition, event: e })));
  };
  await send(0, [event(0, 'c0', T0 + 1_000, 1)]);
  await send(1, [event(1, 'c0', T0 + 2_000, 2)]);
  for (let t = T0 + 5_000; t <= T0 + 100_000; t += 5_000) await send(0, [event(0, 'c0', t, 3)]);
  // Partition 0's entity windows close by its own time; the category windows wait for partition 1.
  await agg.latestAggregates((l) => l.get(`entity|p0-c0|${T0}`)?.isFinal === true);
  await sleep(2_000);
  const before = await agg.allAggregates();
  expect(before.filter((r) => r.dimension === 'category' && r.isFinal)).toEqual([]);

  await aggregator.kill();
  await aggregator.restart();
  for (let t = T0 + 105_000; t <= T0 + 200_000; t += 5_000) await send(0, [event(0, 'c0', t, 4)]);
  await agg.latestAggregates((l) => l.get(`entity|p0-c0|${T0 + 180_000}`)?.isFinal === true);
  await sleep(2_000);
  expect((await agg.allAggregates()).filter((r) => r.dimension === 'category' && r.isFinal)).toEqual([]);

  // Partition 1 delivers what it held, on time for itself, then everything moves on.
  for (let t = T0 + 3_000; t <= T0 + 60_000; t += 4_000) await send(1, [event(1, 'c0', t, 5)]);
  await aggregator.kill();
  await aggregator.restart();
  for (const p of [0, 1]) await send(p, [event(p, 'c0', T0 + 300_000, 1)]);
  const { windows, late } = compute(sent);
  expect(late).toEqual([]);
  await expectFinals(
    agg,
    windows,
    [...windows.keys()].filter((k) => windows.get(k)!.windowEnd + GRACE <= T0 + 300_000),
  );  expect(await agg.checkEntityStage()).toEqual(cleanStageReport(sent.length));
});

test('a category partition that receives only watermarks (no record of its own) still closes its windows', async () => {
  agg = await aggregatorFixture(3);
  await agg.start(windowEnv);
  // Another category that the repartition topic puts on another partition than c0.
  const partitionMetadata = [0, 1, 2].map((partitionId) => ({ partitionId, leader: 0, partitionErrorCode: 0, replicas: [0], isr: [0] }));
  const partitionOf = (key: string) => Partitioners.DefaultPartitioner()({ topic: 't', partitionMetadata, message: { key, value: null } });
  const other = ['c1', 'c2', 'c3', 'c4', 'c5', 'c6'].find((c) => partitionOf(c) !== partitionOf('c0'))!;
  for (const p of [0, 1, 2]) await agg.sendTo(p, [event(p, 'c0', T0 + 1_000 + p, 2)]);
  // Applied (an open window of 3), so that what follows reaches c0's partition as progress alone.
  await agg.latestAggregates((l) => l.get(`category|c0|${T0}`)?.count === 3);
  // Every source moves far ahead, but only with records of the other category: c0's partition hears only progress.
  for (const p of [0, 1, 2]) await agg.sendTo(p, [event(p, other, T0 + 100_000, 1)]);
  const latest = await agg.latestAggregates((l) => l.get(`category|c0|${T0}`)?.isFinal === true, 60_000);
  expect(latest.get(`category|c0|${T0}`)).toMatchObject({ isFinal: true, count: 3, sum: 6 });
});
