#!/usr/bin/env node
import { env, loadConfig, maintenanceMain } from '@sluice/runtime';
import { z } from 'zod';
import { viewRetention } from './retention';

const usage = `usage: maintenance-cli retention [--dry-run]

retention  deletes the windows that started more than VIEW_RETENTION_DAYS (default 90) days ago,
           rounded down to a UTC day, and the rollup rows of those days
environment: DATABASE_URL, VIEW_RETENTION_DAYS`;

const shape = z.object({
  DATABASE_URL: env.url('postgres://postgres:postgres@127.0.0.1:54329/sluice'),
  VIEW_RETENTION_DAYS: env.int(90, { min: 1, max: 36_500 }),
});

maintenanceMain(usage, {
  retention: (dryRun) => {
    const config = loadConfig(shape);
    return {
      name: 'view-retention',
      databaseUrl: config.DATABASE_URL,
      dryRun,
      run: (pool) => viewRetention(pool, { retentionDays: config.VIEW_RETENTION_DAYS, now: Date.now(), dryRun }),
    };
  },
});
