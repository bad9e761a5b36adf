#!/usr/bin/env node
import { loadConfig, maintenanceMain } from '@sluice/runtime';
import { z } from 'zod';
import { dlqMaintenanceShape } from './config';
import { pruneDeadLetters } from './prune';

const usage = `usage: maintenance-cli prune [--dry-run]

prune  deletes the dead-letter index entries that were replayed or discarded and failed more than
       DLQ_INDEX_RETENTION_DAYS (default 30) days ago; pending entries are never deleted
environment: DATABASE_URL, DLQ_INDEX_RETENTION_DAYS`;

const shape = z.object(dlqMaintenanceShape);

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
