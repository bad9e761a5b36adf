import type { ActivityEvent, CatalogItem } from '@sluice/contracts';
import { decide, type DecisionInput } from './enrich';

const event: ActivityEvent = { eventId: 'e1', type: 'view', entityId: 'sku-1', userId: 'u1', occurredAt: 1000, value: 3, attributes: { a: 'b' } };
const item: CatalogItem = { entityId: 'sku-1', name: 'Kettle', category: 'kitchen', price: 20, attributes: {}, updatedAt: 1 };
const input = (over: Partial<DecisionInput> = {}): DecisionInput => ({
  event,
  catalogItem: item,
  alreadySeen: false,
  waitingSince: undefined,
  now: 50_000,
  catalogWaitMs: 10_000,
  source: { partition: 2, offset: '41' },
  ...over,
});

test('an event with a catalog entry is emitted with the entry’s name and category and where it came from', () => {
  expect(decide(input())).toEqual({
    kind: 'emit',
    enriched: { ...event, name: 'Kettle', category: 'kitchen', enrichedAt: 50_000, sourcePartition: 2, sourceOffset: 41 },
  });
});

test('an eventId seen before is a duplicate, whatever the catalog says', () => {
  expect(decide(input({ alreadySeen: true }))).toEqual({ kind: 'duplicate' });
  expect(decide(input({ alreadySeen: true, catalogItem: undefined }))).toEqual({ kind: 'duplicate' });
});

test('an event without a catalog entry waits, then becomes a catalog.missing dead letter', () => {
  expect(decide(input({ catalogItem: undefined }))).toEqual({ kind: 'wait' });
  expect(decide(input({ catalogItem: undefined, waitingSince: 41_000 }))).toEqual({ kind: 'wait' });
  expect(decide(input({ catalogItem: undefined, waitingSince: 40_000 }))).toMatchObject({ kind: 'dead-letter', code: 'catalog.missing' });
});

test('with no wait configured a missing entry is a dead letter at once', () => {
  expect(decide(input({ catalogItem: undefined, catalogWaitMs: 0 }))).toMatchObject({ kind: 'dead-letter' });
});
