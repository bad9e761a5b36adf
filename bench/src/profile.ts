import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { provisionTopics, topicCatalog } from '@sluice/contracts';
import { startTestService, testKafka, uniqueName, withAdmin } from '@sluice/testing';
import autocannon from 'autocannon';
import { resultsDir, writeResults } from './results';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
}

/** Where a function's time belongs, by the file it is in. */
export function category(frame: ProfileNode['callFrame']): string {
  const { url, functionName } = frame;
  if (functionName === '(idle)') return 'idle';
  if (functionName === '(garbage collector)') return 'garbage collection';
  if (functionName === '(program)' || functionName === '(root)') return 'V8 and native';
  if (/body-parser|raw-body|iconv-lite/.test(url) || functionName === 'parse' && url === '') return 'JSON parsing (body-parser)';
  if (/ingest-gateway\/dist\/validation/.test(url) || /runtime\/dist\/text/.test(url)) return 'validation';
  if (/avsc|contracts\/dist\/serde/.test(url)) return 'Avro encoding';
  if (/kafkajs/.test(url)) return 'kafkajs';
  if (/express|router|finalhandler|send|etag|on-finished|type-is|content-type|accepts|negotiator/.test(url)) return 'HTTP framework (express)';
  if (/@opentelemetry|tracing/.test(url)) return 'OpenTelemetry';
  if (/prom-client/.test(url)) return 'metrics (prom-client)';
  if (/pino|logger/.test(url)) return 'logging';
  if (/ingest-gateway\/dist/.test(url)) return 'gateway code';
  if (/^node:|^internal|^$/.test(url)) return 'Node.js core (HTTP, streams, timers)';
  return 'other';
}

/** Self time per category and per function, from a V8 CPU profile. */
export function analyze(profile: CpuProfile): { totalMs: number; categories: { category: string; ms: number; share: number }[]; functions: { fn: string; ms: number; share: number }[] } {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const counts = new Map<number, number>();
  for (const id of profile.samples) counts.set(id, (counts.get(id) ?? 0) + 1);
  const totalMs = (profile.endTime - profile.startTime) / 1000;
  const perSample = totalMs / Math.max(1, profile.samples.length);
  const categories = new Map<string, number>();
  const functions = new Map<string, number>();
  for (const [id, n] of counts) {
    const node = byId.get(id)!;
    const ms = n * perSample;
    const c = category(node.callFrame);
    categories.set(c, (categories.get(c) ?? 0) + ms);
    const file = node.callFrame.url.replace(/^.*node_modules\/(\.pnpm\/[^/]+\/node_modules\/)?/, '').replace(/^file:\/\/.*\/(services|libs)\//, '$1/');
    const fn = `${node.callFrame.functionName || '(anonymous)'} ${file}:${node.callFrame.lineNumber + 1}`;
    functions.set(fn, (functions.get(fn) ?? 0) + ms);
  }
  const busy = totalMs - (categories.get('idle') ?? 0);
  const sorted = (m: Map<string, number>) => [...m.entries()].sort((a, b) => b[1] - a[1]);
  return {
    totalMs: Math.round(totalMs),
    categories: sorted(categories).map(([c, ms]) => ({ category: c, ms: Math.round(ms), share: c === 'idle' ? Number.NaN : Math.round((ms / busy) * 1000) / 1000 })),
    functions: sorted(functions)
      .filter(([fn]) => !fn.startsWith('(idle)'))
      .slice(0, 25)
      .map(([fn, ms]) => ({ fn, ms: Math.round(ms), share: Math.round((ms / busy) * 1000) / 1000 })),
  };
}

/** An icicle flame graph (root on top, width = time including callees) of a CPU profile, as SVG. */
export function flameGraph(profile: CpuProfile, title: string): string {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  for (const id of profile.samples) self.set(id, (self.get(id) ?? 0) + 1);
  const total = new Map<number, number>();
  const sum = (id: number): number => {
    const node = byId.get(id)!;
    const t = (self.get(id) ?? 0) + (node.children ?? []).reduce((n, c) => n + sum(c), 0);
    total.set(id, t);
    return t;
  };
  const root = profile.nodes[0]!;
  // Idle time is not work: leave it out of the picture.
  const idle = profile.nodes.find((n) => n.callFrame.functionName === '(idle)');
  sum(root.id);
  const all = total.get(root.id)! - (idle ? total.get(idle.id)! : 0);
  const width = 1200;
  const row = 16;
  const rects: string[] = [];
  let depthMax = 0;
  const draw = (id: number, x: number, depth: number) => {
    const node = byId.get(id)!;
    if (idle && id === idle.id) return;
    const w = ((total.get(id) ?? 0) / all) * width;
    if (w < 1) return;
    depthMax = Math.max(depthMax, depth);
    const name = node.callFrame.functionName || '(anonymous)';
    const hue = { kafkajs: 30, 'Avro encoding': 280, validation: 120, 'JSON parsing (body-parser)': 200, 'HTTP framework (express)': 0, 'Node.js core (HTTP, streams, timers)': 50 }[category(node.callFrame)] ?? 90;
    const label = `${name} (${category(node.callFrame)}, ${Math.round(((total.get(id) ?? 0) / all) * 1000) / 10} %)`;
    const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
    rects.push(
      `<g><title>${esc(label)}</title><rect x="${x.toFixed(1)}" y="${depth * row + 24}" width="${w.toFixed(1)}" height="${row - 1}" fill="hsl(${hue},70%,${60 + (depth % 3) * 6}%)"/>` +
        (w > 50 ? `<text x="${(x + 2).toFixed(1)}" y="${depth * row + 36}" font-size="10" font-family="monospace">${esc(name.slice(0, Math.floor(w / 6.2)))}</text>` : '') +
        '</g>',
    );
    let cx = x;
    for (const c of node.children ?? []) {
      draw(c, cx, depth + 1);
      cx += (((idle && c === idle.id ? 0 : total.get(c)) ?? 0) / all) * width;
    }
  };
  draw(root.id, 0, 0);
  const height = (depthMax + 1) * row + 30;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}"><text x="4" y="16" font-size="13" font-family="sans-serif">${title}</text>${rects.join('')}</svg>\n`;
}

/**
 * Where the gateway's CPU goes: the gateway runs under `--cpu-prof` while
 * autocannon posts requests of 1 and of 1,000 events for 10 s each (one gateway
 * process per profile); each profile is summed by category and by function and
 * drawn as a flame graph in bench/report/.
 */
export async function gatewayProfileBench(): Promise<string> {
  const kafka = testKafka();
  const prefix = `${uniqueName('benchprof')}.`;
  await withAdmin(kafka, (admin) => provisionTopics(admin, topicCatalog({ prefix, partitions: 6 })));
  const dir = join(resultsDir, '..', 'profiles');
  const charts = join(resultsDir, '..', 'report');
  mkdirSync(charts, { recursive: true });
  const event = (i: number) => ({ eventId: `prof-${i}`, type: 'view', entityId: `sku-${i % 500}`, occurredAt: new Date().toISOString(), value: i % 13, attributes: { k: 'v' } });
  const runs: Record<string, unknown> = {};
  for (const batch of [1, 1_000]) {
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    const gateway = await startTestService('ingest-gateway', {
      env: { GATEWAY_EVENTS_TOPIC: `${prefix}events.raw`, GATEWAY_CATALOG_TOPIC: `${prefix}catalog.items`, LOG_LEVEL: 'warn', NODE_OPTIONS: `--cpu-prof --cpu-prof-dir=${dir}` },
    });
    let requests: number;
    try {
      const body = JSON.stringify({ events: Array.from({ length: batch }, (_, i) => event(i)) });
      const run = await autocannon({ url: `${gateway.url}/v1/events`, method: 'POST', headers: { 'content-type': 'application/json' }, body, connections: batch === 1 ? 16 : 4, duration: 10 });
      requests = run.requests.total - run.non2xx;
    } finally {
      await gateway.stop();
    }
    const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
    if (!file) throw new Error(`the gateway wrote no CPU profile in ${dir}`);
    const profile = JSON.parse(readFileSync(join(dir, file), 'utf8')) as CpuProfile;
    writeFileSync(join(charts, `flame-gateway-batch${batch}.svg`), flameGraph(profile, `ingest-gateway CPU, ${batch} event(s) per request, 10 s of autocannon (idle left out)`));
    runs[`batch${batch}`] = { eventsPerSecond: Math.round((requests * batch) / 10), ...analyze(profile), flameGraph: `report/flame-gateway-batch${batch}.svg` };
  }
  rmSync(dir, { recursive: true, force: true });
  return writeResults('gateway-profile', runs);
}
