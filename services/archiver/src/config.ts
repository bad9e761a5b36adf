import { TOPICS } from '@sluice/contracts';
import { env, kafkaEnvShape } from '@sluice/runtime';

export const archiverEnvShape = {
  ...kafkaEnvShape,
  SCHEMA_REGISTRY_URL: env.url('http://127.0.0.1:8081'),
  /** Where the archive is: a directory (path or file:// URL) or s3://bucket/prefix. */
  ARCHIVE_URL: env.string('.sluice/archive'),
  ARCHIVE_INPUT_TOPIC: env.string(TOPICS.eventsEnriched),
  /** Consumer group; replicas share it and split the partitions. */
  ARCHIVE_CONSUMER_GROUP: env.string('archiver'),
  /** A file is written once the records of its roll reach this size (their encoded size in Kafka). */
  ARCHIVE_MAX_FILE_MB: env.int(64, { min: 1, max: 1_024 }),
  /**
   * The open rolls of all partitions together (their encoded size; a decoded record takes about three to
   * four times as much memory): past it, the partitions holding more than their share write early.
   */
  ARCHIVE_MAX_BUFFER_MB: env.int(128, { min: 1, max: 8_192 }),
  /** …or once the roll's first record has waited this long: data is queryable within this time. */
  ARCHIVE_ROLL_INTERVAL_MS: env.int(60_000, { min: 100, max: 86_400_000 }),
  ARCHIVE_SESSION_TIMEOUT_MS: env.int(30_000, { min: 3_000, max: 300_000 }),
  /** Longest pause between attempts while the storage fails. */
  ARCHIVE_RETRY_MAX_MS: env.int(30_000, { min: 100 }),
  /** Path-style S3 addressing (http://host/bucket/key), as S3Proxy and MinIO want. */
  ARCHIVE_S3_FORCE_PATH_STYLE: env.bool(true),
  AWS_REGION: env.string('us-east-1'),
  // Read by the AWS SDK itself; listed here so that a typo in a deployment is caught at start-up.
  /** An S3-compatible endpoint other than AWS (S3Proxy, MinIO, …). */
  AWS_ENDPOINT_URL_S3: env.url().optional(),
  AWS_ENDPOINT_URL: env.url().optional(),
  AWS_ACCESS_KEY_ID: env.optionalString(),
  AWS_SECRET_ACCESS_KEY: env.optionalString(),
  AWS_SESSION_TOKEN: env.optionalString(),
};

const storageShape = {
  ARCHIVE_URL: archiverEnvShape.ARCHIVE_URL,
  ARCHIVE_S3_FORCE_PATH_STYLE: archiverEnvShape.ARCHIVE_S3_FORCE_PATH_STYLE,
  AWS_REGION: archiverEnvShape.AWS_REGION,
  AWS_ENDPOINT_URL_S3: archiverEnvShape.AWS_ENDPOINT_URL_S3,
  AWS_ENDPOINT_URL: archiverEnvShape.AWS_ENDPOINT_URL,
  AWS_ACCESS_KEY_ID: archiverEnvShape.AWS_ACCESS_KEY_ID,
  AWS_SECRET_ACCESS_KEY: archiverEnvShape.AWS_SECRET_ACCESS_KEY,
  AWS_SESSION_TOKEN: archiverEnvShape.AWS_SESSION_TOKEN,
};

/** The variables of `sluice archive query`. */
export const archiveQueryShape = {
  ...storageShape,
  /** Where an s3:// archive is mirrored for DuckDB (new and changed files only). */
  ARCHIVE_CACHE_DIR: env.string('.sluice/archive-cache'),
};

/** The variables of `sluice archive compact` (the archive-compact CronJob). */
export const archiveMaintenanceShape = {
  ...storageShape,
  ...kafkaEnvShape,
  DATABASE_URL: env.url('postgres://postgres:postgres@127.0.0.1:54329/sluice'),
  ARCHIVE_INPUT_TOPIC: archiverEnvShape.ARCHIVE_INPUT_TOPIC,
  ARCHIVE_CONSUMER_GROUP: archiverEnvShape.ARCHIVE_CONSUMER_GROUP,
  /** An hour is closed, and its small files merged, this long after it ended. */
  ARCHIVE_COMPACT_MIN_AGE_MS: env.int(2 * 3_600_000, { min: 0 }),
  /** A merged file holds at most this many MB of small files. */
  ARCHIVE_COMPACT_MAX_MB: env.int(256, { min: 1, max: 4_096 }),
};
