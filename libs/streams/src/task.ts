import type { Producer } from 'kafkajs';
import type { PartitionStore } from './store';
import type { MergedTime } from './watermarks';

/**
 * What a transaction of a partition reads and the failures it keeps count of: the transaction builder's view of a
 * task, with no Kafka in it.
 */
export interface TaskState {
  topic: string;
  partition: number;
  stores: Map<string, PartitionStore<unknown>>;
  /** A source of watermarked repartition topics: the highest event time committed, the last one published. */
  eventTime?: number;
  published?: number;
  /** Announced idle downstream; the next transaction with records announces it active again. */
  idleAnnounced?: boolean;
  /** On a watermarked repartition topic: the progress of every source, as committed. */
  merged?: MergedTime;
  /** Attempts so far of the record at `offset` that failed with an error of no known kind. */
  unknown?: { offset: string; attempts: number };
  /** One record per transaction until this offset commits: a flush failed, so its records are tried alone. */
  isolateUntil?: bigint;
  /** Records to dead-letter without processing them (their flush kept failing), by offset: code and message. */
  condemned?: Map<string, { code: string; message: string }>;
  /** Stopped by the `stop` policy: the record it stopped at and why. */
  stoppedAt?: { offset: string; message: string };
}

/** One assigned input partition: its producer, stores, where it resumes, and how it is doing. */
export interface PartitionTask extends TaskState {
  producer?: Producer;
  ready?: Promise<void>;
  /** The group's committed offset, read after this task's producer fenced any previous owner. */
  committed?: bigint;
  /** The next offset recorded in the changelog by this partition's last committed transaction. */
  progress?: bigint;
  /**
   * The next offset the consumer has read past, transaction markers included: an input written by several
   * transactional producers at once ends with a marker of each, past the last record and so past `committed`.
   */
  fetched?: bigint;
  /** Where the consumer must go back to before anything else: the changelog's progress, behind the group's offset. */
  rewindTo?: bigint;
  /** Set when this task's producer was fenced: wait for a rebalance before taking the partition back. */
  fencedAt?: number;
  failures: number;
  /** The batch being worked on: a partition's batches run one after the other, never side by side. */
  working?: Promise<void>;
  /** When records were last delivered to this partition (or it was assigned). */
  lastRecordAt: number;
  /** Since when the partition has not committed while it has records to process (failures in a row). */
  stalledSince?: number;
  lastFailure?: { kind: string; message: string };
}

export const taskKey = (topic: string, partition: number): string => `${topic}:${partition}`;

export function newTask(topic: string, partition: number, now: number): PartitionTask {
  return { topic, partition, stores: new Map(), failures: 0, lastRecordAt: now };
}

/** Forgets what the task read from Kafka (state, offsets, progress) and hands back its producer to close. */
export function resetTask(task: PartitionTask): Producer | undefined {
  const producer = task.producer;
  task.producer = undefined;
  task.ready = undefined;
  task.stores.clear();
  task.committed = undefined;
  task.progress = undefined;
  task.fetched = undefined;
  task.rewindTo = undefined;
  task.merged = undefined;
  task.published = undefined;
  return producer;
}
