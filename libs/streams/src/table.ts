import type { Kafka } from 'kafkajs';
import { followTopic, type Follower } from './follow';

/**
 * A compacted topic held in memory as a table, key → decoded value, on every
 * instance (all partitions). Tombstones delete. Records that do not decode are
 * skipped and reported through `onBadRecord`.
 */
export class GlobalTable<V> {
  private readonly rows = new Map<string, V>();
  private follower: Follower | undefined;

  constructor(
    private readonly kafka: Kafka,
    readonly topic: string,
    private readonly decode: (value: Buffer) => Promise<V>,
    private readonly onBadRecord: (err: unknown, partition: number, offset: string) => void,
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
          try {
            this.rows.set(key, await this.decode(value));
          } catch (err) {
            this.onBadRecord(err, partition, message.offset);
          }
        });
      },
    });
    await this.follower.caughtUp;
    await chain;
  }

  async stop(): Promise<void> {
    await this.follower?.stop();
  }
}
