import type { IHeaders } from 'kafkajs';

/** Headers that describe a record's history: they travel from each stage's input to its output. */
export const HISTORY_HEADERS = ['traceparent', 'tracestate', 'dlq.replay.id', 'dlq.replay.count'] as const;

export const DLQ_HEADERS = {
  originalTopic: 'dlq.original.topic',
  originalPartition: 'dlq.original.partition',
  originalOffset: 'dlq.original.offset',
  originalTimestamp: 'dlq.original.timestamp',
  stage: 'dlq.stage',
  errorCode: 'dlq.error.code',
  errorMessage: 'dlq.error.message',
  failedAt: 'dlq.failed.at',
  replayId: 'dlq.replay.id',
  replayCount: 'dlq.replay.count',
} as const;

export function headerText(headers: IHeaders | undefined, name: string): string | undefined {
  const value = headers?.[name];
  if (value === undefined || value === null) return undefined;
  const first = Array.isArray(value) ? value[0] : value;
  return first === undefined ? undefined : first.toString();
}

/** The history headers of an input record, to put on what it produces. */
export function historyHeaders(input: IHeaders | undefined): IHeaders {
  const out: IHeaders = {};
  for (const name of HISTORY_HEADERS) {
    const value = headerText(input, name);
    if (value !== undefined) out[name] = value;
  }
  return out;
}

export interface DeadLetterCause {
  topic: string;
  partition: number;
  offset: string;
  timestamp: string;
  stage: string;
  code: string;
  message: string;
  failedAt: Date;
}

/** The original headers untouched, plus the dead-letter headers of the design. */
export function deadLetterHeaders(original: IHeaders | undefined, cause: DeadLetterCause): IHeaders {
  return {
    ...(original ?? {}),
    [DLQ_HEADERS.originalTopic]: cause.topic,
    [DLQ_HEADERS.originalPartition]: String(cause.partition),
    [DLQ_HEADERS.originalOffset]: cause.offset,
    [DLQ_HEADERS.originalTimestamp]: cause.timestamp,
    [DLQ_HEADERS.stage]: cause.stage,
    [DLQ_HEADERS.errorCode]: cause.code,
    // Bounded: a header is not the place for a stack trace.
    [DLQ_HEADERS.errorMessage]: cause.message.slice(0, 1000),
    [DLQ_HEADERS.failedAt]: cause.failedAt.toISOString(),
  };
}
