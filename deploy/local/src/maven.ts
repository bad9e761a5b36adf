import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** A short hash of a pom's content: a changed pom resolves again. */
export function pomHash(pom: string): string {
  return createHash('sha256').update(readFileSync(pom)).digest('hex').slice(0, 12);
}

/**
 * Copies the dependencies `pom` declares from Maven Central into `dir`, once: a later call finds `marker`
 * (written only after Maven succeeded) and skips Maven. `what` names them in the error.
 */
export async function copyMavenDependencies(options: { pom: string; dir: string; marker: string; what: string; args: string[] }): Promise<void> {
  if (existsSync(options.marker)) return;
  mkdirSync(options.dir, { recursive: true });
  try {
    await run('mvn', ['-B', '-q', '-f', options.pom, ...options.args, 'dependency:copy-dependencies', `-DoutputDirectory=${options.dir}`], { maxBuffer: 16 * 1024 * 1024 });
  } catch (err) {
    const { stdout, stderr } = err as { stdout?: string; stderr?: string };
    throw new Error(`Maven could not resolve ${options.what}:\n${stdout ?? ''}${stderr ?? ''}`, { cause: err });
  }
  writeFileSync(options.marker, `${new Date().toISOString()}\n`);
}
