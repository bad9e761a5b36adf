#!/usr/bin/env node
import { loadConfig, maintenanceMain } from '@sluice/runtime';
import { z } from 'zod';
import { viewMaintenanceShape } from './config';
import { viewRetention } from './retention';

const usage = `usage: maintenance-cli retention [--dry-run]

retention  deletes the windows that started more than VIEW_RETENTION_DAYS (default 90) days ago,
           rounded down to a UTC day, and the rollup rows of those days
environment: DATABASE_URL, VIEW_RETENTION_DAYS`;

const shape = z.object(viewMaintenanceShape);

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
