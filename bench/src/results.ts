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
export function brokerPid(stack?: ReturnType<typeof runningStack>): number | undefined {
  try {
    return Object.entries((stack ?? runningStack()).processes).find(([name]) => name.startsWith('kafka'))?.[1].pid;
  } catch {
    return undefined;
  }
}

/** The local stack's brokers: how many, and their JIT (SLUICE_KAFKA_JIT, read off the first broker's command line). */
function brokers(): { nodes: number; jit: 'quick' | 'full' } | undefined {
  try {
    const stack = runningStack();
    const pid = brokerPid(stack);
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

/** Count, p50, p95, p99 and max of a list of values (nearest rank; NaN when empty). */
export function percentiles(values: number[]): { count: number; p50: number; p95: number; p99: number; max: number } {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] ?? Number.NaN;
  return { count: sorted.length, p50: at(0.5), p95: at(0.95), p99: at(0.99), max: sorted.at(-1) ?? Number.NaN };
}

/** Percentiles and a histogram of a list of milliseconds. */
export function summarize(values: number[], bucketsMs: number[]): ReturnType<typeof percentiles> & { histogram: { upToMs: number | null; count: number }[] } {
  const histogram = [...bucketsMs, null].map((upToMs, i) => {
    const low = i === 0 ? Number.NEGATIVE_INFINITY : bucketsMs[i - 1]!;
    return { upToMs, count: values.filter((v) => v > low && (upToMs === null || v <= upToMs)).length };
  });
  return { ...percentiles(values), histogram };
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

/** The BENCH_SERVICE_NODE_OPTIONS a run used, as its results record them (null: each service's own, from the stack's service catalog). */
export const serviceNodeOptionsUsed = (): string | null => process.env.BENCH_SERVICE_NODE_OPTIONS ?? null;
