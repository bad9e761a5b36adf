import type { EnrichedEvent, WindowAggregate } from '@sluice/contracts';
import { cleanStageReport } from '@sluice/testing';
import { aggregatorFixture, GRACE_MS, WINDOW_MS, type AggregatorFixture } from './aggregator-fixture';

// What the aggregator writes must equal an independent computation over the
// same events, field by field, whatever crashes happen on the way.
jest.setTimeout(300_000);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const ENTITIES = Array.from({ length: 12 }, (_, i) => ({ entityId: `sku-${i}`, category: `cat-${i % 4}` }));
// An aligned window start well in the past, plus 5 s: normal events fall in [T0, T0 + 50 s), always within grace of each other.
const T0 = Math.floor(Date.now() / WINDOW_MS) * WINDOW_MS - 30 * WINDOW_MS + 5_000;

let seq = 0;
function enriched(entity: { entityId: string; category: string }, occurredAt: number, value: number): EnrichedEvent {
  seq += 1;
  return {
    eventId: `agg-${seq}`,
    type: 'view',
    entityId: entity.entityId,
    userId: null,
    occurredAt,
    value,
    attributes: {},
    name: entity.entityId,
    category: entity.category,
    enrichedAt: Date.now(),
    sourcePartition: 0,
    sourceOffset: seq,
  };
}

type Expected = Omit<WindowAggregate, 'revision'>;

/** The independent computation: finals of every window the normal events fall in. */
function expectedFinals(events: EnrichedEvent[]): Map<string, Expected> {
  const out = new Map<string, Expected>();
  for (const e of events) {
    const windowStart = Math.floor(e.occurredAt / WINDOW_MS) * WINDOW_MS;
    for (const [dimension, key] of [['entity', e.entityId], ['category', e.category]] as const) {
      const id = `${dimension}|${key}|${windowStart}`;
      const w = out.get(id);
      out.set(
        id,
        w
          ? { ...w, count: w.count + 1, sum: w.sum + e.value, min: Math.min(w.min, e.value), max: Math.max(w.max, e.value), lastEventAt: Math.max(w.lastEventAt, e.occurredAt) }
          : { dimension, key, windowStart, windowEnd: windowStart + WINDOW_MS, count: 1, sum: e.value, min: e.value, max: e.value, isFinal: true, lastEventAt: e.occurredAt },
      );
    }
  }
  return out;
}

/**
 * Waits until every window shows all its events (as updates): then both stages have applied every event,
 * and closing events sent now cannot overtake any of them on the way to the category windows.
 */
async function applied(agg: AggregatorFixture, expected: Map<string, Expected>): Promise<Map<string, WindowAggregate>> {
  const latest = await agg.latestAggregates((l) => [...expected].every(([key, want]) => l.get(key)?.count === want.count));
  const counts = (m: Map<string, { count: number } | undefined>) => Object.fromEntries([...expected.keys()].map((k) => [k, m.get(k)?.count]));
  expect(counts(latest)).toEqual(counts(expected));
  return latest;
}

/** Closing events, one per entity, far ahead: stream time passes the end plus grace of every earlier window. */
const closingEvents = () => ENTITIES.map((e) => enriched(e, T0 + 20 * WINDOW_MS + GRACE_MS, 1));

async function expectFinalsEqual(agg: AggregatorFixture, expected: Map<string, Expected>): Promise<void> {
  const latest = await agg.latestAggregates((l) => [...expected.keys()].every((k) => l.get(k)?.isFinal));
  for (const [key, want] of expected) {
    const { revision, ...got } = latest.get(key)!;
    expect({ window: key, ...got }).toEqual({ window: key, ...want });
    expect(revision).toBeGreaterThanOrEqual(1);
  }
  const unexpectedFinals = [...latest].filter(([key, v]) => v.isFinal && !expected.has(key));
  expect(unexpectedFinals).toEqual([]);
}

let agg: AggregatorFixture;
afterEach(async () => {
  await agg?.close();
});

test('kill -9 at random moments, five times: the finals equal an independent computation and the late events are in events.late', async () => {
  agg = await aggregatorFixture(3);
  const aggregator = await agg.start({ STREAM_MAX_BATCH_SIZE: '25' });
  const normal: EnrichedEvent[] = [];
  const late: EnrichedEvent[] = [];
  const seenEntities = new Set<string>();
  let producing = true;
  const producer = (async () => {
    while (producing) {
      const batch: EnrichedEvent[] = [];
      for (let i = 0; i < 30; i++) {
        const entity = ENTITIES[Math.floor(Math.random() * ENTITIES.length)]!;
        // A late event only after its entity had normal ones: then it is late in both dimensions.
        if (seenEntities.has(entity.entityId) && Math.random() < 0.05) {
          const e = enriched(entity, T0 - 10 * WINDOW_MS + Math.floor(Math.random() * 5_000), 7);
          late.push(e);
          batch.push(e);
        } else {
          const e = enriched(entity, T0 + Math.floor(Math.random() * 50_000), 1 + Math.floor(Math.random() * 100));
          normal.push(e);
          batch.push(e);
          seenEntities.add(entity.entityId);
        }
      }
      await agg.send(batch);
      await sleep(100);
    }
  })();
  for (let i = 0; i < 5; i++) {
    await sleep(1_500 + Math.random() * 2_000);
    await aggregator.kill();
    await aggregator.restart();
  }
  producing = false;
  await producer;
  await applied(agg, expectedFinals(normal));
  await agg.send(closingEvents());

  expect(normal.length).toBeGreaterThan(300);
  expect(late.length).toBeGreaterThan(0);
  await expectFinalsEqual(agg, expectedFinals(normal));

  const lateRecords = await agg.readLate(late.length * 2);
  const byDimension = (d: string) => lateRecords.filter((r) => r.headers['late.dimension'] === d).map((r) => r.headers['late.reason']);
  expect(byDimension('entity')).toEqual(late.map(() => 'window.closed'));
  expect(byDimension('category')).toEqual(late.map(() => 'window.closed'));
  expect(lateRecords).toHaveLength(late.length * 2);
  // Every event (the closing ones too) forwarded to the category stage exactly once with its offset.
  expect(await agg.checkEntityStage()).toEqual(cleanStageReport(normal.length + late.length + ENTITIES.length));
});

test('a restart restores open windows from the changelog and finishes them correctly', async () => {
  agg = await aggregatorFixture(2);
  const first = await agg.start();
  const normal = ENTITIES.flatMap((e, i) => [enriched(e, T0 + i * 1_000, i + 1), enriched(e, T0 + 40_000, 2 * i + 1)]);
  await agg.send(normal);
  const open = await applied(agg, expectedFinals(normal));
  expect([...open.values()].every((v) => !v.isFinal)).toBe(true);
  await first.stop();
  await agg.start();
  await agg.send(closingEvents());
  await expectFinalsEqual(agg, expectedFinals(normal));
});
