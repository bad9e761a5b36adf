import { Serde, type ActivityEvent, type EnrichedEvent } from '@sluice/contracts';
import { checkStageEffects, cleanStageReport, eventIdOf, openTransactions, readTopic, runningStack, startKafkaCluster, withAdmin, type KafkaCluster } from '@sluice/testing';
import { Kafka, logLevel } from 'kafkajs';
import { ADMIN_TOKEN, eventually, startPipeline, type JsonBody as Json, type Pipeline } from '@sluice/testing';

// Exactly-once across broker loss (issue 23): the whole pipeline on a 3-node
// cluster (replication factor 3, min.insync.replicas 2) under steady load
// through the gateway, while brokers are killed (kill -9) one at a time and
// started again, at least ten times. Every event the gateway acknowledged is
// counted exactly once in the view, no stage has an input whose output, state
// change and offset were not committed together, no transaction hangs, and
// every group catches up.
jest.setTimeout(900_000);

const NODES = 3;
const KILLS = 10;
const MIN = 60_000;
// One window two hours back; every event falls in its first 50 s, so no window
// closes and nothing is late, whatever order partitions deliver in.
const T = Math.floor(Date.now() / MIN) * MIN - 120 * MIN;
const ENTITIES = Array.from({ length: 24 }, (_, i) => ({ entityId: `fo-${i}`, category: `fo-cat-${i % 4}` }));
// Left out of the catalog until its dead letters are replayed.
const MISSING = { entityId: 'fo-missing', category: 'fo-cat-0' };
const categoryOf = (entityId: string) => [...ENTITIES, MISSING].find((x) => x.entityId === entityId)!.category;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let cluster: KafkaCluster;
let kafka: Kafka;
let p: Pipeline;
/** Every event the first test had acknowledged, for the second's expectations. */
let acknowledged: Sent[] = [];

beforeAll(async () => {
  cluster = await startKafkaCluster({ nodes: NODES });
  kafka = cluster.kafka('broker-failover');
  p = await startPipeline({
    windowRetentionMs: 24 * 3_600_000,
    partitions: 6,
    stack: cluster.stack,
    kafka,
    replicationFactor: NODES,
    env: { LOG_LEVEL: 'info' },
  });
});

afterAll(async () => {
  await p?.close();
  await cluster?.close();
});

/** Java's String.hashCode, as Kafka uses it to place a group or a transactional id on a coordinator partition. */
function javaHash(text: string): number {
  let h = 0;
  for (let i = 0; i < text.length; i++) h = (Math.imul(31, h) + text.charCodeAt(i)) | 0;
  return h & 0x7fffffff;
}

const ROLES = ['partition leader', 'group coordinator', 'transaction coordinator'] as const;
type Role = (typeof ROLES)[number];

/** What each broker does for the pipeline right now: leads input partitions, coordinates a stage's group or a transaction. */
async function rolesByBroker(): Promise<Map<number, Set<Role>>> {
  return withAdmin(kafka, async (admin) => {
    const roles = new Map<number, Set<Role>>(Array.from({ length: NODES }, (_, i) => [i + 1, new Set<Role>()]));
    const { topics } = await admin.fetchTopicMetadata({ topics: [p.topic('events.raw'), p.topic('events.enriched'), '__consumer_offsets', '__transaction_state'] });
    const partitionsOf = (topic: string) => topics.find((t) => t.name === topic)?.partitions ?? [];
    const leaderOf = (topic: string, partition: number) => partitionsOf(topic).find((x) => x.partitionId === partition)?.leader;
    const add = (broker: number | undefined, role: Role) => broker !== undefined && roles.get(broker)?.add(role);
    for (const topic of [p.topic('events.raw'), p.topic('events.enriched')]) for (const x of partitionsOf(topic)) add(x.leader, 'partition leader');
    for (const group of [p.groups.enricher, p.groups.aggregator]) {
      add(leaderOf('__consumer_offsets', javaHash(group) % partitionsOf('__consumer_offsets').length), 'group coordinator');
    }
    for (const [application, topic] of [[p.groups.enricher, p.topic('events.raw')], [p.groups.aggregator, p.topic('events.enriched')]] as const) {
      for (let partition = 0; partition < 6; partition++) {
        add(leaderOf('__transaction_state', javaHash(`${application}-${topic}-${partition}`) % partitionsOf('__transaction_state').length), 'transaction coordinator');
      }
    }
    return roles;
  });
}

/** kill -9 of a broker holding `role` (another one than last time when it can), a few seconds down, started again. */
async function killBrokerWith(role: Role, previous: number | undefined): Promise<{ node: number; roles: Role[] }> {
  const roles = await askAgainOnError('roles of the brokers', rolesByBroker);
  const holders = [...roles].filter(([, r]) => r.has(role)).map(([node]) => node);
  const node = holders.find((n) => n !== previous) ?? holders[0] ?? ((previous ?? 0) % NODES) + 1;
  await cluster.kill(node);
  await sleep(3_000);
  await cluster.restart(node);
  return { node, roles: [...(roles.get(node) ?? [])] };
}

/** The test's own admin calls meet the same outages: an error means "ask again", for a while. */
async function askAgainOnError<T>(what: string, ask: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await ask();
    } catch (err) {
      if (attempt >= 30) throw new Error(`${what}: ${String(err)}`, { cause: err });
      await sleep(1_000);
    }
  }
}

/** Every replica of every partition back in sync: the next broker may go. */
async function fullyReplicated(): Promise<void> {
  await eventually(
    'every partition fully replicated',
    () =>
      askAgainOnError('metadata', () =>
        withAdmin(kafka, async (admin) => (await admin.fetchTopicMetadata()).topics.flatMap((t) => t.partitions).filter((x) => x.isr.length < x.replicas.length).length),
      ),
    (underReplicated) => underReplicated === 0,
    120_000,
  );
}

interface Sent extends ActivityEvent {
  acknowledged: boolean;
}

/**
 * Two clients send events in small paced requests; a request that is refused is
 * sent again, same eventIds, until the gateway acknowledges it.
 */
function steadyLoad(stop: () => boolean): { events: Sent[]; done: Promise<{ requests: number; refusals: number }> } {
  const events: Sent[] = [];
  let requests = 0;
  let refusals = 0;
  let seq = 0;
  const client = async () => {
    while (!stop()) {
      const batch: Sent[] = Array.from({ length: 8 }, () => {
        seq += 1;
        const entity = ENTITIES[seq % ENTITIES.length]!;
        return { eventId: `fo-${seq}`, type: 'view', entityId: entity.entityId, userId: null, occurredAt: T + (seq % 50_000), value: (seq % 97) + 1, attributes: {}, acknowledged: false };
      });
      events.push(...batch);
      const body = { events: batch.map((e) => ({ eventId: e.eventId, type: e.type, entityId: e.entityId, occurredAt: new Date(e.occurredAt).toISOString(), value: e.value })) };
      const deadline = Date.now() + 120_000;
      for (;;) {
        requests += 1;
        const res = await p.http(p.gateway, 'POST', '/v1/events', body).catch(() => ({ status: 0 }));
        if (res.status === 202) break;
        refusals += 1;
        if (Date.now() > deadline) throw new Error(`the gateway refused a request for two minutes (last status ${res.status})`);
        await sleep(250);
      }
      for (const e of batch) e.acknowledged = true;
      await sleep(100);
    }
  };
  const done = Promise.all([client(), client()]).then(() => ({ requests, refusals }));
  return { events, done };
}

const serde = new Serde(runningStack().schemaRegistryUrl);
const activity = serde.decoder<ActivityEvent>('ActivityEvent');
const enriched = serde.decoder<EnrichedEvent>('EnrichedEvent');

/** Sends `events` through the gateway until it acknowledges them. */
async function sendAcknowledged(events: Sent[]): Promise<void> {
  const body = { events: events.map((e) => ({ eventId: e.eventId, type: e.type, entityId: e.entityId, occurredAt: new Date(e.occurredAt).toISOString(), value: e.value })) };
  await eventually('the gateway acknowledges', async () => (await p.http(p.gateway, 'POST', '/v1/events', body)).status, (status) => status === 202, 120_000);
  for (const e of events) e.acknowledged = true;
}

/** The independent computation: count and sum of every window, per entity and per category. */
type Windows = Record<string, { count: number; sum: number }>;

function expectedWindows(events: Sent[]): Windows {
  const out: Windows = {};
  for (const e of events) {
    for (const id of [`entity|${e.entityId}`, `category|${categoryOf(e.entityId)}`]) {
      const w = out[id] ?? { count: 0, sum: 0 };
      out[id] = { count: w.count + 1, sum: w.sum + e.value };
    }
  }
  return out;
}

async function servedWindows(): Promise<Windows> {
  const out: Windows = {};
  for (const dimension of ['entity', 'category']) {
    const res = await p.http(p.view, 'GET', `/v1/aggregates?dimension=${dimension}&from=${new Date(T).toISOString()}&to=${new Date(T + 1).toISOString()}&limit=500`);
    for (const w of (res.body.windows ?? []) as Json[]) out[`${dimension}|${w.key}`] = { count: w.count, sum: w.sum };
  }
  return out;
}

/** Waits until the view counts what `expected` says (the error shows the windows that differ); the windows it serves. */
async function viewCounts(what: string, expected: Windows): Promise<Windows> {
  const differing = (served: Windows) => Object.entries(expected).filter(([id, w]) => served[id]?.count !== w.count);
  try {
    return await eventually(what, servedWindows, (served) => differing(served).length === 0, 300_000);
  } catch (err) {
    const served = await servedWindows();
    throw new Error(`${String(err).slice(0, 200)}; differing windows (expected, served): ${JSON.stringify(differing(served).map(([id, w]) => [id, w, served[id]]))}`, { cause: err });
  }
}

/** Waits until the enricher's catalog table holds `entries` entries (its reader may lag while a coordinator loads or a broker is down). */
async function catalogHolds(entries: number): Promise<void> {
  await eventually(
    "the enricher's catalog table holds every entry",
    async () => {
      const metrics = await fetch(`${p.enricher.url}/metrics`).then((r) => r.text(), () => '');
      return Number(/^enricher_catalog_entries(?:\{[^}]*\})? (\d+)/m.exec(metrics)?.[1] ?? 0);
    },
    (n) => n === entries,
    120_000,
  );
}

/** Dead letters indexed by the replayer, one line each: where it came from, its code and key. */
async function deadLetters(): Promise<string[]> {
  const res = await p.http(p.replayer, 'GET', '/admin/dlq?limit=1000', undefined, { authorization: `Bearer ${ADMIN_TOKEN}`, 'x-operator': 'broker-failover' });
  return ((res.body.deadLetters ?? []) as Json[]).map((d) => `${d.sourceTopic}[${d.sourcePartition}]@${d.sourceOffset} ${d.errorCode} ${d.key}`);
}

test('every acknowledged event is counted exactly once while brokers are killed one at a time', async () => {
  for (const entity of ENTITIES) {
    const res = await p.http(p.gateway, 'PUT', `/v1/catalog/${entity.entityId}`, { name: entity.entityId, category: entity.category });
    expect(res.status).toBe(200);
  }
  // Events sent before the table has an entity's entry would wait ENRICHER_CATALOG_WAIT_MS (500 ms here),
  // then become catalog.missing dead letters: not what this test is about.
  await catalogHolds(ENTITIES.length);
  let stopLoad = false;
  const load = steadyLoad(() => stopLoad);
  const kills: { node: number; roles: Role[] }[] = [];
  try {
    await sleep(5_000);
    for (let k = 0; k < KILLS; k++) {
      kills.push(await killBrokerWith(ROLES[k % ROLES.length]!, kills.at(-1)?.node));
      await fullyReplicated();
    }
    await sleep(3_000);
  } finally {
    stopLoad = true;
  }
  const { requests, refusals } = await load.done;
  const events = load.events;
  acknowledged = events;
  console.log(`broker failover: ${kills.length} kills ${JSON.stringify(kills)}; ${events.length} events in ${requests} requests, ${refusals} refused and sent again`);
  expect(kills.length).toBeGreaterThanOrEqual(KILLS);
  expect([...new Set(kills.flatMap((k) => k.roles))].sort()).toEqual([...ROLES].sort());
  expect(events.every((e) => e.acknowledged)).toBe(true);

  // The view counts every acknowledged event exactly once, and each stage committed its outputs, state
  // changes and offsets together: nothing missing, nothing doubled (both checked before either fails, so
  // that a wrong view says which stage, if any, lost or doubled its input).
  const expected = expectedWindows(events);
  const served = await viewCounts('the view counts every event', expected).catch((err: unknown) => err as Error);
  // Every entity has its catalog entry: nothing is a dead letter.
  expect(await deadLetters()).toEqual([]);
  expect(await p.checkStages()).toEqual({ enricher: cleanStageReport(events.length), aggregator: cleanStageReport(events.length) });
  if (served instanceof Error) throw served;
  expect(served).toEqual(expected);

  // No transaction is left open on any partition of the pipeline: every read_committed reader can reach the end.
  const topics = (await withAdmin(kafka, (admin) => admin.listTopics())).filter((t) => [p.topic(''), p.groups.enricher, p.groups.aggregator].some((prefix) => t.startsWith(prefix)));
  expect(topics.length).toBeGreaterThan(8);
  expect(await eventually('no transaction open', () => openTransactions(kafka, topics, cluster.brokers), (open) => open.length === 0, 60_000)).toEqual([]);
  const late = await withAdmin(kafka, (admin) => admin.fetchTopicOffsets(p.topic('events.late')));
  expect(late.every((o) => o.high === o.low)).toBe(true);
});

test('a dead-letter replay during which the leader of its target partition is killed counts every replayed event exactly once', async () => {
  expect(acknowledged.length).toBeGreaterThan(0);
  const admin = { authorization: `Bearer ${ADMIN_TOKEN}`, 'x-operator': 'broker-failover' };
  const missing: Sent[] = Array.from({ length: 120 }, (_, i) => ({
    eventId: `fo-missing-${i}`,
    type: 'view',
    entityId: MISSING.entityId,
    userId: null,
    occurredAt: T + i * 100,
    value: i + 1,
    attributes: {},
    acknowledged: false,
  }));
  for (let i = 0; i < missing.length; i += 20) await sendAcknowledged(missing.slice(i, i + 20));
  const deadLetters = await eventually(
    'every event of the entity without a catalog entry is a dead letter',
    async () => ((await p.http(p.replayer, 'GET', `/admin/dlq?limit=1000&code=catalog.missing&key=${MISSING.entityId}`, undefined, admin)).body.deadLetters ?? []) as Json[],
    (d) => d.length === missing.length,
  );
  expect((await p.http(p.gateway, 'PUT', `/v1/catalog/${MISSING.entityId}`, { name: MISSING.entityId, category: MISSING.category })).status).toBe(200);

  const started = await p.http(p.replayer, 'POST', '/admin/dlq/replays', { filter: { code: 'catalog.missing', key: MISSING.entityId }, ratePerSec: 15 }, admin);
  expect(started.status).toBe(202);
  // The replay writes to one partition of events.raw (one key): kill its leader while records are being replayed.
  const target = p.topic('events.raw');
  const partition = Number(deadLetters[0].sourcePartition);
  const leader = await askAgainOnError('leader of the target partition', () =>
    withAdmin(kafka, async (a) => (await a.fetchTopicMetadata({ topics: [target] })).topics[0]!.partitions.find((x) => x.partitionId === partition)!.leader),
  );
  await sleep(2_000);
  const during = await p.http(p.replayer, 'GET', `/admin/dlq/replays/${started.body.replayId}`, undefined, admin);
  expect(during.body.status).toBe('running');
  await cluster.kill(leader);
  await sleep(3_000);
  await cluster.restart(leader);
  const completed = (replayId: string) =>
    eventually(
      'the replay completes',
      async () => (await p.http(p.replayer, 'GET', `/admin/dlq/replays/${replayId}`, undefined, admin)).body,
      (r) => r.status === 'completed',
      180_000,
    );
  const finished = await completed(started.body.replayId);
  expect(finished.counts).toEqual({ replayed: missing.length });
  // While the broker was down the enricher's catalog table may have fallen behind the fix for longer
  // than the catalog wait: such events are dead letters again (never lost, never counted twice).
  // Replayed once more when the enricher's table holds the fix, they must all count.
  await catalogHolds(ENTITIES.length + 1);
  const again = await p.http(p.replayer, 'POST', '/admin/dlq/replays', { filter: { code: 'catalog.missing', key: MISSING.entityId, status: 'pending' }, ratePerSec: 100 }, admin);
  expect(again.status).toBe(202);
  await completed(again.body.replayId);

  const expected = expectedWindows([...acknowledged, ...missing]);
  const served = await viewCounts('the view counts every replayed event', expected).catch((err: unknown) => err as Error);
  // Every event, replayed or not, is in events.enriched exactly once, and counted once by the aggregator
  // (checked before a wrong view fails the test, so that it says which stage, if any, lost or doubled one).
  expect(await stagesOnce()).toEqual(cleanStages(acknowledged.length + missing.length));
  if (served instanceof Error) throw served;
  expect(served).toEqual(expected);
  acknowledged.push(...missing);
});

/**
 * The enricher's invariant over everything the tests sent, with events.enriched as its only output:
 * events.raw.dlq is left out, because a replayed event is a dead letter first, then an output.
 */
const enrichedOnce = () =>
  checkStageEffects({
    kafka,
    brokers: cluster.brokers,
    group: p.groups.enricher,
    input: { topic: p.topic('events.raw'), identify: eventIdOf(activity) },
    outputs: [{ topic: p.topic('events.enriched'), identify: eventIdOf(enriched) }],
  });

/** The enricher's invariant as above, and the aggregator's entity stage (every enriched event is one of its inputs). */
const stagesOnce = async () => ({ enricher: await enrichedOnce(), aggregator: (await p.checkStages()).aggregator });
const cleanStages = (events: number) => ({ enricher: cleanStageReport(events), aggregator: cleanStageReport(events) });

test('the leader of the partition a request writes to is killed mid-request: every event the gateway acknowledged is in events.raw, and enriched exactly once', async () => {
  const entity = ENTITIES[1]!;
  const raw = p.topic('events.raw');
  let seq = 0;
  let inFlight = 0;
  let stop = false;
  const sent: Sent[] = [];
  const statuses = new Map<number, number>();
  // Requests of 200 events of one entity (one partition), back to back; one refused is sent again, same eventIds, until acknowledged.
  const client = async () => {
    while (!stop) {
      const batch: Sent[] = Array.from({ length: 200 }, () => {
        seq += 1;
        return { eventId: `fo-leader-${seq}`, type: 'view', entityId: entity.entityId, userId: null, occurredAt: T + (seq % 50_000), value: (seq % 89) + 1, attributes: {}, acknowledged: false };
      });
      const body = { events: batch.map((e) => ({ eventId: e.eventId, type: e.type, entityId: e.entityId, occurredAt: new Date(e.occurredAt).toISOString(), value: e.value })) };
      const deadline = Date.now() + 120_000;
      for (;;) {
        inFlight += 1;
        const res = await p.http(p.gateway, 'POST', '/v1/events', body).catch(() => ({ status: 0, body: undefined }));
        inFlight -= 1;
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        if (res.status === 202) break;
        if (Date.now() > deadline) throw new Error(`the gateway refused a request for two minutes (last status ${res.status})`);
        await sleep(200);
      }
      for (const e of batch) e.acknowledged = true;
      sent.push(...batch);
    }
  };
  const clients = Promise.all([client(), client()]);
  try {
    await eventually('a first request acknowledged', async () => sent.length, (n) => n > 0, 60_000);
    const partition = await askAgainOnError('partition of the entity', async () => {
      const res = await p.http(p.gateway, 'POST', '/v1/events', { events: [{ eventId: 'fo-leader-probe', type: 'view', entityId: entity.entityId, occurredAt: new Date(T).toISOString(), value: 1 }] });
      if (res.status !== 202) throw new Error(`status ${res.status}`);
      return Number(res.body.results[0].partition);
    });
    sent.push({ eventId: 'fo-leader-probe', type: 'view', entityId: entity.entityId, userId: null, occurredAt: T, value: 1, attributes: {}, acknowledged: true });
    const leader = await askAgainOnError('leader of the partition', () =>
      withAdmin(kafka, async (a) => (await a.fetchTopicMetadata({ topics: [raw] })).topics[0]!.partitions.find((x) => x.partitionId === partition)!.leader),
    );
    await eventually('a request in flight', async () => inFlight, (n) => n > 0, 10_000);
    const inFlightAtKill = inFlight;
    await cluster.kill(leader);
    await sleep(3_000);
    await cluster.restart(leader);
    await sleep(2_000);
    console.log(`leader ${leader} of ${raw}[${partition}] killed with ${inFlightAtKill} requests in flight; statuses ${JSON.stringify([...statuses])}`);
    expect(inFlightAtKill).toBeGreaterThan(0);
  } finally {
    stop = true;
    await clients;
  }
  await fullyReplicated();
  // Everything acknowledged is in events.raw (the gateway may have written a refused request's events too: a client sends those again).
  const ids = new Set(sent.map((e) => e.eventId));
  const inRaw = await readTopic(kafka, raw, { endTimeoutMs: 90_000 }).then(async (records) => {
    const found = new Set<string>();
    for (const r of records) {
      const id = (await activity.decode(r.value)).eventId;
      if (ids.has(id)) found.add(id);
    }
    return found;
  });
  expect([...ids].filter((id) => !inRaw.has(id))).toEqual([]);
  // ...and enriched exactly once, with everything the earlier tests sent, and counted once (stages checked before a wrong view fails).
  const served = await viewCounts('the view counts every event', expectedWindows([...acknowledged, ...sent])).catch((err: unknown) => err as Error);
  expect(await stagesOnce()).toEqual(cleanStages(acknowledged.length + sent.length));
  if (served instanceof Error) throw served;
});

test('a killed broker is started again only once the controller has fenced it, never while it still counts as live', async () => {
  const node = 3;
  const address = cluster.brokers[node - 1]!;
  const port = Number(address.split(':').at(-1));
  // The other brokers' view of the killed one, sampled while the stack runner restarts it.
  const others = new Kafka({ clientId: 'broker-failover-fence', brokers: cluster.brokers.filter((b) => b !== address), logLevel: logLevel.NOTHING });
  const samples: { at: number; live: boolean }[] = [];
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      const live = await withAdmin(others, async (admin) => (await admin.describeCluster()).brokers.some((b) => b.port === port)).catch(() => undefined);
      if (live !== undefined) samples.push({ at: Date.now(), live });
      await sleep(100);
    }
  })();
  let startedAt: number;
  const killedAt = Date.now();
  try {
    await cluster.kill(node);
    startedAt = await cluster.restart(node);
    await fullyReplicated();
  } finally {
    sampling = false;
    await sampler;
  }
  const afterKill = samples.filter((s) => s.at >= killedAt);
  // Right after the kill its session is still valid: a broker back this soon would act on its old leaderships.
  expect(afterKill[0]?.live).toBe(true);
  // The controller fenced it (its session expired) while it was down, and the new process was launched after that
  // (a second of slack for the sampling; started at once, it would have been launched about 9 s before).
  const fencedSeenAt = afterKill.find((s) => !s.live)?.at;
  expect(fencedSeenAt).toBeDefined();
  expect(startedAt).toBeGreaterThanOrEqual(fencedSeenAt! - 1_000);
});
