import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { runningStack } from '@sluice/testing';

export interface Loop {
  child: ChildProcess;
  /** Resolves with the exit code (or signal) once the process exits. */
  exited: Promise<number | string>;
  /** Lines it wrote to stderr so far. */
  lines: string[];
  /** Resolves once a line matching `pattern` is written. */
  said(pattern: RegExp, timeoutMs?: number): Promise<void>;
  stop(): Promise<number | string>;
}

/** Starts bench/src/eos-loop.ts as a process. */
export function startLoop(env: Record<string, string>): Loop {
  const child = spawn(process.execPath, [join(__dirname, 'eos-loop.js')], {
    env: { ...process.env, LOOP_BROKERS: runningStack().kafkaBrokers.join(','), LOOP_REGISTRY_URL: runningStack().schemaRegistryUrl, ...env },
    stdio: ['ignore', 'inherit', 'pipe'],
  });
  const lines: string[] = [];
  const listeners = new Set<() => void>();
  child.stderr!.on('data', (chunk: Buffer) => {
    for (const line of chunk.toString().split('\n').filter(Boolean)) {
      lines.push(line);
      process.stderr.write(`  [${line.startsWith('loop') ? '' : 'loop '}${line}]\n`);
    }
    for (const listener of listeners) listener();
  });
  const exited = new Promise<number | string>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown')));
  const said = (pattern: RegExp, timeoutMs = 120_000) =>
    new Promise<void>((resolve, reject) => {
      const check = () => {
        if (lines.some((l) => pattern.test(l))) {
          listeners.delete(check);
          clearTimeout(timer);
          resolve();
        }
      };
      const timer = setTimeout(() => {
        listeners.delete(check);
        reject(new Error(`the loop did not say ${pattern} in ${timeoutMs} ms`));
      }, timeoutMs);
      listeners.add(check);
      check();
      void exited.then(() => check());
    });
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGCONT');
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      await exited;
      clearTimeout(timer);
    }
    return exited;
  };
  return { child, exited, lines, said, stop };
}
