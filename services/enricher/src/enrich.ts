import type { ActivityEvent, CatalogItem, EnrichedEvent } from '@sluice/contracts';

/** What happens to one event: the enricher's whole business rule. */
export type Decision =
  | { kind: 'emit'; enriched: EnrichedEvent }
  /** Its eventId was emitted before: a client retry or a replay of an emitted event. */
  | { kind: 'duplicate' }
  /** No catalog entry yet, and the wait is not over: try again shortly. */
  | { kind: 'wait' }
  /** No catalog entry after the whole wait: a dead letter, replayable once the catalog is fixed. */
  | { kind: 'dead-letter'; code: 'catalog.missing'; message: string };

export interface DecisionInput {
  event: ActivityEvent;
  catalogItem: CatalogItem | undefined;
  /** Whether the de-duplication store has this eventId. */
  alreadySeen: boolean;
  /**
   * When an event of this entity first found no catalog entry (epoch ms), if one did.
   * The wait is per entity: once it is over, later events of the entity are dead-lettered at once
   * instead of each blocking its partition for the whole wait.
   */
  waitingSince: number | undefined;
  now: number;
  catalogWaitMs: number;
  source: { partition: number; offset: string };
}

export function decide(input: DecisionInput): Decision {
  if (input.alreadySeen) return { kind: 'duplicate' };
  const item = input.catalogItem;
  if (!item) {
    const since = input.waitingSince ?? input.now;
    if (input.now - since < input.catalogWaitMs) return { kind: 'wait' };
    return {
      kind: 'dead-letter',
      code: 'catalog.missing',
      message: `no catalog entry for entity "${input.event.entityId}" after waiting ${input.catalogWaitMs} ms`,
    };
  }
  return { kind: 'emit', enriched: enrich(input.event, item, input.now, input.source) };
}

export function enrich(event: ActivityEvent, item: CatalogItem, enrichedAt: number, source: { partition: number; offset: string }): EnrichedEvent {
  return {
    eventId: event.eventId,
    type: event.type,
    entityId: event.entityId,
    userId: event.userId,
    occurredAt: event.occurredAt,
    value: event.value,
    attributes: event.attributes,
    name: item.name,
    category: item.category,
    enrichedAt,
    sourcePartition: source.partition,
    sourceOffset: Number(source.offset),
  };
}
