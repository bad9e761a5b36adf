#!/usr/bin/env node
// The README's run command: brings the whole local pipeline up (every service built so far),
// sends demo traffic through the gateway, and says where everything listens.
// DEMO_DURATION_SEC (default 30; 0 = until Ctrl-C) and DEMO_RATE (default 200 events/s) tune the traffic.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..');
const node = (...args) => spawnSync(process.execPath, args, { stdio: 'inherit', cwd: root });

// A Prometheus with the project's alert rules joins the stack when Debian's `prometheus` is installed.
const hasPrometheus = spawnSync('sh', ['-c', 'command -v prometheus'], { stdio: 'ignore' }).status === 0;
const up = node(join(root, 'deploy/local/dist/cli.js'), 'up', ...(hasPrometheus ? ['--observability'] : []));
if (up.status !== 0) process.exit(up.status ?? 1);

const state = JSON.parse(readFileSync(join(process.env.SLUICE_STATE_DIR ?? join(root, '.sluice'), 'state.json'), 'utf8'));
const gateway = state.processes['ingest-gateway'];
if (gateway) {
  console.log('\n== demo traffic: a catalog, then events with duplicates, out-of-order and late ones;');
  console.log('   entity-0 has no catalog entry, so its events become dead letters (events.raw.dlq)');
  node(
    join(root, 'bench/dist/loadgen.js'),
    '--url', `http://127.0.0.1:${gateway.port}`,
    '--rate', process.env.DEMO_RATE ?? '200',
    '--duration', process.env.DEMO_DURATION_SEC ?? '30',
    '--uncataloged', '1',
  );
}

// The archiver writes events.enriched to Parquet every 10 s locally: once its first files are there, a batch query.
const archiver = state.processes.archiver;
const archiveDir = join(process.env.SLUICE_STATE_DIR ?? join(root, '.sluice'), 'archive');
const demoQuery = 'select category, count(*) as events, round(sum(value), 2) as value_sum, min(occurred_at) as first_event from events_enriched group by category order by category';
if (archiver && gateway && !state.processes.s3proxy) {
  const hasFiles = () => existsSync(join(archiveDir, 'events_enriched')) && readdirSync(join(archiveDir, 'events_enriched'), { recursive: true }).some((f) => String(f).endsWith('.parquet'));
  for (let waited = 0; waited < 30_000 && !hasFiles(); waited += 1_000) await new Promise((r) => setTimeout(r, 1_000));
  // One more roll interval, so the query sees the end of the traffic.
  await new Promise((r) => setTimeout(r, 11_000));
  console.log(`\n== the archive (${archiveDir}): ./sluice archive query "${demoQuery}"`);
  spawnSync(process.execPath, [join(root, 'services/archiver/dist/cli.js'), 'query', demoQuery], { stdio: 'inherit', cwd: root, env: { ...process.env, ARCHIVE_URL: archiveDir } });
}

const urls = {
  archiver: (p) => `http://127.0.0.1:${p}/metrics  (archive: ${state.processes.s3proxy ? 's3://sluice-archive/ on the S3Proxy' : archiveDir}; ./sluice archive query "<SQL>")`,
  s3proxy: (p) => `http://127.0.0.1:${p}  (S3 API, bucket sluice-archive)`,
  'ingest-gateway': (p) => `http://127.0.0.1:${p}/v1/events  (OpenAPI: /openapi.json)`,
  'schema-registry': (p) => `http://127.0.0.1:${p}/subjects`,
  enricher: (p) => `http://127.0.0.1:${p}/metrics`,
  aggregator: (p) => `http://127.0.0.1:${p}/metrics`,
  'view-api': (p) => `http://127.0.0.1:${p}/v1/top?dimension=category  (also /v1/aggregates, /v1/stream)`,
  prometheus: (p) => `http://127.0.0.1:${p}/alerts  (every service scraped, the project's alert rules; also /graph)`,
  'dlq-replayer': (p) =>
    `http://127.0.0.1:${p}/console/  (the operator console; token ${process.env.DLQ_ADMIN_TOKEN ?? 'local-admin-token'}, also for the API under /admin/dlq)`,
};
console.log('\nWhere everything listens:');
console.log(`  Kafka               ${state.kafkaBrokers.join(',')}`);
console.log(`  Postgres            ${state.databaseUrl}`);
for (const [name, p] of Object.entries(state.processes)) {
  if (urls[name]) console.log(`  ${name.padEnd(19)} ${urls[name](p.port)}`);
}
if (!hasPrometheus) console.log('  (no Prometheus: install Debian\'s `prometheus` package and run the demo again to get one)');
console.log('\nMore traffic: pnpm loadgen --rate 500 --duration 60');
console.log('Logs:         ./sluice stack logs <name>     Status: ./sluice stack status');
console.log('The stack keeps running in the background. Stop it with: ./sluice stack down');
