import { COMPATIBILITY_LEVELS } from '@sluice/contracts';
import { env } from '@sluice/runtime';

/** The registry's own environment variables. */
export const registryEnvShape = {
  DATABASE_URL: env.url('postgres://postgres:postgres@127.0.0.1:54329/sluice'),
  /** Postgres schema holding the registry's tables; registries sharing a database need their own. */
  REGISTRY_DB_SCHEMA: env.string('schema_registry'),
  REGISTRY_DEFAULT_COMPATIBILITY: env.enum(COMPATIBILITY_LEVELS, 'BACKWARD'),
  REGISTRY_MAX_BODY_BYTES: env.int(1_048_576, { min: 1024 }),
  REGISTRY_DB_POOL_SIZE: env.int(10, { min: 1, max: 200 }),
};
