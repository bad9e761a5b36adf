/**
 * How the stream runtime treats a failure. Processors throw these (or any
 * error with `canRetry` and `code`); the runtime asks the flag, never the text.
 */
export const STREAM_ERROR_CODES = {
  /** Something the record needs is not there yet (reference data, a registry): try again later. */
  notYetAvailable: 'stream.not_yet_available',
  /** A record that can never be processed: it goes to the dead-letter topic. */
  poison: 'stream.poison',
  /** Another instance owns the partition now (fenced producer, epoch errors). */
  fenced: 'stream.fenced',
  /** An error of no known kind (a bug in a processor) that repeated for the record past the retry limit. */
  processingFailed: 'processing.failed',
} as const;

/** A failure worth trying again: the transaction is aborted and the record is read again after a backoff. */
export class RetryableError extends Error {
  readonly canRetry = true;
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'RetryableError';
  }
}

/** A record that can never be processed; `code` becomes its `dlq.error.code` header. */
export class PoisonRecordError extends Error {
  readonly canRetry = false;
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'PoisonRecordError';
  }
}

/**
 * `retry`: known to be transient (marked `canRetry`, or a Kafka client error): tried again without limit,
 * visibly. `dead-letter`: known poison. `fenced`: the producer lost its partition. `unknown`: anything
 * else, tried a bounded number of times, then dead-lettered as `processing.failed` (or the partition stops).
 */
export type FailureKind = 'retry' | 'dead-letter' | 'fenced' | 'unknown';

// Errors of the broker and of kafkajs that mean this producer can no longer commit for its partition.
const FENCING_TYPES = new Set([
  'INVALID_PRODUCER_EPOCH',
  'PRODUCER_FENCED',
  'INVALID_PRODUCER_ID_MAPPING',
  'INVALID_TXN_STATE',
  'TRANSACTIONAL_ID_AUTHORIZATION_FAILED',
  'CONCURRENT_TRANSACTIONS',
  'UNKNOWN_PRODUCER_ID',
  'OUT_OF_ORDER_SEQUENCE_NUMBER',
]);

/**
 * Decides what a failure means for the record being processed:
 * `dead-letter` for a record that can never be processed, `fenced` for a
 * producer that lost its partition or is stuck (recreate it and reprocess from
 * the committed offsets), `retry` for what is known to pass later, `unknown` for the rest.
 */
export function classifyFailure(err: unknown): FailureKind {
  const e = err as { canRetry?: unknown; type?: unknown; name?: unknown; message?: unknown };
  if (typeof e?.type === 'string' && FENCING_TYPES.has(e.type)) return 'fenced';
  // kafkajs' transaction state machine refuses a call the producer's state no longer allows (after a failed commit
  // or abort) with a bare KafkaJSNonRetriableError: no protocol type, and its subclasses (retries exhausted, ...) carry
  // their own names. The producer is unusable: the same as fenced.
  if (e?.name === 'KafkaJSNonRetriableError') return 'fenced';
  if (e?.canRetry === false) return 'dead-letter';
  if (e?.canRetry === true) return 'retry';
  // kafkajs marks its own errors by name: a broker or the network, never the record.
  if (typeof e?.name === 'string' && e.name.startsWith('KafkaJS')) return 'retry';
  return 'unknown';
}

export function errorCode(err: unknown): string {
  const code = (err as { code?: unknown })?.code;
  return typeof code === 'string' ? code : STREAM_ERROR_CODES.poison;
}
