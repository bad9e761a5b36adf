import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import type { StackPaths } from './paths';
import { writeScrapeTargets } from './prometheus';

export interface ProcessEntry {
  name: string;
  pid: number;
  port: number;
  logPath: string;
  /** What started it, so that `restart` can start it again the same way. */
  command: string;
  args: string[];
  env: Record<string, string>;
  cwd?: string;
  uid?: number;
  gid?: number;
  /** Serves Prometheus metrics on /metrics: a local Prometheus scrapes it. */
  metrics?: boolean;
  /** The HTTP path that answers 2xx once it is ready. @default /healthz */
  readyPath?: string;
  startedAt: string;
}

export interface StackState {
  /** `starting` until `up` has finished: a state left in `starting` means the runner died midway. */
  status: 'starting' | 'up';
  kafkaBrokers: string[];
  databaseUrl: string;
  schemaRegistryUrl: string;
  processes: Record<string, ProcessEntry>;
}

export function readState(paths: StackPaths): StackState | undefined {
  try {
    return JSON.parse(readFileSync(paths.stateFile, 'utf8')) as StackState;
  } catch {
    return undefined;
  }
}

/** Written after every change, atomically, so a runner killed at any moment leaves a readable file. */
export function writeState(paths: StackPaths, state: StackState): void {
  mkdirSync(paths.stateDir, { recursive: true });
  const tmp = `${paths.stateFile}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(state, null, 2)}\n`);
  renameSync(tmp, paths.stateFile);
  writeScrapeTargets(paths, state);
}
