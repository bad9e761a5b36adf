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
  /** …or once the roll's first record has waited this long: data is queryable within this time. */
  ARCHIVE_ROLL_INTERVAL_MS: env.int(60_000, { min: 100, max: 86_400_000 }),
  ARCHIVE_SESSION_TIMEOUT_MS: env.int(30_000, { min: 3_000, max: 300_000 }),
  /** Longest pause between attempts while the storage fails. */
  ARCHIVE_RETRY_MAX_MS: env.int(30_000, { min: 100 }),
  /** Path-style S3 addressing (http://host/bucket/key), as S3Proxy and MinIO want. */
  ARCHIVE_S3_FORCE_PATH_STYLE: env.bool(true),
  AWS_REGION: env.string('us-east-1'),
};
