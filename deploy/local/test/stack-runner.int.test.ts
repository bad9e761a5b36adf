import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isAlive, readState, sleep, stackPaths, type StackState } from '@sluice/local-stack';

// A second, separate stack on other ports and another state folder, so that it
// can be crashed without disturbing the stack the other tests use.
jest.setTimeout(180_000);

const cli = join(__dirname, '..', 'dist', 'cli.js');
const stateDir = mkdtempSync(join(tmpdir(), 'sluice-stack-test-'));
const env = {
  ...process.env,
  SLUICE_STATE_DIR: stateDir,
  SLUICE_KAFKA_PORT: '19192',
  SLUICE_PG_PORT: '54339',
  SLUICE_KAFKA_HEAP_MB: '256',
  SCHEMA_REGISTRY_PORT: '18181',
  DATABASE_URL: '',
};
const paths = stackPaths(env);

function runCli(...args: string[]): { status: number | null; output: string } {
  const result = spawnSync(process.execPath, [cli, ...args], { env, encoding: 'utf8', timeout: 150_000 });
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

function pidsOf(state: StackState | undefined): number[] {
  return Object.values(state?.processes ?? {}).map((p) => p.pid);
}

afterAll(() => {
  runCli('down');
  rmSync(stateDir, { recursive: true, force: true });
});

test('up after the runner was killed with SIGKILL midway cleans up and starts a whole stack; down leaves no process', async () => {
  const runner = spawn(process.execPath, [cli, 'up', '--only', 'infra'], { env, stdio: 'ignore' });
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline && !readState(paths)?.processes.kafka) await sleep(50);
  const leftover = readState(paths);
  expect(leftover?.processes.kafka).toBeDefined();
  runner.kill('SIGKILL');
  await new Promise((resolve) => runner.once('exit', resolve));
  expect(readState(paths)?.status).toBe('starting');
  const orphans = pidsOf(readState(paths));

  const second = runCli('up', '--only', 'infra');
  expect(second.output).toContain('cleaning up what an earlier run left behind');
  expect(second).toMatchObject({ status: 0 });
  const state = readState(paths);
  expect(state?.status).toBe('up');
  expect(Object.keys(state?.processes ?? {}).sort()).toEqual(['kafka', 'postgres', 'schema-registry']);
  for (const pid of orphans) expect(isAlive(pid)).toBe(false);
  for (const pid of pidsOf(state)) expect(isAlive(pid)).toBe(true);

  const status = runCli('status');
  expect(status.status).toBe(0);
  expect(status.output).toMatch(/kafka\s+up/);

  const down = runCli('down');
  expect(down.status).toBe(0);
  for (const pid of pidsOf(state)) expect(isAlive(pid)).toBe(false);
  expect(existsSync(paths.stateFile)).toBe(false);
});

test('kill stops a process with SIGKILL and restart brings it back', async () => {
  expect(runCli('up', '--only', 'kafka').status).toBe(0);
  const before = readState(paths)!.processes.kafka!;
  const killed = runCli('kill', 'kafka');
  expect(killed.status).toBe(0);
  expect(isAlive(before.pid)).toBe(false);
  expect(runCli('status').status).toBe(1);

  const restarted = runCli('restart', 'kafka');
  expect(restarted.status).toBe(0);
  const after = readState(paths)!.processes.kafka!;
  expect(after.pid).not.toBe(before.pid);
  expect(isAlive(after.pid)).toBe(true);
  expect(runCli('down').status).toBe(0);
  expect(isAlive(after.pid)).toBe(false);
});

test('up --observability adds a Prometheus that scrapes the services of the stack; status shows it, down stops it', async () => {
  const up = spawnSync(process.execPath, [cli, 'up', '--only', 'infra', '--observability'], { env: { ...env, PROMETHEUS_PORT: '19190' }, encoding: 'utf8', timeout: 150_000 });
  expect(up.status).toBe(0);
  expect(up.stdout).toContain('Prometheus UI:    http://127.0.0.1:19190/alerts');
  const prometheus = readState(paths)!.processes.prometheus!;
  expect(prometheus.port).toBe(19190);
  expect(runCli('status').output).toMatch(/prometheus\s+up/);

  // The registry, the one service of an infra stack, is found through the targets file the runner keeps, and scraped.
  const deadline = Date.now() + 60_000;
  let series: { metric: Record<string, string>; value: [number, string] }[] = [];
  while (Date.now() < deadline) {
    const res = await fetch(`http://127.0.0.1:19190/api/v1/query?query=${encodeURIComponent('up{job="sluice"}')}`);
    series = ((await res.json()) as { data: { result: typeof series } }).data.result;
    if (series.some((s) => s.metric.instance === 'schema-registry' && s.value[1] === '1')) break;
    await sleep(500);
  }
  expect(series.map((s) => [s.metric.instance, s.value[1]])).toEqual([['schema-registry', '1']]);
  const rules = (await (await fetch('http://127.0.0.1:19190/api/v1/rules')).json()) as { data: { groups: { name: string; rules: { name: string }[] }[] } };
  expect(rules.data.groups.flatMap((g) => g.rules.map((r) => r.name))).toContain('SluiceServiceDown');

  expect(runCli('down').status).toBe(0);
  expect(isAlive(prometheus.pid)).toBe(false);
});
