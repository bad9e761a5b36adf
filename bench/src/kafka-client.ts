import { randomInt } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { TOPICS, valueSubjectOf, Serde, type ActivityEvent, type CatalogItem, type EnrichedEvent } from '@sluice/contracts';
import { changelogKey, checkStageEffects, createTopics, eventIdOf, eventually, readTopic, runningStack, testKafka, uniqueName, type StageEffectsReport } from '@sluice/testing';
import type { Kafka } from 'kafkajs';
import { buildAnchor, compareEnrichers, produce, topicSet } from './kstreams';
import { startLoop } from './loop-process';
import { codesOf } from './error-codes';
import { writeResults } from './results';

/**
 * The Kafka client decision (docs/decisions/kafka-client.md): the enricher's exactly-once loop on
 * `@platformatic/kafka` with KIP-447 (bench/src/eos-loop.ts) put through the checks the runtime's own tests make,
 * then measured in one run with Sluice's runtime (kafkajs, one transactional producer per input partition) and
 * Kafka Streams (exactly_once_v2), on the same broker and the same records. A check that fails is a finding, written
 * with what it saw; the scenario fails only when it cannot run.
 */
export async function kafkaClientBench(): Promise<string> {
  buildAnchor();
  const kafka = testKafka();
  const serde = new Serde(runningStack().schemaRegistryUrl);
  const clients = { kafkajs: packageVersion('kafkajs'), '@platformatic/kafka': packageVersion('@platformatic/kafka'), 'platformatic-kafka-1': packageVersion('platformatic-kafka-1') };
  const checks = {
    restartTransactionalId: await checkRestart(kafka),
    commitAndAbort: await checkCommitAndAbort(kafka, serde),
    zombieFencing: {
      transactionTimeout5s: await checkZombie(kafka, serde, 5_000),
      transactionTimeout30s: await checkZombie(kafka, serde, 30_000),
    },
    kill9: await checkKill9(kafka, serde),
    readCommittedInterleavedAborts: await checkReadCommitted(kafka),
    concurrentIdempotentSends: {
      [clients['@platformatic/kafka']]: await checkConcurrentSends(kafka, '@platformatic/kafka'),
      [clients['platformatic-kafka-1']]: await checkConcurrentSends(kafka, 'platformatic-kafka-1'),
    },
  };
  const enricher = await compareEnrichers(kafka, serde, ['sluice', 'platformatic-loop', 'kafka-streams']);
  return writeResults('kafka-client', {
    clients: { kafkajs: clients.kafkajs, '@platformatic/kafka': clients['@platformatic/kafka'] },
    checks,
    enricher,
  });
}

/** The version of an installed package, from the package.json above its entry point (not every package exports it). */
function packageVersion(name: string): string {
  for (let dir = dirname(require.resolve(name)); dir !== dirname(dir); dir = dirname(dir)) {
    const file = join(dir, 'package.json');
    if (!existsSync(file)) continue;
    const found = JSON.parse(readFileSync(file, 'utf8')) as { name?: string; version?: string };
    if (found.version && found.name) return found.version;
  }
  throw new Error(`no package.json with a version above ${require.resolve(name)}`);
}


// ---- the loop as a process -------------------------------------------------------------------------------------

interface LoopTopics {
  application: string;
  input: string;
  catalog: string;
  output: string;
  changelog: string;
  events: number;
}

/** A topic set with the catalog and `events` raw events in it, and the loop's changelog topic. */
async function loopTopics(kafka: Kafka, serde: Serde, events: number): Promise<LoopTopics> {
  const topic = await topicSet(kafka, 'loop');
  const application = uniqueName('loop');
  const changelog = `${application}-seen-events-changelog`;
  await createTopics(kafka, [{ topic: changelog, numPartitions: 6 }]);
  const items = await serde.encoder<CatalogItem>(valueSubjectOf(topic(TOPICS.catalogItems)), 'CatalogItem');
  const raw = await serde.encoder<ActivityEvent>(valueSubjectOf(topic(TOPICS.eventsRaw)), 'ActivityEvent');
  await serde.encoder<EnrichedEvent>(valueSubjectOf(topic(TOPICS.eventsEnriched)), 'EnrichedEvent');
  const now = Date.now();
  await produce(kafka, topic(TOPICS.catalogItems), Array.from({ length: 100 }, (_, i) => ({ key: `sku-${i}`, value: items.encode({ entityId: `sku-${i}`, name: `Item ${i} ✓`, category: `c${i % 10}`, price: null, attributes: {}, updatedAt: now }) })));
  await produce(
    kafka,
    topic(TOPICS.eventsRaw),
    Array.from({ length: events }, (_, i) => ({ key: `sku-${i % 100}`, value: raw.encode({ eventId: `ev-${i}-🙂`, type: 'view', entityId: `sku-${i % 100}`, userId: null, occurredAt: now + i, value: i % 7, attributes: {} }) })),
  );
  return { application, input: topic(TOPICS.eventsRaw), catalog: topic(TOPICS.catalogItems), output: topic(TOPICS.eventsEnriched), changelog, events };
}

const loopEnv = (t: LoopTopics, instance: string, extra: Record<string, string> = {}) => ({
  LOOP_APPLICATION_ID: t.application,
  LOOP_INSTANCE: instance,
  LOOP_INPUT_TOPIC: t.input,
  LOOP_CATALOG_TOPIC: t.catalog,
  LOOP_OUTPUT_TOPIC: t.output,
  LOOP_CHANGELOG_TOPIC: t.changelog,
  ...extra,
});

/** The group's committed offsets on `topic`, summed, and the topic's end, summed. */
async function progress(kafka: Kafka, group: string, topic: string): Promise<{ committed: number; end: number }> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const [offsets] = await admin.fetchOffsets({ groupId: group, topics: [topic] });
    const committed = (offsets?.partitions ?? []).reduce((sum, p) => sum + Math.max(0, Number(p.offset)), 0);
    const end = (await admin.fetchTopicOffsets(topic)).reduce((sum, p) => sum + Number(p.high), 0);
    return { committed, end };
  } finally {
    await admin.disconnect();
  }
}

const caughtUp = (kafka: Kafka, t: LoopTopics) => eventually(`${t.application} past its input`, () => progress(kafka, t.application, t.input), (p) => p.committed >= p.end, 180_000);

async function effects(kafka: Kafka, serde: Serde, t: LoopTopics): Promise<StageEffectsReport> {
  return checkStageEffects({
    kafka,
    group: t.application,
    input: { topic: t.input, identify: eventIdOf(serde.decoder<ActivityEvent>('ActivityEvent')) },
    outputs: [{ topic: t.output, identify: eventIdOf(serde.decoder<EnrichedEvent>('EnrichedEvent')) }],
    state: [{ topic: t.changelog, identify: changelogKey }],
  });
}

/** What a check reports of an effects report: the counts, and a few of the eventIds behind each. */
function summary(report: StageEffectsReport) {
  const few = (ids: string[]) => ({ count: ids.length, first: ids.slice(0, 5) });
  const exact = report.pending === 0 && report.missing.length + report.doubled.length + report.orphaned.length + report.missingState.length + report.openTransactions.length === 0;
  return { exact, processed: report.processed, pending: report.pending, missing: few(report.missing), doubled: few(report.doubled), orphaned: few(report.orphaned), missingState: few(report.missingState), openTransactions: report.openTransactions };
}

// ---- the checks --------------------------------------------------------------------------------------------------

/** A transaction aborted after its records and offsets were sent, the process gone, then restarted: each input once. */
export async function checkCommitAndAbort(kafka: Kafka, serde: Serde) {
  const t = await loopTopics(kafka, serde, 20_000);
  const first = startLoop(loopEnv(t, '0', { LOOP_ABORT_AT: '3', LOOP_MAX_BATCH: '500' }));
  const firstExit = await first.exited;
  const second = startLoop(loopEnv(t, '0'));
  await caughtUp(kafka, t);
  await second.stop();
  const uncommitted = (await readTopic(kafka, t.output, { readUncommitted: true })).length;
  const report = summary(await effects(kafka, serde, t));
  const aborted = uncommitted - t.events;
  return { passed: firstExit === 3 && aborted > 0 && report.exact, events: t.events, firstRunExit: firstExit, abortedOutputRecords: aborted, ...report };
}

/**
 * A zombie: instance A stops (SIGSTOP) inside a transaction whose records and offsets are sent, before its commit;
 * B joins, A's session expires, B takes every partition and processes the input; then A continues and commits. With
 * KIP-447 the group must keep the two apart: B may not read A's offsets before A's transaction ends (OffsetFetch
 * with requireStable), and A's commit must then either fail or be what B resumes from.
 */
export async function checkZombie(kafka: Kafka, serde: Serde, transactionTimeoutMs: number) {
  const t = await loopTopics(kafka, serde, 20_000);
  const timeouts = { LOOP_TIMEOUT_MS: String(transactionTimeoutMs), LOOP_SESSION_TIMEOUT_MS: '6000', LOOP_MAX_BATCH: '500' };
  const a = startLoop(loopEnv(t, 'a', { ...timeouts, LOOP_STOP_AT: '3' }));
  await a.said(/stopping before the commit/);
  // What the broker answers a reader that asks for stable offsets now (the Java client's consumer does, with
  // KIP-447): it must not hand out the offsets under A's open transaction.
  const stableOffsets = await askStableOffsets(t.application);
  const b = startLoop(loopEnv(t, 'b', timeouts));
  await caughtUp(kafka, t);
  a.child.kill('SIGCONT');
  // A either commits (then exits: a rebalance happened during its transaction) or is refused and aborts.
  await Promise.race([a.said(/aborted|exiting|failed/, 60_000).catch(() => undefined), a.exited]);
  await new Promise((r) => setTimeout(r, 2_000));
  const exits = { a: await a.stop(), b: await b.stop() };
  const report = summary(await effects(kafka, serde, t));
  return { passed: report.exact, transactionTimeoutMs, sessionTimeoutMs: 6_000, stableOffsetsWhileZombieStopped: stableOffsets, zombieSaid: a.lines.filter((l) => /transaction 3|refused|abort|exiting/.test(l)), exits, ...report };
}

/** The outcome of one OffsetFetch with requireStable for `group` (what @platformatic/kafka's consumer never sends). */
async function askStableOffsets(group: string): Promise<string> {
  const { Admin } = await import('@platformatic/kafka');
  const admin = new Admin({ clientId: 'stable-offsets', bootstrapBrokers: runningStack().kafkaBrokers, retries: 0 });
  try {
    await admin.listConsumerGroupOffsets({ groups: [group], requireStable: true });
    return 'offsets returned';
  } catch (err) {
    return codesOf(err);
  } finally {
    await admin.close();
  }
}

/** kill -9 at random moments while the loop works through its input, three times, then to the end: each input once. */
export async function checkKill9(kafka: Kafka, serde: Serde) {
  const t = await loopTopics(kafka, serde, 60_000);
  const kills: { afterMs: number; committedBefore: number }[] = [];
  for (let i = 0; i < 3; i++) {
    const loop = startLoop(loopEnv(t, '0', { LOOP_MAX_BATCH: '1000' }));
    await loop.said(/started/);
    const afterMs = randomInt(200, 2_500);
    await new Promise((r) => setTimeout(r, afterMs));
    loop.child.kill('SIGKILL');
    await loop.exited;
    kills.push({ afterMs, committedBefore: (await progress(kafka, t.application, t.input)).committed });
  }
  const last = startLoop(loopEnv(t, '0'));
  await caughtUp(kafka, t);
  await last.stop();
  const report = summary(await effects(kafka, serde, t));
  return { passed: report.exact, events: t.events, kills, ...report };
}

/**
 * One partition holding committed and aborted transactions of two producers interleaved record by record, and
 * plain records between them: a read_committed consumer must see exactly the committed and plain records, in order.
 * The same topic is read with the project's kafkajs (patched for such a bug) as the control.
 */
export async function checkReadCommitted(kafka: Kafka) {
  const topic = uniqueName('loop-read-committed');
  await createTopics(kafka, [{ topic, numPartitions: 1 }]);
  const producer = (id: string) => kafka.producer({ transactionalId: `${topic}-${id}`, idempotent: true, maxInFlightRequests: 1 });
  const [p1, p2, plain] = [producer('one'), producer('two'), kafka.producer({ idempotent: true, maxInFlightRequests: 1 })];
  for (const p of [p1, p2, plain]) await p.connect();
  const expected: string[] = [];
  for (let round = 0; round < 20; round++) {
    const [t1, t2] = [await p1.transaction(), await p2.transaction()];
    for (let i = 0; i < 5; i++) {
      await t1.send({ topic, messages: [{ value: `committed-${round}-${i}` }] });
      await t2.send({ topic, messages: [{ value: `aborted-${round}-${i}` }] });
      expected.push(`committed-${round}-${i}`);
    }
    if (round % 2 === 0) {
      await t2.abort();
      await t1.commit();
    } else {
      await t1.commit();
      await t2.abort();
    }
    await plain.send({ topic, acks: -1, messages: [{ value: `plain-${round}` }] });
    expected.push(`plain-${round}`);
  }
  for (const p of [p1, p2, plain]) await p.disconnect();

  const { Consumer } = await import('@platformatic/kafka');
  const consumer = new Consumer({ groupId: uniqueName('loop-reader'), clientId: 'read-committed-check', bootstrapBrokers: runningStack().kafkaBrokers, autocommit: false, maxWaitTime: 200 });
  const seen: string[] = [];
  try {
    const stream = await consumer.consume({ topics: [topic], mode: 'earliest', autocommit: false });
    stream.on('data', (m: { value: Buffer }) => seen.push(m.value.toString()));
    // Everything expected, then a while longer for anything that should not be there.
    await eventually('the platformatic reader', async () => seen.length, (n) => n >= expected.length, 30_000).catch(() => undefined);
    await new Promise((r) => setTimeout(r, 3_000));
    await stream.close();
  } finally {
    await consumer.close(true);
  }
  const control = (await readTopic(kafka, topic)).map((r) => r.value?.toString() ?? '');
  const same = (a: string[]) => a.length === expected.length && a.every((v, i) => v === expected[i]);
  return {
    passed: same(seen),
    expected: expected.length,
    platformatic: { records: seen.length, inOrderAndExact: same(seen), aborted: seen.filter((v) => v.startsWith('aborted')).length },
    kafkajsControl: { records: control.length, inOrderAndExact: same(control) },
  };
}

/**
 * A transactional producer started again with the transactional id of one that committed before (a restarted
 * instance): with the client's defaults, and with producerId -1 / epoch -1 given explicitly (what InitProducerId
 * expects from a new producer).
 */
export async function checkRestart(kafka: Kafka) {
  const topic = uniqueName('loop-restart');
  await createTopics(kafka, [{ topic, numPartitions: 1 }]);
  const { Producer } = await import('@platformatic/kafka');
  const attempt = async (transactionalId: string, explicit: boolean) => {
    const producer = new Producer({ clientId: 'restart-check', bootstrapBrokers: runningStack().kafkaBrokers, idempotent: true, transactionalId, acks: -1, ...(explicit ? { producerId: -1n, producerEpoch: -1 } : {}) });
    try {
      const transaction = await producer.beginTransaction();
      await transaction.send({ messages: [{ topic, value: Buffer.from(transactionalId) }] });
      await transaction.commit();
      return 'ok';
    } catch (err) {
      return codesOf(err);
    } finally {
      await producer.close();
    }
  };
  const defaults = uniqueName('restart-defaults');
  const explicit = uniqueName('restart-explicit');
  // The explicit pair first: on a broker that has never given out a producer id, the first one is 0, which is what
  // the client's defaults claim to be, and a restart with the defaults would pass by that coincidence.
  const explicitNewProducer = { first: await attempt(explicit, true), restarted: await attempt(explicit, true) };
  const clientDefaults = { first: await attempt(defaults, false), restarted: await attempt(defaults, false) };
  const result = { clientDefaults, explicitNewProducer };
  return { passed: result.clientDefaults.restarted === 'ok', ...result };
}

/** Rounds of 8 concurrent sends of 100 records on one idempotent producer: every send acknowledged, each record once. */
export async function checkConcurrentSends(kafka: Kafka, module: string) {
  const topic = uniqueName('loop-idempotent');
  await createTopics(kafka, [{ topic, numPartitions: 6 }]);
  const { Producer } = (await import(module)) as typeof import('@platformatic/kafka', { with: { 'resolution-mode': 'import' } });
  const producer = new Producer({ clientId: 'idempotent-check', bootstrapBrokers: runningStack().kafkaBrokers, idempotent: true, acks: -1 });
  const failures = new Map<string, number>();
  let acknowledged = 0;
  const rounds = 50;
  try {
    for (let round = 0; round < rounds; round++) {
      await Promise.all(
        Array.from({ length: 8 }, async (_, s) => {
          try {
            await producer.send({ messages: Array.from({ length: 100 }, (_, i) => ({ topic, key: Buffer.from(`k${i % 17}`), value: Buffer.from(`${round}-${s}-${i}`) })) });
            acknowledged += 100;
          } catch (err) {
            const code = codesOf(err);
            failures.set(code, (failures.get(code) ?? 0) + 1);
          }
        }),
      );
    }
  } finally {
    await producer.close();
  }
  const values = (await readTopic(kafka, topic)).map((r) => r.value?.toString() ?? '');
  const counts = new Map<string, number>();
  for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1);
  const doubledValues = [...counts].filter(([, n]) => n > 1).map(([v]) => v);
  const doubled = doubledValues.length;
  const sends = rounds * 8;
  const failedSends = [...failures.values()].reduce((a, b) => a + b, 0);
  return { passed: failedSends === 0 && doubled === 0 && values.length === sends * 100, sends, failedSends, failures: Object.fromEntries(failures), acknowledgedRecords: acknowledged, recordsInTopic: values.length, doubled, doubledSample: doubledValues.slice(0, 10) };
}
