#!/usr/bin/env node
import { createLogger } from '@sluice/runtime';
import { migrate } from './migrate';

const url = process.env.DATABASE_URL ?? 'postgres://postgres:postgres@127.0.0.1:54329/sluice';
migrate(url, createLogger({ service: 'view-api-migrate' })).then(
  (applied) => {
    process.stdout.write(applied.length ? `applied: ${applied.join(', ')}\n` : 'nothing to migrate\n');
    process.exit(0);
  },
  (err: unknown) => {
    process.stderr.write(`migrate: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
