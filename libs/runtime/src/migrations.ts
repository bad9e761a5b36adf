import type { Logger } from './logger';

// node-pg-migrate is an ES module; this package compiles to CommonJS.
const loadEsm = new Function('specifier', 'return import(specifier)') as <T>(specifier: string) => Promise<T>;

/**
 * Applies a service's pending SQL migrations with node-pg-migrate. Replicas
 * starting at once wait for each other on the tool's advisory lock; the second
 * finds nothing left to do.
 */
export async function runMigrations(options: { databaseUrl: string; dir: string; table: string; logger: Logger }): Promise<string[]> {
  const { runner } = await loadEsm<{ runner: (options: Record<string, unknown>) => Promise<{ name: string }[]> }>('node-pg-migrate');
  const { logger } = options;
  const applied = await runner({
    databaseUrl: options.databaseUrl,
    dir: options.dir,
    migrationsTable: options.table,
    direction: 'up',
    count: Number.POSITIVE_INFINITY,
    advisoryLockMode: 'wait',
    logger: { debug: () => undefined, info: (m: string) => logger.debug(m), warn: (m: string) => logger.warn(m), error: (m: string) => logger.error(m) },
    log: () => undefined,
  });
  return applied.map((m) => m.name);
}
