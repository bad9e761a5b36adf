import { randomBytes } from 'node:crypto';
import type { Consumer, Kafka, KafkaMessage } from 'kafkajs';
import { uninstrumentedConsumer } from './traced';

export interface FollowOptions {
  /** Only these partitions; others are read past and ignored. @default all */
  partitions?: ReadonlySet<number>;
  onRecord(partition: number, message: KafkaMessage): void;
  /** Client id for the broker's logs. */
  clientId?: string;
  /** Start these partitions at an offset instead of the beginning. */
  startAt?: ReadonlyMap<number, string>;
  /** Called whenever a partition's position moved (records, or batches of only markers or aborted records). */
  onProgress?(): void;
  /** Read aborted and open transactions' records too (tests only). @default false */
  readUncommitted?: boolean;
}

export interface Follower {
  /** Resolves once every followed partition was read up to the end it had when following began. */
  readonly caughtUp: Promise<void>;
  /** The next offset the follower reads in `partition`, once it has read anything there. */
  position(partition: number): bigint | undefined;
  stop(): Promise<void>;
}

/**
 * Reads a topic from the beginning, read_committed, and keeps reading: the
 * loader of global tables and of state-store changelogs. Each follower is a
 * consumer of its own throw-away group, so it reads every partition and commits nothing.
 */
export async function followTopic(kafka: Kafka, topic: string, options: FollowOptions): Promise<Follower> {
  const admin = kafka.admin();
  await admin.connect();
  let ends: Map<number, bigint>;
  try {
    const offsets = await admin.fetchTopicOffsets(topic);
    ends = new Map(
      offsets
        .filter((o) => !options.partitions || options.partitions.has(o.partition))
        .filter((o) => BigInt(o.high) > BigInt(options.startAt?.get(o.partition) ?? o.low))
        .map((o) => [o.partition, BigInt(o.high)]),
    );
  } finally {
    await admin.disconnect();
  }
  let markCaughtUp: () => void = () => undefined;
  const caughtUp = new Promise<void>((resolve) => (markCaughtUp = resolve));
  const reached = (partition: number, nextOffset: bigint) => {
    const end = ends.get(partition);
    if (end !== undefined && nextOffset >= end) ends.delete(partition);
    if (ends.size === 0) markCaughtUp();
  };
  reached(-1, 0n);

  // Where each partition goes on: a consumer that kafkajs gives up on is replaced by a new one from here.
  const next = new Map<number, string>(options.startAt ?? []);
  let consumer: Consumer | undefined;
  let stopping: Promise<void> | undefined;

  const advance = (partition: number, lastOffset: string) => {
    const nextOffset = BigInt(lastOffset) + 1n;
    next.set(partition, nextOffset.toString());
    reached(partition, nextOffset);
    options.onProgress?.();
  };

  const start = async (): Promise<void> => {
    // Reading a table or a changelog back is no hop of a record's trace: no span per record.
    const current = uninstrumentedConsumer(kafka)({
      groupId: `sluice-follow-${topic}-${randomBytes(6).toString('hex')}`,
      readUncommitted: options.readUncommitted ?? false,
      maxWaitTimeInMs: 100,
      allowAutoTopicCreation: false,
    });
    // Where to go on, at every join: the first, and those after kafkajs restarted the consumer itself (a
    // retriable crash). Seeking once after run() failed when the consumer had crashed while joining:
    // it was no longer running, and seek threw instead.
    current.on(current.events.GROUP_JOIN, () => {
      for (const [partition, offset] of next) current.seek({ topic, partition, offset });
    });
    // Batches of only transaction markers or aborted records carry no message but move the position.
    current.on(current.events.END_BATCH_PROCESS, ({ payload }) => {
      if (payload.lastOffset !== null && payload.lastOffset !== undefined) advance(payload.partition, payload.lastOffset);
    });
    // kafkajs restarts a consumer after errors it deems retriable and abandons it after the others
    // (a coordinator it could not find while a broker was down): a follower must not stop following.
    current.on(current.events.CRASH, ({ payload }) => {
      if (payload.restart || stopping) return;
      void current
        .disconnect()
        .catch(() => undefined)
        .then(() => restartUntilRunning());
    });
    await current.connect();
    await current.subscribe({ topic, fromBeginning: true });
    await current.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        if (!options.partitions || options.partitions.has(batch.partition)) {
          for (const message of batch.messages) options.onRecord(batch.partition, message);
        }
        if (batch.messages.length > 0) advance(batch.partition, batch.lastOffset());
      },
    });
    consumer = current;
  };

  const restartUntilRunning = async (): Promise<void> => {
    for (let wait = 500; !stopping; wait = Math.min(wait * 2, 10_000)) {
      try {
        await start();
        // Stopped while this one was starting: it goes too.
        if (stopping) await consumer?.disconnect();
        return;
      } catch {
        await new Promise((resolve) => setTimeout(resolve, wait).unref());
      }
    }
  };

  await start();
  return {
    caughtUp,
    position: (partition) => {
      const offset = next.get(partition);
      return offset === undefined ? undefined : BigInt(offset);
    },
    stop: () => (stopping ??= (async () => await consumer?.disconnect())()),
  };
}
