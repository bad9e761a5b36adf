import { env, kafkaEnvShape } from '@sluice/runtime';

export const replayerEnvShape = {
  ...kafkaEnvShape,
  SCHEMA_REGISTRY_URL: env.url('http://127.0.0.1:8081'),
  DATABASE_URL: env.url('postgres://postgres:postgres@127.0.0.1:54329/sluice'),
  DLQ_DB_POOL_SIZE: env.int(10, { min: 2, max: 200 }),
  /** Dead-letter topics to index (comma-separated). */
  DLQ_TOPICS: env.list('events.raw.dlq,catalog.items.dlq,events.enriched.dlq,aggregates.dlq'),
  DLQ_CONSUMER_GROUP: env.string('dlq-replayer-index'),
  /** Topics a replay may write to; a replay goes to a record's original topic unless told otherwise. */
  DLQ_REPLAY_ALLOWED_TOPICS: env.list('events.raw,catalog.items,events.enriched,aggregates'),
  /** A record replayed this many times (counting earlier replays that failed again) is refused: a loop guard. */
  DLQ_MAX_REPLAYS: env.int(3, { min: 1, max: 100 }),
  DLQ_DEFAULT_RATE_PER_SEC: env.int(100, { min: 1, max: 100_000 }),
  /** Bearer token of the admin endpoint; required unless DLQ_ADMIN_ENABLED=false. */
  DLQ_ADMIN_TOKEN: env.optionalString(),
  DLQ_ADMIN_ENABLED: env.bool(true),
  DLQ_SESSION_TIMEOUT_MS: env.int(30_000, { min: 3_000, max: 300_000 }),
  DLQ_RETRY_MAX_MS: env.int(5_000, { min: 100 }),
  /** Consumer groups whose lag this service reads from Kafka and exports (kafka_consumergroup_lag): the stages'. */
  DLQ_LAG_GROUPS: env.list('enricher,aggregator,view-api-projection,dlq-replayer-index,archiver'),
  DLQ_LAG_INTERVAL_MS: env.int(10_000, { min: 500, max: 600_000 }),
};

/** The variables of `maintenance-cli prune` (the dead-letter index prune CronJob). */
export const dlqMaintenanceShape = {
  DATABASE_URL: env.url('postgres://postgres:postgres@127.0.0.1:54329/sluice'),
  /** Replayed or discarded entries that failed more than this many days ago are deleted; pending ones never. */
  DLQ_INDEX_RETENTION_DAYS: env.int(30, { min: 1, max: 36_500 }),
};
