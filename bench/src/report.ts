import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { resultsDir } from './results';

// vega and vega-lite are ES modules (with top-level await: require() cannot load them); this package compiles to
// CommonJS. They are imported by their resolved file, as a dynamic import from here would resolve elsewhere.
const importFn = new Function('url', 'return import(url)') as <T>(url: string) => Promise<T>;
const loadEsm = <T>(name: string) => importFn<T>(pathToFileURL(require.resolve(name)).href);

/* eslint-disable @typescript-eslint/no-explicit-any -- results are JSON written by the scenarios, read loosely */
type Result = Record<string, any> & { scenario: string; measuredAt: string; commit?: string; machine: { cpus: number; cpuModel?: string; memoryGiB: number; node: string } };

const benchDir = join(__dirname, '..');
const chartsDir = join(benchDir, 'report');

interface Goal {
  goal: string;
  target: string;
  figure: (r: Record<string, Result>) => number | undefined;
  met: (value: number) => boolean;
  unit: string;
}

/** The goals of the benchmarks (issues: the gateway and the view at the speed of the machine; the stream runtime against Kafka Streams). */
const GOALS: Goal[] = [
  { goal: 'gateway ÷ raw producer, 1 event per request', target: '≥ 1.0', figure: (r) => r.gateway?.eventsPerSecond?.batch1?.ratioGatewayToRaw, met: (v) => v >= 1, unit: '×' },
  { goal: 'gateway ÷ raw producer, 100 events per request', target: '≥ 0.8', figure: (r) => r.gateway?.eventsPerSecond?.batch100?.ratioGatewayToRaw, met: (v) => v >= 0.8, unit: '×' },
  { goal: 'gateway ÷ raw producer, 1,000 events per request', target: '≥ 0.8', figure: (r) => r.gateway?.eventsPerSecond?.batch1000?.ratioGatewayToRaw, met: (v) => v >= 0.8, unit: '×' },
  { goal: 'end-to-end p99, 202 → change on /v1/stream, 2,000 events/s', target: '≤ 300 ms', figure: (r) => r.latency?.endToEndMs?.p99, met: (v) => v <= 300, unit: 'ms' },
  { goal: 'GET /v1/top over 10 minutes: requests/s at a target of 1,000', target: '≥ 1,000', figure: (r) => query(r, '/v1/top', 600)?.requestsPerSecond, met: (v) => v >= 990, unit: 'req/s' },
  { goal: 'GET /v1/top over 10 minutes: p99', target: '≤ 20 ms', figure: (r) => query(r, '/v1/top', 600)?.p99Ms, met: (v) => v <= 20, unit: 'ms' },
  { goal: 'GET /v1/top over 24 hours: p99', target: '≤ 50 ms', figure: (r) => query(r, '/v1/top', 86_400)?.p99Ms, met: (v) => v <= 50, unit: 'ms' },
  { goal: 'one key at 500 req/s: p99', target: '≤ 10 ms', figure: (r) => r.view?.queries?.find((q: any) => q.path.includes('key='))?.p99Ms, met: (v) => v <= 10, unit: 'ms' },
  { goal: 'gateway RSS under the end-to-end load (highest sample)', target: '≤ 150 MB', figure: (r) => maxOf(r.latency?.rssMb, 'gatewayMb'), met: (v) => v <= 150, unit: 'MB' },
  { goal: 'view-api RSS under the end-to-end load (highest sample)', target: '≤ 150 MB', figure: (r) => maxOf(r.latency?.rssMb, 'viewMb'), met: (v) => v <= 150, unit: 'MB' },
  // Issue: stream runtime speed against Kafka Streams on the same machine.
  { goal: 'Sluice enricher ÷ Kafka Streams enricher, both exactly once', target: '≥ 0.5', figure: (r) => r.kstreams?.enricher?.ratioSluiceToKafkaStreams, met: (v) => v >= 0.5, unit: '×' },
  { goal: 'Sluice aggregator, events/s through both stages', target: '≥ 25,000', figure: (r) => r.kstreams?.aggregator?.sluice?.eventsPerSecond, met: (v) => v >= 25_000, unit: 'events/s' },
  { goal: 'Sluice enricher, exactly once ÷ at least once (medians of `guarantees` rounds)', target: '≥ 0.9', figure: (r) => r.guarantees?.enricher?.ratioOfMedians ?? r.enricher?.ratioExactlyOnceToAtLeastOnce, met: (v) => v >= 0.9, unit: '×' },
  { goal: 'Sluice aggregator, exactly once ÷ at least once, both stages (medians of `guarantees` rounds)', target: '≥ 0.9', figure: (r) => r.guarantees?.aggregator?.ratioOfMedians, met: (v) => v >= 0.9, unit: '×' },
];

function query(r: Record<string, Result>, route: string, rangeSeconds: number): any {
  return r.view?.queries?.find((q: any) => {
    if (!q.path.startsWith(route)) return false;
    const params = new URL(q.path, 'http://x').searchParams;
    return (Date.parse(params.get('to')!) - Date.parse(params.get('from')!)) / 1000 === rangeSeconds;
  });
}

function maxOf(samples: Record<string, number>[] | undefined, field: string): number | undefined {
  const values = (samples ?? []).map((s) => s[field]).filter((v): v is number => Number.isFinite(v));
  return values.length > 0 ? Math.max(...values) : undefined;
}

const provenance = (r: Result) =>
  `${r.machine.cpus} × ${r.machine.cpuModel ?? 'CPU'}, ${r.machine.memoryGiB} GiB, Node ${r.machine.node}${r.brokers ? `, ${r.brokers.nodes} broker(s) with ${r.brokers.jit} JIT` : ''}, ${r.measuredAt.slice(0, 10)}, commit ${r.commit ?? 'not recorded'}`;

/** Vega-Lite specifications of the charts, from the results there are. */
function charts(r: Record<string, Result>): { name: string; title: string; spec: Record<string, unknown> }[] {
  const out: { name: string; title: string; spec: Record<string, unknown> }[] = [];
  /** A chart of `rows` from `result`: its heading in the report, and the title and subtitle (provenance) drawn in it. */
  const chart = (name: string, title: string, result: Result, drawnTitle: string, rows: unknown[], mark: unknown, encoding: Record<string, unknown>) =>
    out.push({
      name,
      title,
      spec: {
        $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
        title: { text: drawnTitle, subtitle: provenance(result) },
        width: 420,
        height: 220,
        data: { values: rows },
        mark,
        encoding,
      },
    });
  if (r.gateway) {
    const rows = Object.entries(r.gateway.eventsPerSecond as Record<string, { gateway: number; rawProducer: number; expressNoopRoute?: number }>).flatMap(([batch, v]) => [
      { batch: batch.replace('batch', ''), sender: 'gateway (HTTP)', eventsPerSecond: v.gateway },
      { batch: batch.replace('batch', ''), sender: 'raw kafkajs producer', eventsPerSecond: v.rawProducer },
      ...(v.expressNoopRoute === undefined ? [] : [{ batch: batch.replace('batch', ''), sender: 'express, no-op route', eventsPerSecond: v.expressNoopRoute }]),
    ]);
    chart('gateway-throughput', 'Gateway, raw producer and express alone, events/s by events per request', r.gateway, 'Gateway vs raw producer vs express alone (events/s)', rows, 'bar', {
          x: { field: 'batch', type: 'ordinal', title: 'events per request', sort: ['1', '100', '1000'] },
          xOffset: { field: 'sender' },
          y: { field: 'eventsPerSecond', type: 'quantitative', title: 'events/s' },
          color: { field: 'sender', type: 'nominal' },
        });
  }
  if (r.latency?.endToEndMs?.histogram) {
    const rows = (r.latency.endToEndMs.histogram as { upToMs: number | null; count: number }[]).map((b) => ({ bucket: b.upToMs === null ? 'more' : `≤ ${b.upToMs}`, count: b.count }));
    chart('end-to-end-latency', 'End-to-end latency histogram (202 → change on /v1/stream)', r.latency, 'End-to-end latency, events per bucket (ms)', rows, 'bar', { x: { field: 'bucket', type: 'ordinal', sort: null, title: 'latency (ms)' }, y: { field: 'count', type: 'quantitative', title: 'events' } });
  }
  if (Array.isArray(r.latency?.endToEndBy5sMs) && r.latency.endToEndBy5sMs.length > 0) {
    const rows = (r.latency.endToEndBy5sMs as { fromSecond: number; p50: number; p99: number; max: number }[]).flatMap((p) =>
      (['p50', 'p99', 'max'] as const).map((q) => ({ second: p.fromSecond, quantile: q, ms: p[q] })),
    );
    chart('end-to-end-latency-over-time', 'End-to-end latency over the measured minute (per 5 s of 202s)', r.latency, 'End-to-end latency per 5 s of the load (ms)', rows, { type: 'line', point: true }, { x: { field: 'second', type: 'quantitative', title: 'seconds into the load (202 time)' }, y: { field: 'ms', type: 'quantitative', title: 'ms' }, color: { field: 'quantile', type: 'nominal' } });
  }
  if (Array.isArray(r.latency?.rssMb) && r.latency.rssMb.length > 0) {
    const rows = (r.latency.rssMb as Record<string, number>[]).flatMap((s) =>
      Object.entries(s)
        .filter(([k]) => k !== 'second')
        .map(([k, v]) => ({ second: s.second, service: k.replace(/Mb$/, ''), rssMb: v })),
    );
    chart('rss-over-time', 'Resident memory of each service during the end-to-end load', r.latency, 'RSS per service during the end-to-end load (MB)', rows, { type: 'line', point: true }, { x: { field: 'second', type: 'quantitative', title: 'seconds into the load' }, y: { field: 'rssMb', type: 'quantitative', title: 'MB' }, color: { field: 'service', type: 'nominal' } });
  }
  if (r.view?.queries) {
    const rows = [...(r.view.queries as any[]).map((q) => ({ ...q, replica: 'keeps top answers' })), ...((r.view.topWithoutKeptAnswers ?? []) as any[]).map((q) => ({ ...q, replica: 'reads Postgres every time' }))].map((q) => ({
      query: `${new URL(q.path, 'http://x').pathname} ${label(q.path)} @ ${q.targetRate}`,
      replica: q.replica,
      p99Ms: q.p99Ms,
      requestsPerSecond: q.requestsPerSecond,
    }));
    chart('view-queries', 'view-api query p99 (ms)', r.view, 'view-api: p99 per query and target rate (ms)', rows, 'bar', { y: { field: 'query', type: 'nominal', title: null }, x: { field: 'p99Ms', type: 'quantitative', title: 'p99 (ms)' }, color: { field: 'replica', type: 'nominal' } });
  }
  if (r.enricher || r.aggregator) {
    const rows = [
      ...(r.enricher ? [{ stage: 'enricher, exactly once', eventsPerSecond: r.enricher.exactlyOnce.eventsPerSecond }, { stage: 'enricher, at least once', eventsPerSecond: r.enricher.atLeastOnce.eventsPerSecond }] : []),
      ...((r.aggregator?.runs ?? []) as any[]).map((run) => ({ stage: `aggregator, ${run.openWindows.toLocaleString('en')} open windows`, eventsPerSecond: run.eventsPerSecond })),
    ];
    chart('stream-throughput', 'Stream stages, events/s', (r.enricher ?? r.aggregator)!, 'Stream stages (events/s)', rows, 'bar', { y: { field: 'stage', type: 'nominal', title: null, sort: null }, x: { field: 'eventsPerSecond', type: 'quantitative', title: 'events/s' } });
  }
  if (r.kstreams?.enricher && r.kstreams?.aggregator) {
    const k = r.kstreams;
    const rows = [
      { stage: 'enricher', system: 'Sluice', eventsPerSecond: k.enricher.sluice.eventsPerSecond },
      { stage: 'enricher', system: 'Kafka Streams', eventsPerSecond: k.enricher.kafkaStreams.eventsPerSecond },
      { stage: 'aggregator (both stages)', system: 'Sluice', eventsPerSecond: k.aggregator.sluice.eventsPerSecond },
      { stage: 'aggregator (both stages)', system: 'Kafka Streams', eventsPerSecond: k.aggregator.kafkaStreams.eventsPerSecond },
    ];
    chart('kstreams-throughput', 'Sluice and Kafka Streams, same stages, same broker and records, exactly once, events/s', k, 'Sluice vs Kafka Streams, exactly once (events/s)', rows, 'bar', {
      x: { field: 'stage', type: 'nominal', title: null },
      xOffset: { field: 'system' },
      y: { field: 'eventsPerSecond', type: 'quantitative', title: 'events/s' },
      color: { field: 'system', type: 'nominal' },
    });
  }
  if (Array.isArray(r.scaling?.runs) && r.scaling.runs.length > 0) {
    // One chart per measure, partitions on x, a line per stage (and instance where two ran).
    const runs = r.scaling.runs as any[];
    const measures: [string, string, (run: any) => { series: string; value: number | null }[]][] = [
      ['scaling-throughput', 'events/s, one instance', (run) => [{ series: run.stage, value: run.oneInstance.eventsPerSecond }]],
      ['scaling-rebalance', 'seconds from a second instance starting until both process', (run) => [{ series: run.stage, value: run.secondInstance.bothProcessingAfterSeconds }]],
      ['scaling-producers', 'producers per instance', (run) => [{ series: `${run.stage}, alone`, value: run.oneInstance.producers }, ...run.twoInstances.map((t: any, i: number) => ({ series: `${run.stage}, instance ${i + 1} of 2`, value: t.producers }))]],
      ['scaling-connections', 'broker connections per instance', (run) => [{ series: `${run.stage}, alone`, value: run.oneInstance.brokerConnections }, ...run.twoInstances.map((t: any, i: number) => ({ series: `${run.stage}, instance ${i + 1} of 2`, value: t.brokerConnections }))]],
      ['scaling-rss', 'RSS per instance (MB)', (run) => [{ series: `${run.stage}, alone`, value: run.oneInstance.rssMb }, ...run.twoInstances.map((t: any, i: number) => ({ series: `${run.stage}, instance ${i + 1} of 2`, value: t.rssMb }))]],
    ];
    for (const [name, what, values] of measures) {
      const rows = runs.flatMap((run) => values(run).map((v) => ({ partitions: run.partitions, ...v })));
      chart(name, `Cost by partitions: ${what}`, r.scaling, `By partitions per topic: ${what}`, rows, { type: 'line', point: true }, {
        x: { field: 'partitions', type: 'quantitative', title: 'partitions per topic', scale: { type: 'log', base: 2 } },
        y: { field: 'value', type: 'quantitative', title: what },
        color: { field: 'series', type: 'nominal', title: null },
      });
    }
  }
  if (r.guarantees?.enricher && r.guarantees?.aggregator) {
    const g = r.guarantees;
    const rows = (['enricher', 'aggregator'] as const).flatMap((stage) =>
      (['exactlyOnce', 'atLeastOnce'] as const).flatMap((guarantee) =>
        (g[stage].eventsPerSecond[guarantee] as number[]).map((eventsPerSecond, round) => ({ stage, guarantee: guarantee === 'exactlyOnce' ? 'exactly once' : 'at least once', round: round + 1, eventsPerSecond })),
      ),
    );
    chart('guarantees', 'Exactly once and at least once, each round (events/s)', g, 'Exactly once vs at least once, per round (events/s)', rows, { type: 'point', filled: true, size: 80 }, {
      y: { field: 'stage', type: 'nominal', title: null },
      x: { field: 'eventsPerSecond', type: 'quantitative', title: 'events/s' },
      color: { field: 'guarantee', type: 'nominal' },
    });
  }
  if (r['kafka-client']?.enricher) {
    const e = r['kafka-client'].enricher;
    const rows = [
      { system: 'Sluice runtime (kafkajs, a producer per partition)', eventsPerSecond: e.sluice.eventsPerSecond },
      { system: 'KIP-447 loop (@platformatic/kafka)', eventsPerSecond: e.platformaticLoop?.eventsPerSecond },
      { system: 'Kafka Streams (exactly_once_v2)', eventsPerSecond: e.kafkaStreams.eventsPerSecond },
    ].filter((row) => row.eventsPerSecond !== undefined);
    chart('kafka-client-enricher', 'The enricher on each Kafka client, exactly once, events/s (docs/decisions/kafka-client.md)', r['kafka-client'], 'Enricher, exactly once, by client (events/s)', rows, 'bar', {
      y: { field: 'system', type: 'nominal', title: null, sort: null },
      x: { field: 'eventsPerSecond', type: 'quantitative', title: 'events/s' },
    });
  }
  return out;
}

/** The Kafka client checks (pnpm bench kafka-client) as a table: each check, passed or not. */
function clientChecks(result: Result): string[] {
  const rows: string[] = [];
  const walk = (name: string, value: any) => {
    if (value && typeof value === 'object' && 'passed' in value) rows.push(`| ${name} | ${value.passed ? 'passed' : '**failed**'} |`);
    else if (value && typeof value === 'object') for (const [k, v] of Object.entries(value)) walk(`${name} / ${k}`, v);
  };
  for (const [name, value] of Object.entries(result.checks ?? {})) walk(name, value);
  return ['## The Kafka client checks', '', `@platformatic/kafka ${result.clients?.['@platformatic/kafka']}, measured on ${provenance(result)}; what each check saw is in the scenario's figures below, and what it means in docs/decisions/kafka-client.md.`, '', '| check | result |', '| --- | --- |', ...rows, ''];
}

function label(path: string): string {
  const params = new URL(path, 'http://x').searchParams;
  if (params.get('key')) return 'one key';
  const seconds = (Date.parse(params.get('to') ?? '') - Date.parse(params.get('from') ?? '')) / 1000;
  return Number.isFinite(seconds) ? (seconds >= 3600 ? `${seconds / 3600} h` : `${seconds / 60} min`) : '';
}

/** bench/results/*.json → bench/REPORT.md and its SVG charts in bench/report/. */
export async function writeReport(): Promise<string> {
  const vegaLite = await loadEsm<{ compile: (spec: unknown) => { spec: unknown } }>('vega-lite');
  const vega = await loadEsm<{ parse: (spec: unknown) => unknown; View: new (runtime: unknown, options: { renderer: string }) => { toSVG(): Promise<string>; finalize(): void } }>('vega');
  const results: Record<string, Result> = {};
  for (const file of existsSync(resultsDir) ? readdirSync(resultsDir).filter((f) => f.endsWith('.json')).sort() : []) {
    const r = JSON.parse(readFileSync(join(resultsDir, file), 'utf8')) as Result;
    results[r.scenario] = r;
  }
  mkdirSync(chartsDir, { recursive: true });
  const lines: string[] = [
    '# Sluice benchmark report',
    '',
    'Generated by `pnpm bench report` from `bench/results/*.json`; each scenario is run by hand with `pnpm bench <scenario>` (never in the test suite). Every figure below names the machine, the date and the commit it was measured on.',
    '',
    '## Goals',
    '',
    '| goal | target | figure | met |',
    '| --- | --- | --- | --- |',
  ];
  for (const g of GOALS) {
    const value = g.figure(results);
    lines.push(`| ${g.goal} | ${g.target} | ${value === undefined ? 'not measured' : `${value} ${g.unit}`} | ${value === undefined ? '–' : g.met(value) ? 'yes' : '**no**'} |`);
  }
  lines.push('', '## Charts', '');
  for (const chart of charts(results)) {
    const view = new vega.View(vega.parse(vegaLite.compile(chart.spec).spec), { renderer: 'none' });
    const svg = await view.toSVG();
    view.finalize();
    writeFileSync(join(chartsDir, `${chart.name}.svg`), svg);
    lines.push(`### ${chart.title}`, '', `![${chart.title}](report/${chart.name}.svg)`, '');
  }
  const profile = results['gateway-profile'];
  if (profile) {
    lines.push('## Where the gateway\'s CPU goes', '', `Measured on ${provenance(profile)}. Share of the busy time (idle left out), by category:`, '');
    const batches = Object.keys(profile).filter((k) => k.startsWith('batch'));
    lines.push(`| category | ${batches.map((b) => `${b.replace('batch', '')} event(s) per request`).join(' | ')} |`, `| --- | ${batches.map(() => '---').join(' | ')} |`);
    const categories = [...new Set(batches.flatMap((b) => (profile[b].categories as { category: string }[]).map((c) => c.category)))].filter((c) => c !== 'idle');
    for (const c of categories) {
      lines.push(`| ${c} | ${batches.map((b) => { const share = (profile[b].categories as { category: string; share: number }[]).find((x) => x.category === c)?.share; return share === undefined ? '–' : `${Math.round(share * 1000) / 10} %`; }).join(' | ')} |`);
    }
    lines.push('');
    for (const b of batches) lines.push(`![flame graph, ${b}](${profile[b].flameGraph})`, '');
  }
  if (results['kafka-client']) lines.push(...clientChecks(results['kafka-client']));
  lines.push('## Scenarios', '');
  for (const r of Object.values(results)) {
    const { scenario, measuredAt: _measuredAt, commit: _commit, machine: _machine, brokers: _brokers, ...figures } = r;
    lines.push(`### ${scenario}`, '', `Measured on ${provenance(r)}.`, '', '```json', JSON.stringify(figures, null, 2), '```', '');
  }
  const path = join(benchDir, 'REPORT.md');
  writeFileSync(path, `${lines.join('\n')}\n`);
  return path;
}
