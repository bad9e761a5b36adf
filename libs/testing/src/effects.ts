import { isRetriable } from '@sluice/contracts';
import { DEFAULT_KAFKA_VERSION, optionsFromEnv, runKafkaTool, stackPaths } from '@sluice/local-stack';
import { followTopic, WATERMARK_HEADER } from '@sluice/streams';
import type { Kafka, KafkaMessage } from 'kafkajs';
import { runningStack, withAdmin } from './helpers';

/** What a record is about, as the check sees it (an eventId), or undefined for a record it does not follow. */
type Identify = (message: KafkaMessage) => Promise<string | undefined> | string | undefined;

/** Identifies a record by the eventId of its decoded value (an ActivityEvent or EnrichedEvent decoder). */
export const eventIdOf =
  (decoder: { decode(value: Buffer | null): Promise<{ eventId: string }> }): Identify =>
  async (m) =>
    (await decoder.decode(m.value)).eventId;

/** Identifies a changelog record by its key (the eventId of a de-duplication entry); a tombstone is no state change. */
export const changelogKey: Identify = (m) => (m.value === null ? undefined : m.key?.toString());

/** `identify`, except that the runtime's own watermark records on a repartition topic carry no event. */
export const withoutWatermarks =
  (identify: Identify): Identify =>
  (m) =>
    m.headers?.[WATERMARK_HEADER] !== undefined ? undefined : identify(m);

export interface StageEffectsCheck {
  kafka: Kafka;
  /** The brokers `kafka` talks to, for Kafka's own offset tool. @default the local stack's */
  brokers?: string[];
  /** The stage's consumer group: its committed offsets say which inputs it claims to have processed. */
  group: string;
  input: { topic: string; identify: Identify };
  /**
   * Topics whose records together must hold each processed input's effect exactly once (outputs, dead
   * letters). `stateless`: an input whose effect is here changes no state (a dead letter), so the state
   * check leaves it out.
   */
  outputs: { topic: string; identify: Identify; stateless?: boolean }[];
  /** Topics (state changelogs) that must hold each processed input's state change at least once. */
  state?: { topic: string; identify: Identify }[];
  /** Longest wait for a read_committed reader to reach the end of a topic. @default 60000 */
  timeoutMs?: number;
  /**
   * Longest wait for the stage to have committed past every input (no input pending) and to have no
   * transaction open: the check is taken again until then, and the last report is returned either
   * way. 0 checks once. @default 60000
   */
  settleMs?: number;
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
  /** Partitions of the input, outputs and changelogs with a transaction still open (`topic[partition]`). */
  openTransactions: string[];
}

const escapeRegex = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * Partitions of `topics` on which a transaction is open now: their last stable offset (the end a
 * read_committed reader can reach, which KafkaJS's admin returns) is behind their high watermark
 * (which Kafka's own GetOffsetShell returns, its admin client listing offsets read_uncommitted). Once
 * a pipeline is idle, a partition that stays open holds a hanging transaction: it blocks every
 * read_committed reader.
 */
export async function openTransactions(kafka: Kafka, topics: string[], brokers: string[] = runningStack().kafkaBrokers): Promise<string[]> {
  if (topics.length === 0) return [];
  const version = optionsFromEnv().kafkaVersion || DEFAULT_KAFKA_VERSION;
  const pattern = topics.map(escapeRegex).join('|');
  const tool = await runKafkaTool(stackPaths().cacheDir, version, 'org.apache.kafka.tools.GetOffsetShell', ['--bootstrap-server', brokers.join(','), '--topic', pattern, '--time', '-1']);
  const high = new Map<string, bigint>();
  for (const line of tool.split('\n')) {
    const match = /^(.+):(\d+):(\d+)$/.exec(line.trim());
    if (match) high.set(`${match[1]}[${match[2]}]`, BigInt(match[3]!));
  }
  // The stable offsets after the high watermarks: a transaction committed in between cannot look open.
  const stable = await withAdmin(kafka, async (admin) => {
    const out = new Map<string, bigint>();
    for (const topic of topics) for (const o of await admin.fetchTopicOffsets(topic)) out.set(`${topic}[${o.partition}]`, BigInt(o.high));
    return out;
  });
  return [...stable].filter(([partition, offset]) => offset < (high.get(partition) ?? 0n)).map(([partition]) => partition).sort();
}

/** Every record of `topic`, read_committed, up to its last stable offset now; throws when that end is not reached in time. */
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

async function countIdentities(
  kafka: Kafka,
  topics: { topic: string; identify: Identify; stateless?: boolean }[],
  timeoutMs: number,
): Promise<{ counts: Map<string, number>; stateless: Set<string> }> {
  const counts = new Map<string, number>();
  const stateless = new Set<string>();
  for (const { topic, identify, stateless: noState } of topics) {
    for (const { message } of await readAll(kafka, topic, timeoutMs)) {
      const id = await identify(message);
      if (id === undefined) continue;
      counts.set(id, (counts.get(id) ?? 0) + 1);
      if (noState) stateless.add(id);
    }
  }
  return { counts, stateless };
}

/**
 * The exactly-once invariant of a consume-transform-produce stage, checked
 * from Kafka alone: an input's output, its state change and its offset are
 * committed together or not at all. Reads (read_committed) the input, the
 * outputs, the changelogs and the group's committed offsets, and reports every
 * processed input whose effect is missing or doubled.
 */
export async function checkStageEffects(check: StageEffectsCheck): Promise<StageEffectsReport> {
  const deadline = Date.now() + (check.settleMs ?? 60_000);
  for (;;) {
    let report: StageEffectsReport;
    try {
      report = await checkOnce(check);
    } catch (err) {
      // A read that met a moving leader (a broker just killed or back: NOT_LEADER_OR_FOLLOWER, which KafkaJS's
      // admin does not retry for offsets; KafkaJS's `retriable` flag, never the message) is taken again, until the deadline.
      if (!isRetriable(err) || Date.now() >= deadline) throw err;
      await new Promise((r) => setTimeout(r, 1_000));
      continue;
    }
    if ((report.pending === 0 && report.openTransactions.length === 0) || Date.now() >= deadline) return report;
    await new Promise((r) => setTimeout(r, 1_000));
  }
}

async function checkOnce(check: StageEffectsCheck): Promise<StageEffectsReport> {
  const timeoutMs = check.timeoutMs ?? 60_000;
  const topics = [check.input, ...check.outputs, ...(check.state ?? [])].map((t) => t.topic);
  const open = await openTransactions(check.kafka, [...new Set(topics)], check.brokers);
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
  const { counts: effects, stateless } = await countIdentities(check.kafka, check.outputs, timeoutMs);
  const { counts: stateChanges } = await countIdentities(check.kafka, check.state ?? [], timeoutMs);
  const sorted = (ids: Iterable<string>) => [...ids].sort();
  return {
    processed: processed.size,
    pending: [...unprocessed].filter((id) => !processed.has(id)).length,
    missing: sorted([...processed].filter((id) => !effects.has(id))),
    doubled: sorted([...processed].filter((id) => (effects.get(id) ?? 0) > 1)),
    orphaned: sorted([...effects.keys()].filter((id) => !processed.has(id))),
    missingState: check.state ? sorted([...processed].filter((id) => !stateless.has(id) && !stateChanges.has(id))) : [],
    openTransactions: open,
  };
}
