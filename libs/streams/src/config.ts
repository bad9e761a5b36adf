import { DecodeError, type Decoder } from '@sluice/contracts';
import { env } from '@sluice/runtime';
import { PoisonRecordError } from './errors';
import type { StreamProcessor, StreamProcessorOptions } from './processor';

/** Variables typed through the runtime, so services infer them like their own variables. */
type IntVariable = ReturnType<typeof env.int>;
const UNKNOWN_ERROR_POLICIES = ['dead-letter', 'stop'] as const;
type PolicyVariable = ReturnType<typeof env.enum<typeof UNKNOWN_ERROR_POLICIES>>;

/** Environment variables every stream service takes for its processor. */
export const streamEnvShape: { [K in Exclude<keyof StreamEnv, 'STREAM_ON_UNKNOWN_ERROR'>]: IntVariable } & { STREAM_ON_UNKNOWN_ERROR: PolicyVariable } = {
  STREAM_COMMIT_INTERVAL_MS: env.int(100, { min: 1, max: 60_000 }),
  /**
   * Records per transaction at most. Each transaction costs the same round trips to the coordinator however many
   * records it holds: measured (`pnpm bench guarantees`), 2,000 against 500 made the enricher 1.4× and the
   * aggregator 2.2× faster under load; a stage that is not loaded commits what it has every commit interval anyway.
   */
  STREAM_MAX_BATCH_SIZE: env.int(2_000, { min: 1, max: 100_000 }),
  /**
   * Input bytes (keys and values) per transaction at most, whatever the record count: a transaction's outputs to one
   * partition go out as one record batch, which the broker refuses past its message.max.bytes (1 MiB by default).
   */
  STREAM_MAX_BATCH_BYTES: env.int(512 * 1024, { min: 1_024, max: 64 * 1024 * 1024 }),
  STREAM_SESSION_TIMEOUT_MS: env.int(30_000, { min: 3_000, max: 300_000 }),
  /**
   * Partitions processed at once per instance. Each partition's transaction waits on the broker most of its
   * time, so overlapping them is what makes a stage fast; batches already fetched cost no more memory for it.
   */
  STREAM_CONCURRENCY: env.int(16, { min: 1, max: 64 }),
  STREAM_REPLICATION_FACTOR: env.int(1, { min: 1, max: 10 }),
  /** Attempts of a record failing with an error of no known kind (a bug) before STREAM_ON_UNKNOWN_ERROR applies. */
  STREAM_MAX_UNKNOWN_RETRIES: env.int(5, { min: 0, max: 1_000 }),
  /** `dead-letter`: such a record goes to `<topic>.dlq` as `processing.failed`; `stop`: its partition stops (the others flow). */
  STREAM_ON_UNKNOWN_ERROR: env.enum(UNKNOWN_ERROR_POLICIES, 'dead-letter'),
  /** /readyz fails, naming them, while a partition has not committed for this long although it has records. */
  STREAM_STALL_READY_MS: env.int(60_000, { min: 1_000, max: 3_600_000 }),
};

export interface StreamEnv {
  STREAM_COMMIT_INTERVAL_MS: number;
  STREAM_MAX_BATCH_SIZE: number;
  STREAM_MAX_BATCH_BYTES: number;
  STREAM_SESSION_TIMEOUT_MS: number;
  STREAM_CONCURRENCY: number;
  STREAM_REPLICATION_FACTOR: number;
  STREAM_MAX_UNKNOWN_RETRIES: number;
  STREAM_ON_UNKNOWN_ERROR: 'dead-letter' | 'stop';
  STREAM_STALL_READY_MS: number;
}

export function streamTuning(
  config: StreamEnv,
): Pick<StreamProcessorOptions, 'commitIntervalMs' | 'maxBatchSize' | 'maxBatchBytes' | 'sessionTimeoutMs' | 'concurrency' | 'replicationFactor' | 'maxUnknownRetries' | 'onUnknownError'> {
  return {
    commitIntervalMs: config.STREAM_COMMIT_INTERVAL_MS,
    maxBatchSize: config.STREAM_MAX_BATCH_SIZE,
    maxBatchBytes: config.STREAM_MAX_BATCH_BYTES,
    sessionTimeoutMs: config.STREAM_SESSION_TIMEOUT_MS,
    concurrency: config.STREAM_CONCURRENCY,
    replicationFactor: config.STREAM_REPLICATION_FACTOR,
    maxUnknownRetries: config.STREAM_MAX_UNKNOWN_RETRIES,
    onUnknownError: config.STREAM_ON_UNKNOWN_ERROR,
  };
}

/**
 * Runs a processor inside a service: /readyz names every partition stalled longer than
 * STREAM_STALL_READY_MS (or stopped), the processor closes at shutdown, and it starts.
 */
export async function runProcessor(
  processor: StreamProcessor,
  service: { config: StreamEnv; http: { addReadinessCheck(name: string, check: () => Promise<void> | void): void }; lifecycle: { onShutdown(name: string, hook: () => Promise<void>): void } },
): Promise<void> {
  service.http.addReadinessCheck('partitions', () => {
    const stalled = processor.stalled(service.config.STREAM_STALL_READY_MS);
    if (stalled.length > 0) {
      throw new Error(`stalled: ${stalled.map((s) => `${s.topic}-${s.partition} for ${Math.round(s.seconds)} s (${s.reason.slice(0, 200)})`).join('; ')}`);
    }
  });
  service.lifecycle.onShutdown('stream processor', () => processor.close());
  await processor.start();
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
