import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { provisionTopics, Serde, topicCatalog, valueSubjectOf, type ActivityEvent, type CatalogItem, type EnrichedEvent } from '@sluice/contracts';
import { runningStack, startTestService, testKafka, uniqueName, withAdmin, type TestService } from '@sluice/testing';
import { Partitioners, type Producer } from 'kafkajs';
import { writeResults } from './results';

/**
 * How the stream runtime's cost grows with partitions. The runtime is Kafka Streams' "EOS v1": one transactional
 * producer per input partition, so producers, broker connections, memory and the work of a rebalance grow with the
 * partition count. For each stage and each count (BENCH_SCALING_PARTITIONS, default 6,24,96): throughput of one
 * instance over pre-loaded input; then, under a steady load, the time from a second instance's start until both
 * process again (rebalance, producer fencing, restore); producers (assigned partitions), broker connections and RSS
 * per instance.
 */

const EVENTS = 50_000;
const STEADY_PER_SECOND = 500;
const ENTITIES = 200;

type Stage = 'enricher' | 'aggregator';

export async function scalingBench(): Promise<string> {
  const counts = (process.env.BENCH_SCALING_PARTITIONS ?? '6,24,96').split(',').map(Number);
  const runs = [];
  for (const partitions of counts) {
    for (const stage of ['enricher', 'aggregator'] as const) {
      const run = await measure(stage, partitions);
      process.stdout.write(`${JSON.stringify(run)}\n`);
      runs.push(run);
    }
  }
  return writeResults('scaling', {
    events: EVENTS,
    steadyEventsPerSecond: STEADY_PER_SECOND,
    note: 'throughput counts the records of the stage input topic (the aggregator also processes each event a second time after its repartition); "both processing" is the time from the second instance being started until each instance has processed a record after the second one got its partitions',
    runs,
  });
}

async function measure(stage: Stage, partitions: number) {
  const kafka = testKafka();
  const prefix = `${uniqueName('scale')}.`;
  await withAdmin(kafka, (admin) => provisionTopics(admin, topicCatalog({ prefix, partitions })));
  const serde = new Serde(runningStack().schemaRegistryUrl);
  const input = stage === 'enricher' ? `${prefix}events.raw` : `${prefix}events.enriched`;
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  const encode = await encoderFor(stage, serde, prefix, producer);
  const send = async (first: number, count: number) => {
    for (let start = 0; start < count; start += 2_000) {
      const n = Math.min(2_000, count - start);
      await producer.send({ topic: input, acks: -1, messages: Array.from({ length: n }, (_, j) => encode(first + start + j)) });
    }
  };
  await send(0, EVENTS);

  const application = uniqueName(`scale-${stage}`);
  const env: Record<string, string> =
    stage === 'enricher'
      ? { ENRICHER_APPLICATION_ID: application, ENRICHER_INPUT_TOPIC: input, ENRICHER_CATALOG_TOPIC: `${prefix}catalog.items`, ENRICHER_OUTPUT_TOPIC: `${prefix}events.enriched`, LOG_LEVEL: 'warn' }
      : { AGGREGATOR_APPLICATION_ID: application, AGGREGATOR_INPUT_TOPIC: input, AGGREGATOR_OUTPUT_TOPIC: `${prefix}aggregates`, AGGREGATOR_LATE_TOPIC: `${prefix}events.late`, LOG_LEVEL: 'warn' };
  const brokerPorts = new Set(runningStack().kafkaBrokers.map((b) => Number(b.slice(b.lastIndexOf(':') + 1))));
  const instances: TestService[] = [];
  let steady: NodeJS.Timeout | undefined;
  try {
    const a = await startTestService(stage, { env });
    instances.push(a);
    const processed = (s: TestService) => recordsIn(s, input);
    let firstMs: number | undefined;
    for (const deadline = Date.now() + 600_000; Date.now() < deadline; await sleep(100)) {
      const n = await processed(a);
      if (n > 0) firstMs ??= Date.now();
      if (n >= EVENTS) break;
    }
    const seconds = (Date.now() - (firstMs ?? Date.now())) / 1000;
    const one = await footprint(a, brokerPorts);

    // A steady load, then a second instance of the same application.
    let next = EVENTS;
    let sending = Promise.resolve();
    steady = setInterval(() => {
      const first = next;
      next += STEADY_PER_SECOND / 10;
      sending = sending.then(() => send(first, STEADY_PER_SECOND / 10)).catch(() => undefined);
    }, 100);
    await sleep(2_000);
    const startedAt = Date.now();
    const b = await startTestService(stage, { env, name: uniqueName(`${stage}-b`) });
    instances.push(b);
    const upSeconds = (Date.now() - startedAt) / 1000;
    let aAtAssignment: number | undefined;
    let bothSeconds: number | null = null;
    for (const deadline = Date.now() + 180_000; Date.now() < deadline; await sleep(100)) {
      if (aAtAssignment === undefined && (await metric(b, 'stream_assigned_partitions')) > 0) aAtAssignment = await processed(a);
      if (aAtAssignment !== undefined && (await processed(b)) > 0 && (await processed(a)) > aAtAssignment) {
        bothSeconds = (Date.now() - startedAt) / 1000;
        break;
      }
    }
    await sleep(2_000);
    const two = await Promise.all([footprint(a, brokerPorts), footprint(b, brokerPorts)]);
    clearInterval(steady);
    await sending;
    return {
      stage,
      partitions,
      oneInstance: { eventsPerSecond: Math.round(EVENTS / seconds), seconds, ...one },
      secondInstance: { startedInSeconds: upSeconds, bothProcessingAfterSeconds: bothSeconds },
      twoInstances: two,
    };
  } finally {
    clearInterval(steady);
    await Promise.all(instances.map((s) => s.stop()));
    await producer.disconnect();
    // Every run's topics go, so that the next run's broker carries no partitions of earlier ones: with thousands of
    // them, the transaction coordinator writes its markers far slower and the figures measure the leftovers.
    await withAdmin(kafka, async (admin) => {
      const topics = (await admin.listTopics()).filter((t) => t.startsWith(prefix) || t.startsWith(`${application}-`));
      if (topics.length > 0) await admin.deleteTopics({ topics, timeout: 60_000 });
    });
  }
}

async function encoderFor(stage: Stage, serde: Serde, prefix: string, producer: Producer) {
  if (stage === 'aggregator') {
    const enriched = await serde.encoder<EnrichedEvent>(valueSubjectOf(`${prefix}events.enriched`), 'EnrichedEvent');
    return (i: number) => {
      const entity = i % ENTITIES;
      const e: EnrichedEvent = {
        eventId: `s${i}`, type: 'view', entityId: `entity-${entity}`, userId: null, occurredAt: Date.now(), value: i % 10,
        attributes: {}, name: 'n', category: `c${entity % 10}`, enrichedAt: Date.now(), sourcePartition: 0, sourceOffset: i,
      };
      return { key: e.entityId, value: enriched.encode(e) };
    };
  }
  const items = await serde.encoder<CatalogItem>(valueSubjectOf(`${prefix}catalog.items`), 'CatalogItem');
  await producer.send({
    topic: `${prefix}catalog.items`,
    messages: Array.from({ length: ENTITIES }, (_, i) => ({
      key: `sku-${i}`,
      value: items.encode({ entityId: `sku-${i}`, name: `Item ${i}`, category: `c${i % 10}`, price: null, attributes: {}, updatedAt: Date.now() }),
    })),
  });
  const events = await serde.encoder<ActivityEvent>(valueSubjectOf(`${prefix}events.raw`), 'ActivityEvent');
  return (i: number) => {
    const event: ActivityEvent = { eventId: `s${i}`, type: 'view', entityId: `sku-${i % ENTITIES}`, userId: null, occurredAt: Date.now(), value: i % 7, attributes: {} };
    return { key: event.entityId, value: events.encode(event) };
  };
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

async function scrapeText(s: TestService): Promise<string> {
  return (await fetch(`${s.url}/metrics`)).text();
}

async function metric(s: TestService, name: string): Promise<number> {
  const text = await scrapeText(s).catch(() => '');
  let sum = 0;
  for (const line of text.split('\n')) if (line.startsWith(`${name}{`) || line.startsWith(`${name} `)) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  return sum;
}

/** stream_records_in_total of one input topic. */
async function recordsIn(s: TestService, topic: string): Promise<number> {
  const text = await scrapeText(s).catch(() => '');
  const line = text.split('\n').find((l) => l.startsWith('stream_records_in_total{') && l.includes(`topic="${topic}"`));
  return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
}

/** Producers (one per assigned partition), established TCP connections to the brokers, and RSS of one instance. */
async function footprint(s: TestService, brokerPorts: Set<number>) {
  const pid = s.pid();
  const rssKb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
  return { producers: await metric(s, 'stream_assigned_partitions'), brokerConnections: brokerConnections(pid, brokerPorts), rssMb: Math.round(rssKb / 1024) };
}

/** The process's sockets (from /proc/<pid>/fd) that are established connections to a broker port (/proc/net/tcp*). */
function brokerConnections(pid: number, brokerPorts: Set<number>): number {
  const toBrokers = new Set<string>();
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const row of text.split('\n').slice(1)) {
      const cols = row.trim().split(/\s+/);
      if (cols.length < 10 || cols[3] !== '01') continue;
      const remotePort = parseInt(cols[2]!.split(':')[1]!, 16);
      if (brokerPorts.has(remotePort)) toBrokers.add(cols[9]!);
    }
  }
  let count = 0;
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const inode = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`))?.[1];
      if (inode && toBrokers.has(inode)) count += 1;
    } catch {
      // Closed meanwhile.
    }
  }
  return count;
}
