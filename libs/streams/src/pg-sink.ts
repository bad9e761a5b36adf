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
  private readonly paused = new Map<string, { topic: string; partition: number }>();
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
      this.paused.clear();
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
    if (this.paused.has(id) || !isRunning() || isStale()) return;
    try {
      let messages = batch.messages;
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
      const last = messages[messages.length - 1]!.offset;
      const next = (BigInt(last) + 1n).toString();
      const result = await withTransaction(this.options.pool, async (client) => {
        const applied = await this.options.apply(client, { topic, partition, messages });
        await client.query(
          `insert into ${this.options.offsetsTable} (consumer_group, topic, partition, next_offset) values ($1, $2, $3, $4)
           on conflict (consumer_group, topic, partition) do update set next_offset = excluded.next_offset, updated_at = now()`,
          [this.options.group, topic, partition, next],
        );
        return applied;
      });
      this.options.committed?.(result, { topic, partition, messages });
      resolveOffset(last);
      await consumer.commitOffsets([{ topic, partition, offset: next }]).catch(() => undefined);
      await heartbeat();
    } catch (err) {
      this.options.logger.warn({ err, topic, partition }, 'writing to Postgres failed; pausing the partition until Postgres answers');
      this.positioned.delete(id);
      consumer.seek({ topic, partition, offset: batch.firstOffset() ?? '0' });
      this.paused.set(id, { topic, partition });
      consumer.pause([{ topic, partitions: [partition] }]);
      this.postgresDown = true;
      this.recovering ??= this.recover().finally(() => (this.recovering = undefined));
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
    const paused = [...this.paused.values()];
    this.paused.clear();
    if (this.closing || paused.length === 0) return;
    this.options.logger.info({ paused }, 'Postgres answers again; resuming');
    for (const topic of new Set(paused.map((p) => p.topic))) {
      this.consumer!.resume([{ topic, partitions: paused.filter((p) => p.topic === topic).map((p) => p.partition) }]);
    }
  }
}
