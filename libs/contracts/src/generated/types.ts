// Generated from libs/contracts/schemas by `pnpm --filter @sluice/contracts generate`: do not edit.

/** One thing that happened to an entity, as a client reported it (events.raw, key = entityId). */
export interface ActivityEvent {
  /** Idempotency key: a client that retries sends the same eventId. */
  eventId: string;
  type: string;
  entityId: string;
  userId: null | string;
  /** Event time, epoch milliseconds (UTC). */
  occurredAt: number;
  value: number;
  attributes: Record<string, string>;
}

/** Reference data for an entity (catalog.items, compacted, key = entityId, tombstone = delete). */
export interface CatalogItem {
  entityId: string;
  name: string;
  category: string;
  price: null | number;
  attributes: Record<string, string>;
  updatedAt: number;
}

/** An ActivityEvent joined with its catalog entry (events.enriched, key = entityId). */
export interface EnrichedEvent {
  eventId: string;
  type: string;
  entityId: string;
  userId: null | string;
  occurredAt: number;
  value: number;
  attributes: Record<string, string>;
  /** Catalog name of the entity. */
  name: string;
  /** Catalog category of the entity. */
  category: string;
  /** When the enricher processed the event. */
  enrichedAt: number;
  /** Partition of events.raw the event was read from. */
  sourcePartition: number;
  /** Offset in that partition. */
  sourceOffset: number;
}

export type Dimension = 'entity' | 'category';

/** The result of one event-time window for one key (aggregates, compacted, key = dimension|key|windowStart). */
export interface WindowAggregate {
  dimension: Dimension;
  key: string;
  windowStart: number;
  windowEnd: number;
  count: number;
  sum: number;
  min: number;
  max: number;
  isFinal: boolean;
  /** Grows with every emission of this window; a consumer keeps the highest. 0 for records written before v2. */
  revision: number;
  lastEventAt: number;
}
