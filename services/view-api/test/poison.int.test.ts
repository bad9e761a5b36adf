import { readTopic, whileStackProcessDown, withAdmin } from '@sluice/testing';
import { revisions, viewFixture, type ViewFixture } from './view-fixture';

// Records Postgres refuses never stall the projection: each becomes a dead
// letter on aggregates.dlq with its SQLSTATE, the records behind it in the
// same partition reach the view, and the group's lag returns to zero. And a
// partition paused while Postgres is down is resumed after a rebalance.
jest.setTimeout(300_000);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let view: ViewFixture;
afterEach(async () => {
  await view?.close();
});

async function rows(view: ViewFixture, count: number): Promise<{ key: string; revision: string }[]> {
  const deadline = Date.now() + 60_000;
  let found: { key: string; revision: string }[] = [];
  while (Date.now() < deadline) {
    found = await view.sql<{ key: string; revision: string }>('select key, revision::text from window_aggregates order by key');
    if (found.length >= count) break;
    await sleep(300);
  }
  return found;
}

/** The projection group's committed offsets reach the end of every partition. */
async function lagReachesZero(view: ViewFixture): Promise<void> {
  const deadline = Date.now() + 60_000;
  let lag: number[] = [];
  while (Date.now() < deadline) {
    lag = await withAdmin(view.kafka, async (admin) => {
      const ends = await admin.fetchTopicOffsets(view.topic);
      const [committed] = await admin.fetchOffsets({ groupId: view.group, topics: [view.topic] });
      return ends.map((e) => Number(e.high) - Number(committed?.partitions.find((p) => p.partition === e.partition)?.offset ?? 0));
    });
    if (lag.every((l) => l <= 0)) return;
    await sleep(500);
  }
  expect(lag).toEqual(lag.map(() => 0));
}

test('a NUL in a key, a time Postgres cannot hold and bytes that do not decode: dead letters with their codes; the partition flows on', async () => {
  view = await viewFixture(2);
  await view.start();
  const [good1] = revisions('entity', 'good-1', 0, 1);
  const [nul] = revisions('entity', 'a\u0000b', 0, 1);
  // Decodes (a long), but lies 30,000 years back, before any time Postgres holds: timestamp out of range.
  const far = { ...revisions('category', 'far', 0, 1)[0]!, windowStart: -1e15, windowEnd: -1e15 + 60_000 };
  const [good2] = revisions('category', 'good-2', 0, 1);
  await view.sendTo(0, [good1!, nul!, far, Buffer.from([0, 0, 0, 0, 99, 1, 2]), good2!]);
  await view.sendTo(1, [revisions('entity', 'other-partition', 0, 1)[0]!]);

  expect((await rows(view, 3)).map((r) => r.key)).toEqual(['good-1', 'good-2', 'other-partition']);
  const dead = await readTopic(view.kafka, `${view.topic}.dlq`, { done: (r) => r.length >= 3, timeoutMs: 30_000 });
  // Keyed like their records: spread over the partitions of aggregates.dlq, in order by original offset.
  dead.sort((a, b) => Number(a.headers['dlq.original.offset']) - Number(b.headers['dlq.original.offset']));
  expect(dead.map((r) => [r.headers['dlq.original.offset'], r.headers['dlq.error.code']])).toEqual([
    ['1', 'pg.22021'],
    ['2', 'pg.22008'],
    ['3', expect.stringMatching(/^serde\./)],
  ]);
  expect(dead[0]!.headers['dlq.stage']).toBe(view.group);
  await lagReachesZero(view);
});

test('Postgres killed during a rebalance of the projection: once it is back, no partition stays paused', async () => {
  view = await viewFixture(4);
  await view.start();
  const second = await view.start();
  await view.send([0, 1, 2, 3].flatMap((i) => revisions('entity', `before-${i}`, i, 1)));
  expect(await rows(view, 4)).toHaveLength(4);
  await whileStackProcessDown('postgres', async () => {
    // Writes fail and pause their partitions on both instances; then one leaves: the group rebalances
    // while Postgres is down, and the other takes its partitions.
    await view.send([0, 1, 2, 3, 4, 5, 6, 7].flatMap((i) => revisions('category', `during-${i}`, i, 1)));
    await sleep(3_000);
    await second.stop();
    await sleep(8_000);
  });
  // Every partition writes again on the instance left; nothing stays paused.
  await view.send([0, 1, 2, 3, 4, 5, 6, 7].flatMap((i) => revisions('entity', `after-${i}`, i, 1)));
  expect(await rows(view, 20)).toHaveLength(20);
  await lagReachesZero(view);
});
