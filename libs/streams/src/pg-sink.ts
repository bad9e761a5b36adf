import { backoffMs, postgresErrorKind, recordAttributes, sqlState, startRecordSpans, withTransaction, type Logger } from '@sluice/runtime';
import type { Consumer, EachBatchPayload, Kafka, KafkaMessage, Message, Producer } from 'kafkajs';
import type { Pool, PoolClient } from 'pg';
import { Counter, type Registry } from 'prom-client';
import { deadLetterHeaders } from './headers';
import { uninstrumentedConsumer } from './traced';

export interface SinkBatch {
  topic: string;
  partition: number;
  messages: KafkaMessage[];
  /**
   * Sends `message` to `<topic>.dlq` with the dead-letter headers, once this batch commits (before its
   * offsets do): a record this stage can never apply. Not available when the sink has no `stage`.
   */
  deadLetter(message: KafkaMessage, code: string, reason: string): void;
}

export interface PostgresSinkOptions<R> {
  kafka: Kafka;
  topics: string[];
  group: string;
  pool: Pool;
  /** Table with (consumer_group, topic, partition, next_offset): the sink's position, written in the same transaction as the data. */
  offsetsTable: string;
  /** Writes what a batch means, inside the transaction. Throwing rolls it back and pauses the partition. */
  apply(client: PoolClient, batch: SinkBatch): Promise<R>;
  /** After the transaction committed. */
  committed?(result: R, batch: Omit<SinkBatch, 'deadLetter'>): void;
  /** The result of a batch written record by record (after a refused record), from each record's. @default the last one */
  combine?(results: R[]): R;
  logger: Logger;
  sessionTimeoutMs: number;
  retryMaxMs: number;
  /**
   * The stage name on dead letters. With it, a record that Postgres refuses (a data error, or any error
   * that repeats for that record alone while Postgres answers) goes to `<topic>.dlq` with code
   * `pg.<sqlstate>` and its partition flows on. Without it (a sink that must never drop a record), such a
   * record is retried with backoff, visibly.
   */
  stage?: string;
  metrics?: Registry;
  /** The name of each record's span (`<spanName> <topic>`), when spans are recorded. @default sink */
  spanName?: string;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Kafka into Postgres exactly once: the data of a batch and the partition's
 * next offset are written in one Postgres transaction, and a partition starts
 * from the offset stored there whatever Kafka thinks the group committed
 * (those commits exist only so that lag can be watched). When Postgres fails,
 * the partition is paused and retried with backoff, and `healthy` is false
 * until Postgres answers again.
 */
export class PostgresSink<R> {
  private consumer: Consumer | undefined;
  /** Partitions whose stored offset was checked since they were assigned. */
  private readonly positioned = new Set<string>();
  private postgresDown = false;
  private recovering: Promise<void> | undefined;
  private closing: Promise<void> | undefined;
  private producer: Producer | undefined;
  private readonly deadLetters: Counter<'code'> | undefined;
  /** Consecutive failures of a partition that Postgres did not explain (no outage): its backoff. */
  private readonly failures = new Map<string, number>();

  constructor(private readonly options: PostgresSinkOptions<R>) {
    if (!/^[a-z_][a-z0-9_.]*$/.test(options.offsetsTable)) throw new Error(`invalid table name "${options.offsetsTable}"`);
    this.deadLetters = options.metrics
      ? new Counter({ name: 'sink_dead_letters_total', help: 'Records a Postgres sink sent to their dead-letter topic, by code', labelNames: ['code'], registers: [options.metrics] })
      : undefined;
  }

  get healthy(): boolean {
    return !this.postgresDown;
  }

  async start(): Promise<void> {
    const consumer = uninstrumentedConsumer(this.options.kafka)({
      groupId: this.options.group,
      readUncommitted: false,
      maxWaitTimeInMs: 100,
      allowAutoTopicCreation: false,
      sessionTimeout: this.options.sessionTimeoutMs,
      heartbeatInterval: Math.max(500, Math.floor(this.options.sessionTimeoutMs / 10)),
    });
    this.consumer = consumer;
    if (this.options.stage !== undefined) {
      this.producer = this.options.kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
      await this.producer.connect();
    }
    consumer.on(consumer.events.GROUP_JOIN, () => {
      this.positioned.clear();
      // kafkajs keeps partitions paused across rebalances: with Postgres back, none may stay paused.
      if (!this.postgresDown) this.resumePaused();
    });
    await consumer.connect();
    for (const topic of this.options.topics) await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({ autoCommit: false, eachBatchAutoResolve: false, partitionsConsumedConcurrently: 1, eachBatch: (payload) => this.onBatch(payload) });
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      await this.consumer?.disconnect();
      await this.producer?.disconnect();
    })();
    return this.closing;
  }

  private async storedOffset(topic: string, partition: number): Promise<bigint | undefined> {
    const res = await this.options.pool.query<{ next_offset: string }>(
      `select next_offset from ${this.options.offsetsTable} where consumer_group = $1 and topic = $2 and partition = $3`,
      [this.options.group, topic, partition],
    );
    const value = res.rows[0]?.next_offset;
    return value === undefined ? undefined : BigInt(value);
  }

  private async onBatch({ batch, resolveOffset, heartbeat, isRunning, isStale }: EachBatchPayload): Promise<void> {
    const consumer = this.consumer!;
    const { topic, partition } = batch;
    const id = `${topic}:${partition}`;
    if (!isRunning() || isStale()) return;
    if (this.postgresDown) {
      // Fetched before the pause took effect: read again once Postgres answers.
      consumer.seek({ topic, partition, offset: batch.firstOffset() ?? '0' });
      consumer.pause([{ topic, partitions: [partition] }]);
      return;
    }
    let messages = batch.messages;
    let result: R;
    let last: string | undefined;
    try {
      if (!this.positioned.has(id)) {
        const stored = await this.storedOffset(topic, partition);
        this.positioned.add(id);
        if (stored !== undefined) {
          messages = messages.filter((m) => BigInt(m.offset) >= stored);
          if (messages.length === 0) {
            if (stored > BigInt(batch.lastOffset())) consumer.seek({ topic, partition, offset: stored.toString() });
            return;
          }
        }
      }
      last = messages[messages.length - 1]!.offset;
      result = await this.write(topic, partition, messages, last, false);
    } catch (err) {
      if (last! !== undefined && postgresErrorKind(err) !== 'unavailable' && (await this.answers())) {
        // Postgres answers: the batch holds a record it refuses. Each record alone, each in a savepoint:
        // the ones it refuses again are dead letters (or, without a stage, the partition waits and retries).
        try {
          result = await this.write(topic, partition, messages, last, true);
        } catch (again) {
          this.retryLater(id, topic, partition, batch.firstOffset() ?? '0', again, postgresErrorKind(again) === 'unavailable');
          return;
        }
      } else {
        this.retryLater(id, topic, partition, batch.firstOffset() ?? '0', err, true);
        return;
      }
    }
    this.failures.delete(id);
    // Kafka's own failures from here on (a rebalance, a coordinator moving) are kafkajs' to handle, not an outage of Postgres.
    this.options.committed?.(result, { topic, partition, messages });
    resolveOffset(last);
    await consumer.commitOffsets([{ topic, partition, offset: (BigInt(last) + 1n).toString() }]).catch(() => undefined);
    await heartbeat();
  }

  /**
   * One transaction: the batch (or, `isolated`, each record in a savepoint of its own, a refused one
   * becoming a dead letter) and the partition's next offset. Dead letters are sent before the commit,
   * at least once: the dead-letter index keeps one entry per original record and stage.
   */
  private async write(topic: string, partition: number, messages: KafkaMessage[], last: string, isolated: boolean): Promise<R> {
    // With spans recorded, one per record, the child of the span that produced it, ending with the commit.
    const spans = startRecordSpans(`${this.options.spanName ?? 'sink'} ${topic}`, messages, (m) => ({ headers: m.headers, attributes: recordAttributes(topic, partition, m.offset) }));
    try {
      const result = await this.writeTransaction(topic, partition, messages, last, isolated);
      spans.end();
      return result;
    } catch (err) {
      spans.end(err);
      throw err;
    }
  }

  private async writeTransaction(topic: string, partition: number, messages: KafkaMessage[], last: string, isolated: boolean): Promise<R> {
    const next = (BigInt(last) + 1n).toString();
    return withTransaction(this.options.pool, async (client) => {
      const letters: Message[] = [];
      const deadLetter = (message: KafkaMessage, code: string, reason: string): void => {
        if (this.options.stage === undefined) throw new Error(`no dead letters from this sink (${code}: ${reason})`);
        letters.push({
          key: message.key,
          value: message.value,
          headers: deadLetterHeaders(message.headers, { topic, partition, offset: message.offset, timestamp: message.timestamp, stage: this.options.stage, code, message: reason, failedAt: new Date() }),
        });
        this.deadLetters?.inc({ code });
      };
      let applied: R | undefined;
      if (!isolated) applied = await this.options.apply(client, { topic, partition, messages, deadLetter });
      else {
        const results: R[] = [];
        for (const message of messages) {
          await client.query('savepoint sluice_record');
          const before = letters.length;
          try {
            results.push(await this.options.apply(client, { topic, partition, messages: [message], deadLetter }));
            await client.query('release savepoint sluice_record');
          } catch (err) {
            letters.length = before;
            await client.query('rollback to savepoint sluice_record');
            if (postgresErrorKind(err) === 'unavailable' || this.options.stage === undefined) throw err;
            const state = sqlState(err);
            this.options.logger.warn({ err, topic, partition, offset: message.offset, sqlState: state ?? null }, 'Postgres refuses this record: dead letter');
            deadLetter(message, `pg.${state ?? 'failed'}`, err instanceof Error ? err.message : String(err));
          }
        }
        applied = this.options.combine ? this.options.combine(results) : results.at(-1);
      }
      if (letters.length > 0) await this.producer!.send({ topic: `${topic}.dlq`, acks: -1, messages: letters });
      await client.query(
        `insert into ${this.options.offsetsTable} (consumer_group, topic, partition, next_offset) values ($1, $2, $3, $4)
         on conflict (consumer_group, topic, partition) do update set next_offset = excluded.next_offset, updated_at = now()`,
        [this.options.group, topic, partition, next],
      );
      return applied as R;
    });
  }

  /** Whether Postgres answers now (a failure it does not explain is then about the data). */
  private async answers(): Promise<boolean> {
    try {
      await this.options.pool.query('select 1');
      return true;
    } catch {
      return false;
    }
  }

  /**
   * The batch is read again later. An outage pauses every partition that fails until Postgres answers;
   * a failure Postgres does not explain (this sink has no dead letters, or producing them failed) waits
   * with a growing backoff on that partition alone, logged at warn each time.
   */
  private retryLater(id: string, topic: string, partition: number, from: string, err: unknown, outage: boolean): void {
    const consumer = this.consumer!;
    this.positioned.delete(id);
    consumer.seek({ topic, partition, offset: from });
    consumer.pause([{ topic, partitions: [partition] }]);
    if (outage) {
      this.options.logger.warn({ err, topic, partition }, 'writing to Postgres failed; pausing the partition until Postgres answers');
      this.postgresDown = true;
      this.recovering ??= this.recover().finally(() => (this.recovering = undefined));
      return;
    }
    const failures = (this.failures.get(id) ?? 0) + 1;
    this.failures.set(id, failures);
    const wait = backoffMs(failures, { initialMs: 100, maxMs: this.options.retryMaxMs });
    this.options.logger.warn({ err, topic, partition, failures, retryInMs: wait }, 'a record of this partition cannot be written and is not a dead letter; retrying');
    setTimeout(() => {
      if (this.closing || this.postgresDown) return;
      try {
        consumer.resume([{ topic, partitions: [partition] }]);
      } catch {
        // Restarting: its next group join resumes what is paused.
      }
    }, wait).unref();
  }

  /** Resumes every partition kafkajs holds paused; false when the consumer cannot take it now (it is restarting). */
  private resumePaused(): boolean {
    const consumer = this.consumer;
    if (!consumer) return false;
    try {
      const paused = consumer.paused();
      if (paused.length > 0) {
        this.options.logger.info({ paused }, 'resuming partitions paused while Postgres was down');
        consumer.resume(paused);
      }
      return true;
    } catch (err) {
      this.options.logger.warn({ err }, 'the consumer cannot resume partitions now (it is restarting); trying again');
      return false;
    }
  }

  /** Tries Postgres with backoff; once it answers, resumes every paused partition. */
  private async recover(): Promise<void> {
    for (let attempt = 1; !this.closing; attempt++) {
      await sleep(backoffMs(attempt, { initialMs: 100, maxMs: this.options.retryMaxMs }));
      try {
        await this.options.pool.query('select 1');
        break;
      } catch {
        // Still down: the next wait is longer.
      }
    }
    this.postgresDown = false;
    if (this.closing) return;
    this.options.logger.info('Postgres answers again; resuming');
    // A consumer that is restarting cannot resume yet; its next group join resumes what is paused.
    while (!this.closing && !this.resumePaused()) await sleep(Math.min(this.options.retryMaxMs, 1_000));
  }
}
