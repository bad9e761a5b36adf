import { PartitionStore, StoreTransaction } from '@sluice/streams';
import { advanceStreamTime, applyEvent, flushWindows, WINDOW_INDEXES, windowsOf, type WindowConfig, type WindowEvent, type WindowResult } from './windows';

const MIN = 60_000;
const tumbling: WindowConfig = { sizeMs: MIN, hopMs: MIN, graceMs: 10_000, retentionMs: 24 * 60 * MIN };

/** Events applied as an entity partition does (stream time moved by each event), flushed every `flushEvery`, each flush one committed transaction of a real store. */
function run(events: (Partial<WindowEvent> & { occurredAt: number })[], config = tumbling, flushEvery = 1) {
  const store = new PartitionStore<unknown>('windows', undefined, WINDOW_INDEXES);
  let txn = new StoreTransaction(store, Date.now);
  const emitted: WindowResult[] = [];
  const late: { event: number; reason: string }[] = [];
  events.forEach((e, i) => {
    const event: WindowEvent = { dimension: 'entity', key: 'k', value: 1, replay: false, ...e };
    const outcome = applyEvent(txn, event, config);
    advanceStreamTime(txn, event.occurredAt);
    if (outcome.late) late.push({ event: i, reason: outcome.late });
    if ((i + 1) % flushEvery === 0 || i === events.length - 1) {
      emitted.push(...flushWindows(txn, txn.changes.keys(), config));
      store.apply(txn.changes);
      txn = new StoreTransaction(store, Date.now);
    }
  });
  const finals = emitted.filter((r) => r.isFinal);
  return { store, emitted, finals, late };
}

test('an event exactly on a boundary belongs to the window that starts there', () => {
  expect(windowsOf(MIN, tumbling)).toEqual([{ start: MIN, end: 2 * MIN }]);
  expect(windowsOf(MIN - 1, tumbling)).toEqual([{ start: 0, end: MIN }]);
});

test('overlapping hopping windows: an event is in size/hop windows', () => {
  const hopping = { ...tumbling, sizeMs: MIN, hopMs: 20_000 };
  expect(windowsOf(65_000, hopping)).toEqual([
    { start: 20_000, end: 80_000 },
    { start: 40_000, end: 100_000 },
    { start: 60_000, end: 120_000 },
  ]);
  const { finals } = run([{ occurredAt: 65_000, value: 4 }, { occurredAt: 200_000 }], hopping);
  expect(finals.filter((f) => f.count === 1 && f.sum === 4).map((f) => f.windowStart)).toEqual([20_000, 40_000, 60_000]);
});

test('updates are emitted as a window changes, then one final when stream time passes its end plus grace', () => {
  const { emitted } = run([{ occurredAt: 1_000, value: 5 }, { occurredAt: 2_000, value: 7 }, { occurredAt: MIN + 9_999 }, { occurredAt: MIN + 10_000 }]);
  const first = emitted.filter((r) => r.windowStart === 0);
  expect(first.map((r) => [r.count, r.isFinal, r.revision])).toEqual([
    [1, false, 1],
    [2, false, 2],
    [2, true, 3],
  ]);
  expect(first[2]).toMatchObject({ windowEnd: MIN, sum: 12, min: 5, max: 7, lastEventAt: 2_000 });
});

test('at most one record per window per transaction', () => {
  const { emitted } = run([{ occurredAt: 1_000 }, { occurredAt: 2_000 }, { occurredAt: 3_000 }], tumbling, 3);
  expect(emitted).toHaveLength(1);
  expect(emitted[0]).toMatchObject({ count: 3, revision: 1, isFinal: false });
});

test('out of order within grace still counts', () => {
  const { finals, late } = run([{ occurredAt: MIN + 5_000 }, { occurredAt: 30_000, value: 3 }, { occurredAt: 5 * MIN }]);
  expect(late).toEqual([]);
  expect(finals.find((f) => f.windowStart === 0)).toMatchObject({ count: 1, sum: 3 });
});

test('an event beyond grace is late: it changes no final and is reported', () => {
  const { finals, late } = run([{ occurredAt: 1_000 }, { occurredAt: MIN + 10_000 }, { occurredAt: 2_000, value: 100 }, { occurredAt: 5 * MIN }]);
  expect(late).toEqual([{ event: 2, reason: 'window.closed' }]);
  expect(finals.filter((f) => f.windowStart === 0)).toHaveLength(1);
  expect(finals.find((f) => f.windowStart === 0)).toMatchObject({ count: 1, max: 1 });
});

test('a window that receives nothing emits nothing', () => {
  const { emitted } = run([{ occurredAt: 1_000 }, { occurredAt: 3 * MIN + 30_000 }, { occurredAt: 10 * MIN }]);
  expect(emitted.some((r) => r.windowStart === MIN || r.windowStart === 2 * MIN)).toBe(false);
});

test('many keys keep separate windows', () => {
  const events = Array.from({ length: 300 }, (_, i) => ({ key: `k${i % 30}`, occurredAt: 1_000 + i, value: i }));
  const { finals } = run([...events, ...Array.from({ length: 30 }, (_, i) => ({ key: `k${i}`, occurredAt: 10 * MIN }))], tumbling, 50);
  const firstWindows = finals.filter((f) => f.windowStart === 0);
  expect(firstWindows).toHaveLength(30);
  for (const f of firstWindows) {
    const n = Number(f.key.slice(1));
    const values = events.filter((e) => e.key === f.key).map((e) => e.value);
    expect(f).toMatchObject({ count: 10, sum: values.reduce((a, b) => a + b, 0), min: n, max: n + 270 });
  }
});

describe('corrections from replayed dead letters', () => {
  test('a replayed event for a closed window still retained corrects it: a final again, with a higher revision', () => {
    const { emitted, late } = run([{ occurredAt: 1_000, value: 2 }, { occurredAt: 2 * MIN }, { occurredAt: 3_000, value: 8, replay: true }]);
    expect(late).toEqual([]);
    const first = emitted.filter((r) => r.windowStart === 0);
    expect(first.map((r) => [r.isFinal, r.revision, r.count, r.sum])).toEqual([
      [false, 1, 1, 2],
      [true, 2, 1, 2],
      [true, 3, 2, 10],
    ]);
  });

  test('revisions only grow, however the corrections arrive', () => {
    const { emitted } = run([{ occurredAt: 1_000 }, { occurredAt: 2 * MIN }, { occurredAt: 2_000, replay: true }, { occurredAt: 3_000, replay: true }, { occurredAt: 4_000, replay: true }]);
    const revisions = emitted.filter((r) => r.windowStart === 0).map((r) => r.revision);
    expect(revisions).toEqual([...revisions].sort((a, b) => a - b));
    expect(new Set(revisions).size).toBe(revisions.length);
  });

  test('a replayed event whose window has left state is late with window.expired', () => {
    const short = { ...tumbling, retentionMs: 5 * MIN };
    const { late, store } = run([{ occurredAt: 1_000 }, { occurredAt: 30 * MIN }, { occurredAt: 2_000, replay: true }], short);
    expect(late).toEqual([{ event: 2, reason: 'window.expired' }]);
    expect(store.read('entity|k|0', Date.now())).toBeUndefined();
  });

  test('a replayed event for a closed window that never received anything creates it as a final', () => {
    const { emitted, late } = run([{ occurredAt: 5 * MIN }, { occurredAt: 1_000, value: 4, replay: true }]);
    expect(late).toEqual([]);
    expect(emitted.filter((r) => r.windowStart === 0)).toEqual([expect.objectContaining({ count: 1, sum: 4, isFinal: true, revision: 1 })]);
  });

  test('a replayed event for an open window is an ordinary update', () => {
    const { emitted, late } = run([{ occurredAt: 1_000 }, { occurredAt: 2_000, replay: true }]);
    expect(late).toEqual([]);
    expect(emitted.at(-1)).toMatchObject({ count: 2, isFinal: false });
  });
});

test('closed windows leave state after their retention, so memory stays bounded', () => {
  const short = { ...tumbling, retentionMs: MIN };
  const { store } = run([{ occurredAt: 1_000 }, { occurredAt: 2 * MIN }, { occurredAt: 4 * MIN }], short);
  expect([...store.keys()].filter((k) => k.startsWith('entity|')).sort()).toEqual(['entity|k|120000', 'entity|k|240000']);
});

test('a window whose retention time jumps past still gets its final before it leaves state', () => {
  const short = { ...tumbling, retentionMs: MIN };
  const { finals, store } = run([{ occurredAt: 1_000, value: 3 }, { occurredAt: 30 * MIN }, { occurredAt: 31 * MIN }], short);
  expect(finals.filter((f) => f.windowStart === 0)).toEqual([expect.objectContaining({ count: 1, sum: 3 })]);
  expect(store.read('entity|k|0', Date.now())).toBeUndefined();
});

test('the indexes follow the windows: open ones until their final, every one until it leaves state', () => {
  const short = { ...tumbling, retentionMs: MIN };
  const { store } = run([{ occurredAt: 1_000 }, { occurredAt: MIN + 1_000, key: 'j' }, { occurredAt: 2 * MIN + 20_000, key: 'j' }], short);
  // Window 0 closed (final out) but retained; window 1 of j closed; window 2 of j open.
  expect(store.indexSize('open')).toBe(1);
  expect(store.indexSize('all')).toBe(3);
});

describe('a category partition: stream time given by the merged watermark, not by its events', () => {
  test('events ahead of the watermark do not close windows; the watermark does', () => {
    const store = new PartitionStore<unknown>('windows', undefined, WINDOW_INDEXES);
    const txn = new StoreTransaction(store, Date.now);
    advanceStreamTime(txn, 5_000);
    // A fast source's event far ahead, then a slow source's event for the first window: not late.
    expect(applyEvent(txn, { dimension: 'category', key: 'c', occurredAt: 10 * MIN, value: 1, replay: false }, tumbling).late).toBeUndefined();
    expect(applyEvent(txn, { dimension: 'category', key: 'c', occurredAt: 6_000, value: 2, replay: false }, tumbling).late).toBeUndefined();
    expect(flushWindows(txn, txn.changes.keys(), tumbling).filter((r) => r.isFinal)).toEqual([]);
    store.apply(txn.changes);
    const next = new StoreTransaction(store, Date.now);
    advanceStreamTime(next, MIN + 10_000);
    expect(flushWindows(next, next.changes.keys(), tumbling).filter((r) => r.isFinal)).toEqual([expect.objectContaining({ windowStart: 0, count: 1, sum: 2 })]);
  });

  test('an event its own source had already passed the window for is late, even while the merged time is behind', () => {
    const store = new PartitionStore<unknown>('windows', undefined, WINDOW_INDEXES);
    const txn = new StoreTransaction(store, Date.now);
    advanceStreamTime(txn, 5_000);
    const event = { dimension: 'category' as const, key: 'c', occurredAt: 1_000, value: 1, replay: false };
    expect(applyEvent(txn, event, tumbling, 2 * MIN).late).toBe('window.closed');
    expect(applyEvent(txn, event, tumbling, 30_000).late).toBeUndefined();
  });

  test('stream time never moves back', () => {
    const store = new PartitionStore<unknown>('windows', undefined, WINDOW_INDEXES);
    const txn = new StoreTransaction(store, Date.now);
    advanceStreamTime(txn, 5 * MIN);
    advanceStreamTime(txn, MIN);
    expect(applyEvent(txn, { dimension: 'category', key: 'c', occurredAt: 1_000, value: 1, replay: false }, tumbling).late).toBe('window.closed');
  });
});
