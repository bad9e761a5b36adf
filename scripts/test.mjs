#!/usr/bin/env node
// Runs every check of the project against the real local stack and ends with
// one line: "N passed, N failed". Lint and type-check count as one check;
// each jest test counts as one, and a test file that cannot run counts as a failure.
// Extra arguments go to jest (for example: --selectProjects unit).
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..');
const stateDir = process.env.SLUICE_STATE_DIR ?? join(root, '.sluice');
const stack = (...args) => spawnSync(process.execPath, [join(root, 'deploy/local/dist/cli.js'), ...args], { stdio: 'inherit', cwd: root });
const stackIsUp = () => {
  try {
    return JSON.parse(readFileSync(join(stateDir, 'state.json'), 'utf8')).status === 'up' && stack('status').status === 0;
  } catch {
    return false;
  }
};

let passed = 0;
let failed = 0;
const finish = () => {
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed === 0 && passed > 0 ? 0 : 1);
};

console.log('== lint and type-check');
const lint = spawnSync('pnpm', ['lint'], { stdio: 'inherit', cwd: root });
if (lint.status === 0) passed++;
else failed++;

const reuse = stackIsUp();
if (!reuse) {
  console.log('== starting the local stack (Kafka, Postgres, registry)');
  if (stack('up', '--only', 'infra').status !== 0) {
    failed++;
    console.error('the local stack did not start; see the logs under .sluice/logs');
    stack('down');
    finish();
  }
} else {
  console.log('== using the local stack that is already up');
}

console.log('== jest: unit, integration and e2e, one file at a time');
mkdirSync(stateDir, { recursive: true });
const results = join(stateDir, 'jest-results.json');
rmSync(results, { force: true });
const jestArgs = ['--runInBand', '--json', `--outputFile=${results}`, ...(process.env.CI ? ['--ci'] : []), ...process.argv.slice(2)];
// No --forceExit: a test that leaves a handle open (a client, a server, a timer) keeps jest alive after its
// results are written. Then jest is stopped and that counts as a failure, rather than the run hanging or the
// leak going unseen.
const EXIT_GRACE_MS = 30_000;
const jest = await new Promise((resolve) => {
  const child = spawn(process.execPath, [join(root, 'node_modules/jest/bin/jest.js'), ...jestArgs], { stdio: 'inherit', cwd: root });
  let hung = false;
  let resultsSeenAt;
  const watch = setInterval(() => {
    if (resultsSeenAt === undefined && existsSync(results)) resultsSeenAt = Date.now();
    if (resultsSeenAt !== undefined && Date.now() - resultsSeenAt > EXIT_GRACE_MS) {
      hung = true;
      child.kill('SIGKILL');
    }
  }, 1_000);
  child.on('exit', (status) => {
    clearInterval(watch);
    resolve({ status, hung });
  });
});

if (existsSync(results)) {
  const summary = JSON.parse(readFileSync(results, 'utf8'));
  passed += summary.numPassedTests;
  failed += summary.numFailedTests + summary.numRuntimeErrorTestSuites;
  if (summary.numPendingTests + summary.numTodoTests > 0) {
    console.error(`${summary.numPendingTests + summary.numTodoTests} skipped or todo tests: they are counted as failures`);
    failed += summary.numPendingTests + summary.numTodoTests;
  }
} else {
  failed++;
}
if (jest.hung) {
  console.error(`jest did not exit ${EXIT_GRACE_MS / 1000} s after its results: a test left a handle open (run files alone with --detectOpenHandles to find it); counted as a failure`);
  failed++;
} else if (jest.status !== 0 && failed === 0) failed++;

if (!reuse) {
  console.log('== stopping the local stack');
  stack('down');
}
finish();
