import { injectTraceHeaders, recordAttributes, spansRecorded, withRecordSpan } from '@sluice/runtime';
import type { IHeaders, KafkaMessage } from 'kafkajs';
import { changelogTopicOf, RUNTIME_KEYS } from './changelog';
import { classifyFailure, errorCode, STREAM_ERROR_CODES } from './errors';
import { deadLetterHeaders, headerText, historyHeaders } from './headers';
import { StoreTransaction } from './store';
import type { TaskState } from './task';
import type { FlushContext, InputRecord, OutputRecord, ProcessContext, RepartitionTopic, StoreDefinition } from './types';
import { applySourceRecord, applyWatermark, decodeWatermark, encodeMergedTime, encodeWatermark, SOURCE_HEADER, SOURCE_TIME_HEADER, WATERMARK_HEADER, type MergedTime } from './watermarks';

/**
 * The transaction builder: records in, everything one transaction writes out (outputs, dead letters, changelog
 * records, the runtime's progress), without Kafka. It runs the application's `process` and `flush`; it changes
 * nothing in the task but its failure bookkeeping (`unknown`, `isolateUntil`, `condemned`, `stoppedAt`); the
 * caller applies the plan's state once the transaction commits.
 */

/** What the builder needs to know of the application. */
export interface TransactionRules {
  application: string;
  process: (ctx: ProcessContext) => Promise<void> | void;
  flush?: (ctx: FlushContext) => Promise<void> | void;
  stores: StoreDefinition[];
  /** The watermarked repartition topics the task's input feeds. */
  feeds: RepartitionTopic[];
  /** Partition counts of the repartition topics (a watermark goes to each partition). */
  partitionCounts: ReadonlyMap<string, number>;
  maxUnknownRetries: number;
  onUnknownError: 'dead-letter' | 'stop';
  /** At-least-once records no progress in the changelog. */
  exactlyOnce: boolean;
  now: () => number;
}

export type RetryReason = 'transient' | 'unknown' | 'flush';

/** Nothing to commit: the records from the first on must be tried again. */
export interface NothingToCommit {
  kind: 'retry';
  count: 0;
  error: unknown;
  reason: RetryReason;
}

/** One transaction's content: the first `count` records of the chunk, done. */
export interface TransactionPlan {
  kind: 'commit';
  count: number;
  /** The input's next offset after the records done. */
  nextOffset: string;
  /** Everything to write: outputs and dead letters, then changelog and runtime records. */
  records: OutputRecord[];
  /** What the application produced, dead letters and published watermarks included (for metrics). */
  outputs: OutputRecord[];
  /** Codes of the dead letters among `outputs`. */
  deadLetters: string[];
  /** The store changes, to apply once committed. */
  storeChanges: Map<string, StoreTransaction<unknown>>;
  /** The merged event time after these records, when it changed. */
  merged?: MergedTime;
  /** A source task's event time published with these records, to remember once committed. */
  published?: number;
  /** The record after the last one done could not be processed now: try it again after this commit. */
  retry?: { error: unknown; reason: RetryReason };
}

const maxTime = (a: number | undefined, b: number | undefined): number | undefined => (a === undefined ? b : b === undefined ? a : Math.max(a, b));
const messageOf = (err: unknown) => (err instanceof Error ? err.message : String(err));

/**
 * Where the transaction that starts at `messages[start]` ends (exclusive): after `maxRecords` records, or before the
 * record that would take its input bytes (keys and values) past `maxBytes`. Never empty: a record larger than
 * `maxBytes` goes alone.
 */
export function chunkEnd(messages: readonly Pick<KafkaMessage, 'key' | 'value'>[], start: number, maxRecords: number, maxBytes: number): number {
  const last = Math.min(messages.length, start + maxRecords);
  let bytes = 0;
  for (let i = start; i < last; i++) {
    const m = messages[i]!;
    bytes += (m.key?.length ?? 0) + (m.value?.length ?? 0);
    if (bytes > maxBytes && i > start) return i;
  }
  return last;
}

export function inputRecord(topic: string, partition: number, message: KafkaMessage): InputRecord {
  return { topic, partition, offset: message.offset, timestamp: message.timestamp, key: message.key ?? null, value: message.value ?? null, headers: message.headers ?? {} };
}

/** The dead letter of `record`: its key, value and headers untouched, plus the cause. */
export function deadLetter(stage: string, record: InputRecord, code: string, message: string, now: number): OutputRecord {
  return {
    topic: `${record.topic}.dlq`,
    key: record.key,
    value: record.value,
    headers: deadLetterHeaders(record.headers, { topic: record.topic, partition: record.partition, offset: record.offset, timestamp: record.timestamp, stage, code, message, failedAt: new Date(now) }),
  };
}

/** A source's progress (or its idleness) for every partition of the repartition topics it feeds. */
export function watermarkRecords(feeds: RepartitionTopic[], partitionCounts: ReadonlyMap<string, number>, mark: { source: number; time: number | null; idle: boolean }): OutputRecord[] {
  const value = encodeWatermark(mark);
  return feeds.flatMap((r) => Array.from({ length: partitionCounts.get(r.name) ?? 1 }, (_, partition) => ({ topic: r.name, key: null, value, partition, headers: { [WATERMARK_HEADER]: '1' } })));
}

/** Processes records until one must wait, and returns what the transaction of those before it writes. */
export async function buildTransaction(task: TaskState, chunk: KafkaMessage[], rules: TransactionRules): Promise<TransactionPlan | NothingToCommit> {
  const storeChanges = new Map<string, StoreTransaction<unknown>>();
  // With spans recorded: the trace of the last record that changed each store entry (for `causedBy`).
  const entryTraces = new Map<string, IHeaders>();
  const chunkStore = (name: string): StoreTransaction<unknown> => {
    let txn = storeChanges.get(name);
    if (!txn) {
      const store = task.stores.get(name);
      if (!store) throw new Error(`no store "${name}" for ${task.topic}-${task.partition}`);
      txn = new StoreTransaction(store, rules.now);
      storeChanges.set(name, txn);
    }
    return txn;
  };
  const outputs: OutputRecord[] = [];
  const deadLetters: string[] = [];
  const addDeadLetter = (record: InputRecord, code: string, message: string) => {
    outputs.push(deadLetter(rules.application, record, code, message, rules.now()));
    deadLetters.push(code);
  };
  let count = 0;
  let retry: { error: unknown; reason: 'transient' | 'unknown' } | undefined;
  // Records dead-lettered without being processed (their flush kept failing): a transaction of those
  // alone runs no flush. Any other transaction flushes, watermark records alone included (they close windows).
  let condemnedCount = 0;
  // Event time: what this transaction's records report (a source task), and the merged time (a watermarked task).
  let eventTime: number | undefined;
  let merged = task.merged;
  const watermark = () => merged?.time ?? undefined;
  const fed = new Set(rules.feeds.map((r) => r.name));
  for (const message of chunk) {
    const record = inputRecord(task.topic, task.partition, message);
    if (merged) {
      const mark = headerText(record.headers, WATERMARK_HEADER) !== undefined ? decodeWatermark(record.value) : undefined;
      if (mark) {
        // A source's progress: kept by the runtime, never seen by the processor.
        merged = applyWatermark(merged, mark);
        count += 1;
        continue;
      }
    }
    const condemned = task.condemned?.get(record.offset);
    if (condemned) {
      addDeadLetter(record, condemned.code, condemned.message);
      count += 1;
      condemnedCount += 1;
      continue;
    }
    const recordStores = new Map<string, StoreTransaction<unknown>>();
    const recordOutputs: OutputRecord[] = [];
    let recordTime: number | undefined;
    const source = merged ? headerText(record.headers, SOURCE_HEADER) : undefined;
    const sourceTimeText = merged ? headerText(record.headers, SOURCE_TIME_HEADER) : undefined;
    const sourceTime = sourceTimeText !== undefined && /^-?\d+$/.test(sourceTimeText) ? Number(sourceTimeText) : undefined;
    const ctx: ProcessContext = {
      record,
      store: <V>(name: string) => {
        let txn = recordStores.get(name);
        if (!txn) {
          txn = chunkStore(name).nested();
          recordStores.set(name, txn);
        }
        return txn as StoreTransaction<V>;
      },
      send: (output) => recordOutputs.push(output),
      now: rules.now,
      observeEventTime: (ms) => {
        if (Number.isFinite(ms)) recordTime = recordTime === undefined ? ms : Math.max(recordTime, ms);
      },
      watermark,
      sourceEventTime: () => sourceTime,
    };
    // A source task: its progress before this record, carried by what the record forwards downstream.
    const progressBefore = fed.size > 0 ? maxTime(task.eventTime, eventTime) : undefined;
    try {
      // Each record continues the trace of the request that produced it: with spans recorded, in a span
      // of its own (child of the one that produced the record), whose context its outputs carry on.
      const traceHeaders = await withRecordSpan(`process ${task.topic}`, record.headers, () => ({ ...recordAttributes(task.topic, task.partition, record.offset), 'sluice.stage': rules.application }), async () => {
        await rules.process(ctx);
        return spansRecorded() ? (injectTraceHeaders({}) as IHeaders) : undefined;
      });
      for (const [name, txn] of recordStores) {
        if (traceHeaders) for (const key of txn.changes.keys()) entryTraces.set(`${name}\u0000${key}`, traceHeaders);
        chunkStore(name).merge(txn);
      }
      if (recordTime !== undefined) eventTime = eventTime === undefined ? recordTime : Math.max(eventTime, recordTime);
      // The record's history (trace context, replay id and count) travels on to everything it produces.
      const history = historyHeaders(record.headers);
      for (const o of recordOutputs) {
        const headers: IHeaders = { ...history, ...(o.headers ?? {}), ...traceHeaders };
        if (fed.has(o.topic)) {
          headers[SOURCE_HEADER] = String(task.partition);
          if (progressBefore !== undefined) headers[SOURCE_TIME_HEADER] = String(progressBefore);
        }
        outputs.push({ ...o, headers });
      }
      count += 1;
    } catch (err) {
      const kind = classifyFailure(err);
      let code = errorCode(err);
      if (kind === 'unknown') {
        // A bug, most likely: a bounded number of attempts, then the policy.
        const attempts = task.unknown?.offset === record.offset ? task.unknown.attempts + 1 : 1;
        task.unknown = { offset: record.offset, attempts };
        if (attempts <= rules.maxUnknownRetries) {
          retry = { error: err, reason: 'unknown' };
          break;
        }
        if (rules.onUnknownError === 'stop') {
          task.stoppedAt = { offset: record.offset, message: messageOf(err) };
          retry = { error: err, reason: 'unknown' };
          break;
        }
        code = STREAM_ERROR_CODES.processingFailed;
      } else if (kind !== 'dead-letter') {
        retry = { error: err, reason: 'transient' };
        break;
      }
      addDeadLetter(record, code, messageOf(err));
      count += 1;
    }
    // A record from a source that was idle: it delivers again, and holds time back from now on.
    if (merged && source !== undefined && /^\d+$/.test(source)) merged = applySourceRecord(merged, Number(source));
  }
  if (count === 0) return { kind: 'retry', count: 0, error: retry?.error, reason: retry?.reason ?? 'transient' };
  if (rules.flush && condemnedCount < count) {
    try {
      await rules.flush({
        topic: task.topic,
        partition: task.partition,
        store: <V>(name: string) => chunkStore(name) as StoreTransaction<V>,
        send: ({ causedBy, ...output }) => {
          const trace = causedBy && entryTraces.get(`${causedBy.store}\u0000${causedBy.key}`);
          outputs.push(trace ? { ...output, headers: { ...output.headers, ...trace } } : output);
        },
        now: rules.now,
        watermark,
      });
    } catch (err) {
      return flushFailed(task, chunk.slice(0, count), err, rules);
    }
  }
  expireEntries(task, chunkStore, rules);
  const published = publishedTime(task, eventTime, rules.feeds);
  if (published !== undefined) outputs.push(...watermarkRecords(rules.feeds, rules.partitionCounts, { source: task.partition, time: published, idle: false }));
  const records = [...outputs];
  for (const [name, txn] of storeChanges) {
    const topic = changelogTopicOf(rules.application, name);
    for (const change of txn.changelog()) records.push({ topic, key: change.key, value: change.value, partition: task.partition });
  }
  const nextOffset = (BigInt(chunk[count - 1]!.offset) + 1n).toString();
  const mergedChanged = merged !== task.merged ? merged : undefined;
  const progressStore = rules.stores.find((store) => store.inputTopic === task.topic);
  if (progressStore) {
    const topic = changelogTopicOf(rules.application, progressStore.name);
    const runtimeRecord = (key: string, value: Buffer) => records.push({ topic, key, value, partition: task.partition });
    if (rules.exactlyOnce) runtimeRecord(RUNTIME_KEYS.progress, Buffer.from(nextOffset));
    if (mergedChanged) runtimeRecord(RUNTIME_KEYS.watermarks, encodeMergedTime(mergedChanged));
    if (published !== undefined) runtimeRecord(RUNTIME_KEYS.eventTime, Buffer.from(String(published)));
  }
  return {
    kind: 'commit',
    count,
    nextOffset,
    records,
    outputs,
    deadLetters,
    storeChanges,
    ...(mergedChanged ? { merged: mergedChanged } : {}),
    ...(published !== undefined ? { published } : {}),
    ...(retry ? { retry } : {}),
  };
}

/**
 * A source task of watermarked repartition topics: its event time to publish with this transaction, when it moved
 * (or the source was announced idle and delivers again).
 */
function publishedTime(task: TaskState, observed: number | undefined, feeds: RepartitionTopic[]): number | undefined {
  if (feeds.length === 0) return undefined;
  const time = maxTime(task.eventTime, observed);
  if (time === undefined) return undefined;
  if (task.published !== undefined && time <= task.published && !task.idleAnnounced) return undefined;
  return time;
}

/**
 * A flush failed. Transient: the records are tried again. Otherwise the failure is attributed to the
 * records it came from: they are tried one per transaction, and a record whose own flush keeps failing
 * (the bounded attempts of an unknown error; at once for a poison error) becomes a dead letter without
 * being processed, or stops the partition under the `stop` policy.
 */
function flushFailed(task: TaskState, records: KafkaMessage[], err: unknown, rules: TransactionRules): NothingToCommit {
  const kind = classifyFailure(err);
  if (kind === 'retry' || kind === 'fenced') return { kind: 'retry', count: 0, error: err, reason: 'transient' };
  if (records.length > 1) {
    task.isolateUntil = BigInt(records.at(-1)!.offset) + 1n;
    return { kind: 'retry', count: 0, error: err, reason: 'flush' };
  }
  const offset = records[0]!.offset;
  const attempts = task.unknown?.offset === offset ? task.unknown.attempts + 1 : 1;
  task.unknown = { offset, attempts };
  if (kind === 'unknown' && attempts <= rules.maxUnknownRetries) return { kind: 'retry', count: 0, error: err, reason: 'flush' };
  if (kind === 'unknown' && rules.onUnknownError === 'stop') task.stoppedAt = { offset, message: messageOf(err) };
  else {
    task.condemned ??= new Map();
    task.condemned.set(offset, { code: kind === 'dead-letter' ? errorCode(err) : STREAM_ERROR_CODES.processingFailed, message: messageOf(err) });
  }
  return { kind: 'retry', count: 0, error: err, reason: 'flush' };
}

/** Deletes a bounded number of expired entries per transaction, through the changelog. */
function expireEntries(task: TaskState, chunkStore: (name: string) => StoreTransaction<unknown>, rules: TransactionRules): void {
  const now = rules.now();
  for (const definition of rules.stores) {
    if (definition.ttlMs === undefined || definition.inputTopic !== task.topic) continue;
    const store = task.stores.get(definition.name);
    if (!store) continue;
    const expired = store.expired(now, 500);
    if (expired.length === 0) continue;
    const txn = chunkStore(definition.name);
    for (const key of expired) if (!txn.changes.has(key)) txn.delete(key);
  }
}
