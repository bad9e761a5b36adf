import { backoffMs } from '@sluice/runtime';
import { Partitioners, type Consumer, type EachBatchPayload, type Kafka, type KafkaMessage } from 'kafkajs';
import { atLeastOnceCommitter, exactlyOnceCommitter, type CommitFailure, type Committer } from './committer';
import { ensureInternalTopics } from './internal-topics';
import { streamMetrics, type StreamMetrics } from './metrics';
import { readCommittedOffsets, restoreStores, type RestoreContext } from './restore';
import { newTask, resetTask, taskKey, type PartitionTask } from './task';
import { buildTransaction, chunkEnd, watermarkRecords, type RetryReason, type TransactionRules } from './transaction';
import { uninstrumentedConsumer, uninstrumentedProducer } from './traced';
import type { RepartitionTopic, StreamProcessorOptions } from './types';
import { heldBack, initialMergedTime, withSources, type MergedTime } from './watermarks';

export type { FlushContext, InputRecord, OutputRecord, ProcessContext, RepartitionTopic, StoreDefinition, StreamProcessorOptions } from './types';

type ChunkOutcome =
  | { kind: 'committed'; count: number }
  /** Nothing was sent for the records from `count` on (a processor asked to wait, or failed): try them again. */
  | { kind: 'retry'; count: number; error: unknown; reason: RetryReason }
  /** The commit failed (see CommitFailure): nothing of the chunk is done. */
  | CommitFailure;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Exactly-once consume-transform-produce on kafkajs, as Kafka Streams did it
 * before KIP-447 ("EOS v1"): one transactional producer per input partition
 * (`transactionalId = <application>-<topic>-<partition>`), created when the
 * partition is assigned, so that the new owner's InitProducerId fences a
 * zombie. Each transaction holds the outputs, the changelog records of the
 * stores and the input offsets; state changes become visible only after commit.
 *
 * This class is the task lifecycle (assignment, fencing, preparing, dropping) and the batch loop (chunks, retries
 * with backoff, the failure policies); the parts it drives are the internal topics (`internal-topics.ts`), the state
 * restore (`restore.ts`), the transaction builder (`transaction.ts`, no Kafka) and the committer (`committer.ts`,
 * exactly-once or at-least-once).
 */
export class StreamProcessor {
  private readonly tasks = new Map<string, PartitionTask>();
  private readonly metrics: StreamMetrics;
  private readonly now: () => number;
  private readonly maxBatchSize: number;
  private readonly maxBatchBytes: number;
  private readonly sessionTimeoutMs: number;
  private readonly backoff: { initial: number; max: number };
  private readonly committer: Committer;
  private readonly restoring: RestoreContext;
  private consumer: Consumer | undefined;
  private stopping = false;
  private closing: Promise<void> | undefined;
  /** Partition counts of the input and internal topics, read at start. */
  private readonly partitionCounts = new Map<string, number>();
  private readonly idleTimeoutMs: number;
  private readonly maxUnknownRetries: number;
  /** The transaction builder's rules, per input topic. */
  private readonly rulesByTopic = new Map<string, TransactionRules>();
  private idleTimer: NodeJS.Timeout | undefined;
  private stallTimer: NodeJS.Timeout | undefined;
  private offsetsAdmin: ReturnType<Kafka['admin']> | undefined;

  constructor(private readonly options: StreamProcessorOptions) {
    this.metrics = streamMetrics(options.metrics);
    this.now = options.now ?? Date.now;
    this.maxBatchSize = options.maxBatchSize ?? 2_000;
    this.maxBatchBytes = options.maxBatchBytes ?? 512 * 1024;
    this.sessionTimeoutMs = options.sessionTimeoutMs ?? 30_000;
    this.backoff = options.retryBackoffMs ?? { initial: 100, max: 5_000 };
    this.idleTimeoutMs = options.idleTimeoutMs ?? 60_000;
    this.maxUnknownRetries = options.maxUnknownRetries ?? 5;
    this.committer = (options.exactlyOnce ?? true) ? exactlyOnceCommitter(options.application, this.metrics) : atLeastOnceCommitter(() => this.consumer!, this.metrics);
    this.restoring = { kafka: options.kafka, application: options.application, metrics: this.metrics, logger: options.logger, now: this.now };
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
    const counts = await ensureInternalTopics(this.options.kafka, this.options.application, this.options.stores ?? [], this.options.repartitionTopics ?? [], this.options.replicationFactor ?? 1);
    for (const [topic, count] of counts) this.partitionCounts.set(topic, count);
    const consumer = uninstrumentedConsumer(this.options.kafka)({
      groupId: this.options.application,
      readUncommitted: false,
      sessionTimeout: this.sessionTimeoutMs,
      heartbeatInterval: Math.max(500, Math.floor(this.sessionTimeoutMs / 10)),
      maxWaitTimeInMs: this.options.commitIntervalMs ?? 100,
      allowAutoTopicCreation: false,
    });
    this.consumer = consumer;
    consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => this.onAssignment(payload.memberAssignment));
    // Batches of only transaction markers (or aborted records) reach no handler but move the consumer's position.
    // The latest batch's end, not the highest: after a seek back, the batches read again say where the consumer is.
    consumer.on(consumer.events.END_BATCH_PROCESS, ({ payload }) => {
      const task = this.tasks.get(taskKey(payload.topic, payload.partition));
      if (task && payload.lastOffset !== null && payload.lastOffset !== undefined) task.fetched = BigInt(payload.lastOffset) + 1n;
    });
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

  /**
   * A new assignment: partitions that left are dropped; those that arrived get
   * their producer (fencing the previous owner), then their stores are restored.
   */
  private onAssignment(assignment: Record<string, number[]>): void {
    const assigned = new Set<string>();
    for (const [topic, partitions] of Object.entries(assignment)) for (const p of partitions) assigned.add(taskKey(topic, p));
    for (const [key, task] of this.tasks) {
      if (!assigned.has(key)) {
        this.tasks.delete(key);
        void this.dropTask(task);
      }
    }
    const arrived: PartitionTask[] = [];
    for (const [topic, partitions] of Object.entries(assignment)) {
      for (const partition of partitions) {
        const existing = this.tasks.get(taskKey(topic, partition));
        if (existing) {
          existing.fencedAt = undefined;
          if (!existing.ready) arrived.push(existing);
          continue;
        }
        const task = newTask(topic, partition, this.now());
        this.tasks.set(taskKey(topic, partition), task);
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

  /** Producer first (it fences a previous owner), then state, then where to resume. */
  private async prepare(tasks: PartitionTask[]): Promise<void> {
    await Promise.all(tasks.map((task) => this.initProducer(task)));
    await restoreStores(this.restoring, this.options.stores ?? [], tasks);
    await readCommittedOffsets(this.restoring, tasks, this.committer.exactlyOnce, (topic, partition, offset) => this.consumer?.seek({ topic, partition, offset }));
    for (const task of tasks) {
      const repartition = this.watermarked().find((r) => r.name === task.topic);
      if (repartition) task.merged = withSources(task.merged ?? initialMergedTime(0), this.partitionCounts.get(repartition.copartitionedWith) ?? 1);
    }
  }

  private async initProducer(task: PartitionTask): Promise<void> {
    if (task.producer) return;
    const transactionalId = this.committer.transactionalId(this.options.application, task.topic, task.partition);
    const producer = uninstrumentedProducer(this.options.kafka)({
      ...(transactionalId ? { transactionalId } : {}),
      idempotent: true,
      maxInFlightRequests: 1,
      allowAutoTopicCreation: false,
      // Java's partitioner (murmur2), so a key lands where any Kafka client would put it.
      createPartitioner: Partitioners.DefaultPartitioner,
    });
    await producer.connect();
    try {
      await this.committer.claim(producer);
    } catch (err) {
      await producer.disconnect().catch(() => undefined);
      throw err;
    }
    task.producer = producer;
  }

  private async dropTask(task: PartitionTask): Promise<void> {
    await resetTask(task)?.disconnect().catch(() => undefined);
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
    let task = this.tasks.get(taskKey(topic, partition));
    if (!task) {
      task = newTask(topic, partition, this.now());
      this.tasks.set(taskKey(topic, partition), task);
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
      const chunk = messages.slice(start, isolated ? start + 1 : chunkEnd(messages, start, this.maxBatchSize, this.maxBatchBytes));
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

  /** Builds the chunk's transaction, commits it, and only then applies its state to the task. */
  private async runTransaction(task: PartitionTask, chunk: KafkaMessage[]): Promise<ChunkOutcome> {
    const plan = await buildTransaction(task, chunk, this.rules(task.topic));
    if (plan.kind === 'retry') return plan;
    const producer = task.producer;
    if (!producer) return { kind: 'fenced', error: new Error('no producer for the partition') };
    const failure = await this.committer.commit(producer, plan.records, { topic: task.topic, partition: task.partition, offset: plan.nextOffset });
    if (failure) return failure;
    if (plan.published !== undefined) {
      task.eventTime = plan.published;
      task.published = plan.published;
      if (task.idleAnnounced) this.options.logger.info({ topic: task.topic, partition: task.partition }, 'source partition delivers again: announced active');
      task.idleAnnounced = false;
    }
    if (plan.merged) {
      this.logIdleChanges(task, task.merged, plan.merged);
      task.merged = plan.merged;
      this.reportWatermark(task);
    }
    for (const [name, txn] of plan.storeChanges) task.stores.get(name)?.apply(txn.changes);
    this.metrics.recordsIn.inc({ topic: task.topic }, plan.count);
    for (const o of plan.outputs) this.metrics.recordsOut.inc({ topic: o.topic });
    for (const code of plan.deadLetters) this.metrics.deadLetters.inc({ code });
    return plan.retry ? { kind: 'retry', count: plan.count, ...plan.retry } : { kind: 'committed', count: plan.count };
  }

  private rules(topic: string): TransactionRules {
    let rules = this.rulesByTopic.get(topic);
    if (!rules) {
      rules = {
        application: this.options.application,
        process: this.options.process,
        ...(this.options.flush ? { flush: this.options.flush } : {}),
        stores: this.options.stores ?? [],
        feeds: this.fedBy(topic),
        partitionCounts: this.partitionCounts,
        maxUnknownRetries: this.maxUnknownRetries,
        onUnknownError: this.options.onUnknownError ?? 'dead-letter',
        exactlyOnce: this.committer.exactlyOnce,
        now: this.now,
      };
      this.rulesByTopic.set(topic, rules);
    }
    return rules;
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
      let position = BigInt(end.low);
      for (const read of [task.committed, task.fetched]) if (read !== undefined && read > position) position = read;
      // One offset past the committed position may be the marker that ended the last transaction: caught up.
      if (BigInt(end.high) - position > 1n) continue;
      const previous = task.working ?? Promise.resolve();
      const current = previous.then(() => this.announceIdle(task));
      task.working = current.catch(() => undefined);
    }
  }

  private async announceIdle(task: PartitionTask): Promise<void> {
    const producer = task.producer;
    if (this.stopping || !producer || task.idleAnnounced || this.now() - task.lastRecordAt < this.idleTimeoutMs) return;
    if (this.tasks.get(taskKey(task.topic, task.partition)) !== task) return;
    const records = watermarkRecords(this.fedBy(task.topic), this.partitionCounts, { source: task.partition, time: task.eventTime ?? null, idle: true });
    const failure = await this.committer.commit(producer, records);
    if (failure) {
      this.options.logger.warn({ err: failure.error, topic: task.topic, partition: task.partition }, 'announcing an idle source failed: new producer, will try again');
      await this.dropTask(task);
      return;
    }
    task.idleAnnounced = true;
    this.options.logger.info({ topic: task.topic, partition: task.partition, idleForMs: this.now() - task.lastRecordAt }, 'source partition idle: announced downstream');
  }
}
