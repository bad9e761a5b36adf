import { join } from 'node:path';
import { runMigrations, type Logger } from '@sluice/runtime';

export const migrationsDir = join(__dirname, '..', 'migrations');

export function migrate(databaseUrl: string, logger: Logger): Promise<string[]> {
  return runMigrations({ databaseUrl, dir: migrationsDir, table: 'view_api_migrations', logger });
}
