import { DecodeError, dlqTopicOf, type Decoder, type EnrichedEvent } from '@sluice/contracts';
import { backoffMs, type Logger } from '@sluice/runtime';
import { deadLetterHeaders, uninstrumentedConsumer } from '@sluice/streams';
import type { Admin, Consumer, EachBatchPayload, Kafka, KafkaMessage, Message, Producer } from 'kafkajs';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { encodeParquet, hourPartition, planFiles, tableOf, type ArchivedRecord } from './parquet';
import { readJson, type ArchiveStorage } from './storage';

export interface ArchiverOptions {
  kafka: Kafka;
  storage: ArchiveStorage;
  topic: string;
  group: string;
  decoder: Decoder<EnrichedEvent>;
  logger: Logger;
  metrics: Registry;
  /** A roll is written once its records' encoded size reaches this. */
  maxFileBytes: number;
  /**
   * All partitions' open rolls together (encoded size): past it, a partition holding more than its share
   * writes its roll early, so memory stays bounded however many partitions an instance owns.
   */
  maxBufferBytes: number;
  /** …or once its first record has waited this long. */
  rollIntervalMs: number;
  sessionTimeoutMs: number;
  /** Longest pause between attempts while the storage fails. */
  retryMaxMs: number;
}

/** What a roll wrote, claimed before its first file: a roll done again writes exactly this. */
export interface RollManifest {
  topic: string;
  partition: number;
  /** The partition's position the roll starts at (the committed offset before it). */
  start: string;
  /** The position after it: its last record's offset + 1, committed once its files are written. */
  end: string;
  files: string[];
  rows: number;
  deadLetters: number;
}

/** The key of the manifest of the roll of `partition` that starts at `start`. */
export const manifestKey = (table: string, partition: number, start: bigint): string => `_sluice/rolls/${table}/${partition}/${start.toString().padStart(20, '0')}.json`;

interface Letter {
  offset: bigint;
  message: Message;
  code: string;
}

interface PartitionState {
  /** Where the open roll starts: the committed offset. */
  start: bigint;
  /** The offset after the last record read. */
  next: bigint;
  records: ArchivedRecord[];
  letters: Letter[];
  bytes: number;
  /** Wall time the open roll's first record was read. */
  openedAt: number | undefined;
  /** The end of a roll claimed before a crash or by another instance: it is written as claimed. */
  plannedEnd: bigint | undefined;
  /** The consumer was sent back to `start` once; what comes next is read as it comes. */
  positioned: boolean;
  failures: number;
  retryAt: number;
  paused: boolean;
}

class RollConflict extends Error {}

/** A record that may decode later (the registry out of reach). */
class RetryLater extends Error {
  constructor(override readonly cause: unknown) {
    super('retry later');
  }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * events.enriched into Parquet files, exactly once. Each partition is cut into rolls of consecutive
 * offsets (by size or by time); a roll is one file per event-time hour. Before the first file of a roll
 * is written, its manifest (start, end, file names) is created in the archive, only if none exists for
 * that start: whoever writes a roll starting at an offset (this instance after a crash, another
 * instance after a rebalance) writes the same records into the same files. The files are written
 * atomically (temporary then rename, or one PutObject), then the end offset is committed to Kafka. After
 * `kill -9` at any moment the next owner starts from the committed offset, finds the manifest if the roll
 * had begun, and writes it again as claimed: no gap, no duplicate row, no half-written visible file.
 */
export class Archiver {
  private consumer: Consumer | undefined;
  private producer: Producer | undefined;
  private admin: Admin | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly partitions = new Map<number, PartitionState>();
  private readonly locks = new Map<number, Promise<void>>();
  private readonly table: string;
  private closing: Promise<void> | undefined;
  private lastError: unknown;
  private readonly rows: Counter;
  private readonly files: Counter;
  private readonly written: Counter;
  private readonly rolls: Counter<'outcome'>;
  private readonly rollSeconds: Histogram;
  private readonly deadLetters: Counter<'code'>;

  constructor(private readonly options: ArchiverOptions) {
    this.table = tableOf(options.topic);
    const registers = [options.metrics];
    this.rows = new Counter({ name: 'archiver_rows_total', help: 'Records written to archive files (rolls written again after a crash count again)', registers });
    this.files = new Counter({ name: 'archiver_files_total', help: 'Parquet files written', registers });
    this.written = new Counter({ name: 'archiver_bytes_total', help: 'Bytes of Parquet written', registers });
    this.rolls = new Counter({ name: 'archiver_rolls_total', help: 'Rolls by outcome: written, failed (retried), conflict (claimed by another writer)', labelNames: ['outcome'], registers });
    for (const outcome of ['written', 'failed', 'conflict']) this.rolls.inc({ outcome }, 0);
    this.rollSeconds = new Histogram({ name: 'archiver_roll_seconds', help: 'Time to write a roll: manifest, files and offset commit', buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30], registers });
    this.deadLetters = new Counter({ name: 'archiver_dead_letters_total', help: 'Records sent to the dead-letter topic, by code', labelNames: ['code'], registers });
    const partitions = this.partitions;
    new Gauge({
      name: 'archiver_buffered_records',
      help: 'Records read and not yet in a committed file',
      registers,
      collect() {
        this.set([...partitions.values()].reduce((n, s) => n + s.records.length + s.letters.length, 0));
      },
    });
    new Gauge({
      name: 'archiver_oldest_buffered_seconds',
      help: 'How long the oldest record not yet archived has waited since it was read',
      registers,
      collect() {
        const opened = [...partitions.values()].map((s) => s.openedAt).filter((t): t is number => t !== undefined);
        this.set(opened.length === 0 ? 0 : (Date.now() - Math.min(...opened)) / 1000);
      },
    });
  }

  /** Undefined while every roll succeeds; otherwise why the last one failed (the storage, usually). */
  get problem(): string | undefined {
    const failing = [...this.partitions.entries()].filter(([, s]) => s.failures >= 3);
    if (failing.length === 0) return undefined;
    const reason = this.lastError instanceof Error ? this.lastError.message : String(this.lastError);
    return `writing to the archive (${this.options.storage.location}) failed ${Math.max(...failing.map(([, s]) => s.failures))} times in a row for partitions ${failing.map(([p]) => p).join(', ')}: ${reason}`;
  }

  async start(): Promise<void> {
    const { kafka } = this.options;
    this.admin = kafka.admin();
    await this.admin.connect();
    this.producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
    await this.producer.connect();
    // Without the kafkajs instrumentation's span per record, as every consumer of the project (see uninstrumentedConsumer).
    const consumer = uninstrumentedConsumer(kafka)({
      groupId: this.options.group,
      readUncommitted: false,
      allowAutoTopicCreation: false,
      maxWaitTimeInMs: 500,
      sessionTimeout: this.options.sessionTimeoutMs,
      heartbeatInterval: Math.max(500, Math.floor(this.options.sessionTimeoutMs / 10)),
    });
    this.consumer = consumer;
    // A new assignment starts every partition again from its committed offset (and its claimed roll).
    consumer.on(consumer.events.GROUP_JOIN, () => {
      for (const partition of [...this.partitions.keys()]) this.forget(partition, false);
    });
    await consumer.connect();
    await consumer.subscribe({ topic: this.options.topic, fromBeginning: true });
    await consumer.run({ autoCommit: false, eachBatchAutoResolve: false, eachBatch: (payload) => this.onBatch(payload) });
    const tick = Math.max(50, Math.min(1_000, Math.floor(this.options.rollIntervalMs / 4)));
    this.timer = setInterval(() => this.rollDue(), tick);
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      if (this.timer) clearInterval(this.timer);
      // What was read is written before leaving, so the next owner does not read it again.
      await Promise.all([...this.partitions.keys()].map((p) => this.locked(p, () => this.rollOpen(p, 'shutdown'))));
      await this.consumer?.disconnect();
      await this.producer?.disconnect();
      await this.admin?.disconnect();
    })();
    return this.closing;
  }

  /** Runs `work` after everything queued for the partition: batches and timed rolls never overlap. */
  private locked(partition: number, work: () => Promise<void>): Promise<void> {
    const previous = this.locks.get(partition) ?? Promise.resolve();
    const next = previous.then(work, work);
    const settled = next.catch(() => undefined);
    this.locks.set(partition, settled);
    return next;
  }

  private async onBatch({ batch, heartbeat, isRunning, isStale, resolveOffset }: EachBatchPayload): Promise<void> {
    const { partition } = batch;
    await this.locked(partition, async () => {
      if (!isRunning() || isStale() || this.closing) return;
      let state = this.partitions.get(partition);
      if (!state) {
        state = await this.open(partition);
        this.partitions.set(partition, state);
      }
      if (!state.positioned) {
        // Start where the committed offset says, whatever kafkajs fetched from before (a rebalance keeps its position).
        state.positioned = true;
        const first = batch.messages[0] ? BigInt(batch.messages[0].offset) : undefined;
        if (first === undefined || first !== state.start) {
          this.consumer!.seek({ topic: batch.topic, partition, offset: state.start.toString() });
          return;
        }
      }
      try {
        for (const message of batch.messages) {
          const offset = BigInt(message.offset);
          if (offset < state.next) continue;
          if (state.plannedEnd !== undefined && offset >= state.plannedEnd) {
            // Every record of the claimed roll is read: write it, then read on from here.
            state.next = state.plannedEnd;
            await this.tryRoll(partition, state, state.plannedEnd);
            if (this.partitions.get(partition) !== state) return;
            if (state.plannedEnd !== undefined) {
              // It failed (the partition is paused until the timer writes it): this record is read again then.
              this.consumer!.seek({ topic: batch.topic, partition, offset: message.offset });
              return;
            }
          }
          await this.take(partition, state, message, offset);
        }
      } catch (err) {
        if (err instanceof RollConflict) return;
        if (!(err instanceof RetryLater)) throw err;
        this.options.logger.warn({ err: err.cause, partition }, 'a record cannot be decoded now (registry?); reading the partition again in a second');
        await sleep(1_000);
        this.forget(partition);
        return;
      }
      // Every record of the batch is taken (in a roll or its dead letters): the next fetch starts after them.
      // Nothing is committed by this (autoCommit is off): the committed offset moves only when a roll is written.
      const last = batch.messages[batch.messages.length - 1];
      if (last) resolveOffset(last.offset);
      await heartbeat();
      if (state.plannedEnd !== undefined) {
        if (state.next >= state.plannedEnd) await this.tryRoll(partition, state, state.plannedEnd);
      } else if (state.bytes >= this.options.maxFileBytes || this.overBudget(state)) {
        await this.tryRoll(partition, state, state.next);
      }
      // Over the budget: the other partitions holding more than their share write theirs too (each under its lock).
      for (const [other, otherState] of this.partitions) {
        if (other === partition || otherState.plannedEnd !== undefined || !this.overBudget(otherState)) continue;
        void this.locked(other, async () => {
          if (this.partitions.get(other) !== otherState || this.closing || otherState.next <= otherState.start || !this.overBudget(otherState)) return;
          await this.tryRoll(other, otherState, otherState.next);
        }).catch((err: unknown) => this.options.logger.error({ err, partition: other }, 'roll over the memory budget failed'));
      }
    });
  }

  /** Whether the open rolls together pass the budget and this one holds more than its share of it. */
  private overBudget(state: PartitionState): boolean {
    let total = 0;
    for (const s of this.partitions.values()) total += s.bytes;
    return total >= this.options.maxBufferBytes && state.bytes * this.partitions.size >= total;
  }

  /** A partition's state from its committed offset and the manifest of a roll that began there. */
  private async open(partition: number): Promise<PartitionState> {
    const [committed] = await this.admin!.fetchOffsets({ groupId: this.options.group, topics: [this.options.topic] });
    const offset = committed?.partitions.find((p) => p.partition === partition)?.offset ?? '-1';
    const start = offset === '-1' ? 0n : BigInt(offset);
    const claimed = await this.readManifest(partition, start);
    const removed = await this.options.storage.cleanTemporaries(`p${partition}`);
    if (removed > 0) this.options.logger.info({ partition, removed }, 'removed temporaries a killed writer left');
    if (claimed) this.options.logger.info({ partition, start: claimed.start, end: claimed.end, files: claimed.files.length }, 'a roll was claimed before: writing it as claimed');
    return {
      start,
      next: start,
      records: [],
      letters: [],
      bytes: 0,
      openedAt: undefined,
      plannedEnd: claimed ? BigInt(claimed.end) : undefined,
      positioned: false,
      failures: 0,
      retryAt: 0,
      paused: false,
    };
  }

  private async readManifest(partition: number, start: bigint): Promise<RollManifest | undefined> {
    return readJson<RollManifest>(this.options.storage, manifestKey(this.table, partition, start));
  }

  /** A record into the open roll, or into its dead letters when it can never be archived. */
  private async take(partition: number, state: PartitionState, message: KafkaMessage, offset: bigint): Promise<void> {
    const letter = (code: string, reason: string): void => {
      this.options.logger.warn({ partition, offset: message.offset, code }, `a record cannot be archived: dead letter (${reason})`);
      state.letters.push({
        offset,
        code,
        message: {
          key: message.key,
          value: message.value,
          headers: deadLetterHeaders(message.headers, { topic: this.options.topic, partition, offset: message.offset, timestamp: message.timestamp, stage: this.options.group, code, message: reason, failedAt: new Date() }),
        },
      });
    };
    state.openedAt ??= Date.now();
    if (message.value === null) letter('record.null_value', 'a record without a value');
    else {
      try {
        const event = await this.options.decoder.decode(message.value);
        if (hourPartition(event.occurredAt) === undefined) letter('archive.time_out_of_range', `occurredAt ${event.occurredAt} is outside the years 0 to 9999`);
        else state.records.push({ event, partition, offset, bytes: message.value.length });
      } catch (err) {
        // The registry out of reach: nothing more is taken; the partition is read again from its start after a pause.
        if (!(err instanceof DecodeError) || err.canRetry) throw new RetryLater(err);
        letter(err.code, err.message);
      }
      state.bytes += message.value.length;
    }
    state.next = offset + 1n;
  }

  /** Timed rolls, and rolls waiting for another attempt. */
  private rollDue(): void {
    const now = Date.now();
    for (const [partition, state] of this.partitions) {
      if (state.openedAt === undefined) continue;
      // A claimed roll is written once all its records are read; a failed roll after its backoff.
      const due = (s: PartitionState): boolean =>
        s.openedAt !== undefined &&
        (s.failures > 0 ? now >= s.retryAt && s.next >= (s.plannedEnd ?? s.next) : s.plannedEnd === undefined && now - s.openedAt >= this.options.rollIntervalMs);
      if (!due(state)) continue;
      void this.locked(partition, async () => {
        // Decided again under the lock: a batch may have written the roll meanwhile.
        if (this.partitions.get(partition) !== state || this.closing || !due(state)) return;
        await this.tryRoll(partition, state, state.plannedEnd ?? state.next);
      }).catch((err: unknown) => this.options.logger.error({ err, partition }, 'timed roll failed'));
    }
  }

  private async rollOpen(partition: number, why: string): Promise<void> {
    const state = this.partitions.get(partition);
    if (!state || state.openedAt === undefined || state.plannedEnd !== undefined || state.next <= state.start) return;
    try {
      await this.roll(partition, state, state.next);
    } catch (err) {
      this.options.logger.warn({ err, partition, why }, 'could not write the open roll; the next owner reads it again');
    }
  }

  /** A roll that may fail: the partition keeps its records and tries again with backoff, visibly. */
  private async tryRoll(partition: number, state: PartitionState, end: bigint): Promise<void> {
    try {
      await this.roll(partition, state, end);
      if (state.paused) {
        state.paused = false;
        this.consumer!.resume([{ topic: this.options.topic, partitions: [partition] }]);
      }
    } catch (err) {
      if (err instanceof RollConflict) return;
      this.lastError = err;
      this.rolls.inc({ outcome: 'failed' });
      state.failures++;
      state.retryAt = Date.now() + backoffMs(state.failures, { initialMs: 400, maxMs: this.options.retryMaxMs });
      this.options.logger.warn({ err, partition, attempt: state.failures, retryInMs: Math.round(state.retryAt - Date.now()) }, 'writing a roll failed; its records stay buffered and it is tried again');
      // A full roll, or a claimed one, reads no further until it is written: memory stays bounded.
      if ((state.bytes >= this.options.maxFileBytes || state.plannedEnd !== undefined || this.overBudget(state)) && !state.paused) {
        state.paused = true;
        this.consumer!.pause([{ topic: this.options.topic, partitions: [partition] }]);
      }
    }
  }

  /** Claims the roll [start, end), writes its files and dead letters, then commits `end`. */
  private async roll(partition: number, state: PartitionState, end: bigint): Promise<void> {
    // A roll holds at least one offset: an empty claim would stop the partition at its start for good.
    if (end <= state.start) throw new Error(`a roll of partition ${partition} from ${state.start} cannot end at ${end}`);
    const timer = this.rollSeconds.startTimer();
    const rows = state.records.filter((r) => r.offset < end);
    const letters = state.letters.filter((l) => l.offset < end);
    const files = planFiles(this.table, partition, rows);
    const key = manifestKey(this.table, partition, state.start);
    if (state.plannedEnd === undefined) {
      const manifest: RollManifest = {
        topic: this.options.topic,
        partition,
        start: state.start.toString(),
        end: end.toString(),
        files: files.map((f) => f.key),
        rows: rows.length,
        deadLetters: letters.length,
      };
      if (!(await this.options.storage.create(key, Buffer.from(JSON.stringify(manifest))))) {
        const claimed = await this.readManifest(partition, state.start);
        if (claimed?.end !== end.toString()) {
          // Another writer claimed this roll with other bounds: read again from the start and follow its claim.
          this.rolls.inc({ outcome: 'conflict' });
          this.options.logger.warn({ partition, start: state.start.toString(), ours: end.toString(), claimed: claimed?.end }, 'another writer claimed this roll; following its claim');
          this.forget(partition);
          throw new RollConflict();
        }
      }
    }
    if (letters.length > 0) {
      await this.producer!.send({ topic: dlqTopicOf(this.options.topic), acks: -1, messages: letters.map((l) => l.message) });
    }
    let bytes = 0;
    for (const file of files) {
      const body = await encodeParquet(file.rows);
      await this.options.storage.put(file.key, body);
      bytes += body.length;
    }
    await this.commit(partition, end);
    // Written and committed: the roll is done.
    for (const l of letters) this.deadLetters.inc({ code: l.code });
    this.rows.inc(rows.length);
    this.files.inc(files.length);
    this.written.inc(bytes);
    this.rolls.inc({ outcome: 'written' });
    timer();
    state.start = end;
    state.records = state.records.filter((r) => r.offset >= end);
    state.letters = state.letters.filter((l) => l.offset >= end);
    state.bytes = state.records.reduce((n, r) => n + (r.bytes ?? 0), 0) + state.letters.reduce((n, l) => n + (l.message.value?.length ?? 0), 0);
    state.openedAt = state.records.length + state.letters.length > 0 ? Date.now() : undefined;
    state.plannedEnd = undefined;
    state.failures = 0;
    this.options.logger.debug({ partition, end: end.toString(), rows: rows.length, files: files.length }, 'roll written');
  }

  private async commit(partition: number, end: bigint): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.consumer!.commitOffsets([{ topic: this.options.topic, partition, offset: end.toString() }]);
        return;
      } catch (err) {
        // The partition may have moved to another member: its next owner writes this roll again as claimed.
        if (attempt >= 3) {
          this.forget(partition);
          throw err;
        }
        await sleep(200 * attempt);
      }
    }
  }

  /**
   * Drops what was read of the partition and reads it again from where its roll started: the next batch
   * opens it from the committed offset (and the manifest of a roll begun there).
   */
  private forget(partition: number, seek = true): void {
    const state = this.partitions.get(partition);
    this.partitions.delete(partition);
    if (!state) return;
    if (state.paused) this.consumer?.resume([{ topic: this.options.topic, partitions: [partition] }]);
    if (seek) this.consumer?.seek({ topic: this.options.topic, partition, offset: state.start.toString() });
  }
}
