import { followTopic } from '@sluice/streams';
import type { Kafka, KafkaMessage } from 'kafkajs';

/** What a record is about, as the check sees it (an eventId), or undefined for a record it does not follow. */
type Identify = (message: KafkaMessage) => Promise<string | undefined> | string | undefined;

export interface StageEffectsCheck {
  kafka: Kafka;
  /** The stage's consumer group: its committed offsets say which inputs it claims to have processed. */
  group: string;
  input: { topic: string; identify: Identify };
  /** Topics whose records together must hold each processed input's effect exactly once (outputs, dead letters). */
  outputs: { topic: string; identify: Identify }[];
  /** Topics (state changelogs) that must hold each processed input's state change at least once. */
  state?: { topic: string; identify: Identify }[];
  /** Longest wait for a read_committed reader to reach the end of a topic. @default 60000 */
  timeoutMs?: number;
}

export interface StageEffectsReport {
  /** Distinct identities of the inputs below the committed offsets. */
  processed: number;
  /** Input records at or past the committed offset: the stage has not caught up with them. */
  pending: number;
  /** Processed inputs with no effect in any output. */
  missing: string[];
  /** Processed inputs whose effect is in the outputs more than once. */
  doubled: string[];
  /** Effects in the outputs with no processed input behind them (outputs committed ahead of their input offsets). */
  orphaned: string[];
  /** Processed inputs whose state change is in no changelog. */
  missingState: string[];
}

/** Every record of `topic`, read_committed, up to the end it has now; throws when the end is not reached in time (a hanging transaction holds it back). */
async function readAll(kafka: Kafka, topic: string, timeoutMs: number): Promise<{ partition: number; message: KafkaMessage }[]> {
  const records: { partition: number; message: KafkaMessage }[] = [];
  const follower = await followTopic(kafka, topic, { onRecord: (partition, message) => records.push({ partition, message }) });
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      follower.caughtUp,
      new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`${topic}: a read_committed reader did not reach the end in ${timeoutMs} ms`)), timeoutMs))),
    ]);
  } finally {
    clearTimeout(timer);
    await follower.stop();
  }
  return records;
}

async function countIdentities(kafka: Kafka, topics: { topic: string; identify: Identify }[], timeoutMs: number): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  for (const { topic, identify } of topics) {
    for (const { message } of await readAll(kafka, topic, timeoutMs)) {
      const id = await identify(message);
      if (id !== undefined) counts.set(id, (counts.get(id) ?? 0) + 1);
    }
  }
  return counts;
}

/**
 * The exactly-once invariant of a consume-transform-produce stage, checked
 * from Kafka alone: an input's output, its state change and its offset are
 * committed together or not at all. Reads (read_committed) the input, the
 * outputs, the changelogs and the group's committed offsets, and reports every
 * processed input whose effect is missing or doubled.
 */
export async function checkStageEffects(check: StageEffectsCheck): Promise<StageEffectsReport> {
  const timeoutMs = check.timeoutMs ?? 60_000;
  const admin = check.kafka.admin();
  await admin.connect();
  let committed: Map<number, bigint>;
  try {
    const [offsets] = await admin.fetchOffsets({ groupId: check.group, topics: [check.input.topic] });
    committed = new Map((offsets?.partitions ?? []).map((p) => [p.partition, p.offset === '-1' ? 0n : BigInt(p.offset)]));
  } finally {
    await admin.disconnect();
  }
  const processed = new Set<string>();
  const unprocessed = new Set<string>();
  for (const { partition, message } of await readAll(check.kafka, check.input.topic, timeoutMs)) {
    const id = await check.input.identify(message);
    if (id === undefined) continue;
    if (BigInt(message.offset) < (committed.get(partition) ?? 0n)) processed.add(id);
    else unprocessed.add(id);
  }
  const effects = await countIdentities(check.kafka, check.outputs, timeoutMs);
  const stateChanges = await countIdentities(check.kafka, check.state ?? [], timeoutMs);
  const sorted = (ids: Iterable<string>) => [...ids].sort();
  return {
    processed: processed.size,
    pending: [...unprocessed].filter((id) => !processed.has(id)).length,
    missing: sorted([...processed].filter((id) => !effects.has(id))),
    doubled: sorted([...processed].filter((id) => (effects.get(id) ?? 0) > 1)),
    orphaned: sorted([...effects.keys()].filter((id) => !processed.has(id))),
    missingState: check.state ? sorted([...processed].filter((id) => !stateChanges.has(id))) : [],
  };
}
