import { DecodeError, type Decoder } from '@sluice/contracts';
import { env } from '@sluice/runtime';
import { PoisonRecordError } from './errors';
import type { StreamProcessorOptions } from './processor';

/** A whole-number variable, typed through the runtime so services infer it like their own variables. */
type IntVariable = ReturnType<typeof env.int>;

/** Environment variables every stream service takes for its processor. */
export const streamEnvShape: Record<keyof StreamEnv, IntVariable> = {
  STREAM_COMMIT_INTERVAL_MS: env.int(100, { min: 1, max: 60_000 }),
  STREAM_MAX_BATCH_SIZE: env.int(500, { min: 1, max: 100_000 }),
  STREAM_SESSION_TIMEOUT_MS: env.int(30_000, { min: 3_000, max: 300_000 }),
  STREAM_CONCURRENCY: env.int(2, { min: 1, max: 64 }),
  STREAM_REPLICATION_FACTOR: env.int(1, { min: 1, max: 10 }),
};

export interface StreamEnv {
  STREAM_COMMIT_INTERVAL_MS: number;
  STREAM_MAX_BATCH_SIZE: number;
  STREAM_SESSION_TIMEOUT_MS: number;
  STREAM_CONCURRENCY: number;
  STREAM_REPLICATION_FACTOR: number;
}

export function streamTuning(config: StreamEnv): Pick<StreamProcessorOptions, 'commitIntervalMs' | 'maxBatchSize' | 'sessionTimeoutMs' | 'concurrency' | 'replicationFactor'> {
  return {
    commitIntervalMs: config.STREAM_COMMIT_INTERVAL_MS,
    maxBatchSize: config.STREAM_MAX_BATCH_SIZE,
    sessionTimeoutMs: config.STREAM_SESSION_TIMEOUT_MS,
    concurrency: config.STREAM_CONCURRENCY,
    replicationFactor: config.STREAM_REPLICATION_FACTOR,
  };
}

/** Decodes a record's value; bytes that can never decode make it a poison record (a dead letter), a registry outage a retry. */
export async function decodeOrDeadLetter<T>(decoder: Decoder<T>, value: Buffer | null): Promise<T> {
  try {
    return await decoder.decode(value);
  } catch (err) {
    if (err instanceof DecodeError && !err.canRetry) throw new PoisonRecordError(err.code, err.message);
    throw err;
  }
}
