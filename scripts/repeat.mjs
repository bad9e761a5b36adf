#!/usr/bin/env node
// Runs test files again and again against the local stack, for the chaos and
// failover runs that must pass repeatedly, not once (`./sluice test` runs each
// once). Usage: pnpm repeat <runs> <test file>... (default: the broker
// failover test, 5 runs). Prints each run's result and the lines the tests log,
// then "N of M runs passed". The stack must be up (`pnpm stack up --only infra`).
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..');
const [runsArg, ...files] = process.argv.slice(2);
const runs = Number(runsArg ?? 5);
if (!Number.isInteger(runs) || runs < 1) {
  console.error('usage: pnpm repeat <runs> [test file...]');
  process.exit(2);
}
const tests = files.length > 0 ? files : ['e2e/broker-failover.e2e.test.ts'];
let passed = 0;
for (let run = 1; run <= runs; run++) {
  const started = Date.now();
  const jest = spawnSync(process.execPath, [join(root, 'node_modules/jest/bin/jest.js'), '--runInBand', '--forceExit', ...tests], { cwd: root, encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
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
    // The whole output of a failed run is kept beside the services' logs (.sluice/logs, .sluice/cluster/logs).
    const dir = join(process.env.SLUICE_STATE_DIR ?? join(root, '.sluice'), 'repeat');
    mkdirSync(dir, { recursive: true });
    const file = join(dir, `run-${new Date().toISOString().replace(/[:.]/g, '-')}.log`);
    writeFileSync(file, output);
    console.log(`the run's whole output: ${file}`);
    console.log(output.split('\n').filter((l) => /●|Expected|Received|not reached|^\s+[-+] /.test(l)).slice(0, 80).join('\n'));
  }
}
console.log(`${passed} of ${runs} runs passed`);
process.exit(passed === runs ? 0 : 1);
