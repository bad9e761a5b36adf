import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ADMIN_TOKEN, eventually, startPipeline, startTestPrometheus, startTestService, testKafka, type Pipeline, type PromAlert, type TestPrometheus, type TestService } from '@sluice/testing';

// Observability that has run (issue 18): a real Prometheus (Debian's package, started by the stack
// runner) scrapes every service of a whole pipeline and evaluates the project's alert rules, their
// `for:` and ranges scaled down (scaledAlertRules); real failures make the alerts fire, and every
// query of the Grafana dashboard returns data during demo traffic.
jest.setTimeout(600_000);

const root = join(__dirname, '..');
const admin = { authorization: `Bearer ${ADMIN_TOKEN}`, 'x-operator': 'e2e' };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let p: Pipeline;
let prom: TestPrometheus;

beforeAll(async () => {
  p = await startPipeline({ windowRetentionMs: 24 * 3_600_000 });
  prom = await startTestPrometheus({ interval: '1s', forDuration: '10s', range: '20s' });
});

afterAll(async () => {
  await prom?.stop();
  await p?.close();
});

type LabelMatch = Record<string, string> | ((labels: Record<string, string>) => boolean);

async function alertsNamed(name: string, match: LabelMatch = {}): Promise<PromAlert[]> {
  const matches = typeof match === 'function' ? match : (labels: Record<string, string>) => Object.entries(match).every(([k, v]) => labels[k] === v);
  return (await prom.alerts()).filter((a) => a.labels.alertname === name && matches(a.labels));
}

/** Waits for the alert to be pending, then firing; returns what was seen on the way. */
async function pendingThenFiring(name: string, match: LabelMatch, timeoutMs = 120_000): Promise<{ sawPending: boolean; firing: PromAlert }> {
  let sawPending = false;
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const found = await alertsNamed(name, match);
    if (found.some((a) => a.state === 'pending')) sawPending = true;
    const firing = found.find((a) => a.state === 'firing');
    if (firing) return { sawPending, firing };
    await sleep(250);
  }
  throw new Error(`${name} did not fire in ${timeoutMs} ms; alerts now: ${JSON.stringify(await prom.alerts())}`);
}

function loadgen(url: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(root, 'bench/dist/loadgen.js'), '--url', url, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`loadgen exited with ${code}: ${stderr}`))));
  });
}

test('Prometheus scrapes every service of the pipeline by its name in the stack', async () => {
  const names = [p.gateway, p.enricher, p.aggregator, p.view, p.replayer].map((s) => s.name);
  const up = await eventually(
    'every service scraped',
    () => prom.query(`up{job="sluice"}`),
    (series) => names.every((n) => series.some((s) => s.metric.instance === n && s.value[1] === '1')),
    60_000,
  );
  expect(up.filter((s) => names.includes(s.metric.instance!)).map((s) => s.metric.instance).sort()).toEqual([...names].sort());
});

test('every query of the Grafana dashboard returns data during demo traffic', async () => {
  // The demo's traffic (duplicates, out-of-order and late events, one entity left out of the catalog),
  // then a replay of the dead letters it made, so the replay panel has something to show.
  await loadgen(p.gateway.url, ['--rate', '200', '--duration', '25', '--uncataloged', '1']);
  const started = await p.http(p.replayer, 'POST', '/admin/dlq/replays', { filter: { code: 'catalog.missing' }, ratePerSec: 1000 }, admin);
  expect(started.status).toBe(202);

  const dashboard = JSON.parse(readFileSync(join(root, 'deploy/observability/grafana/dashboards/pipeline.json'), 'utf8')) as { panels: { title: string; targets: { expr: string }[] }[] };
  const queries = dashboard.panels.flatMap((panel) => panel.targets.map((t) => ({ panel: panel.title, expr: t.expr })));
  expect(queries.length).toBeGreaterThan(10);
  const empty = await eventually(
    'every dashboard query returns a series',
    async () => {
      const results = await Promise.all(queries.map(async (q) => ({ ...q, series: (await prom.query(q.expr)).length })));
      return results.filter((r) => r.series === 0);
    },
    (left) => left.length === 0,
    90_000,
  );
  expect(empty).toEqual([]);
});

test('poison records: the dead-letter-rate alert fires for the stage and code that dead-letter them', async () => {
  // The demo traffic of the test before dead-letters events of an entity left out of the catalog (catalog.missing);
  // bytes that are no record of the registry are dead-lettered under a code of their own.
  const poison = (labels: Record<string, string>) => labels.service === 'enricher' && labels.code !== 'catalog.missing';
  expect(await alertsNamed('SluiceDeadLetterRate', poison)).toEqual([]);
  const kafka = testKafka('observability-poison');
  const producer = kafka.producer();
  await producer.connect();
  // 40 a second, for long enough to pass the scaled `for:`.
  const sending = (async () => {
    for (let i = 0; i < 40; i++) {
      await producer.send({ topic: p.topic('events.raw'), messages: Array.from({ length: 40 }, (_, j) => ({ key: `poison-${i}-${j}`, value: Buffer.from([0xff, 0xfe, i, j, 0x00, 0x80]) })) });
      await sleep(1_000);
    }
  })();
  try {
    const { sawPending, firing } = await pendingThenFiring('SluiceDeadLetterRate', poison);
    expect(sawPending).toBe(true);
    expect(firing.annotations.summary).toMatch(new RegExp(`^enricher dead-letters [0-9.]+ records/s with code ${firing.labels.code}$`));
    expect(Number(firing.value)).toBeGreaterThan(1);
  } finally {
    await sending.catch(() => undefined);
    await producer.disconnect();
  }
});

test('a stalled stage (SIGSTOP): the lag read from Kafka grows and its alert fires, though the stage reports nothing', async () => {
  const pid = p.enricher.pid();
  process.kill(pid, 'SIGSTOP');
  try {
    // 12,000 events through the gateway, which does not need the enricher to accept them.
    for (let i = 0; i < 12; i++) {
      const events = Array.from({ length: 1_000 }, (_, j) => ({
        eventId: `stall-${Date.now()}-${i}-${j}`,
        entityId: `entity-${1 + (j % 5)}`,
        type: 'view',
        value: 1,
        occurredAt: new Date().toISOString(),
      }));
      const res = await p.http(p.gateway, 'POST', '/v1/events', { events });
      expect(res.status).toBe(202);
    }
    const { sawPending, firing } = await pendingThenFiring('SluiceGroupLagHigh', { group: p.groups.enricher });
    expect(sawPending).toBe(true);
    expect(Number(firing.value)).toBeGreaterThan(10_000);
    // The stage's own lag gauge cannot say it: its process answers no scrape.
    expect(await prom.query(`up{instance="${p.enricher.name}"}`)).toEqual([expect.objectContaining({ value: [expect.any(Number), '0'] })]);
  } finally {
    process.kill(pid, 'SIGCONT');
  }
  // Running again, it catches up and the alert resolves.
  await eventually('the group-lag alert resolves', () => alertsNamed('SluiceGroupLagHigh', { group: p.groups.enricher }), (a) => a.length === 0, 180_000);
});

test('gateway overload: the 503-rate alert fires', async () => {
  // A gateway that holds at most one event waiting for Kafka: every batch is over its limit and answered 503 OVERLOADED.
  const gateway: TestService = await startTestService('ingest-gateway', {
    env: { GATEWAY_EVENTS_TOPIC: p.topic('events.raw'), GATEWAY_CATALOG_TOPIC: p.topic('catalog.items'), GATEWAY_MAX_INFLIGHT_EVENTS: '1' },
  });
  try {
    let refused = 0;
    const sending = (async () => {
      for (let i = 0; i < 60; i++) {
        const events = Array.from({ length: 5 }, (_, j) => ({ eventId: `overload-${i}-${j}`, entityId: 'entity-1', type: 'view', value: 1, occurredAt: new Date().toISOString() }));
        const res = await p.http(gateway, 'POST', '/v1/events', { events });
        if (res.status === 503 && res.body.error?.code === 'OVERLOADED') refused++;
        await sleep(500);
      }
    })();
    const { sawPending, firing } = await pendingThenFiring('SluiceGatewayUnavailable', {});
    expect(sawPending).toBe(true);
    expect(Number(firing.value)).toBeGreaterThan(0.05);
    await sending;
    expect(refused).toBe(60);
  } finally {
    await gateway.stop();
  }
});

test('a stage killed with -9: the service-down alert goes pending, then firing, and resolves after the restart', async () => {
  await p.aggregator.kill();
  const { sawPending, firing } = await pendingThenFiring('SluiceServiceDown', { instance: p.aggregator.name });
  expect(sawPending).toBe(true);
  expect(firing.annotations.summary).toBe(`${p.aggregator.name} is down`);
  await p.aggregator.restart();
  await eventually('the service-down alert resolves', () => alertsNamed('SluiceServiceDown', { instance: p.aggregator.name }), (a) => a.length === 0, 60_000);
});
