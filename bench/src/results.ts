import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { runningStack } from '@sluice/testing';

export const resultsDir = join(__dirname, '..', 'results');

/** The commit the figures were measured on, marked when the tree had changes not committed. */
export function currentCommit(): string {
  const git = (...args: string[]) => execFileSync('git', args, { cwd: join(__dirname, '..'), encoding: 'utf8' }).trim();
  try {
    // Results written by earlier runs are not changes to what is measured.
    const changed = git('status', '--porcelain', '--untracked-files=no')
      .split('\n')
      .filter((line) => line && !line.includes('bench/results/'));
    return `${git('rev-parse', '--short', 'HEAD')}${changed.length > 0 ? '+changes' : ''}`;
  } catch {
    return 'unknown';
  }
}

/** The process id of the local stack's first Kafka node, if the stack is up. */
export function brokerPid(): number | undefined {
  try {
    return Object.entries(runningStack().processes).find(([name]) => name.startsWith('kafka'))?.[1].pid;
  } catch {
    return undefined;
  }
}

/** The local stack's brokers: how many, and their JIT (SLUICE_KAFKA_JIT, read off the first broker's command line). */
function brokers(): { nodes: number; jit: 'quick' | 'full' } | undefined {
  try {
    const stack = runningStack();
    const pid = brokerPid();
    if (pid === undefined) return undefined;
    const jit = readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('-XX:TieredStopAtLevel=1') ? 'quick' : 'full';
    return { nodes: stack.kafkaBrokers.length, jit };
  } catch {
    return undefined;
  }
}

/** The middle value (the mean of the two middle ones for an even count, rounded). */
export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : Math.round((sorted[mid - 1]! + sorted[mid]!) / 2);
}

/** Writes a scenario's figures, with what they were measured on, to bench/results/<scenario>.json. */
export function writeResults(scenario: string, figures: Record<string, unknown>): string {
  mkdirSync(resultsDir, { recursive: true });
  const path = join(resultsDir, `${scenario}.json`);
  const machine = { cpus: cpus().length, cpuModel: cpus()[0]?.model, memoryGiB: Math.round(totalmem() / 2 ** 30), node: process.version };
  writeFileSync(path, `${JSON.stringify({ scenario, measuredAt: new Date().toISOString(), commit: currentCommit(), machine, brokers: brokers(), ...figures }, null, 2)}\n`);
  return path;
}

/** BENCH_SERVICE_NODE_OPTIONS: Node.js options for the services a scenario starts (e.g. V8 heap sizes), to compare them. */
export function serviceNodeOptions(): { NODE_OPTIONS?: string } {
  const options = process.env.BENCH_SERVICE_NODE_OPTIONS;
  return options ? { NODE_OPTIONS: options } : {};
}
