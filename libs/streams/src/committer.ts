import type { Consumer, Message, Producer, TopicMessages } from 'kafkajs';
import { classifyFailure } from './errors';
import type { StreamMetrics } from './metrics';
import type { OutputRecord } from './types';

/** The input offset a commit moves: the next record to read. */
export interface InputOffset {
  topic: string;
  partition: number;
  offset: string;
}

/**
 * A commit that failed. `reset`: the transaction's outcome or the producer's sequence numbers are unknown; the
 * producer must be dropped and the partition prepared again (a new InitProducerId ends or completes that
 * transaction; state and offsets are read back). `fenced`: another owner took the producer's transactional id.
 */
export type CommitFailure = { kind: 'reset'; error: unknown; step: 'begin' | 'send' | 'offsets' | 'commit' } | { kind: 'fenced'; error: unknown };

/** How a task's records and input offset reach Kafka: exactly-once or at-least-once. */
export interface Committer {
  readonly exactlyOnce: boolean;
  /** The producer's transactional id for a task, if the strategy uses one. */
  transactionalId(application: string, topic: string, partition: number): string | undefined;
  /** Takes ownership of a new producer's transactional id before state and offsets are read (fencing any previous owner). */
  claim(producer: Producer): Promise<void>;
  /** Writes `records` and, when given, moves the input offset. Returns the failure, or undefined. */
  commit(producer: Producer, records: OutputRecord[], input?: InputOffset): Promise<CommitFailure | undefined>;
}

export function groupByTopic(records: OutputRecord[]): TopicMessages[] {
  const byTopic = new Map<string, Message[]>();
  for (const o of records) {
    const list = byTopic.get(o.topic) ?? [];
    list.push({ key: o.key, value: o.value, ...(o.headers ? { headers: o.headers } : {}), ...(o.partition !== undefined ? { partition: o.partition } : {}) });
    byTopic.set(o.topic, list);
  }
  return [...byTopic].map(([topic, messages]) => ({ topic, messages }));
}

const secondsSince = (started: bigint) => Number(process.hrtime.bigint() - started) / 1e9;

/**
 * Kafka Streams' "EOS v1": one transactional producer per input partition; each transaction holds the outputs,
 * the changelog records and the input offset (sent to the group's coordinator), so they commit or abort together.
 */
export function exactlyOnceCommitter(groupId: string, metrics: StreamMetrics): Committer {
  return {
    exactlyOnce: true,
    transactionalId: (application, topic, partition) => `${application}-${topic}-${partition}`,
    async claim(producer) {
      // The transactional InitProducerId, now, before state and offsets are read: it bumps the epoch, so a
      // previous owner can no longer commit, and ends its open transaction. kafkajs sends it only at the
      // first transaction(): a previous owner that had not begun one yet (stopped, SIGSTOP) would start
      // it later, fence this owner and commit from its own stale state and offsets (events twice).
      // An empty transaction ends without EndTxn.
      const transaction = await producer.transaction();
      await transaction.abort();
    },
    async commit(producer, records, input) {
      const started = process.hrtime.bigint();
      let transaction;
      try {
        transaction = await producer.transaction();
      } catch (err) {
        metrics.aborts.inc({ reason: 'begin' });
        return classifyFailure(err) === 'fenced' ? { kind: 'fenced', error: err } : { kind: 'reset', error: err, step: 'begin' };
      }
      let step: 'send' | 'offsets' | 'commit' = 'send';
      try {
        const topicMessages = groupByTopic(records);
        if (topicMessages.length > 0) await transaction.sendBatch({ topicMessages });
        if (input) {
          step = 'offsets';
          await transaction.sendOffsets({ consumerGroupId: groupId, topics: [{ topic: input.topic, partitions: [{ partition: input.partition, offset: input.offset }] }] });
        }
        step = 'commit';
        await transaction.commit();
      } catch (err) {
        // Whether the abort passes or not, this producer is not used again: a send that failed may have
        // written its records, so its sequence numbers can no longer be trusted (a later batch could be
        // taken for a duplicate and dropped), and a commit that failed may have committed.
        await transaction.abort().catch(() => undefined);
        const fenced = classifyFailure(err) === 'fenced';
        metrics.aborts.inc({ reason: fenced ? 'fenced' : 'reset' });
        return fenced ? { kind: 'fenced', error: err } : { kind: 'reset', error: err, step };
      }
      metrics.commitLatency.observe(secondsSince(started));
      return undefined;
    },
  };
}

/**
 * Outputs acknowledged by every in-sync replica, then the offset committed through the consumer: a crash in
 * between repeats records. Only for comparison in benchmarks.
 */
export function atLeastOnceCommitter(consumer: () => Consumer, metrics: StreamMetrics): Committer {
  return {
    exactlyOnce: false,
    transactionalId: () => undefined,
    claim: async () => undefined,
    async commit(producer, records, input) {
      const started = process.hrtime.bigint();
      try {
        const topicMessages = groupByTopic(records);
        if (topicMessages.length > 0) await producer.sendBatch({ topicMessages, acks: -1 });
        if (input) await consumer().commitOffsets([{ topic: input.topic, partition: input.partition, offset: input.offset }]);
      } catch (err) {
        // A failed send leaves the idempotent producer's sequence numbers unknown: never reuse it.
        return { kind: 'reset', error: err, step: 'send' };
      }
      metrics.commitLatency.observe(secondsSince(started));
      return undefined;
    },
  };
}
