import type { Logger } from '@sluice/runtime';
import type { Kafka } from 'kafkajs';
import { changelogTopicSpec, resumeOffset, RUNTIME_KEYS } from './changelog';
import { followTopic } from './follow';
import type { StreamMetrics } from './metrics';
import { PartitionStore } from './store';
import type { PartitionTask } from './task';
import type { StoreDefinition } from './types';
import { decodeMergedTime } from './watermarks';

/** A state restore that reads nothing for this long has stalled: it is abandoned and started again. */
const RESTORE_STALL_MS = 30_000;

export interface RestoreContext {
  kafka: Kafka;
  application: string;
  metrics: StreamMetrics;
  logger: Logger;
  now: () => number;
}

/**
 * Rebuilds the stores of newly assigned tasks from their changelogs, read to the end, and with them the runtime's
 * own records: each task's progress (its next input offset), event time and per-source watermarks.
 */
export async function restoreStores(ctx: RestoreContext, definitions: StoreDefinition[], tasks: PartitionTask[]): Promise<void> {
  for (const definition of definitions) {
    const owners = tasks.filter((t) => t.topic === definition.inputTopic);
    if (owners.length === 0) continue;
    const started = ctx.now();
    const stores = new Map<number, PartitionStore<unknown>>();
    for (const task of owners) {
      const store = new PartitionStore<unknown>(definition.name, definition.ttlMs, definition.indexes);
      task.stores.set(definition.name, store);
      stores.set(task.partition, store);
    }
    let lastProgress = ctx.now();
    const follower = await followTopic(ctx.kafka, changelogTopicSpec(ctx.application, definition.name, 1).name, {
      partitions: new Set(stores.keys()),
      onRecord: (partition, message) => {
        lastProgress = ctx.now();
        const key = message.key?.toString();
        const owner = () => owners.find((t) => t.partition === partition);
        if (key === RUNTIME_KEYS.progress) {
          const task = owner();
          if (task && message.value) task.progress = BigInt(message.value.toString());
        } else if (key === RUNTIME_KEYS.eventTime) {
          const task = owner();
          if (task && message.value) task.eventTime = Number(message.value.toString());
        } else if (key === RUNTIME_KEYS.watermarks) {
          const task = owner();
          if (task && message.value) task.merged = decodeMergedTime(message.value);
        } else if (key !== undefined) stores.get(partition)?.restore(key, message.value);
      },
    });
    // A reader that stops making progress (its consumer crashed for good) fails the restore, which is
    // then tried again from the start, instead of holding the partition, and the batches waiting on it, forever.
    let stalled: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        follower.caughtUp,
        new Promise<never>((_, reject) => {
          stalled = setInterval(() => {
            if (ctx.now() - lastProgress > RESTORE_STALL_MS) reject(new Error(`restoring ${definition.name}: no progress for ${RESTORE_STALL_MS} ms`));
          }, 1_000);
          stalled.unref();
        }),
      ]);
    } finally {
      clearInterval(stalled);
      await follower.stop();
    }
    const seconds = (ctx.now() - started) / 1000;
    ctx.metrics.restoreDuration.observe({ store: definition.name }, seconds);
    const entries = [...stores.values()].reduce((n, s) => n + s.size, 0);
    ctx.logger.info({ store: definition.name, partitions: [...stores.keys()], entries, seconds }, 'state restored');
  }
}

/**
 * Sets where each task resumes (`committed`), from its restored progress and the group's offset. A group offset
 * ahead of the progress (a transaction the brokers split) is logged, counted and sets `rewindTo`; `seek` is asked
 * to go back at once (it may throw while the consumer restarts: the next batch then seeks).
 */
export async function readCommittedOffsets(ctx: RestoreContext, tasks: PartitionTask[], exactlyOnce: boolean, seek: (topic: string, partition: number, offset: string) => void): Promise<void> {
  const admin = ctx.kafka.admin();
  await admin.connect();
  try {
    for (const topic of new Set(tasks.map((t) => t.topic))) {
      const [offsets] = await admin.fetchOffsets({ groupId: ctx.application, topics: [topic] });
      for (const task of tasks.filter((t) => t.topic === topic)) {
        const fetched = offsets?.partitions.find((p) => p.partition === task.partition)?.offset;
        const groupOffset = fetched !== undefined && fetched !== '-1' ? BigInt(fetched) : undefined;
        // At-least-once writes no progress: one left by an earlier exactly-once run would be stale.
        if (!exactlyOnce) task.progress = undefined;
        task.committed = resumeOffset(task.progress, groupOffset);
        if (task.progress !== undefined && groupOffset !== undefined && groupOffset > task.progress) {
          task.rewindTo = task.progress;
          try {
            seek(topic, task.partition, task.progress.toString());
          } catch {
            // rewindTo stays set: the partition's next batch seeks.
          }
          ctx.metrics.splitOutcomes.inc({ topic });
          ctx.logger.error(
            { topic, partition: task.partition, groupOffset: groupOffset.toString(), changelog: task.progress.toString() },
            "the group's offset is ahead of the changelog's progress: the brokers split one transaction's outcome (offsets committed, state and outputs aborted); resuming from the changelog, which shares the outputs' outcome",
          );
        }
        ctx.logger.info(
          { topic, partition: task.partition, committed: task.committed?.toString() ?? null, groupOffset: groupOffset?.toString() ?? null, changelog: task.progress?.toString() ?? null },
          'processing resumes from the committed offset',
        );
      }
    }
  } finally {
    await admin.disconnect();
  }
}
