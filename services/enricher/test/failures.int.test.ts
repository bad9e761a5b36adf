import { cleanStageReport } from '@sluice/testing';
import { catalogItem, enricherFixture, type EnricherFixture } from './pipeline';
import { exactlyOnce, steadyLoad } from './workload';

// Exactly once under failures: whatever happens to the enrichers, every
// distinct event that Kafka acknowledged is in events.enriched exactly once
// (read_committed), and nothing else is; and every input below the group's
// committed offsets has its output and its de-duplication record with it.
jest.setTimeout(300_000);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const entities = Array.from({ length: 20 }, (_, i) => `sku-${i}`);

let pipeline: EnricherFixture;
afterEach(async () => {
  await pipeline?.close();
});

async function expectExactlyOnce(sent: Map<string, unknown>): Promise<void> {
  const enriched = await pipeline.readEnriched(sent.size, 120_000);
  const result = exactlyOnce(sent.keys(), enriched.map((e) => e.eventId));
  expect({ missing: result.missing.length, duplicated: result.duplicated.length, unexpected: result.unexpected.length }).toEqual({
    missing: 0,
    duplicated: 0,
    unexpected: 0,
  });
  expect(result.total).toBe(sent.size);
  // And from Kafka alone: each input's output, seen-event record and offset were committed together.
  expect(await pipeline.checkEffects()).toEqual(cleanStageReport(sent.size));
}

test('kill -9 of the enricher at random moments, five times, loses and duplicates nothing', async () => {
  pipeline = await enricherFixture(3);
  await pipeline.upsertCatalog(entities.map((e) => catalogItem(e)));
  const enricher = await pipeline.start({ env: { STREAM_MAX_BATCH_SIZE: '25' } });
  const load = steadyLoad(pipeline, { batch: 40, everyMs: 50 });
  for (let i = 0; i < 5; i++) {
    await sleep(1_000 + Math.random() * 2_000);
    await enricher.kill();
    await enricher.restart();
  }
  await sleep(1_000);
  await load.stop();
  expect(load.sent.size).toBeGreaterThan(500);
  await expectExactlyOnce(load.sent);
});

test('a zombie (SIGSTOP past its session timeout, then SIGCONT) produces no duplicate', async () => {
  pipeline = await enricherFixture(4);
  await pipeline.upsertCatalog(entities.map((e) => catalogItem(e)));
  const a = await pipeline.start({ name: 'enricher-zombie-a' });
  const b = await pipeline.start({ name: 'enricher-zombie-b' });
  const load = steadyLoad(pipeline, { batch: 20, everyMs: 50 });
  await sleep(3_000);
  process.kill(a.pid(), 'SIGSTOP');
  // The session timeout is 6 s: b takes a's partitions and its producers fence a's.
  await sleep(12_000);
  process.kill(a.pid(), 'SIGCONT');
  await sleep(5_000);
  await load.stop();
  await expectExactlyOnce(load.sent);
  await b.stop();
});

test('scaling 1 → 3 → 1 instances during a steady stream loses and duplicates nothing', async () => {
  pipeline = await enricherFixture(6);
  await pipeline.upsertCatalog(entities.map((e) => catalogItem(e)));
  await pipeline.start({ name: 'enricher-scale-1' });
  const load = steadyLoad(pipeline, { batch: 20, everyMs: 50 });
  await sleep(2_000);
  const second = await pipeline.start({ name: 'enricher-scale-2' });
  const third = await pipeline.start({ name: 'enricher-scale-3' });
  await sleep(5_000);
  await second.stop();
  await third.stop();
  await sleep(4_000);
  await load.stop();
  await expectExactlyOnce(load.sent);
});

test('after a restart the de-duplication state is restored: a duplicate of an event seen before is still dropped', async () => {
  pipeline = await enricherFixture(2);
  await pipeline.upsertCatalog(entities.map((e) => catalogItem(e)));
  const load = steadyLoad(pipeline, { batch: 50, everyMs: 10 });
  await sleep(1_000);
  await load.stop();
  const enricher = await pipeline.start();
  await pipeline.readEnriched(load.sent.size);
  await enricher.stop();
  const again = await pipeline.start();
  const before = [...load.sent.values()].slice(0, 30);
  await pipeline.sendEvents(before);
  const fresh = [...Array(5)].map((_, i) => ({ ...before[0]!, eventId: `after-restart-${i}` }));
  await pipeline.sendEvents(fresh);
  for (const e of fresh) load.sent.set(e.eventId, e);
  await expectExactlyOnce(load.sent);
  await again.stop();
});
