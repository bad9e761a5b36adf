#!/usr/bin/env node
import { env, loadConfig, maintenanceMain } from '@sluice/runtime';
import { z } from 'zod';
import { pruneDeadLetters } from './prune';

const usage = `usage: maintenance-cli prune [--dry-run]

prune  deletes the dead-letter index entries that were replayed or discarded and failed more than
       DLQ_INDEX_RETENTION_DAYS (default 30) days ago; pending entries are never deleted
environment: DATABASE_URL, DLQ_INDEX_RETENTION_DAYS`;

const shape = z.object({
  DATABASE_URL: env.url('postgres://postgres:postgres@127.0.0.1:54329/sluice'),
  DLQ_INDEX_RETENTION_DAYS: env.int(30, { min: 1, max: 36_500 }),
});

maintenanceMain(usage, {
  prune: (dryRun) => {
    const config = loadConfig(shape);
    return {
      name: 'dlq-index-prune',
      databaseUrl: config.DATABASE_URL,
      dryRun,
      run: (pool) => pruneDeadLetters(pool, { retentionDays: config.DLQ_INDEX_RETENTION_DAYS, now: Date.now(), dryRun }),
    };
  },
});
