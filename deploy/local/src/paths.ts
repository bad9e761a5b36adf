import { join, resolve } from 'node:path';

/** The repository root: this file runs from deploy/local/dist. */
export const repoRoot = resolve(__dirname, '..', '..', '..');

export interface StackPaths {
  stateDir: string;
  stateFile: string;
  logsDir: string;
  dataDir: string;
  cacheDir: string;
}

export function stackPaths(env: NodeJS.ProcessEnv = process.env): StackPaths {
  const stateDir = resolve(env.SLUICE_STATE_DIR ?? join(repoRoot, '.sluice'));
  return {
    stateDir,
    stateFile: join(stateDir, 'state.json'),
    logsDir: join(stateDir, 'logs'),
    dataDir: join(stateDir, 'data'),
    cacheDir: resolve(env.SLUICE_CACHE_DIR ?? join(repoRoot, '.cache')),
  };
}
