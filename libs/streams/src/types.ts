import type { Logger } from '@sluice/runtime';
import type { IHeaders, Kafka } from 'kafkajs';
import type { Registry } from 'prom-client';
import type { StoreTransaction, IndexOf } from './store';

/** The stream runtime's public types: what an application declares (stores, repartition topics) and what its callbacks see. */

export interface StoreDefinition {
  name: string;
  /** The input topic whose partitions the store follows: store partition p belongs to input partition p. */
  inputTopic: string;
  /** Entries expire this long after their last write; unset: never. */
  ttlMs?: number;
  /** Secondary indexes, kept as entries change and rebuilt on restore: see `StoreTransaction.indexedUpTo`. */
  indexes?: Record<string, IndexOf>;
}

/** An internal topic the processor writes to itself, re-keyed, and reads back (as Kafka Streams repartitions). */
export interface RepartitionTopic {
  name: string;
  /** The input topic whose tasks write to it, and whose partition count it takes, so that partition p of both lines up. */
  copartitionedWith: string;
  /** @default 7 days */
  retentionMs?: number;
  /**
   * Event time across the merge: the tasks of `copartitionedWith` publish their progress (the event
   * times they report with `observeEventTime`) to every partition of this topic, and its tasks see the
   * minimum over the sources that are not idle (`watermark()`). A store must follow this topic: it
   * keeps the per-source progress in its changelog.
   */
  watermarks?: boolean;
}

export interface InputRecord {
  topic: string;
  partition: number;
  offset: string;
  timestamp: string;
  key: Buffer | null;
  value: Buffer | null;
  headers: IHeaders;
}

export interface OutputRecord {
  topic: string;
  key: string | Buffer | null;
  value: Buffer | null;
  headers?: IHeaders;
  /** Unset: chosen from the key, as any Kafka client would. */
  partition?: number;
  /**
   * From a flush: the store entry this output reports. With spans recorded, it carries the trace of the
   * last record of the transaction that changed that entry, so a trace goes on through an aggregation.
   */
  causedBy?: { store: string; key: string };
}

export interface ProcessContext {
  readonly record: InputRecord;
  /** The state store `name` of this record's partition, as this transaction sees it. */
  store<V>(name: string): StoreTransaction<V>;
  /** Produces a record in the same transaction as the input's offset. */
  send(output: OutputRecord): void;
  now(): number;
  /** Reports this record's event time: the partition's progress, published to the repartition topics it feeds (with `watermarks`). */
  observeEventTime(ms: number): void;
  /** On a repartition topic with `watermarks`: the merged event time up to this record (undefined until every active source reported). */
  watermark(): number | undefined;
  /**
   * On a repartition topic with `watermarks`: the event time the record's source partition had reached
   * before it, so that it can be judged as its source judged it (the merged time is lower, unless the
   * source was idle).
   */
  sourceEventTime(): number | undefined;
}

/** What a processor may do once per transaction, after its records: emit results of the state it changed. */
export interface FlushContext {
  readonly topic: string;
  readonly partition: number;
  /** The store `name` of this partition as the transaction sees it; `changes` lists what it wrote. */
  store<V>(name: string): StoreTransaction<V>;
  send(output: OutputRecord): void;
  now(): number;
  /** As in ProcessContext: the merged event time after this transaction's records. */
  watermark(): number | undefined;
}

export interface StreamProcessorOptions {
  /** Consumer group, prefix of transactional ids and changelog topics. */
  application: string;
  kafka: Kafka;
  inputTopics: string[];
  stores?: StoreDefinition[];
  /** Created at start with the changelogs; list each one in `inputTopics` too to read it back. */
  repartitionTopics?: RepartitionTopic[];
  /** The business rule: read `ctx.record`, use stores, `send` outputs. Throw a PoisonRecordError to dead-letter the record. */
  process(ctx: ProcessContext): Promise<void> | void;
  /** Called once per transaction after its records, before it commits (at most one emission per commit interval). */
  flush?(ctx: FlushContext): Promise<void> | void;
  logger: Logger;
  metrics: Registry;
  /** Longest wait for new records before a transaction commits what it has. @default 100 */
  commitIntervalMs?: number;
  /** Records per transaction at most. @default 2000 */
  maxBatchSize?: number;
  /** Input bytes (keys and values) per transaction at most; a record larger than this still goes alone. @default 524288 */
  maxBatchBytes?: number;
  /** @default 30000 */
  sessionTimeoutMs?: number;
  /** Partitions processed at the same time. @default 16 */
  concurrency?: number;
  /** Replication factor of changelog topics created at start. @default 1 */
  replicationFactor?: number;
  /** First and largest wait before a record is tried again. @default 100 and 5000 */
  retryBackoffMs?: { initial: number; max: number };
  /**
   * A source partition of a repartition topic with `watermarks` that is caught up and has received
   * nothing for this long announces itself idle: it stops holding the merged event time back until it
   * delivers again. @default 60000
   */
  idleTimeoutMs?: number;
  /** Attempts of a record whose error is of no known kind, before the `onUnknownError` policy. @default 5 */
  maxUnknownRetries?: number;
  /** After those attempts: the record becomes a dead letter (`processing.failed`), or its partition stops. @default 'dead-letter' */
  onUnknownError?: 'dead-letter' | 'stop';
  /**
   * false: at-least-once (outputs acknowledged, then offsets committed; a crash
   * in between repeats records). Only for comparison in benchmarks. @default true
   */
  exactlyOnce?: boolean;
  now?: () => number;
}
