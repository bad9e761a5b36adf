import { COMPACTED_TOPIC_CONFIGS, type TopicSpec } from '@sluice/contracts';

/** The compacted changelog of one state store of one application (stream runtime naming, as Kafka Streams names them). */
export const changelogTopicOf = (application: string, store: string): string => `${application}-${store}-changelog`;

/** The spec of a state store's changelog: compacted, partitioned like its input. */
export function changelogTopicSpec(application: string, store: string, partitions: number, replicationFactor = 1): TopicSpec {
  return { name: changelogTopicOf(application, store), partitions, replicationFactor, configs: { ...COMPACTED_TOPIC_CONFIGS } };
}

/**
 * Where a task resumes: its changelog's progress (the next input offset its last committed transaction recorded)
 * when it has one, else the group's committed offset. The progress is written to a data partition in the same
 * transaction as the outputs and the state, so it shares their outcome; the group's offset may lag it (fetched
 * without KIP-447's require_stable while a committed transaction's offsets are still being written) or, when a
 * broker fault splits a transaction's outcome across partitions (its offsets committed, its data aborted), lead it.
 */
export function resumeOffset(progress: bigint | undefined, groupOffset: bigint | undefined): bigint | undefined {
  return progress ?? groupOffset;
}

/**
 * Keys the runtime writes to a task's changelog partition (in the first store that follows the task's input) beside
 * the store's own entries; no store ever holds them, and a store key never starts with NUL.
 */
export const RUNTIME_KEYS = {
  /**
   * The input's next offset, recorded by every transaction. Written in the same transaction as the outputs, it
   * cannot disagree with them; an offset fetch without KIP-447's require_stable returns the previous offset while a
   * committed transaction's offsets are still being written.
   */
  progress: '\u0000sluice.next-offset',
  /** A watermarked repartition task's per-source progress. */
  watermarks: '\u0000sluice.watermarks',
  /** A source task's event time: restored, a restart judges records as before. */
  eventTime: '\u0000sluice.event-time',
} as const;
