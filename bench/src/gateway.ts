import { provisionTopics, Serde, topicCatalog, valueSubjectOf, type ActivityEvent } from '@sluice/contracts';
import { runningStack, startTestService, testKafka, uniqueName, withAdmin } from '@sluice/testing';
import autocannon from 'autocannon';
import { Partitioners } from 'kafkajs';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { median, serviceNodeOptions, serviceNodeOptionsUsed, writeResults } from './results';

const DURATION_SEC = 10;
const BATCHES = [1, 100, 1_000];
const ROUNDS = 3;
/** Requests (or sends) in flight at once for a batch size: the same for the gateway, express alone and the raw producer. */
const concurrency = (batch: number) => (batch === 1 ? 16 : batch === 100 ? 8 : 4);

const event = (i: number) => ({ eventId: `bench-${i}`, type: 'view', entityId: `sku-${i % 500}`, occurredAt: new Date().toISOString(), value: i % 13, attributes: { k: 'v' } });

/** Events/s answered 2xx when autocannon posts requests of `batch` events to `url` for the scenario's duration. */
async function acceptedPerSecond(url: string, batch: number): Promise<number> {
  const run = await autocannon({
    url,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ events: Array.from({ length: batch }, (_, i) => event(i)) }),
    connections: concurrency(batch),
    duration: DURATION_SEC,
  });
  return Math.round(((run.requests.total - run.non2xx) * batch) / DURATION_SEC);
}

/**
 * Gateway scenario, one broker: events/s accepted by the gateway (load from
 * autocannon in this process, the gateway in its own) at batch sizes 1, 100 and
 * 1,000, next to a raw kafkajs idempotent producer sending the same Avro
 * records (three rounds in alternating order, medians), and next to express alone (the same body parser, a no-op route: the
 * framework's ceiling); then request latency at a fixed rate below saturation.
 */
export async function gatewayBench(): Promise<string> {
  const kafka = testKafka();
  const prefix = `${uniqueName('benchgw')}.`;
  await withAdmin(kafka, (admin) => provisionTopics(admin, topicCatalog({ prefix, partitions: 6 })));
  const topic = `${prefix}events.raw`;
  const gateway = await startTestService('ingest-gateway', {
    env: { GATEWAY_EVENTS_TOPIC: topic, GATEWAY_CATALOG_TOPIC: `${prefix}catalog.items`, LOG_LEVEL: 'warn', ...serviceNodeOptions() },
  });
  const results: Record<string, unknown> = {};
  try {
    // Raw producer: the same records, encoded once, sent with acks=all by concurrent senders.
    const serde = new Serde(runningStack().schemaRegistryUrl);
    const encoder = await serde.encoder<ActivityEvent>(valueSubjectOf(topic), 'ActivityEvent');
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 5, createPartitioner: Partitioners.DefaultPartitioner });
    await producer.connect();
    const rawPerSecond = async (batch: number) => {
      const messages = Array.from({ length: batch }, (_, i) => {
        const e = event(i);
        return { key: e.entityId, value: encoder.encode({ ...e, userId: null, occurredAt: Date.parse(e.occurredAt) }) };
      });
      let sent = 0;
      const endAt = Date.now() + DURATION_SEC * 1_000;
      await Promise.all(
        Array.from({ length: concurrency(batch) }, async () => {
          while (Date.now() < endAt) {
            await producer.send({ topic, acks: -1, messages });
            sent += batch;
          }
        }),
      );
      return Math.round(sent / DURATION_SEC);
    };
    // Rounds, the two in alternating order, compared by their medians: one 10 s run of each moved by ±30 % between
    // runs on the shared 2-core machine.
    const raw: Record<number, number[]> = {};
    const viaGateway: Record<number, number[]> = {};
    for (let round = 0; round < ROUNDS; round++) {
      for (const batch of BATCHES) {
        const measure = [async () => (raw[batch] ??= []).push(await rawPerSecond(batch)), async () => (viaGateway[batch] ??= []).push(await acceptedPerSecond(`${gateway.url}/v1/events`, batch))];
        for (const m of round % 2 === 0 ? measure : measure.reverse()) await m();
      }
    }
    await producer.disconnect();

    // The framework's ceiling: the same requests to express with the same body parser and nothing else.
    const noop = spawn(process.execPath, [join(__dirname, 'noop-server.js')], { stdio: ['ignore', 'pipe', 'inherit'] });
    const viaNoop: Record<number, number> = {};
    try {
      const port = await new Promise<number>((resolve, reject) => {
        noop.stdout.once('data', (chunk: Buffer) => resolve(Number(chunk.toString().trim())));
        noop.once('exit', () => reject(new Error('the no-op server exited')));
      });
      for (const batch of BATCHES) viaNoop[batch] = await acceptedPerSecond(`http://127.0.0.1:${port}/v1/events`, batch);
    } finally {
      noop.kill('SIGTERM');
    }

    const fixedRate = await autocannon({
      url: `${gateway.url}/v1/events`,
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ events: Array.from({ length: 10 }, (_, i) => event(i)) }),
      connections: 8,
      overallRate: 200,
      duration: DURATION_SEC,
    });
    results.eventsPerSecond = Object.fromEntries(
      BATCHES.map((b) => [
        `batch${b}`,
        {
          gateway: median(viaGateway[b]!),
          rawProducer: median(raw[b]!),
          ratioGatewayToRaw: +(median(viaGateway[b]!) / median(raw[b]!)).toFixed(3),
          gatewayPerRound: viaGateway[b],
          rawProducerPerRound: raw[b],
          expressNoopRoute: viaNoop[b],
          ratioGatewayToNoopRoute: +(median(viaGateway[b]!) / viaNoop[b]!).toFixed(3),
        },
      ]),
    );
    results.latencyAtFixedRate = {
      requestsPerSecond: 200,
      eventsPerRequest: 10,
      p50Ms: fixedRate.latency.p50,
      p99Ms: fixedRate.latency.p99,
      maxMs: fixedRate.latency.max,
      non2xx: fixedRate.non2xx,
    };
  } finally {
    await gateway.stop();
  }
  return writeResults('gateway', { ...results, serviceNodeOptions: serviceNodeOptionsUsed() });
}
