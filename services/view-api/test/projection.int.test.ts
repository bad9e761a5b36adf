import { readdirSync } from 'node:fs';
import { migrationsDir } from '../src/migrate';
import { eventually, whileStackProcessDown, withAdmin } from '@sluice/testing';
import type { WindowAggregate } from '@sluice/contracts';
import { AssignerProtocol } from 'kafkajs';
import { revisions, viewFixture, type ViewFixture } from './view-fixture';

// The table must equal what the aggregator decided, once, even when Postgres or
// the service falls over: the highest revision of every window, and the stored
// offsets at the end of the topic.
jest.setTimeout(300_000);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let view: ViewFixture;
afterEach(async () => {
  await view?.close();
});

/** A stream of window records: every window gets its revisions in order, with some re-delivered out of order. */
function streamOf(windows: number): WindowAggregate[][] {
  const batches: WindowAggregate[][] = [];
  const all = Array.from({ length: windows }, (_, i) => revisions(i % 2 ? 'entity' : 'category', `key-${i % 25}`, Math.floor(i / 25), 6));
  for (let step = 0; step < 6; step++) {
    const batch = all.map((r) => r[step]!);
    // A re-delivered older revision after a newer one: it must not move the window back.
    if (step >= 2) batch.push(...all.slice(0, 10).map((r) => r[step - 2]!));
    batches.push(batch);
  }
  return batches;
}

async function expectTableEqualsTopic(view: ViewFixture, expected: Map<string, WindowAggregate>): Promise<void> {
  const deadline = Date.now() + 60_000;
  let rows: Record<string, unknown>[] = [];
  while (Date.now() < deadline) {
    rows = await view.sql('select dimension, key, (extract(epoch from window_start) * 1000)::bigint as ws, count, revision, is_final from window_aggregates');
    if (rows.length === expected.size && rows.every((r) => Number(r.revision) === expected.get(`${r.dimension}|${r.key}|${r.ws}`)?.revision)) break;
    await sleep(500);
  }
  expect(rows).toHaveLength(expected.size);
  for (const r of rows) {
    const want = expected.get(`${r.dimension}|${r.key}|${r.ws}`)!;
    expect({ revision: Number(r.revision), count: Number(r.count), isFinal: r.is_final }).toEqual({ revision: want.revision, count: want.count, isFinal: want.isFinal });
  }
  const stored = await view.sql<{ partition: number; next_offset: string }>('select partition, next_offset from projection_offsets where consumer_group = $1 and topic = $2', [view.group, view.topic]);
  const ends = await withAdmin(view.kafka, (admin) => admin.fetchTopicOffsets(view.topic));
  for (const end of ends.filter((e) => e.high !== '0')) {
    expect({ partition: end.partition, next: stored.find((s) => s.partition === end.partition)?.next_offset }).toEqual({ partition: end.partition, next: end.high });
  }
}

function highestRevisions(batches: WindowAggregate[][]): Map<string, WindowAggregate> {
  const expected = new Map<string, WindowAggregate>();
  for (const r of batches.flat()) {
    const id = `${r.dimension}|${r.key}|${r.windowStart}`;
    if ((expected.get(id)?.revision ?? 0) < r.revision) expected.set(id, r);
  }
  return expected;
}

test('kill -9 of view-api at random moments during a stream: the table ends equal to the highest revisions, offsets at the end', async () => {
  view = await viewFixture(3);
  const api = await view.start();
  const batches = streamOf(200);
  const sending = (async () => {
    for (const batch of batches) {
      for (let i = 0; i < batch.length; i += 20) {
        await view.send(batch.slice(i, i + 20));
        await sleep(30);
      }
    }
  })();
  for (let i = 0; i < 4; i++) {
    await sleep(800 + Math.random() * 1_200);
    await api.kill();
    await api.restart();
  }
  await sending;
  await expectTableEqualsTopic(view, highestRevisions(batches));
});

test('a Postgres restart during a stream: the projection pauses, reports not ready, resumes, and applies nothing twice', async () => {
  view = await viewFixture(3);
  const api = await view.start();
  const batches = streamOf(150);
  const sending = (async () => {
    for (const batch of batches) {
      await view.send(batch);
      await sleep(700);
    }
  })();
  await sleep(1_500);
  const readyDuringOutage = await whileStackProcessDown('postgres', async () => {
    await sleep(1_500);
    return (await fetch(`${api.url}/readyz`)).status;
  });
  await sending;
  await expectTableEqualsTopic(view, highestRevisions(batches));
  expect(readyDuringOutage).toBe(503);
  expect((await fetch(`${api.url}/readyz`)).status).toBe(200);
});

test('two replicas starting at once on an empty database both migrate safely and split the partitions', async () => {
  view = await viewFixture(4);
  const [a, b] = await Promise.all([view.start(), view.start()]);
  const batches = streamOf(100);
  for (const batch of batches) await view.send(batch);
  await expectTableEqualsTopic(view, highestRevisions(batches));
  // Each migration applied once, though both replicas ran them.
  const migrations = await view.sql('select name from view_api_migrations order by name');
  expect(migrations.map((m) => m.name)).toEqual(readdirSync(migrationsDir).map((f) => f.replace(/\.sql$/, '')).sort());
  expect((await fetch(`${a.url}/readyz`)).status).toBe(200);
  expect((await fetch(`${b.url}/readyz`)).status).toBe(200);
  // Both are members of the group, each with partitions of its own, together all four.
  const describe = () =>
    withAdmin(view.kafka, async (admin) => {
      const { groups } = await admin.describeGroups([view.group]);
      return groups[0]!.members.map((m) => AssignerProtocol.MemberAssignment.decode(m.memberAssignment)?.assignment[view.topic] ?? []);
    });
  // Read once the group is stable (a rebalance shows members without partitions for a moment).
  const assigned = await eventually('both replicas own partitions', describe, (members) => members.length === 2 && members.every((p) => p.length > 0), 30_000).catch(describe);
  expect(assigned).toHaveLength(2);
  for (const partitions of assigned) expect(partitions.length).toBeGreaterThan(0);
  expect(assigned.flat().sort()).toEqual([0, 1, 2, 3]);
});
