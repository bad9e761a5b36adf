import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import {
  provisionTopics,
  Serde,
  topicCatalog,
  TOPICS,
  valueSubjectOf,
  type ActivityEvent,
  type CatalogItem,
  type EnrichedEvent,
  type WindowAggregate,
} from '@sluice/contracts';
import { createTopics, readTopic, runningStack, startTestService, testKafka, uniqueName, withAdmin } from '@sluice/testing';
import { Partitioners, type Kafka, type Message } from 'kafkajs';
import { startLoop } from './loop-process';
import { serviceNodeOptions, serviceNodeOptionsUsed, writeResults } from './results';

const PARTITIONS = 6;
const ENRICHER_EVENTS = 200_000;
const AGGREGATOR_EVENTS = 200_000;
const ENTITIES = 1_000;
const CATEGORIES = 10;
const MIN = 60_000;
/** Event time of the aggregator's input spans 5 minutes; a grace longer than that closes nothing during the run. */
const EVENT_TIME_SPAN_MS = 5 * MIN;
const GRACE_MS = 10 * MIN;

const anchorDir = join(__dirname, '..', 'kstreams');

/** Builds the Kafka Streams application with Maven (dependencies from Maven Central). */
export function buildAnchor(): void {
  const mvn = spawnSync('mvn', ['-q', '-B', '-f', join(anchorDir, 'pom.xml'), 'package'], { stdio: 'inherit' });
  if (mvn.status !== 0) throw new Error(`building the Kafka Streams anchor failed (mvn exited ${mvn.status})`);
  if (!existsSync(join(anchorDir, 'target', 'lib'))) throw new Error('the anchor build left no target/lib');
}

/** Rejects when the anchor exits before it is stopped (it failed: its output says why). */
function exited(child: ChildProcess): Promise<never> {
  const failed = new Promise<never>((_, reject) => child.once('exit', (code, signal) => reject(new Error(`the Kafka Streams anchor exited (${code ?? signal})`))));
  // Stopped on purpose later: nobody waits for this any more, and that is no failure.
  failed.catch(() => undefined);
  return failed;
}

/** Starts the anchor; it runs until stopped. */
function startAnchor(env: Record<string, string>): ChildProcess {
  const classpath = `${join(anchorDir, 'target', 'classes')}:${join(anchorDir, 'target', 'lib', '*')}`;
  const child = spawn('java', ['-Xms256m', '-Xmx768m', '-cp', classpath, 'dev.sluice.anchor.Anchor'], {
    env: { ...process.env, KAFKA_BROKERS: runningStack().kafkaBrokers.join(','), SCHEMA_REGISTRY_URL: runningStack().schemaRegistryUrl, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const forward = (chunk: Buffer) => {
    for (const line of chunk.toString().split('\n')) if (/anchor:|ERROR|Exception/.test(line)) process.stderr.write(`  [kstreams] ${line}\n`);
  };
  child.stdout!.on('data', forward);
  child.stderr!.on('data', forward);
  return child;
}

/** One system's stage while it runs: Sluice's service, or the anchor (whose early exit fails what waits on it). */
interface RunningStage {
  /** `measured`, failed instead if the anchor exits first. */
  until<T>(measured: Promise<T>): Promise<T>;
  stop(): Promise<void>;
}

/**
 * The systems a stage is compared on: Sluice's runtime (exactly once, or at least once for the guarantees' ratio),
 * the enricher's KIP-447 loop on @platformatic/kafka (enricher only), Kafka Streams.
 */
export type StageSystem = 'sluice' | 'sluice-at-least-once' | 'platformatic-loop' | 'kafka-streams';

async function startStage(
  system: StageSystem,
  sluice: { service: string; env: Record<string, string> },
  anchorEnv: Record<string, string>,
  loopEnv: Record<string, string> = {},
): Promise<RunningStage> {
  if (system === 'platformatic-loop') {
    const loop = startLoop(loopEnv);
    const failed = loop.exited.then((code) => Promise.reject(new Error(`the platformatic loop exited (${code})`)));
    failed.catch(() => undefined);
    return {
      until: (measured) => Promise.race([measured, failed]),
      stop: async () => {
        await loop.stop();
      },
    };
  }
  if (system === 'sluice' || system === 'sluice-at-least-once') {
    const guarantee = system === 'sluice' ? 'exactly-once' : 'at-least-once';
    const service = await startTestService(sluice.service, { env: { ...sluice.env, STREAM_PROCESSING_GUARANTEE: guarantee, LOG_LEVEL: 'warn', ...serviceNodeOptions() } });
    return {
      until: (measured) => measured,
      stop: async () => {
        await service.stop();
      },
    };
  }
  const anchor = startAnchor(anchorEnv);
  const failed = exited(anchor);
  return { until: (measured) => Promise.race([measured, failed]), stop: () => stopAnchor(anchor) };
}

async function stopAnchor(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await Promise.race([exited, new Promise((r) => setTimeout(r, 30_000))]);
  if (child.exitCode === null) child.kill('SIGKILL');
}

/**
 * How long a consumer group took to consume and commit its input: from the first committed offset to the moment
 * every partition of `input` (written without transactions) is committed to its end, then every partition of
 * `internal` (written in transactions) too, and `done` holds. Measured the same way for both systems, from the
 * group's committed offsets (each commits them in its transactions), sampled every 100 ms. A transactional
 * partition ends with commit markers that a consumer may or may not commit past, one for each transaction that wrote
 * to it last: the upstream tasks (one per input partition) that committed at the same moment, each its own idle
 * announcement, leave up to one marker each after the last record. There, `PARTITIONS` short is the end (seen: six
 * records in a row, then their six markers, the consumer committed right after the records).
 */
async function consumedSpan(kafka: Kafka, groupId: string, input: string, internal: string[], done: (committedInternal: number) => boolean, timeoutMs = 900_000): Promise<number> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const deadline = Date.now() + timeoutMs;
    let first: number | undefined;
    const existing = new Set<string>();
    while (Date.now() < deadline) {
      // Listed only until every topic exists: the poll shares the machine with what it measures.
      if (![input, ...internal].every((t) => existing.has(t))) for (const t of await admin.listTopics()) existing.add(t);
      const topics = [input, ...internal].filter((t) => existing.has(t));
      // Ends first: a commit seen after them can only be further on.
      const ends = new Map<string, number>();
      try {
        for (const topic of topics) for (const p of await admin.fetchTopicOffsets(topic)) ends.set(`${topic}:${p.partition}`, Number(p.offset));
      } catch (err) {
        // A topic just created (the anchor's repartition topic) may have no leader yet: the next poll asks again, until the deadline.
        if (!(err instanceof Error && (err as { retriable?: boolean }).retriable)) throw err;
        await new Promise((r) => setTimeout(r, 100));
        continue;
      }
      const committed = new Map<string, number>();
      for (const t of await admin.fetchOffsets({ groupId, topics })) for (const p of t.partitions) committed.set(`${t.topic}:${p.partition}`, Math.max(0, Number(p.offset)));
      const total = [...committed.values()].reduce((a, b) => a + b, 0);
      if (total > 0 && first === undefined) first = Date.now();
      const at = (topic: string, slack: number) => [...ends].filter(([k]) => k.startsWith(`${topic}:`)).every(([k, end]) => (committed.get(k) ?? 0) >= end - slack);
      const internalCommitted = [...committed].filter(([k]) => internal.some((t) => k.startsWith(`${t}:`))).reduce((sum, [, v]) => sum + v, 0);
      if (first !== undefined && existing.has(input) && at(input, 0) && internal.every((t) => at(t, PARTITIONS)) && done(internalCommitted)) return (Date.now() - first) / 1000;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`group ${groupId} did not finish within ${timeoutMs} ms`);
  } finally {
    await admin.disconnect();
  }
}

export async function produce(kafka: Kafka, topic: string, messages: Message[]): Promise<void> {
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  try {
    for (let start = 0; start < messages.length; start += 2_000) await producer.send({ topic, acks: -1, messages: messages.slice(start, start + 2_000) });
  } finally {
    await producer.disconnect();
  }
}

const round = (n: number, digits = 3) => Number(n.toFixed(digits));
/** A map's entries in key order (an Avro map has no order: Java writes it in its HashMap's). */
const sortedJson = (map: Record<string, string>) => JSON.stringify(Object.entries(map).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));

/**
 * Sluice's stream stages against the same stages written with Kafka Streams (bench/kstreams, exactly_once_v2),
 * on the same broker, the same records (produced twice, into a topic set per system) and the same partitions,
 * one after the other; each system's output is checked against what the input must give before its figure counts.
 */
export async function kstreamsBench(): Promise<string> {
  buildAnchor();
  const kafka = testKafka();
  const serde = new Serde(runningStack().schemaRegistryUrl);
  const enricher = await compareEnrichers(kafka, serde, ['sluice', 'kafka-streams']);
  const aggregator = await compareAggregators(kafka, serde, ['sluice', 'kafka-streams']);
  return writeResults('kstreams', {
    partitions: PARTITIONS,
    sluice: { STREAM_CONCURRENCY: process.env.STREAM_CONCURRENCY ?? 'default', STREAM_MAX_BATCH_SIZE: process.env.STREAM_MAX_BATCH_SIZE ?? 'default', serviceNodeOptions: serviceNodeOptionsUsed() },
    kafkaStreams: { version: '4.1.1', guarantee: 'exactly_once_v2', threads: 1, commitIntervalMs: 100, stores: 'in memory, with changelogs', heap: '-Xmx768m' },
    enricher,
    aggregator,
    goals: {
      enricherExactlyOnceRatio: { goal: 0.5, figure: enricher.ratioSluiceToKafkaStreams, met: (enricher.ratioSluiceToKafkaStreams ?? 0) >= 0.5 },
      aggregatorEventsPerSecond: { goal: 25_000, figure: aggregator.sluice?.eventsPerSecond, met: (aggregator.sluice?.eventsPerSecond ?? 0) >= 25_000 },
    },
  });
}

export async function topicSet(kafka: Kafka, system: string): Promise<(name: string) => string> {
  const prefix = `${uniqueName(`ks-${system}`)}.`;
  await withAdmin(kafka, (admin) => provisionTopics(admin, topicCatalog({ prefix, partitions: PARTITIONS })));
  return (name) => `${prefix}${name}`;
}

/** The enricher on each of `systems`, one after the other, each on its own copy of the same records; each output is checked. */
export async function compareEnrichers(kafka: Kafka, serde: Serde, systems: StageSystem[]) {
  const now = Date.now();
  const items: CatalogItem[] = Array.from({ length: ENTITIES }, (_, i) => ({ entityId: `sku-${i}`, name: `Item ${i}`, category: `c${i % CATEGORIES}`, price: null, attributes: {}, updatedAt: now }));
  const events: ActivityEvent[] = Array.from({ length: ENRICHER_EVENTS }, (_, i) => ({
    eventId: `ev-${i}`,
    type: 'view',
    entityId: `sku-${i % ENTITIES}`,
    userId: i % 3 === 0 ? null : `u${i % 97}`,
    occurredAt: now + i,
    value: i % 7,
    attributes: (i % 5 === 0 ? { source: 'bench', ключ: 'значение ✓' } : {}) as Record<string, string>,
  }));
  const run = async (system: StageSystem) => {
    const topic = await topicSet(kafka, system);
    const application = uniqueName(`ks-enricher-${system}`);
    if (system === 'platformatic-loop') await createTopics(kafka, [{ topic: `${application}-seen-events-changelog`, numPartitions: PARTITIONS }]);
    const itemEncoder = await serde.encoder<CatalogItem>(valueSubjectOf(topic(TOPICS.catalogItems)), 'CatalogItem');
    const eventEncoder = await serde.encoder<ActivityEvent>(valueSubjectOf(topic(TOPICS.eventsRaw)), 'ActivityEvent');
    await serde.encoder<EnrichedEvent>(valueSubjectOf(topic(TOPICS.eventsEnriched)), 'EnrichedEvent');
    await produce(kafka, topic(TOPICS.catalogItems), items.map((item) => ({ key: item.entityId, value: itemEncoder.encode(item) })));
    await produce(kafka, topic(TOPICS.eventsRaw), events.map((e) => ({ key: e.entityId, value: eventEncoder.encode(e) })));
    const stage = await startStage(
      system,
      {
        service: 'enricher',
        env: {
          ENRICHER_APPLICATION_ID: application,
          ENRICHER_INPUT_TOPIC: topic(TOPICS.eventsRaw),
          ENRICHER_CATALOG_TOPIC: topic(TOPICS.catalogItems),
          ENRICHER_OUTPUT_TOPIC: topic(TOPICS.eventsEnriched),
        },
      },
      {
        ANCHOR_STAGE: 'enricher',
        ANCHOR_APPLICATION_ID: application,
        ANCHOR_INPUT_TOPIC: topic(TOPICS.eventsRaw),
        ANCHOR_CATALOG_TOPIC: topic(TOPICS.catalogItems),
        ANCHOR_OUTPUT_TOPIC: topic(TOPICS.eventsEnriched),
      },
      {
        LOOP_APPLICATION_ID: application,
        LOOP_INPUT_TOPIC: topic(TOPICS.eventsRaw),
        LOOP_CATALOG_TOPIC: topic(TOPICS.catalogItems),
        LOOP_OUTPUT_TOPIC: topic(TOPICS.eventsEnriched),
        LOOP_CHANGELOG_TOPIC: `${application}-seen-events-changelog`,
      },
    );
    try {
      const seconds = await stage.until(consumedSpan(kafka, application, topic(TOPICS.eventsRaw), [], () => true));
      const output = await readTopic(kafka, topic(TOPICS.eventsEnriched), { done: (rs) => rs.length >= ENRICHER_EVENTS, timeoutMs: 120_000 });
      const decoder = serde.decoder<EnrichedEvent>('EnrichedEvent');
      const seen = new Map<string, number>();
      let wrong = 0;
      for (const r of output) {
        const e = await decoder.decode(r.value);
        seen.set(e.eventId, (seen.get(e.eventId) ?? 0) + 1);
        const i = Number(e.eventId.slice(3));
        const item = items[i % ENTITIES]!;
        const source = events[i]!;
        if (e.name !== item.name || e.category !== item.category || e.value !== source.value || e.occurredAt !== source.occurredAt || sortedJson(e.attributes) !== sortedJson(source.attributes)) wrong++;
      }
      const missing = events.filter((e) => !seen.has(e.eventId)).length;
      const doubled = [...seen.values()].filter((n) => n > 1).length;
      return { seconds: round(seconds, 2), eventsPerSecond: Math.round(ENRICHER_EVENTS / seconds), output: { records: output.length, missing, doubled, wrong } };
    } finally {
      await stage.stop();
    }
  };
  const results: Partial<Record<StageSystem, Awaited<ReturnType<typeof run>>>> = {};
  for (const system of systems) results[system] = await run(system);
  const correct = (o: { missing: number; doubled: number; wrong: number }) => o.missing === 0 && o.doubled === 0 && o.wrong === 0;
  if (!Object.values(results).every((r) => correct(r.output))) throw new Error(`an enricher's output is not what its input gives: ${JSON.stringify(results)}`);
  const { sluice, kafkaStreams, platformaticLoop } = { sluice: results.sluice, kafkaStreams: results['kafka-streams'], platformaticLoop: results['platformatic-loop'] };
  return {
    events: ENRICHER_EVENTS,
    entities: ENTITIES,
    ...named(results),
    ...(platformaticLoop ? { ratioPlatformaticLoopToKafkaStreams: ratio(platformaticLoop, kafkaStreams), ratioSluiceToPlatformaticLoop: ratio(sluice, platformaticLoop) } : {}),
    ratioSluiceToKafkaStreams: ratio(sluice, kafkaStreams),
    sameOutput: true,
  };
}

/** Each system's figures under its name in the results (sluice, sluiceAtLeastOnce, platformaticLoop, kafkaStreams). */
function named<T>(results: Partial<Record<StageSystem, T>>): { sluice?: T; sluiceAtLeastOnce?: T; platformaticLoop?: T; kafkaStreams?: T } {
  return { sluice: results.sluice, sluiceAtLeastOnce: results['sluice-at-least-once'], platformaticLoop: results['platformatic-loop'], kafkaStreams: results['kafka-streams'] };
}

const ratio = (a?: { eventsPerSecond: number }, b?: { eventsPerSecond: number }) => (a && b ? round(a.eventsPerSecond / b.eventsPerSecond) : undefined);

type Totals = { count: number; sum: number; min: number; max: number };

/** The aggregator on each of `systems` (not the enricher's loop), one after the other, on its own copy of the same records; each output is checked. */
export async function compareAggregators(kafka: Kafka, serde: Serde, systems: Exclude<StageSystem, 'platformatic-loop'>[]) {
  const base = Math.floor(Date.now() / MIN) * MIN - 10 * MIN;
  const events: EnrichedEvent[] = Array.from({ length: AGGREGATOR_EVENTS }, (_, i) => {
    const entity = i % ENTITIES;
    return {
      eventId: `ag-${i}`,
      type: 'view',
      entityId: `entity-${entity}`,
      userId: null,
      occurredAt: base + Math.floor((i * EVENT_TIME_SPAN_MS) / AGGREGATOR_EVENTS),
      value: (i % 11) - 3,
      attributes: {},
      name: 'n',
      category: `c${entity % CATEGORIES}`,
      enrichedAt: Date.now(),
      sourcePartition: 0,
      sourceOffset: i,
    };
  });
  // What every window must hold once all events are counted.
  const expected = new Map<string, Totals>();
  for (const e of events) {
    const windowStart = Math.floor(e.occurredAt / MIN) * MIN;
    for (const id of [`entity|${e.entityId}|${windowStart}`, `category|${e.category}|${windowStart}`]) {
      const t = expected.get(id) ?? { count: 0, sum: 0, min: Number.POSITIVE_INFINITY, max: Number.NEGATIVE_INFINITY };
      expected.set(id, { count: t.count + 1, sum: t.sum + e.value, min: Math.min(t.min, e.value), max: Math.max(t.max, e.value) });
    }
  }
  const run = async (system: StageSystem) => {
    const topic = await topicSet(kafka, system);
    const encoder = await serde.encoder<EnrichedEvent>(valueSubjectOf(topic(TOPICS.eventsEnriched)), 'EnrichedEvent');
    await serde.encoder<WindowAggregate>(valueSubjectOf(topic(TOPICS.aggregates)), 'WindowAggregate');
    await produce(kafka, topic(TOPICS.eventsEnriched), events.map((e) => ({ key: e.entityId, value: encoder.encode(e) })));
    const application = uniqueName(`ks-aggregator-${system}`);
    const repartition = `${application}-by-category-repartition`;
    const windowEnv = { WINDOW_SIZE_MS: String(MIN), WINDOW_GRACE_MS: String(GRACE_MS) };
    const stage = await startStage(
      system,
      {
        service: 'aggregator',
        env: {
          AGGREGATOR_APPLICATION_ID: application,
          AGGREGATOR_INPUT_TOPIC: topic(TOPICS.eventsEnriched),
          AGGREGATOR_OUTPUT_TOPIC: topic(TOPICS.aggregates),
          AGGREGATOR_LATE_TOPIC: topic(TOPICS.eventsLate),
          ...windowEnv,
        },
      },
      { ANCHOR_STAGE: 'aggregator', ANCHOR_APPLICATION_ID: application, ANCHOR_INPUT_TOPIC: topic(TOPICS.eventsEnriched), ANCHOR_OUTPUT_TOPIC: topic(TOPICS.aggregates), ...windowEnv },
    );
    try {
      // Both stages: the input and the repartition topic (every event once, plus Sluice's watermark records) consumed and committed.
      const seconds = await stage.until(consumedSpan(kafka, application, topic(TOPICS.eventsEnriched), [repartition], (committed) => committed >= AGGREGATOR_EVENTS));
      // Read for a fixed time (how many updates each system emits is not known in advance); records arrive in
      // offset order per partition, and a window's key keeps it in one partition: the last one read is its latest.
      const output = await readTopic(kafka, topic(TOPICS.aggregates), {});
      const decoder = serde.decoder<WindowAggregate>('WindowAggregate');
      const latest = new Map<string, Totals>();
      for (const r of output) {
        const a = await decoder.decode(r.value);
        latest.set(`${a.dimension}|${a.key}|${a.windowStart}`, { count: a.count, sum: a.sum, min: a.min, max: a.max });
      }
      const wrong = [...expected].filter(([id, t]) => {
        const got = latest.get(id);
        return !got || got.count !== t.count || got.sum !== t.sum || got.min !== t.min || got.max !== t.max;
      });
      const extra = [...latest.keys()].filter((id) => !expected.has(id)).length;
      return { seconds: round(seconds, 2), eventsPerSecond: Math.round(AGGREGATOR_EVENTS / seconds), output: { records: output.length, windows: latest.size, expectedWindows: expected.size, wrong: wrong.length, extra } };
    } finally {
      await stage.stop();
    }
  };
  const results: Partial<Record<StageSystem, Awaited<ReturnType<typeof run>>>> = {};
  for (const system of systems) results[system] = await run(system);
  if (Object.values(results).some((r) => r.output.wrong + r.output.extra > 0)) throw new Error(`an aggregator's windows are not what its input gives: ${JSON.stringify(results)}`);
  return {
    events: AGGREGATOR_EVENTS,
    entities: ENTITIES,
    categories: CATEGORIES,
    windowMs: MIN,
    eventTimeSpanMs: EVENT_TIME_SPAN_MS,
    graceMs: GRACE_MS,
    note: 'events/s through both stages: entity windows, then category windows after the repartition topic',
    ...named(results),
    ratioSluiceToKafkaStreams: ratio(results.sluice, results['kafka-streams']),
    sameWindows: true,
  };
}
