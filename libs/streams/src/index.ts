export { classifyFailure, errorCode, PoisonRecordError, RetryableError, STREAM_ERROR_CODES, type FailureKind } from './errors';
export { followTopic, type Follower, type FollowOptions } from './follow';
export { DLQ_HEADERS, deadLetterHeaders, headerText, HISTORY_HEADERS, historyHeaders, type DeadLetterCause } from './headers';
export { streamMetrics, type StreamMetrics } from './metrics';
export { StreamProcessor, type FlushContext, type InputRecord, type OutputRecord, type ProcessContext, type RepartitionTopic, type StoreDefinition, type StreamProcessorOptions } from './processor';
export { decodeEntry, encodeEntry, PartitionStore, StoreTransaction, type ChangelogRecord } from './store';
export { GlobalTable } from './table';
export { PostgresSink, type PostgresSinkOptions, type SinkBatch } from './pg-sink';
export { decodeOrDeadLetter, streamEnvShape, streamTuning, type StreamEnv } from './config';
