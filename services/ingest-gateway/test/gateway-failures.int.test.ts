import { whileStackProcessDown } from '@sluice/testing';
import { eventBody, gatewayFixture, type GatewayFixture } from './gateway-fixture';

// The gateway under faults: a client that got 202 can forget its events.
jest.setTimeout(240_000);

interface Outcome {
  status: number | 'network';
  cause?: string;
  ms: number;
  /** When the request was sent (epoch ms). */
  at: number;
  eventIds: string[];
  code?: string;
}

/** Four clients sending batches of ten events as fast as they are answered. */
function load(gw: GatewayFixture) {
  const outcomes: Outcome[] = [];
  let running = true;
  const client = async () => {
    while (running) {
      const events = Array.from({ length: 10 }, () => eventBody(`sku-${Math.floor(Math.random() * 30)}`));
      const started = Date.now();
      try {
        const res = await gw.post('/v1/events', { events });
        outcomes.push({ status: res.status, ms: Date.now() - started, at: started, eventIds: events.map((e) => e.eventId), code: res.body?.error?.code });
        if (res.status !== 202) await new Promise((r) => setTimeout(r, 100));
      } catch (err) {
        const cause = (err as { cause?: { code?: string } }).cause?.code ?? String(err);
        outcomes.push({ status: 'network', cause, ms: Date.now() - started, at: started, eventIds: [] });
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  };
  const clients = [client(), client(), client(), client()];
  return {
    outcomes,
    stop: async () => {
      running = false;
      await Promise.all(clients);
    },
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const acknowledgedIds = (outcomes: Outcome[]) => outcomes.filter((o) => o.status === 202).flatMap((o) => o.eventIds);

async function expectAllInTopic(gw: GatewayFixture, ids: string[]): Promise<void> {
  const records = await gw.readEvents(ids.length, 60_000);
  const inTopic = new Set(records.map((r) => r.event.eventId));
  expect(ids.filter((id) => !inTopic.has(id))).toEqual([]);
}

test('with the broker killed under steady load the gateway answers 503 within its deadline, recovers, and loses no acknowledged event', async () => {
  const gw = await gatewayFixture({ GATEWAY_ACK_TIMEOUT_MS: '2000', GATEWAY_RETRY_AFTER_SEC: '1' });
  try {
    const traffic = load(gw);
    await sleep(2_000);
    const duringOutage = await whileStackProcessDown('kafka', async () => {
      const killedAt = traffic.outcomes.length;
      await sleep(6_000);
      return traffic.outcomes.slice(killedAt);
    });
    const deadline = Date.now() + 90_000;
    while (Date.now() < deadline && !traffic.outcomes.slice(-5).every((o) => o.status === 202)) await sleep(500);
    await sleep(2_000);
    await traffic.stop();

    const failures = duringOutage.filter((o) => o.status !== 202);
    expect(failures.length).toBeGreaterThan(0);
    for (const o of failures) {
      expect(o.status).toBe(503);
      expect(['KAFKA_UNAVAILABLE', 'KAFKA_ACK_TIMEOUT', 'OVERLOADED']).toContain(o.code);
      // The deadline is 2 s; a response never waits for the broker beyond it (plus scheduling slack).
      expect(o.ms).toBeLessThan(3_500);
    }
    expect(traffic.outcomes.filter((o) => o.status === 'network')).toEqual([]);
    expect(traffic.outcomes.slice(-5).every((o) => o.status === 202)).toBe(true);
    await expectAllInTopic(gw, acknowledgedIds(traffic.outcomes));
  } finally {
    await gw.close();
  }
});

test('SIGTERM under load: while a load balancer takes the gateway out of rotation every request is answered, and every acknowledged event is in the topic', async () => {
  // The drain delay is how long the gateway keeps answering after SIGTERM; in a deployment it covers
  // how long the load balancer takes to stop sending (the k8s manifests use 5 s; here 2 s against a
  // balancer that acts about 0.6 s after the signal). A listener that closes while clients still
  // connect resets connections it never accepted, so the test's clients behave as they would behind
  // a load balancer: they stop shortly after /readyz says the gateway is stopping.
  const gw = await gatewayFixture({ SHUTDOWN_GRACE_MS: '10000', HTTP_DRAIN_DELAY_MS: '2000' });
  const traffic = load(gw);
  await sleep(2_000);
  const pid = gw.gateway.pid();
  const signalledAt = Date.now();
  process.kill(pid, 'SIGTERM');
  for (;;) {
    const ready = await fetch(`${gw.gateway.url}/readyz`);
    await ready.text();
    if (ready.status === 503) break;
    await sleep(100);
  }
  // A balancer takes a moment to act on what it saw: traffic goes on for half a second, within the drain.
  await sleep(500);
  await traffic.stop();
  const exitDeadline = Date.now() + 15_000;
  let alive = true;
  while (alive && Date.now() < exitDeadline) {
    try {
      process.kill(pid, 0);
      await sleep(100);
    } catch {
      alive = false;
    }
  }
  expect(alive).toBe(false);

  // Requests were in flight when the signal came, and more arrived during the drain: all answered.
  expect(traffic.outcomes.filter((o) => o.at < signalledAt && o.at + o.ms > signalledAt).length).toBeGreaterThan(0);
  expect(traffic.outcomes.filter((o) => o.at > signalledAt).length).toBeGreaterThan(0);
  expect(traffic.outcomes.filter((o) => o.status === 'network')).toEqual([]);
  for (const o of traffic.outcomes) expect([202, 503]).toContain(o.status);
  const acknowledged = acknowledgedIds(traffic.outcomes);
  expect(acknowledged.length).toBeGreaterThan(0);
  await expectAllInTopic(gw, acknowledged);
  await gw.close();
});
