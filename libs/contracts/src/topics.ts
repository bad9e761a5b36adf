import type { ContractName } from './schemas';

/** The topics of the pipeline, by role. */
export const TOPICS = {
  eventsRaw: 'events.raw',
  catalogItems: 'catalog.items',
  eventsEnriched: 'events.enriched',
  aggregates: 'aggregates',
  eventsLate: 'events.late',
} as const;

export const dlqTopicOf = (sourceTopic: string): string => `${sourceTopic}.dlq`;

/** The subject of a topic's values (Confluent's TopicNameStrategy). */
export const valueSubjectOf = (topic: string): string => `${topic}-value`;

export interface TopicSpec {
  name: string;
  partitions: number;
  replicationFactor: number;
  /** Topic configs that provisioning creates and keeps. */
  configs: Record<string, string>;
  /** The contract of the values; dead-letter topics hold the original bytes of any contract. */
  contract?: ContractName;
}

export interface CatalogOptions {
  /** @default 6 */
  partitions?: number;
  /** @default 1 */
  replicationFactor?: number;
  /** Prepended to every name, so tests can have a catalog of their own. @default '' */
  prefix?: string;
}

const DAY_MS = 24 * 60 * 60 * 1000;

/** The configs of a compacted topic: the catalog's reference data and results, and the stream runtime's changelogs. */
export const COMPACTED_TOPIC_CONFIGS: Readonly<Record<string, string>> = { 'cleanup.policy': 'compact', 'min.compaction.lag.ms': '0', 'segment.ms': String(DAY_MS) };

/**
 * Every topic of the pipeline with its partitions and configs. Event topics
 * keep 7 days; dead letters 30 days, so an operator has time to fix and replay;
 * reference data and results are compacted.
 */
export function topicCatalog(options: CatalogOptions = {}): TopicSpec[] {
  const partitions = options.partitions ?? 6;
  const replicationFactor = options.replicationFactor ?? 1;
  const prefix = options.prefix ?? '';
  const spec = (name: string, configs: Record<string, string>, contract?: ContractName): TopicSpec => ({
    name: `${prefix}${name}`,
    partitions,
    replicationFactor,
    configs,
    ...(contract ? { contract } : {}),
  });
  const events = { 'cleanup.policy': 'delete', 'retention.ms': String(7 * DAY_MS) };
  const deadLetters = { 'cleanup.policy': 'delete', 'retention.ms': String(30 * DAY_MS) };
  return [
    spec(TOPICS.eventsRaw, events, 'ActivityEvent'),
    spec(TOPICS.catalogItems, COMPACTED_TOPIC_CONFIGS, 'CatalogItem'),
    spec(TOPICS.eventsEnriched, events, 'EnrichedEvent'),
    spec(TOPICS.aggregates, COMPACTED_TOPIC_CONFIGS, 'WindowAggregate'),
    spec(TOPICS.eventsLate, events, 'EnrichedEvent'),
    spec(dlqTopicOf(TOPICS.eventsRaw), deadLetters),
    spec(dlqTopicOf(TOPICS.catalogItems), deadLetters),
    spec(dlqTopicOf(TOPICS.eventsEnriched), deadLetters),
    spec(dlqTopicOf(TOPICS.aggregates), deadLetters),
  ];
}
