import { backoffMs } from '@sluice/runtime';
import type { Kafka, KafkaMessage } from 'kafkajs';
import { classifyFailure } from './errors';
import { followTopic, type Follower } from './follow';

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * A compacted topic held in memory as a table, key → decoded value, on every
 * instance (all partitions). Tombstones delete. A record whose decoding fails
 * for a reason that passes (the registry unavailable) is tried again, in
 * order, until it decodes, each failure reported through `onRetry`; one that
 * can never decode is handed to `onBadRecord` (which dead-letters it), never
 * dropped silently.
 */
export class GlobalTable<V> {
  private readonly rows = new Map<string, V>();
  private follower: Follower | undefined;

  constructor(
    private readonly kafka: Kafka,
    readonly topic: string,
    private readonly decode: (value: Buffer) => Promise<V>,
    private readonly onBadRecord: (err: unknown, partition: number, message: KafkaMessage) => Promise<void> | void,
    private readonly onRetry: (err: unknown, attempt: number, partition: number, offset: string) => void = () => undefined,
  ) {}

  get size(): number {
    return this.rows.size;
  }

  get(key: string): V | undefined {
    return this.rows.get(key);
  }

  /** Starts following the topic; resolves once the table holds everything that was in it at start. */
  async start(): Promise<void> {
    // Decoding is asynchronous (the registry may be asked for a schema); a chain keeps the topic's order.
    let chain = Promise.resolve();
    this.follower = await followTopic(this.kafka, this.topic, {
      clientId: 'global-table',
      onRecord: (partition, message) => {
        const key = message.key?.toString();
        if (key === undefined) return;
        const value = message.value;
        chain = chain.then(async () => {
          if (value === null) {
            this.rows.delete(key);
            return;
          }
          for (let attempt = 1; ; attempt++) {
            try {
              this.rows.set(key, await this.decode(value));
              return;
            } catch (err) {
              if (classifyFailure(err) !== 'retry' || this.stopped) {
                if (!this.stopped) await this.onBadRecord(err, partition, message);
                return;
              }
              this.onRetry(err, attempt, partition, message.offset);
              await sleep(backoffMs(attempt, { initialMs: 200, maxMs: 5_000 }));
            }
          }
        });
      },
    });
    await this.follower.caughtUp;
    await chain;
  }

  private stopped = false;

  async stop(): Promise<void> {
    this.stopped = true;
    await this.follower?.stop();
  }
}
