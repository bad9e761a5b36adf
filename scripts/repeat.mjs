#!/usr/bin/env node
// Runs test files again and again against the local stack, for the chaos and
// failover runs that must pass repeatedly, not once (`./sluice test` runs each
// once). Usage: pnpm repeat <runs> <test file>... (default: the broker
// failover test, 5 runs). Prints each run's result and the lines the tests log,
// then "N of M runs passed". The stack must be up (`pnpm stack up --only infra`).
import { spawnSync } from 'node:child_process';
import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..');
const [runsArg, ...files] = process.argv.slice(2);
const runs = Number(runsArg ?? 5);
if (!Number.isInteger(runs) || runs < 1) {
  console.error('usage: pnpm repeat <runs> [test file...]');
  process.exit(2);
}
const tests = files.length > 0 ? files : ['e2e/broker-failover.e2e.test.ts'];
const repeatDir = join(process.env.SLUICE_STATE_DIR ?? join(root, '.sluice'), 'repeat');
// A test's Kafka cluster copies its data and broker logs here when it closes (the next run's cluster starts afresh).
const clusterCopy = join(repeatDir, 'last-cluster');
let passed = 0;
for (let run = 1; run <= runs; run++) {
  const started = Date.now();
  rmSync(clusterCopy, { recursive: true, force: true });
  const jest = spawnSync(process.execPath, [join(root, 'node_modules/jest/bin/jest.js'), '--runInBand', ...tests], {
    cwd: root,
    encoding: 'utf8',
    maxBuffer: 256 * 1024 * 1024,
    // No --forceExit: a run whose jest never exits (a handle left open) is stopped and counts as failed.
    timeout: 45 * 60_000,
    killSignal: 'SIGKILL',
    env: { ...process.env, SLUICE_KEEP_CLUSTER_AT: clusterCopy },
  });
  const output = `${jest.stdout}${jest.stderr}`;
  const ok = jest.status === 0;
  if (ok) passed++;
  const seconds = Math.round((Date.now() - started) / 1000);
  console.log(`== run ${run} of ${runs}: ${ok ? 'passed' : 'FAILED'} in ${seconds} s`);
  // What the tests said about themselves (kills, refusals), and on failure the failures.
  for (const line of output.split('\n')) {
    if (/^\s+(broker failover|leader \d|[✓✕])/.test(line)) console.log(line.trim());
  }
  if (!ok) {
    // The whole output of a failed run is kept beside the services' logs (.sluice/logs, .sluice/cluster/logs),
    // with its cluster's topics and broker logs when it had a cluster of its own.
    mkdirSync(repeatDir, { recursive: true });
    const name = `run-${new Date().toISOString().replace(/[:.]/g, '-')}`;
    const file = join(repeatDir, `${name}.log`);
    writeFileSync(file, output);
    console.log(`the run's whole output: ${file}`);
    try {
      renameSync(clusterCopy, join(repeatDir, `${name}-cluster`));
      console.log(`its cluster's data and broker logs: ${join(repeatDir, `${name}-cluster`)}`);
    } catch {
      // No cluster of its own.
    }
    console.log(output.split('\n').filter((l) => /●|Expected|Received|not reached|^\s+[-+] /.test(l)).slice(0, 80).join('\n'));
  }
}
console.log(`${passed} of ${runs} runs passed`);
process.exit(passed === runs ? 0 : 1);
