import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';

export const resultsDir = join(__dirname, '..', 'results');

/** Writes a scenario's figures, with what they were measured on, to bench/results/<scenario>.json. */
export function writeResults(scenario: string, figures: Record<string, unknown>): string {
  mkdirSync(resultsDir, { recursive: true });
  const path = join(resultsDir, `${scenario}.json`);
  const machine = { cpus: cpus().length, cpuModel: cpus()[0]?.model, memoryGiB: Math.round(totalmem() / 2 ** 30), node: process.version };
  writeFileSync(path, `${JSON.stringify({ scenario, measuredAt: new Date().toISOString(), machine, ...figures }, null, 2)}\n`);
  return path;
}
