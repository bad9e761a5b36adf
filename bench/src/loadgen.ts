#!/usr/bin/env node
/**
 * The demo and load generator: upserts a catalog, then sends a realistic stream
 * of events through the gateway at a chosen rate, with duplicates (a retried
 * eventId), out-of-order events (a few seconds back) and late events (minutes
 * back) mixed in on request. A live progress line, and a summary at the end.
 */
import { parseArgs } from 'node:util';

export interface LoadOptions {
  url: string;
  rate: number;
  durationSec: number;
  batch: number;
  entities: number;
  categories: number;
  duplicates: number;
  outOfOrder: number;
  late: number;
  catalog: boolean;
  apiKey?: string | undefined;
  progress: boolean;
  /** Entities without a catalog entry (their events become dead letters). */
  uncataloged: number;
}

export interface LoadSummary {
  sent: number;
  accepted: number;
  rejected: number;
  failedRequests: number;
  seconds: number;
  eventsPerSecond: number;
  byStatus: Record<string, number>;
}

const usage = `usage: pnpm loadgen [options]
  --url URL             gateway (default http://127.0.0.1:8080)
  --rate N              events per second (default 200)
  --duration S          seconds; 0 runs until Ctrl-C (default 30)
  --batch N             events per request (default 20)
  --entities N          entities (default 50), spread over --categories N (default 5)
  --duplicates F        fraction of events re-sent with the same eventId (default 0.02)
  --out-of-order F      fraction with an event time a few seconds back (default 0.1)
  --late F              fraction with an event time 5 minutes back (default 0.01)
  --uncataloged N       entities left out of the catalog: their events are dead-lettered (default 0)
  --no-catalog          do not upsert the catalog first
  --api-key KEY         sent as Authorization: Bearer KEY`;

export function parseLoadArgs(argv: string[]): LoadOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      url: { type: 'string', default: 'http://127.0.0.1:8080' },
      rate: { type: 'string', default: '200' },
      duration: { type: 'string', default: '30' },
      batch: { type: 'string', default: '20' },
      entities: { type: 'string', default: '50' },
      categories: { type: 'string', default: '5' },
      duplicates: { type: 'string', default: '0.02' },
      'out-of-order': { type: 'string', default: '0.1' },
      late: { type: 'string', default: '0.01' },
      uncataloged: { type: 'string', default: '0' },
      'no-catalog': { type: 'boolean', default: false },
      'api-key': { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${usage}\n`);
    process.exit(0);
  }
  const num = (name: string, value: string, min: number) => {
    const n = Number(value);
    if (!Number.isFinite(n) || n < min) throw new Error(`--${name} must be a number ≥ ${min}, not "${value}"`);
    return n;
  };
  return {
    url: values.url.replace(/\/$/, ''),
    rate: num('rate', values.rate, 1),
    durationSec: num('duration', values.duration, 0),
    batch: Math.floor(num('batch', values.batch, 1)),
    entities: Math.floor(num('entities', values.entities, 1)),
    categories: Math.floor(num('categories', values.categories, 1)),
    duplicates: num('duplicates', values.duplicates, 0),
    outOfOrder: num('out-of-order', values['out-of-order'], 0),
    late: num('late', values.late, 0),
    uncataloged: Math.floor(num('uncataloged', values.uncataloged, 0)),
    catalog: !values['no-catalog'],
    apiKey: values['api-key'],
    progress: process.stderr.isTTY ?? false,
  };
}

const categoriesOf = (i: number, categories: number) => `category-${i % categories}`;

export async function runLoad(options: LoadOptions, log: (line: string) => void = (l) => process.stderr.write(`${l}\n`)): Promise<LoadSummary> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (options.apiKey) headers.authorization = `Bearer ${options.apiKey}`;
  const entity = (i: number) => `entity-${i}`;
  if (options.catalog) {
    for (let i = options.uncataloged; i < options.entities; i++) {
      const res = await fetch(`${options.url}/v1/catalog/${entity(i)}`, {
        method: 'PUT',
        headers,
        body: JSON.stringify({ name: `Product ${i}`, category: categoriesOf(i, options.categories), price: 5 + (i % 20) }),
      });
      if (!res.ok) throw new Error(`catalog upsert of ${entity(i)} failed: ${res.status} ${await res.text()}`);
    }
    log(`catalog: ${options.entities - options.uncataloged} entries upserted${options.uncataloged ? `, ${options.uncataloged} left out` : ''}`);
  }
  const run = Date.now().toString(36);
  const recent: unknown[] = [];
  let n = 0;
  const summary: LoadSummary = { sent: 0, accepted: 0, rejected: 0, failedRequests: 0, seconds: 0, eventsPerSecond: 0, byStatus: {} };
  const makeEvent = () => {
    if (recent.length > 0 && Math.random() < options.duplicates) return recent[Math.floor(Math.random() * recent.length)];
    const now = Date.now();
    const r = Math.random();
    const shift = r < options.late ? 5 * 60_000 : r < options.late + options.outOfOrder ? Math.floor(Math.random() * 8_000) : 0;
    const event = {
      eventId: `${run}-${++n}`,
      type: ['view', 'click', 'purchase'][n % 3],
      entityId: entity(Math.floor(Math.random() * options.entities)),
      occurredAt: new Date(now - shift).toISOString(),
      value: Math.round(Math.random() * 10_000) / 100,
      attributes: { source: 'loadgen' },
    };
    recent.push(event);
    if (recent.length > 1_000) recent.shift();
    return event;
  };
  const started = Date.now();
  const endAt = options.durationSec > 0 ? started + options.durationSec * 1_000 : Number.POSITIVE_INFINITY;
  let stop = false;
  const onSigint = () => (stop = true);
  process.once('SIGINT', onSigint);
  const progress = setInterval(() => {
    const seconds = (Date.now() - started) / 1000;
    const line = `sent ${summary.sent}  accepted ${summary.accepted}  rejected ${summary.rejected}  ${Math.round(summary.accepted / Math.max(seconds, 0.001))} events/s`;
    if (options.progress) process.stderr.write(`\r${line}   `);
  }, 500);
  const inflight = new Set<Promise<void>>();
  const intervalMs = (1000 * options.batch) / options.rate;
  let nextAt = Date.now();
  while (!stop && Date.now() < endAt) {
    const events = Array.from({ length: options.batch }, makeEvent);
    summary.sent += events.length;
    const request = fetch(`${options.url}/v1/events`, { method: 'POST', headers, body: JSON.stringify({ events }) })
      .then(async (res) => {
        await res.arrayBuffer();
        summary.byStatus[res.status] = (summary.byStatus[res.status] ?? 0) + 1;
        if (res.status === 202) summary.accepted += events.length;
        else summary.rejected += events.length;
      })
      .catch(() => {
        summary.failedRequests += 1;
        summary.rejected += events.length;
      })
      .finally(() => inflight.delete(request));
    inflight.add(request);
    nextAt += intervalMs;
    const wait = nextAt - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    // Never more than 64 requests waiting: past that the gateway is saturated and the rate cannot hold.
    while (inflight.size >= 64) await Promise.race(inflight);
  }
  await Promise.all(inflight);
  clearInterval(progress);
  process.removeListener('SIGINT', onSigint);
  summary.seconds = (Date.now() - started) / 1000;
  summary.eventsPerSecond = Math.round(summary.accepted / summary.seconds);
  if (options.progress) process.stderr.write('\n');
  log(
    `summary: sent ${summary.sent}, accepted ${summary.accepted}, rejected ${summary.rejected} (failed requests ${summary.failedRequests}) in ${summary.seconds.toFixed(1)} s, ${summary.eventsPerSecond} events/s; responses ${JSON.stringify(summary.byStatus)}`,
  );
  return summary;
}

if (require.main === module) {
  runLoad(parseLoadArgs(process.argv.slice(2))).then(
    (s) => process.exit(s.accepted > 0 ? 0 : 1),
    (err: unknown) => {
      process.stderr.write(`loadgen: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(2);
    },
  );
}
