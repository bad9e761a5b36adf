import { withTransaction, type Logger } from '@sluice/runtime';
import type { Consumer, EachBatchPayload, Kafka, KafkaMessage } from 'kafkajs';
import type { Pool, PoolClient } from 'pg';

export interface SinkBatch {
  topic: string;
  partition: number;
  messages: KafkaMessage[];
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
  committed?(result: R, batch: SinkBatch): void;
  logger: Logger;
  sessionTimeoutMs: number;
  retryMaxMs: number;
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

  constructor(private readonly options: PostgresSinkOptions<R>) {
    if (!/^[a-z_][a-z0-9_.]*$/.test(options.offsetsTable)) throw new Error(`invalid table name "${options.offsetsTable}"`);
  }

  get healthy(): boolean {
    return !this.postgresDown;
  }

  async start(): Promise<void> {
    const consumer = this.options.kafka.consumer({
      groupId: this.options.group,
      readUncommitted: false,
      maxWaitTimeInMs: 100,
      allowAutoTopicCreation: false,
      sessionTimeout: this.options.sessionTimeoutMs,
      heartbeatInterval: Math.max(500, Math.floor(this.options.sessionTimeoutMs / 10)),
    });
    this.consumer = consumer;
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
    let last: string;
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
      const next = (BigInt(last) + 1n).toString();
      result = await withTransaction(this.options.pool, async (client) => {
        const applied = await this.options.apply(client, { topic, partition, messages });
        await client.query(
          `insert into ${this.options.offsetsTable} (consumer_group, topic, partition, next_offset) values ($1, $2, $3, $4)
           on conflict (consumer_group, topic, partition) do update set next_offset = excluded.next_offset, updated_at = now()`,
          [this.options.group, topic, partition, next],
        );
        return applied;
      });
    } catch (err) {
      this.options.logger.warn({ err, topic, partition }, 'writing to Postgres failed; pausing the partition until Postgres answers');
      this.positioned.delete(id);
      consumer.seek({ topic, partition, offset: batch.firstOffset() ?? '0' });
      consumer.pause([{ topic, partitions: [partition] }]);
      this.postgresDown = true;
      this.recovering ??= this.recover().finally(() => (this.recovering = undefined));
      return;
    }
    // Kafka's own failures from here on (a rebalance, a coordinator moving) are kafkajs' to handle, not an outage of Postgres.
    this.options.committed?.(result, { topic, partition, messages });
    resolveOffset(last);
    await consumer.commitOffsets([{ topic, partition, offset: (BigInt(last) + 1n).toString() }]).catch(() => undefined);
    await heartbeat();
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
    let wait = 100;
    while (!this.closing) {
      await sleep(wait);
      try {
        await this.options.pool.query('select 1');
        break;
      } catch {
        wait = Math.min(this.options.retryMaxMs, wait * 2);
      }
    }
    this.postgresDown = false;
    if (this.closing) return;
    this.options.logger.info('Postgres answers again; resuming');
    // A consumer that is restarting cannot resume yet; its next group join resumes what is paused.
    while (!this.closing && !this.resumePaused()) await sleep(Math.min(this.options.retryMaxMs, 1_000));
  }
}
