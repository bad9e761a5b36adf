import type { Logger } from '@sluice/runtime';
import { backoffMs, injectTraceHeaders, recordAttributes, spansRecorded, withRecordSpan } from '@sluice/runtime';
import { provisionTopics } from '@sluice/contracts';
import { changelogTopicSpec, resumeOffset } from './changelog';
import { Partitioners, type Consumer, type EachBatchPayload, type IHeaders, type Kafka, type KafkaMessage, type Message, type Producer, type TopicMessages } from 'kafkajs';
import type { Registry } from 'prom-client';
import { classifyFailure, errorCode, STREAM_ERROR_CODES } from './errors';
import { deadLetterHeaders, headerText, historyHeaders } from './headers';
import { streamMetrics, type StreamMetrics } from './metrics';
import { PartitionStore, StoreTransaction, type IndexOf } from './store';
import { followTopic } from './follow';
import { uninstrumentedConsumer, uninstrumentedProducer } from './traced';
import {
  applySourceRecord,
  applyWatermark,
  decodeMergedTime,
  decodeWatermark,
  encodeMergedTime,
  encodeWatermark,
  heldBack,
  initialMergedTime,
  SOURCE_HEADER,
  SOURCE_TIME_HEADER,
  WATERMARK_HEADER,
  withSources,
  type MergedTime,
} from './watermarks';

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
  /** Records per transaction at most. @default 500 */
  maxBatchSize?: number;
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

interface PartitionTask {
  topic: string;
  partition: number;
  producer?: Producer;
  ready?: Promise<void>;
  stores: Map<string, PartitionStore<unknown>>;
  /** The group's committed offset, read after this task's producer fenced any previous owner. */
  committed?: bigint;
  /** The next offset recorded in the changelog by this partition's last committed transaction. */
  progress?: bigint;
  /** Where the consumer must go back to before anything else: the changelog's progress, behind the group's offset. */
  rewindTo?: bigint;
  /** Set when this task's producer was fenced: wait for a rebalance before taking the partition back. */
  fencedAt?: number;
  failures: number;
  /** The batch being worked on: a partition's batches run one after the other, never side by side. */
  working?: Promise<void>;
  /** A source of watermarked repartition topics: the highest event time committed, the last one published. */
  eventTime?: number;
  published?: number;
  /** Announced idle downstream; the next transaction with records announces it active again. */
  idleAnnounced?: boolean;
  /** When records were last delivered to this partition (or it was assigned). */
  lastRecordAt: number;
  /** On a watermarked repartition topic: the progress of every source, as committed. */
  merged?: MergedTime;
  /** Since when the partition has not committed while it has records to process (failures in a row). */
  stalledSince?: number;
  lastFailure?: { kind: string; message: string };
  /** Attempts so far of the record at `offset` that failed with an error of no known kind. */
  unknown?: { offset: string; attempts: number };
  /** One record per transaction until this offset commits: a flush failed, so its records are tried alone. */
  isolateUntil?: bigint;
  /** Records to dead-letter without processing them (their flush kept failing), by offset: code and message. */
  condemned?: Map<string, { code: string; message: string }>;
  /** Stopped by the `stop` policy: the record it stopped at and why. */
  stoppedAt?: { offset: string; message: string };
}

type ChunkOutcome =
  | { kind: 'committed'; count: number }
  /** Nothing was sent for the records from `count` on (a processor asked to wait, or failed): try them again. */
  | { kind: 'retry'; count: number; error: unknown; reason: 'transient' | 'unknown' | 'flush' }
  /**
   * A send, an offset commit or a commit failed: the transaction's outcome or the producer's
   * sequence numbers are unknown. The producer is dropped and the partition prepared again at once
   * (a new InitProducerId ends or completes that transaction; state and offsets are read back).
   */
  | { kind: 'reset'; error: unknown; step: 'begin' | 'send' | 'offsets' | 'commit' }
  /** Another owner fenced this producer: wait for the rebalance before taking the partition back. */
  | { kind: 'fenced'; error: unknown };

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * The changelog key under which each transaction also records its input's next offset (in the
 * first store that follows that input; no store ever holds it). Written in the same transaction
 * as the outputs, it cannot disagree with them; an offset fetch without KIP-447's require_stable
 * returns the previous offset while a committed transaction's offsets are still being written.
 */
const PROGRESS_KEY = '\u0000sluice.next-offset';
/** The changelog key (beside PROGRESS_KEY, in the same store) of a watermarked repartition task's per-source progress. */
const WATERMARKS_KEY = '\u0000sluice.watermarks';
/** The changelog key (beside PROGRESS_KEY) of a source task's event time: restored, a restart judges records as before. */
const EVENT_TIME_KEY = '\u0000sluice.event-time';

const maxTime = (a: number | undefined, b: number | undefined): number | undefined => (a === undefined ? b : b === undefined ? a : Math.max(a, b));

/** A state restore that reads nothing for this long has stalled: it is abandoned and started again. */
const RESTORE_STALL_MS = 30_000;

/**
 * Exactly-once consume-transform-produce on kafkajs, as Kafka Streams did it
 * before KIP-447 ("EOS v1"): one transactional producer per input partition
 * (`transactionalId = <application>-<topic>-<partition>`), created when the
 * partition is assigned, so that the new owner's InitProducerId fences a
 * zombie. Each transaction holds the outputs, the changelog records of the
 * stores and the input offsets; state changes become visible only after commit.
 */
export class StreamProcessor {
  private readonly tasks = new Map<string, PartitionTask>();
  private readonly metrics: StreamMetrics;
  private readonly now: () => number;
  private readonly commitIntervalMs: number;
  private readonly maxBatchSize: number;
  private readonly sessionTimeoutMs: number;
  private readonly backoff: { initial: number; max: number };
  private consumer: Consumer | undefined;
  private stopping = false;
  private closing: Promise<void> | undefined;
  /** Partition counts of the input and internal topics, read at start. */
  private readonly partitionCounts = new Map<string, number>();
  private readonly idleTimeoutMs: number;
  private readonly maxUnknownRetries: number;
  private idleTimer: NodeJS.Timeout | undefined;
  private stallTimer: NodeJS.Timeout | undefined;
  private offsetsAdmin: ReturnType<Kafka['admin']> | undefined;

  constructor(private readonly options: StreamProcessorOptions) {
    this.metrics = streamMetrics(options.metrics);
    this.now = options.now ?? Date.now;
    this.commitIntervalMs = options.commitIntervalMs ?? 100;
    this.maxBatchSize = options.maxBatchSize ?? 500;
    this.sessionTimeoutMs = options.sessionTimeoutMs ?? 30_000;
    this.backoff = options.retryBackoffMs ?? { initial: 100, max: 5_000 };
    this.idleTimeoutMs = options.idleTimeoutMs ?? 60_000;
    this.maxUnknownRetries = options.maxUnknownRetries ?? 5;
    for (const topic of this.watermarked()) {
      if (!(options.stores ?? []).some((store) => store.inputTopic === topic.name)) {
        throw new Error(`repartition topic ${topic.name} has watermarks but no store follows it to keep its sources' progress`);
      }
    }
  }

  private watermarked(): RepartitionTopic[] {
    return (this.options.repartitionTopics ?? []).filter((topic) => topic.watermarks);
  }

  /** The watermarked repartition topics a task of `topic` feeds. */
  private fedBy(topic: string): RepartitionTopic[] {
    return this.watermarked().filter((r) => r.copartitionedWith === topic);
  }

  /** Merged event time of every assigned watermarked partition: how far it is held back, and by which source. */
  watermarks(): { topic: string; partition: number; time: number | null; lagMs: number; heldBy: number | undefined; idleSources: number }[] {
    const out = [];
    for (const task of this.tasks.values()) if (task.merged) out.push({ topic: task.topic, partition: task.partition, time: task.merged.time, ...heldBack(task.merged) });
    return out;
  }

  /** Assigned partitions that have not committed for at least `minMs` although they have records, and why; stopped ones always. */
  stalled(minMs: number): { topic: string; partition: number; seconds: number; reason: string }[] {
    const now = this.now();
    const out = [];
    for (const task of this.tasks.values()) {
      const since = task.stalledSince;
      if (task.stoppedAt) out.push({ topic: task.topic, partition: task.partition, seconds: since === undefined ? 0 : (now - since) / 1000, reason: `stopped at offset ${task.stoppedAt.offset}: ${task.stoppedAt.message}` });
      else if (since !== undefined && now - since >= minMs) {
        out.push({ topic: task.topic, partition: task.partition, seconds: (now - since) / 1000, reason: task.lastFailure ? `${task.lastFailure.kind}: ${task.lastFailure.message}` : 'not ready' });
      }
    }
    return out;
  }

  /** Entries in index `index` of the stores `name` of the assigned partitions. */
  storeIndexSize(name: string, index: string): number {
    let size = 0;
    for (const task of this.tasks.values()) size += task.stores.get(name)?.indexSize(index) ?? 0;
    return size;
  }

  get assignedPartitions(): number {
    return this.tasks.size;
  }

  /** Total entries in the stores of every assigned partition. */
  storeSize(name: string): number {
    let size = 0;
    for (const task of this.tasks.values()) size += task.stores.get(name)?.size ?? 0;
    return size;
  }

  /** Every value in the stores `name` of the assigned partitions, for gauges. */
  *storeValues(name: string): IterableIterator<unknown> {
    for (const task of this.tasks.values()) {
      const store = task.stores.get(name);
      if (store) yield* store.values();
    }
  }

  async start(): Promise<void> {
    await this.ensureInternalTopics();
    const consumer = uninstrumentedConsumer(this.options.kafka)({
      groupId: this.options.application,
      readUncommitted: false,
      sessionTimeout: this.sessionTimeoutMs,
      heartbeatInterval: Math.max(500, Math.floor(this.sessionTimeoutMs / 10)),
      maxWaitTimeInMs: this.commitIntervalMs,
      allowAutoTopicCreation: false,
    });
    this.consumer = consumer;
    consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => this.onAssignment(payload.memberAssignment));
    await consumer.connect();
    for (const topic of this.options.inputTopics) await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: this.options.concurrency ?? 16,
      eachBatch: (payload) => this.onBatch(payload),
    });
    this.stallTimer = setInterval(() => {
      const now = this.now();
      for (const task of this.tasks.values()) {
        this.metrics.stalledSeconds.set({ topic: task.topic, partition: String(task.partition) }, task.stalledSince === undefined ? 0 : (now - task.stalledSince) / 1000);
      }
    }, 1_000);
    this.stallTimer.unref();
    if (this.watermarked().length > 0) {
      this.idleTimer = setInterval(() => void this.announceIdleSources(), Math.max(200, Math.min(5_000, Math.floor(this.idleTimeoutMs / 4))));
      this.idleTimer.unref();
    }
  }

  /** Stops fetching, lets the open transactions finish or abort, leaves the group, drops the producers. Runs once. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.stopping = true;
      clearInterval(this.idleTimer);
      clearInterval(this.stallTimer);
      await this.consumer?.disconnect();
      await Promise.all([...this.tasks.values()].map((task) => task.working ?? Promise.resolve()));
      await Promise.all([...this.tasks.values()].map((task) => this.dropTask(task)));
      await this.offsetsAdmin?.disconnect().catch(() => undefined);
    })();
    return this.closing;
  }

  /** Creates (or verifies) the changelog of every store and the repartition topics, sized like their input topics. */
  private async ensureInternalTopics(): Promise<void> {
    const stores = this.options.stores ?? [];
    const repartitions = this.options.repartitionTopics ?? [];
    if (stores.length === 0 && repartitions.length === 0) return;
    const replicationFactor = this.options.replicationFactor ?? 1;
    const admin = this.options.kafka.admin();
    await admin.connect();
    try {
      // A repartition topic (which a store may follow) is sized like its input topic, and may not exist yet.
      const sizedLike = (topic: string) => repartitions.find((r) => r.name === topic)?.copartitionedWith ?? topic;
      const sources = [...new Set([...stores.map((s) => s.inputTopic), ...repartitions.map((r) => r.name)].map(sizedLike))];
      const metadata = await admin.fetchTopicMetadata({ topics: sources });
      const partitionsOf = (topic: string) => metadata.topics.find((t) => t.name === sizedLike(topic))?.partitions.length ?? 1;
      for (const topic of [...stores.map((s) => s.inputTopic), ...repartitions.map((r) => r.name), ...repartitions.map((r) => r.copartitionedWith)]) {
        this.partitionCounts.set(topic, partitionsOf(topic));
      }
      const specs = [
        ...stores.map((store) => changelogTopicSpec(this.options.application, store.name, partitionsOf(store.inputTopic), replicationFactor)),
        ...repartitions.map((topic) => ({
          name: topic.name,
          partitions: partitionsOf(topic.name),
          replicationFactor,
          configs: { 'cleanup.policy': 'delete', 'retention.ms': String(topic.retentionMs ?? 7 * 24 * 3_600_000) },
        })),
      ];
      const report = await provisionTopics(admin, specs);
      if (report.problems.length > 0) throw new Error(`internal topics: ${report.problems.join('; ')}`);
    } finally {
      await admin.disconnect();
    }
  }

  private taskKey(topic: string, partition: number): string {
    return `${topic}:${partition}`;
  }

  /**
   * A new assignment: partitions that left are dropped; those that arrived get
   * their producer (fencing the previous owner), then their stores are restored.
   */
  private onAssignment(assignment: Record<string, number[]>): void {
    const assigned = new Set<string>();
    for (const [topic, partitions] of Object.entries(assignment)) for (const p of partitions) assigned.add(this.taskKey(topic, p));
    for (const [key, task] of this.tasks) {
      if (!assigned.has(key)) {
        this.tasks.delete(key);
        void this.dropTask(task);
      }
    }
    const arrived: PartitionTask[] = [];
    for (const [topic, partitions] of Object.entries(assignment)) {
      for (const partition of partitions) {
        const existing = this.tasks.get(this.taskKey(topic, partition));
        if (existing) {
          existing.fencedAt = undefined;
          if (!existing.ready) arrived.push(existing);
          continue;
        }
        const task: PartitionTask = { topic, partition, stores: new Map(), failures: 0, lastRecordAt: this.now() };
        this.tasks.set(this.taskKey(topic, partition), task);
        arrived.push(task);
      }
    }
    this.metrics.assignedPartitions.set(this.tasks.size);
    if (arrived.length > 0) {
      const ready = this.prepare(arrived);
      for (const task of arrived) task.ready = ready;
      ready.catch((err: unknown) => {
        this.options.logger.warn({ err }, 'preparing assigned partitions failed; will try again');
        for (const task of arrived) task.ready = undefined;
      });
    }
    this.options.logger.info({ assignment }, 'partitions assigned');
  }

  private async prepare(tasks: PartitionTask[]): Promise<void> {
    await Promise.all(tasks.map((task) => this.initProducer(task)));
    await this.restoreStores(tasks);
    await this.readCommittedOffsets(tasks);
    for (const task of tasks) {
      const repartition = this.watermarked().find((r) => r.name === task.topic);
      if (repartition) task.merged = withSources(task.merged ?? initialMergedTime(0), this.partitionCounts.get(repartition.copartitionedWith) ?? 1);
    }
  }

  private async initProducer(task: PartitionTask): Promise<void> {
    if (task.producer) return;
    const exactlyOnce = this.options.exactlyOnce ?? true;
    const producer = uninstrumentedProducer(this.options.kafka)({
      ...(exactlyOnce ? { transactionalId: `${this.options.application}-${task.topic}-${task.partition}` } : {}),
      idempotent: true,
      maxInFlightRequests: 1,
      allowAutoTopicCreation: false,
      // Java's partitioner (murmur2), so a key lands where any Kafka client would put it.
      createPartitioner: Partitioners.DefaultPartitioner,
    });
    await producer.connect();
    if (exactlyOnce) {
      // The transactional InitProducerId, now, before state and offsets are read: it bumps the epoch, so a
      // previous owner can no longer commit, and ends its open transaction. kafkajs sends it only at the
      // first transaction(): a previous owner that had not begun one yet (stopped, SIGSTOP) would start
      // it later, fence this owner and commit from its own stale state and offsets (events twice).
      // An empty transaction ends without EndTxn.
      try {
        const transaction = await producer.transaction();
        await transaction.abort();
      } catch (err) {
        await producer.disconnect().catch(() => undefined);
        throw err;
      }
    }
    task.producer = producer;
  }

  private async restoreStores(tasks: PartitionTask[]): Promise<void> {
    for (const definition of this.options.stores ?? []) {
      const owners = tasks.filter((t) => t.topic === definition.inputTopic);
      if (owners.length === 0) continue;
      const started = this.now();
      const stores = new Map<number, PartitionStore<unknown>>();
      for (const task of owners) {
        const store = new PartitionStore<unknown>(definition.name, definition.ttlMs, definition.indexes);
        task.stores.set(definition.name, store);
        stores.set(task.partition, store);
      }
      let lastProgress = this.now();
      const follower = await followTopic(this.options.kafka, changelogTopicSpec(this.options.application, definition.name, 1).name, {
        partitions: new Set(stores.keys()),
        onRecord: (partition, message) => {
          lastProgress = this.now();
          const key = message.key?.toString();
          if (key === PROGRESS_KEY) {
            const owner = owners.find((t) => t.partition === partition);
            if (owner && message.value) owner.progress = BigInt(message.value.toString());
          } else if (key === EVENT_TIME_KEY) {
            const owner = owners.find((t) => t.partition === partition);
            if (owner && message.value) owner.eventTime = Number(message.value.toString());
          } else if (key === WATERMARKS_KEY) {
            const owner = owners.find((t) => t.partition === partition);
            if (owner && message.value) owner.merged = decodeMergedTime(message.value);
          } else if (key !== undefined) stores.get(partition)?.restore(key, message.value);
        },
      });
      // A reader that stops making progress (its consumer crashed for good) fails the restore, which is
      // then tried again from the start, instead of holding the partition, and the batches waiting on it, forever.
      let stalled: NodeJS.Timeout | undefined;
      try {
        await Promise.race([
          follower.caughtUp,
          new Promise<never>((_, reject) => {
            stalled = setInterval(() => {
              if (this.now() - lastProgress > RESTORE_STALL_MS) reject(new Error(`restoring ${definition.name}: no progress for ${RESTORE_STALL_MS} ms`));
            }, 1_000);
            stalled.unref();
          }),
        ]);
      } finally {
        clearInterval(stalled);
        await follower.stop();
      }
      const seconds = (this.now() - started) / 1000;
      this.metrics.restoreDuration.observe({ store: definition.name }, seconds);
      const entries = [...stores.values()].reduce((n, s) => n + s.size, 0);
      this.options.logger.info({ store: definition.name, partitions: [...stores.keys()], entries, seconds }, 'state restored');
    }
  }

  private async readCommittedOffsets(tasks: PartitionTask[]): Promise<void> {
    const admin = this.options.kafka.admin();
    await admin.connect();
    try {
      for (const topic of new Set(tasks.map((t) => t.topic))) {
        const [offsets] = await admin.fetchOffsets({ groupId: this.options.application, topics: [topic] });
        for (const task of tasks.filter((t) => t.topic === topic)) {
          const fetched = offsets?.partitions.find((p) => p.partition === task.partition)?.offset;
          const groupOffset = fetched !== undefined && fetched !== '-1' ? BigInt(fetched) : undefined;
          // At-least-once writes no progress: one left by an earlier exactly-once run would be stale.
          if (this.options.exactlyOnce === false) task.progress = undefined;
          task.committed = resumeOffset(task.progress, groupOffset);
          if (task.progress !== undefined && groupOffset !== undefined && groupOffset > task.progress) {
            task.rewindTo = task.progress;
            // Now, so that no new record has to arrive first; if the consumer cannot seek yet (it is restarting),
            // the partition's next batch sends it back.
            try {
              this.consumer?.seek({ topic, partition: task.partition, offset: task.progress.toString() });
            } catch {
              // rewindTo stays set: processBatch seeks.
            }
            this.metrics.splitOutcomes.inc({ topic });
            this.options.logger.error(
              { topic, partition: task.partition, groupOffset: groupOffset.toString(), changelog: task.progress.toString() },
              "the group's offset is ahead of the changelog's progress: the brokers split one transaction's outcome (offsets committed, state and outputs aborted); resuming from the changelog, which shares the outputs' outcome",
            );
          }
          this.options.logger.info(
            { topic, partition: task.partition, committed: task.committed?.toString() ?? null, groupOffset: groupOffset?.toString() ?? null, changelog: task.progress?.toString() ?? null },
            'processing resumes from the committed offset',
          );
        }
      }
    } finally {
      await admin.disconnect();
    }
  }

  private async dropTask(task: PartitionTask): Promise<void> {
    const producer = task.producer;
    task.producer = undefined;
    task.ready = undefined;
    task.stores.clear();
    task.committed = undefined;
    task.progress = undefined;
    task.rewindTo = undefined;
    task.merged = undefined;
    task.published = undefined;
    await producer?.disconnect().catch(() => undefined);
  }

  private async waitReady(task: PartitionTask, heartbeat: () => Promise<void>): Promise<boolean> {
    if (task.fencedAt !== undefined) {
      // Fenced: another instance may own the partition. Give the group time to rebalance before taking it back.
      if (this.now() - task.fencedAt < this.sessionTimeoutMs) return false;
      task.fencedAt = undefined;
    }
    if (!task.ready) {
      task.ready = this.prepare([task]);
      task.ready.catch(() => (task.ready = undefined));
    }
    let settled = false;
    const ready = task.ready.then(
      () => (settled = true),
      () => (settled = true),
    );
    // Bounded, so that a partition still being prepared never holds the consumer's other partitions:
    // the batch is handed back and the next one waits again.
    const deadline = this.now() + this.sessionTimeoutMs;
    while (!settled && this.now() < deadline) {
      await Promise.race([ready, sleep(1_000)]);
      if (!settled) await heartbeat();
    }
    return settled && task.ready !== undefined && task.producer !== undefined;
  }

  /**
   * One batch of one partition. A consumer that crashed and restarted hands out batches again while
   * an earlier call may still be running for the same partition (kafkajs does not wait for it), so
   * the calls of a partition are chained, and each chunk skips what has been committed meanwhile.
   */
  private async onBatch(payload: EachBatchPayload): Promise<void> {
    const { topic, partition } = payload.batch;
    let task = this.tasks.get(this.taskKey(topic, partition));
    if (!task) {
      task = { topic, partition, stores: new Map(), failures: 0, lastRecordAt: this.now() };
      this.tasks.set(this.taskKey(topic, partition), task);
    }
    // Records delivered: the partition is not idle, whether or not they can be processed now.
    if (payload.batch.messages.length > 0) task.lastRecordAt = this.now();
    const owner = task;
    const previous = owner.working ?? Promise.resolve();
    const current = previous.then(() => this.processBatch(owner, payload));
    owner.working = current.catch(() => undefined);
    await current;
  }

  private async processBatch(task: PartitionTask, { batch, resolveOffset, heartbeat, isRunning, isStale }: EachBatchPayload): Promise<void> {
    const { topic, partition } = batch;
    const consumer = this.consumer!;
    if (this.stopping || !isRunning() || isStale()) return;
    this.metrics.consumerLag.set({ topic, partition: String(partition) }, Number(batch.offsetLag()));
    if (task.stoppedAt) {
      // The `stop` policy: this partition waits for an operator (a fix and a restart); the others flow.
      consumer.pause([{ topic, partitions: [partition] }]);
      return;
    }
    if (!(await this.waitReady(task, heartbeat))) {
      task.stalledSince ??= this.now();
      consumer.seek({ topic, partition, offset: batch.firstOffset() ?? '0' });
      await heartbeat();
      await sleep(this.backoff.initial);
      return;
    }
    // The consumer started where the group's offset says; a changelog behind it (a transaction the brokers split)
    // sends it back, once.
    if (task.rewindTo !== undefined) {
      consumer.seek({ topic, partition, offset: task.rewindTo.toString() });
      task.rewindTo = undefined;
      return;
    }
    const committed = task.committed;
    const messages = committed === undefined ? batch.messages : batch.messages.filter((m) => BigInt(m.offset) >= committed);
    if (messages.length === 0) {
      if (committed !== undefined && committed > BigInt(batch.lastOffset())) consumer.seek({ topic, partition, offset: committed.toString() });
      return;
    }
    for (let start = 0; start < messages.length; ) {
      if (this.stopping || !isRunning() || isStale()) return;
      // Never again what a transaction of this partition has committed since the batch was fetched.
      const floor = task.committed;
      while (floor !== undefined && start < messages.length && BigInt(messages[start]!.offset) < floor) start += 1;
      if (start >= messages.length) return;
      const isolated = task.isolateUntil !== undefined && BigInt(messages[start]!.offset) < task.isolateUntil;
      const chunk = messages.slice(start, start + (isolated ? 1 : this.maxBatchSize));
      const outcome = await this.runTransaction(task, chunk);
      const done = outcome.kind === 'committed' || outcome.kind === 'retry' ? outcome.count : 0;
      if (done > 0) {
        const last = chunk[done - 1]!.offset;
        resolveOffset(last);
        task.committed = BigInt(last) + 1n;
        task.failures = 0;
        task.stalledSince = undefined;
        if (task.isolateUntil !== undefined && task.committed >= task.isolateUntil) task.isolateUntil = undefined;
        if (task.unknown && BigInt(task.unknown.offset) < task.committed) task.unknown = undefined;
        for (const offset of task.condemned?.keys() ?? []) if (BigInt(offset) < task.committed) task.condemned!.delete(offset);
      }
      if (outcome.kind === 'committed') {
        start += done;
        await heartbeat();
        continue;
      }
      const resumeAt = chunk[done]?.offset ?? chunk[0]!.offset;
      task.failures += 1;
      task.stalledSince ??= this.now();
      const message = outcome.error instanceof Error ? outcome.error.message : String(outcome.error);
      task.lastFailure = { kind: outcome.kind === 'retry' ? outcome.reason : outcome.kind, message };
      this.metrics.retries.inc({ reason: outcome.kind === 'retry' ? outcome.reason : outcome.kind });
      // runTransaction may have stopped it (TypeScript keeps the narrowing from the check above).
      const stopped = task.stoppedAt as PartitionTask['stoppedAt'];
      if (stopped) {
        this.options.logger.error({ err: outcome.error, topic, partition, offset: stopped.offset }, 'partition stopped: a record failed with an error of no known kind past its retries (STREAM_ON_UNKNOWN_ERROR=stop)');
        consumer.pause([{ topic, partitions: [partition] }]);
        return;
      }
      if (outcome.kind === 'fenced') {
        this.options.logger.warn({ err: outcome.error, topic, partition }, 'producer fenced: dropping it; reprocessing from the committed offset after the rebalance');
        await this.dropTask(task);
        task.fencedAt = this.now();
      } else if (outcome.kind === 'reset') {
        this.options.logger.warn(
          { err: outcome.error, topic, partition, step: outcome.step, offsets: [chunk[0]!.offset, chunk.at(-1)!.offset] },
          'transaction failed with its outcome unknown: new producer, state and offsets read back from Kafka',
        );
        await this.dropTask(task);
      }
      consumer.seek({ topic, partition, offset: resumeAt });
      const wait = backoffMs(task.failures, { initialMs: this.backoff.initial, maxMs: this.backoff.max });
      if (outcome.kind === 'retry') {
        this.options.logger.warn(
          { err: outcome.error, topic, partition, offset: resumeAt, reason: outcome.reason, failures: task.failures, retryInMs: wait, ...(task.unknown ? { attempts: task.unknown.attempts, maxAttempts: this.maxUnknownRetries } : {}) },
          'record not processed; trying again',
        );
      }
      await sleep(wait);
      await heartbeat();
      return;
    }
  }

  private inputRecord(topic: string, partition: number, message: KafkaMessage): InputRecord {
    return {
      topic,
      partition,
      offset: message.offset,
      timestamp: message.timestamp,
      key: message.key ?? null,
      value: message.value ?? null,
      headers: message.headers ?? {},
    };
  }

  /** Processes records until one must wait; commits those before it in one transaction. */
  private async runTransaction(task: PartitionTask, chunk: KafkaMessage[]): Promise<ChunkOutcome> {
    const storeTxns = new Map<string, StoreTransaction<unknown>>();
    // With spans recorded: the trace of the last record that changed each store entry (for `causedBy`).
    const entryTraces = new Map<string, IHeaders>();
    const chunkStore = (name: string): StoreTransaction<unknown> => {
      let txn = storeTxns.get(name);
      if (!txn) {
        const store = task.stores.get(name);
        if (!store) throw new Error(`no store "${name}" for ${task.topic}-${task.partition}`);
        txn = new StoreTransaction(store, this.now);
        storeTxns.set(name, txn);
      }
      return txn;
    };
    const outputs: OutputRecord[] = [];
    let count = 0;
    let retryError: unknown;
    let retryReason: 'transient' | 'unknown' = 'transient';
    // Records dead-lettered without being processed (their flush kept failing): a transaction of those
    // alone runs no flush. Any other transaction flushes, watermark records alone included (they close windows).
    let condemnedCount = 0;
    // Event time: what this transaction's records report (a source task), and the merged time (a watermarked task).
    let eventTime: number | undefined;
    let merged = task.merged;
    const watermark = () => merged?.time ?? undefined;
    const fed = new Set(this.fedBy(task.topic).map((r) => r.name));
    for (const message of chunk) {
      const record = this.inputRecord(task.topic, task.partition, message);
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
        outputs.push(this.deadLetter(task, record, condemned.code, condemned.message));
        count += 1;
        condemnedCount += 1;
        continue;
      }
      const recordStores = new Map<string, StoreTransaction<unknown>>();
      const recordOutputs: OutputRecord[] = [];
      let recordTime: number | undefined;
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
        now: this.now,
        observeEventTime: (ms) => {
          if (Number.isFinite(ms)) recordTime = recordTime === undefined ? ms : Math.max(recordTime, ms);
        },
        watermark,
        sourceEventTime: () => sourceTime,
      };
      const source = merged ? headerText(record.headers, SOURCE_HEADER) : undefined;
      const sourceTimeText = merged ? headerText(record.headers, SOURCE_TIME_HEADER) : undefined;
      const sourceTime = sourceTimeText !== undefined && /^-?\d+$/.test(sourceTimeText) ? Number(sourceTimeText) : undefined;
      // A source task: its progress before this record, carried by what the record forwards downstream.
      const progressBefore = fed.size > 0 ? maxTime(task.eventTime, eventTime) : undefined;
      try {
        // Each record continues the trace of the request that produced it: with spans recorded, in a span
        // of its own (child of the one that produced the record), whose context its outputs carry on.
        const traceHeaders = await withRecordSpan(`process ${task.topic}`, record.headers, () => ({ ...recordAttributes(task.topic, task.partition, record.offset), 'sluice.stage': this.options.application }), async () => {
          await this.options.process(ctx);
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
          if (attempts <= this.maxUnknownRetries) {
            retryError = err;
            retryReason = 'unknown';
            break;
          }
          if (this.options.onUnknownError === 'stop') {
            task.stoppedAt = { offset: record.offset, message: err instanceof Error ? err.message : String(err) };
            retryError = err;
            retryReason = 'unknown';
            break;
          }
          code = STREAM_ERROR_CODES.processingFailed;
        } else if (kind !== 'dead-letter') {
          retryError = err;
          retryReason = 'transient';
          break;
        }
        outputs.push(this.deadLetter(task, record, code, err instanceof Error ? err.message : String(err)));
        count += 1;
      }
      // A record from a source that was idle: it delivers again, and holds time back from now on.
      if (merged && source !== undefined && /^\d+$/.test(source)) merged = applySourceRecord(merged, Number(source));
    }
    if (count === 0) return { kind: 'retry', count: 0, error: retryError, reason: retryReason };
    if (this.options.flush && condemnedCount < count) {
      try {
        await this.options.flush({
          topic: task.topic,
          partition: task.partition,
          store: <V>(name: string) => chunkStore(name) as StoreTransaction<V>,
          send: ({ causedBy, ...output }) => {
            const trace = causedBy && entryTraces.get(`${causedBy.store}\u0000${causedBy.key}`);
            outputs.push(trace ? { ...output, headers: { ...output.headers, ...trace } } : output);
          },
          now: this.now,
          watermark,
        });
      } catch (err) {
        return this.flushFailed(task, chunk.slice(0, count), err);
      }
    }
    this.expireEntries(task, chunkStore);
    const progress = this.publishProgress(task, eventTime, outputs);
    const mergedChanged = merged !== task.merged;
    const outcome = await this.commit(task, chunk[count - 1]!.offset, outputs, storeTxns, mergedChanged ? merged : undefined, progress?.time);
    if (outcome) return outcome;
    if (progress) {
      task.eventTime = progress.time;
      task.published = progress.time;
      if (task.idleAnnounced) this.options.logger.info({ topic: task.topic, partition: task.partition }, 'source partition delivers again: announced active');
      task.idleAnnounced = false;
    }
    if (mergedChanged && merged) {
      this.logIdleChanges(task, task.merged, merged);
      task.merged = merged;
      this.reportWatermark(task);
    }
    for (const [name, txn] of storeTxns) task.stores.get(name)?.apply(txn.changes);
    this.metrics.recordsIn.inc({ topic: task.topic }, count);
    for (const o of outputs) this.metrics.recordsOut.inc({ topic: o.topic });
    return retryError === undefined ? { kind: 'committed', count } : { kind: 'retry', count, error: retryError, reason: retryReason };
  }

  /** The dead letter of `record`: its key, value and headers untouched, plus the cause. */
  private deadLetter(task: PartitionTask, record: InputRecord, code: string, message: string): OutputRecord {
    this.metrics.deadLetters.inc({ code });
    return {
      topic: `${task.topic}.dlq`,
      key: record.key,
      value: record.value,
      headers: deadLetterHeaders(record.headers, {
        topic: task.topic,
        partition: task.partition,
        offset: record.offset,
        timestamp: record.timestamp,
        stage: this.options.application,
        code,
        message,
        failedAt: new Date(this.now()),
      }),
    };
  }

  /**
   * A flush failed. Transient: the records are tried again. Otherwise the failure is attributed to the
   * records it came from: they are tried one per transaction, and a record whose own flush keeps failing
   * (the bounded attempts of an unknown error; at once for a poison error) becomes a dead letter without
   * being processed, or stops the partition under the `stop` policy.
   */
  private flushFailed(task: PartitionTask, records: KafkaMessage[], err: unknown): ChunkOutcome {
    const kind = classifyFailure(err);
    if (kind === 'retry' || kind === 'fenced') return { kind: 'retry', count: 0, error: err, reason: 'transient' };
    if (records.length > 1) {
      task.isolateUntil = BigInt(records.at(-1)!.offset) + 1n;
      return { kind: 'retry', count: 0, error: err, reason: 'flush' };
    }
    const offset = records[0]!.offset;
    const attempts = task.unknown?.offset === offset ? task.unknown.attempts + 1 : 1;
    task.unknown = { offset, attempts };
    const message = err instanceof Error ? err.message : String(err);
    if (kind === 'unknown' && attempts <= this.maxUnknownRetries) return { kind: 'retry', count: 0, error: err, reason: 'flush' };
    if (kind === 'unknown' && this.options.onUnknownError === 'stop') task.stoppedAt = { offset, message };
    else {
      task.condemned ??= new Map();
      task.condemned.set(offset, { code: kind === 'dead-letter' ? errorCode(err) : STREAM_ERROR_CODES.processingFailed, message });
    }
    return { kind: 'retry', count: 0, error: err, reason: 'flush' };
  }

  /**
   * A source task of watermarked repartition topics: when its event time moved (or it was announced idle), adds its progress for every partition
   * of each. Returns the progress to record once the transaction commits.
   */
  private publishProgress(task: PartitionTask, observed: number | undefined, outputs: OutputRecord[]): { time: number } | undefined {
    const fed = this.fedBy(task.topic);
    if (fed.length === 0) return undefined;
    const time = maxTime(task.eventTime, observed);
    if (time === undefined) return undefined;
    if (task.published !== undefined && time <= task.published && !task.idleAnnounced) return undefined;
    outputs.push(...this.watermarkRecords(fed, { source: task.partition, time, idle: false }));
    return { time };
  }

  private watermarkRecords(fed: RepartitionTopic[], mark: { source: number; time: number | null; idle: boolean }): OutputRecord[] {
    const value = encodeWatermark(mark);
    return fed.flatMap((r) =>
      Array.from({ length: this.partitionCounts.get(r.name) ?? 1 }, (_, partition) => ({ topic: r.name, key: null, value, partition, headers: { [WATERMARK_HEADER]: '1' } })),
    );
  }

  private logIdleChanges(task: PartitionTask, before: MergedTime | undefined, after: MergedTime): void {
    after.sources.forEach((s, source) => {
      const was = before?.sources[source]?.idle ?? false;
      if (s.idle !== was) this.options.logger.info({ topic: task.topic, partition: task.partition, source, idle: s.idle }, s.idle ? 'source idle: no longer holds event time back' : 'source active again: holds event time back');
    });
  }

  private reportWatermark(task: PartitionTask): void {
    if (!task.merged) return;
    const { lagMs, heldBy, idleSources } = heldBack(task.merged);
    const labels = { topic: task.topic, partition: String(task.partition) };
    this.metrics.watermarkLag.set(labels, lagMs);
    this.metrics.watermarkHeldBy.set(labels, heldBy ?? -1);
    this.metrics.idleSources.set(labels, idleSources);
  }

  /**
   * Source partitions that are caught up and have received nothing for the idle timeout announce
   * themselves idle downstream, in a transaction of their own producer (after any batch of theirs).
   * A partition with records behind, or one that is not ready (restoring, fenced, its instance dead),
   * announces nothing: it keeps holding event time back.
   */
  private async announceIdleSources(): Promise<void> {
    if (this.stopping) return;
    const due = [...this.tasks.values()].filter(
      (task) => this.fedBy(task.topic).length > 0 && !task.idleAnnounced && task.producer && task.ready && this.now() - task.lastRecordAt >= this.idleTimeoutMs,
    );
    if (due.length === 0) return;
    let ends: Map<string, { partition: number; high: string; low: string }[]>;
    try {
      this.offsetsAdmin ??= this.options.kafka.admin();
      await this.offsetsAdmin.connect();
      ends = new Map();
      for (const topic of new Set(due.map((t) => t.topic))) ends.set(topic, await this.offsetsAdmin.fetchTopicOffsets(topic));
    } catch (err) {
      this.options.logger.warn({ err }, 'reading end offsets for idle detection failed; will try again');
      return;
    }
    for (const task of due) {
      const end = ends.get(task.topic)?.find((p) => p.partition === task.partition);
      if (!end) continue;
      const position = task.committed !== undefined && task.committed > BigInt(end.low) ? task.committed : BigInt(end.low);
      // One offset past the position may be the marker that ended the last transaction: caught up.
      if (BigInt(end.high) - position > 1n) continue;
      const previous = task.working ?? Promise.resolve();
      const current = previous.then(() => this.announceIdle(task));
      task.working = current.catch(() => undefined);
    }
  }

  private async announceIdle(task: PartitionTask): Promise<void> {
    const producer = task.producer;
    if (this.stopping || !producer || task.idleAnnounced || this.now() - task.lastRecordAt < this.idleTimeoutMs) return;
    if (this.tasks.get(this.taskKey(task.topic, task.partition)) !== task) return;
    const topicMessages = this.groupByTopic(this.watermarkRecords(this.fedBy(task.topic), { source: task.partition, time: task.eventTime ?? null, idle: true }));
    try {
      if (this.options.exactlyOnce === false) await producer.sendBatch({ topicMessages, acks: -1 });
      else {
        const transaction = await producer.transaction();
        try {
          await transaction.sendBatch({ topicMessages });
          await transaction.commit();
        } catch (err) {
          await transaction.abort().catch(() => undefined);
          throw err;
        }
      }
    } catch (err) {
      this.options.logger.warn({ err, topic: task.topic, partition: task.partition }, 'announcing an idle source failed: new producer, will try again');
      await this.dropTask(task);
      return;
    }
    task.idleAnnounced = true;
    this.options.logger.info({ topic: task.topic, partition: task.partition, idleForMs: this.now() - task.lastRecordAt }, 'source partition idle: announced downstream');
  }

  private groupByTopic(outputs: OutputRecord[]): TopicMessages[] {
    const byTopic = new Map<string, Message[]>();
    for (const o of outputs) {
      const list = byTopic.get(o.topic) ?? [];
      list.push({ key: o.key, value: o.value, ...(o.headers ? { headers: o.headers } : {}), ...(o.partition !== undefined ? { partition: o.partition } : {}) });
      byTopic.set(o.topic, list);
    }
    return [...byTopic].map(([topic, messages]) => ({ topic, messages }));
  }

  /** Deletes a bounded number of expired entries per transaction, through the changelog. */
  private expireEntries(task: PartitionTask, chunkStore: (name: string) => StoreTransaction<unknown>): void {
    const now = this.now();
    for (const definition of this.options.stores ?? []) {
      if (definition.ttlMs === undefined || definition.inputTopic !== task.topic) continue;
      const store = task.stores.get(definition.name);
      if (!store) continue;
      const expired = store.expired(now, 500);
      if (expired.length === 0) continue;
      const txn = chunkStore(definition.name);
      for (const key of expired) if (!txn.changes.has(key)) txn.delete(key);
    }
  }

  /** One transaction: outputs, changelog records, input offset. Returns an outcome only when it failed. */
  private async commit(
    task: PartitionTask,
    lastOffset: string,
    outputs: OutputRecord[],
    storeTxns: Map<string, StoreTransaction<unknown>>,
    merged: MergedTime | undefined,
    eventTime: number | undefined,
  ): Promise<ChunkOutcome | undefined> {
    const producer = task.producer;
    if (!producer) return { kind: 'fenced', error: new Error('no producer for the partition') };
    const records = outputs.slice();
    for (const [name, txn] of storeTxns) {
      const topic = changelogTopicSpec(this.options.application, name, 1).name;
      for (const change of txn.changelog()) records.push({ topic, key: change.key, value: change.value, partition: task.partition });
    }
    const nextOffset = (BigInt(lastOffset) + 1n).toString();
    const progressStore = (this.options.stores ?? []).find((store) => store.inputTopic === task.topic);
    if (progressStore) {
      const topic = changelogTopicSpec(this.options.application, progressStore.name, 1).name;
      if (this.options.exactlyOnce !== false) records.push({ topic, key: PROGRESS_KEY, value: Buffer.from(nextOffset), partition: task.partition });
      if (merged) records.push({ topic, key: WATERMARKS_KEY, value: encodeMergedTime(merged), partition: task.partition });
      if (eventTime !== undefined) records.push({ topic, key: EVENT_TIME_KEY, value: Buffer.from(String(eventTime)), partition: task.partition });
    }
    const topicMessages = this.groupByTopic(records);
    const started = process.hrtime.bigint();
    if (this.options.exactlyOnce === false) {
      try {
        if (topicMessages.length > 0) await producer.sendBatch({ topicMessages, acks: -1 });
        await this.consumer!.commitOffsets([{ topic: task.topic, partition: task.partition, offset: nextOffset }]);
      } catch (err) {
        // A failed send leaves the idempotent producer's sequence numbers unknown: never reuse it.
        return { kind: 'reset', error: err, step: 'send' };
      }
      this.metrics.commitLatency.observe(Number(process.hrtime.bigint() - started) / 1e9);
      return undefined;
    }
    let transaction;
    try {
      transaction = await producer.transaction();
    } catch (err) {
      this.metrics.aborts.inc({ reason: 'begin' });
      return classifyFailure(err) === 'fenced' ? { kind: 'fenced', error: err } : { kind: 'reset', error: err, step: 'begin' };
    }
    let step: 'send' | 'offsets' | 'commit' = 'send';
    try {
      if (topicMessages.length > 0) await transaction.sendBatch({ topicMessages });
      step = 'offsets';
      await transaction.sendOffsets({
        consumerGroupId: this.options.application,
        topics: [{ topic: task.topic, partitions: [{ partition: task.partition, offset: nextOffset }] }],
      });
      step = 'commit';
      await transaction.commit();
    } catch (err) {
      // Whether the abort passes or not, this producer is not used again: a send that failed may have
      // written its records, so its sequence numbers can no longer be trusted (a later batch could be
      // taken for a duplicate and dropped), and a commit that failed may have committed.
      await transaction.abort().catch(() => undefined);
      const fenced = classifyFailure(err) === 'fenced';
      this.metrics.aborts.inc({ reason: fenced ? 'fenced' : 'reset' });
      return fenced ? { kind: 'fenced', error: err } : { kind: 'reset', error: err, step };
    }
    this.metrics.commitLatency.observe(Number(process.hrtime.bigint() - started) / 1e9);
    return undefined;
  }
}

