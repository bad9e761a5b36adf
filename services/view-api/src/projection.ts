import { DecodeError, type Decoder, type WindowAggregate } from '@sluice/contracts';
import type { Logger } from '@sluice/runtime';
import type { Consumer, EachBatchPayload, Kafka, Producer } from 'kafkajs';
import { Counter, type Registry } from 'prom-client';
import type { Positioned, ViewStore } from './store';

export interface ProjectionOptions {
  kafka: Kafka;
  topic: string;
  group: string;
  store: ViewStore;
  decoder: Decoder<WindowAggregate>;
  logger: Logger;
  metrics: Registry;
  retryMaxMs: number;
  sessionTimeoutMs: number;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Projects the aggregates topic into Postgres exactly once: the rows and the
 * next offset of their partition are written in one Postgres transaction, and
 * a partition starts from the offset stored there, whatever Kafka thinks the
 * group committed (those commits exist only so lag can be watched).
 * When Postgres fails, the partition is paused and retried with backoff, and
 * the service reports not ready until Postgres answers again.
 */
export class Projection {
  private consumer: Consumer | undefined;
  private dlqProducer: Producer | undefined;
  /** Partitions whose stored offset was checked since they were assigned. */
  private readonly positioned = new Set<number>();
  private readonly paused = new Set<number>();
  private postgresDown = false;
  private recovering: Promise<void> | undefined;
  private closing: Promise<void> | undefined;
  private readonly applied: Counter<never>;
  private readonly deadLetters: Counter<'code'>;

  constructor(private readonly options: ProjectionOptions) {
    this.applied = new Counter({ name: 'view_projected_rows_total', help: 'Window rows written to Postgres', registers: [options.metrics] });
    this.deadLetters = new Counter({ name: 'view_dead_letters_total', help: 'Aggregate records sent to the dead-letter topic', labelNames: ['code'], registers: [options.metrics] });
  }

  get healthy(): boolean {
    return !this.postgresDown;
  }

  async start(): Promise<void> {
    const { kafka, topic, group } = this.options;
    this.dlqProducer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
    await this.dlqProducer.connect();
    const consumer = kafka.consumer({
      groupId: group,
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
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({ autoCommit: false, eachBatchAutoResolve: false, partitionsConsumedConcurrently: 1, eachBatch: (payload) => this.onBatch(payload) });
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      await this.consumer?.disconnect();
      await this.dlqProducer?.disconnect();
    })();
    return this.closing;
  }

  private async onBatch({ batch, resolveOffset, heartbeat, isRunning, isStale }: EachBatchPayload): Promise<void> {
    const consumer = this.consumer!;
    const { topic, partition } = batch;
    if (this.paused.has(partition) || !isRunning() || isStale()) return;
    try {
      let messages = batch.messages;
      if (!this.positioned.has(partition)) {
        const stored = await this.options.store.storedOffset(this.options.group, topic, partition);
        this.positioned.add(partition);
        if (stored !== undefined) {
          messages = messages.filter((m) => BigInt(m.offset) >= stored);
          if (messages.length === 0) {
            if (stored > BigInt(batch.lastOffset())) consumer.seek({ topic, partition, offset: stored.toString() });
            return;
          }
        }
      }
      const records: Positioned[] = [];
      for (const message of messages) {
        if (message.value === null) continue;
        try {
          records.push({ record: await this.options.decoder.decode(message.value), partition, offset: message.offset });
        } catch (err) {
          if (!(err instanceof DecodeError) || err.canRetry) throw err;
          await this.deadLetter(topic, partition, message.offset, message.timestamp, message.key, message.value, message.headers ?? {}, err);
        }
      }
      const last = messages[messages.length - 1]!.offset;
      const changes = await this.options.store.apply(this.options.group, topic, partition, records, BigInt(last) + 1n);
      this.applied.inc(changes.length);
      resolveOffset(last);
      await consumer.commitOffsets([{ topic, partition, offset: (BigInt(last) + 1n).toString() }]).catch(() => undefined);
      await heartbeat();
    } catch (err) {
      this.options.logger.warn({ err, topic, partition }, 'projection failed; pausing the partition until Postgres answers');
      this.positioned.delete(partition);
      consumer.seek({ topic, partition, offset: batch.firstOffset() ?? '0' });
      this.pause(topic, partition);
    }
  }

  private pause(topic: string, partition: number): void {
    this.paused.add(partition);
    this.consumer!.pause([{ topic, partitions: [partition] }]);
    this.postgresDown = true;
    this.recovering ??= this.recover(topic).finally(() => (this.recovering = undefined));
  }

  /** Tries Postgres with backoff; once it answers, resumes every paused partition. */
  private async recover(topic: string): Promise<void> {
    let wait = 100;
    while (!this.closing) {
      await sleep(wait);
      try {
        await this.options.store.ping();
        break;
      } catch {
        wait = Math.min(this.options.retryMaxMs, wait * 2);
      }
    }
    this.postgresDown = false;
    const partitions = [...this.paused];
    this.paused.clear();
    if (!this.closing && partitions.length > 0) {
      this.options.logger.info({ partitions }, 'Postgres answers again; resuming');
      this.consumer!.resume([{ topic, partitions }]);
    }
  }

  /** Records that can never be projected go to <topic>.dlq; at least once, the replayer's index keys them by position. */
  private async deadLetter(
    topic: string,
    partition: number,
    offset: string,
    timestamp: string,
    key: Buffer | null,
    value: Buffer,
    headers: Record<string, unknown>,
    err: DecodeError,
  ): Promise<void> {
    await this.dlqProducer!.send({
      topic: `${topic}.dlq`,
      acks: -1,
      messages: [
        {
          key,
          value,
          headers: {
            ...(headers as Record<string, string>),
            'dlq.original.topic': topic,
            'dlq.original.partition': String(partition),
            'dlq.original.offset': offset,
            'dlq.original.timestamp': timestamp,
            'dlq.stage': this.options.group,
            'dlq.error.code': err.code,
            'dlq.error.message': err.message.slice(0, 1000),
            'dlq.failed.at': new Date().toISOString(),
          },
        },
      ],
    });
    this.deadLetters.inc({ code: err.code });
  }
}
