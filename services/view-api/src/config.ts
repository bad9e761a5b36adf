import { TOPICS } from '@sluice/contracts';
import { env, kafkaEnvShape } from '@sluice/runtime';

export const viewEnvShape = {
  ...kafkaEnvShape,
  SCHEMA_REGISTRY_URL: env.url('http://127.0.0.1:8081'),
  DATABASE_URL: env.url('postgres://postgres:postgres@127.0.0.1:54329/sluice'),
  VIEW_DB_POOL_SIZE: env.int(10, { min: 2, max: 200 }),
  VIEW_INPUT_TOPIC: env.string(TOPICS.aggregates),
  /** Consumer group of the projection; replicas share it and split the partitions. */
  VIEW_CONSUMER_GROUP: env.string('view-api-projection'),
  /** false: this replica only answers queries (scale queries apart from the projection). */
  VIEW_PROJECTION_ENABLED: env.bool(true),
  /** Apply migrations at start-up (under an advisory lock, safe with several replicas). */
  VIEW_MIGRATE_ON_START: env.bool(true),
  /** Consumer group session timeout of the projection: how long a dead replica holds its partitions. */
  VIEW_SESSION_TIMEOUT_MS: env.int(30_000, { min: 3_000, max: 300_000 }),
  VIEW_SSE_HEARTBEAT_MS: env.int(15_000, { min: 100 }),
  VIEW_MAX_LIMIT: env.int(1_000, { min: 1 }),
  /** Answers of GET /v1/top kept per replica until a window they sum changes; 0 keeps none. */
  VIEW_TOP_CACHE_ENTRIES: env.int(1_000, { min: 0, max: 100_000 }),
  /** Longest pause between attempts while Postgres is down. */
  VIEW_RETRY_MAX_MS: env.int(5_000, { min: 100 }),
};

/** The variables of `maintenance-cli retention` (the view-retention CronJob). */
export const viewMaintenanceShape = {
  DATABASE_URL: env.url('postgres://postgres:postgres@127.0.0.1:54329/sluice'),
  /** Windows that started more than this many days ago (rounded down to a UTC day) are deleted, with their rollups. */
  VIEW_RETENTION_DAYS: env.int(90, { min: 1, max: 36_500 }),
};
