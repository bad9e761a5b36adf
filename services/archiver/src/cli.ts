#!/usr/bin/env node
import { join, resolve } from 'node:path';
import { loadConfig, env } from '@sluice/runtime';
import { z } from 'zod';
import { formatTable, mirrorArchive, queryArchive } from './query';
import { LocalStorage, openStorage } from './storage';

const usage = `usage: sluice archive query "<SQL>" [--json]

Runs the SQL with DuckDB over the archive at ARCHIVE_URL (default .sluice/archive, the local stack's).
The table events_enriched reads its Parquet files, with dt (DATE) and hour (INTEGER) from their Hive
partitions. An s3:// archive is mirrored into ARCHIVE_CACHE_DIR first (default .sluice/archive-cache).`;

const cliEnv = z.object({
  ARCHIVE_URL: env.string('.sluice/archive'),
  ARCHIVE_CACHE_DIR: env.string('.sluice/archive-cache'),
  ARCHIVE_S3_FORCE_PATH_STYLE: env.bool(true),
  AWS_REGION: env.string('us-east-1'),
});

async function main(args: string[]): Promise<number> {
  const [command, ...rest] = args;
  const json = rest.includes('--json');
  const positional = rest.filter((a) => a !== '--json');
  if (command !== 'query' || positional.length !== 1) {
    console.error(usage);
    return 2;
  }
  const config = loadConfig(cliEnv);
  const storage = openStorage(config.ARCHIVE_URL, { forcePathStyle: config.ARCHIVE_S3_FORCE_PATH_STYLE, region: config.AWS_REGION });
  let root: string;
  if (storage instanceof LocalStorage) root = storage.root;
  else {
    root = resolve(config.ARCHIVE_CACHE_DIR, storage.location.replace(/^s3:\/\//, '').replace(/[^A-Za-z0-9._/-]/g, '_'));
    const mirrored = await mirrorArchive(storage, root);
    console.error(`mirrored ${storage.location}: ${mirrored.files} files, ${mirrored.downloaded} downloaded, ${mirrored.removed} removed (${join(root)})`);
  }
  const result = await queryArchive(root, positional[0]!);
  console.log(json ? JSON.stringify(result.rows, null, 2) : formatTable(result));
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(`sluice archive: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  },
);
