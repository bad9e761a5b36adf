import { randomBytes } from 'node:crypto';
import { context } from '@opentelemetry/api';
import { backoffMs, extractTraceContext, isTransientKafkaError, withClient, type Logger } from '@sluice/runtime';
import { followTopic } from '@sluice/streams';
import type { Admin, Kafka, Producer } from 'kafkajs';
import type { Pool } from 'pg';
import { Counter, type Registry } from 'prom-client';
import type { ReplayerStore, ReplayItem } from './store';

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export interface WorkerOptions {
  kafka: Kafka;
  pool: Pool;
  store: ReplayerStore;
  logger: Logger;
  metrics: Registry;
}

/**
 * Runs replays: produces each selected dead letter (original key, value and
 * headers, plus dlq.replay.id and dlq.replay.count) to its target partition at
 * the replay's rate, and marks it replayed only after Kafka acknowledged it.
 * A replay is held by one worker at a time (a Postgres session lock), so
 * replicas never run one twice. If a process dies between the acknowledgement
 * and the mark, the record is looked for in its partition from where it was
 * produced, so it is never produced twice. While Kafka is unavailable (a broker
 * lost, a leader moving), a record is tried again with backoff, without limit
 * but visibly (a warning per attempt, `dlq_replay_retries_total`): an outage
 * never marks records failed. Other errors mark the record failed.
 */
export class ReplayWorker {
  private producer: Producer | undefined;
  private admin: Admin | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopping = false;
  private readonly replayed: Counter<'topic'>;
  private readonly retries: Counter;
  private readonly partitionCounts = new Map<string, number>();

  constructor(private readonly options: WorkerOptions) {
    this.replayed = new Counter({ name: 'dlq_replayed_total', help: 'Dead letters produced again by replays', labelNames: ['topic'], registers: [options.metrics] });
    this.retries = new Counter({ name: 'dlq_replay_retries_total', help: 'Replayed records tried again because Kafka was unavailable', registers: [options.metrics] });
  }

  async start(): Promise<void> {
    await this.connectedProducer();
    this.admin = this.options.kafka.admin();
    await this.admin.connect();
    this.timer = setInterval(() => this.poke(), 1_000);
    this.poke();
  }

  /** The idempotent producer, created (and connected) when there is none. */
  private async connectedProducer(): Promise<Producer> {
    if (!this.producer) {
      const producer = this.options.kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
      await producer.connect();
      this.producer = producer;
    }
    return this.producer;
  }

  /** A send that failed may have written its record: its producer's sequence numbers are not reused. */
  private async dropProducer(): Promise<void> {
    const producer = this.producer;
    this.producer = undefined;
    await producer?.disconnect().catch(() => undefined);
  }

  /** How many partitions `topic` has (asked once per topic): a replay picks the partition its key had. */
  async partitionsOf(topic: string): Promise<number> {
    let count = this.partitionCounts.get(topic);
    if (count === undefined) {
      const metadata = await this.admin!.fetchTopicMetadata({ topics: [topic] });
      count = metadata.topics[0]?.partitions.length ?? 1;
      this.partitionCounts.set(topic, count);
    }
    return count;
  }

  /** Looks for running replays now (after one was created, say). */
  poke(): void {
    if (this.stopping || this.running) return;
    this.running = this.runAll()
      .catch((err: unknown) => this.options.logger.error({ err }, 'replay worker failed'))
      .finally(() => (this.running = undefined));
  }

  private async runAll(): Promise<void> {
    for (const id of await this.options.store.runningReplays()) {
      if (this.stopping) return;
      // The advisory lock belongs to this session: the same connection takes and frees it.
      await withClient(this.options.pool, async (lock) => {
        const { rows } = await lock.query<{ locked: boolean }>('select pg_try_advisory_lock(hashtext($1)) as locked', [id]);
        if (!rows[0]?.locked) return;
        try {
          await this.run(id);
        } finally {
          await lock.query('select pg_advisory_unlock(hashtext($1))', [id]).catch(() => undefined);
        }
      });
    }
  }

  private async run(replayId: string): Promise<void> {
    const replay = await this.options.store.replay(replayId);
    if (!replay || replay.status !== 'running') return;
    const intervalMs = 1000 / replay.ratePerSec;
    const items = await this.options.store.openItems(replayId);
    this.options.logger.info({ replayId, open: items.length }, 'running replay');
    let next = Date.now();
    for (const item of items) {
      if (this.stopping) return;
      if ((await this.options.store.replayStatus(replayId)) !== 'running') {
        this.options.logger.info({ replayId }, 'replay cancelled');
        return;
      }
      const wait = next - Date.now();
      if (wait > 0) await sleep(wait);
      next = Math.max(next, Date.now()) + intervalMs;
      for (let attempt = 1; ; attempt++) {
        try {
          await this.replayItem(replayId, item);
          break;
        } catch (err) {
          if (isTransientKafkaError(err) && !this.stopping) {
            await this.dropProducer();
            const waitMs = backoffMs(attempt, { initialMs: 250, maxMs: 5_000 });
            this.retries.inc();
            this.options.logger.warn({ err, replayId, deadLetterId: item.deadLetterId, attempt, backoffMs: waitMs }, 'Kafka unavailable while replaying a record; trying it again');
            await sleep(waitMs);
            if ((await this.options.store.replayStatus(replayId)) !== 'running') return;
            continue;
          }
          // Stopping: the record stays open and the replay resumes with it after a restart.
          if (this.stopping) return;
          this.options.logger.warn({ err, replayId, deadLetterId: item.deadLetterId }, 'replaying a record failed');
          await this.options.store.markItem(replayId, item.deadLetterId, 'failed', err instanceof Error ? err.message : String(err));
          break;
        }
      }
    }
    if (!this.stopping) await this.options.store.setReplayStatus(replayId, 'completed');
  }

  private async replayItem(replayId: string, item: ReplayItem): Promise<void> {
    if (item.status === 'producing' && item.produceFrom !== null) {
      const found = await this.findProduced(replayId, item);
      if (found !== undefined) {
        await this.options.store.markReplayed(replayId, item.deadLetterId, found);
        return;
      }
    }
    const deadLetter = await this.options.store.get(item.deadLetterId);
    if (!deadLetter) throw new Error(`dead letter ${item.deadLetterId} is gone`);
    const [end] = (await this.admin!.fetchTopicOffsets(item.targetTopic)).filter((o) => o.partition === item.targetPartition);
    await this.options.store.markProducing(replayId, item.deadLetterId, end?.high ?? '0');
    // A send that fails may still have written the record: a later attempt looks for it from here first.
    item.status = 'producing';
    item.produceFrom = end?.high ?? '0';
    // The original headers, byte for byte (the raw copy when the index had to escape them), without the dead-letter ones.
    const original: [string, string | Buffer][] = deadLetter.rawHeaders
      ? deadLetter.rawHeaders.map(([name, value]) => [Buffer.from(name, 'base64').toString('utf8'), Buffer.from(value, 'base64')])
      : Object.entries(deadLetter.headers);
    // fromEntries defines each name as an own property (`headers[name] = value` would drop `__proto__`).
    const headers: Record<string, string | Buffer> = Object.fromEntries([
      ...original.filter(([name]) => !name.startsWith('dlq.')),
      ['dlq.replay.id', replayId],
      ['dlq.replay.count', String(deadLetter.replayCount + 1)],
      ['dlq.replay.item', item.deadLetterId],
    ]);
    // Produced in the record's own trace: the replay is one more step of its history.
    const producer = await this.connectedProducer();
    const [meta] = await context.with(extractTraceContext(deadLetter.headers), () =>
      producer.send({
        topic: item.targetTopic,
        acks: -1,
        messages: [{ key: deadLetter.key, value: deadLetter.value, headers, partition: item.targetPartition }],
      }),
    );
    await this.options.store.markReplayed(replayId, item.deadLetterId, meta?.baseOffset ?? '-1');
    this.replayed.inc({ topic: item.targetTopic });
  }

  /** After a crash: the offset of this item's record if it was produced, by its replay id and item header. */
  private async findProduced(replayId: string, item: ReplayItem): Promise<string | undefined> {
    let found: string | undefined;
    const follower = await followTopic(this.options.kafka, item.targetTopic, {
      clientId: `dlq-replayer-check-${randomBytes(3).toString('hex')}`,
      partitions: new Set([item.targetPartition]),
      startAt: new Map([[item.targetPartition, item.produceFrom!]]),
      onRecord: (_partition, message) => {
        const h = message.headers ?? {};
        if (String(h['dlq.replay.id'] ?? '') === replayId && String(h['dlq.replay.item'] ?? '') === item.deadLetterId) found = message.offset;
      },
    });
    await follower.caughtUp;
    await follower.stop();
    return found;
  }

  async close(): Promise<void> {
    this.stopping = true;
    clearInterval(this.timer);
    await this.running;
    await this.producer?.disconnect();
    await this.admin?.disconnect();
  }
}
