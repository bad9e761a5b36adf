import type { TopQuery } from './query';
import { TopCache, type TopRow } from './top-cache';

const q: TopQuery = { dimension: 'entity', metric: 'count', from: 1_000, to: 2_000, limit: 10 };
const rows = (value: number): TopRow[] => [{ key: 'k', value, windows: 1 }];
const at = (ms: number, dimension: 'entity' | 'category' = 'entity') => ({ dimension, windowStart: new Date(ms).toISOString() });

test('an answer is kept until a change to a window of its range arrives', async () => {
  const cache = new TopCache(10, () => true);
  expect(await cache.get(q, async () => rows(1))).toEqual({ rows: rows(1), cached: false });
  expect(await cache.get(q, async () => rows(2))).toEqual({ rows: rows(1), cached: true });
  cache.changed(at(2_000)); // outside [from, to)
  cache.changed(at(1_500, 'category')); // another dimension
  expect((await cache.get(q, async () => rows(3))).cached).toBe(true);
  cache.changed(at(1_000));
  expect(await cache.get(q, async () => rows(4))).toEqual({ rows: rows(4), cached: false });
  expect((await cache.get({ ...q, limit: 5 }, async () => rows(5))).cached).toBe(false);
});

test('an answer computed while a change to its range arrived is served once and not kept', async () => {
  const cache = new TopCache(10, () => true);
  let release!: () => void;
  const slow = cache.get(q, () => new Promise<TopRow[]>((resolve) => (release = () => resolve(rows(1)))));
  cache.changed(at(1_999));
  release();
  expect(await slow).toEqual({ rows: rows(1), cached: false });
  expect(await cache.get(q, async () => rows(2))).toEqual({ rows: rows(2), cached: false });
  expect((await cache.get(q, async () => rows(3))).cached).toBe(true);
});

test('nothing is kept while notifications may be missed, and a reset drops everything', async () => {
  let listening = false;
  const cache = new TopCache(10, () => listening);
  await cache.get(q, async () => rows(1));
  expect((await cache.get(q, async () => rows(2))).cached).toBe(false);
  listening = true;
  let release!: () => void;
  const slow = cache.get(q, () => new Promise<TopRow[]>((resolve) => (release = () => resolve(rows(3)))));
  cache.reset();
  release();
  await slow;
  expect(cache.size).toBe(0);
  await cache.get(q, async () => rows(4));
  cache.reset();
  expect(cache.size).toBe(0);
});

test('the least recently used answer goes first when full; size 0 keeps nothing', async () => {
  const cache = new TopCache(2, () => true);
  await cache.get({ ...q, limit: 1 }, async () => rows(1));
  await cache.get({ ...q, limit: 2 }, async () => rows(2));
  await cache.get({ ...q, limit: 1 }, async () => rows(0));
  await cache.get({ ...q, limit: 3 }, async () => rows(3));
  expect((await cache.get({ ...q, limit: 1 }, async () => rows(9))).cached).toBe(true);
  expect((await cache.get({ ...q, limit: 2 }, async () => rows(9))).cached).toBe(false);
  const none = new TopCache(0, () => true);
  await none.get(q, async () => rows(1));
  expect(none.size).toBe(0);
});

test('the same question asked while it is computed waits for that answer instead of asking again', async () => {
  const cache = new TopCache(10, () => true);
  let calls = 0;
  let release!: () => void;
  const compute = () => {
    calls++;
    return new Promise<TopRow[]>((resolve) => (release = () => resolve(rows(calls))));
  };
  const answers = [cache.get(q, compute), cache.get(q, compute), cache.get(q, compute)];
  release();
  expect((await Promise.all(answers)).map((a) => a.rows)).toEqual([rows(1), rows(1), rows(1)]);
  expect(calls).toBe(1);
});
