#!/usr/bin/env node
import { join, resolve } from 'node:path';
import { createKafka, createLogger, loadConfig, maintenanceMain } from '@sluice/runtime';
import { z } from 'zod';
import { compactArchive } from './compaction';
import { archiveMaintenanceShape, archiveQueryShape } from './config';
import { tableOf } from './parquet';
import { formatTable, mirrorArchive, queryArchive } from './query';
import { LocalStorage, openStorage } from './storage';

const usage = `usage: sluice archive query "<SQL>" [--json]
       sluice archive compact [--dry-run]

query    runs the SQL with DuckDB over the archive at ARCHIVE_URL (default .sluice/archive, the local
         stack's). The table events_enriched reads its Parquet files, with dt (DATE) and hour (INTEGER)
         from their Hive partitions. An s3:// archive is mirrored into ARCHIVE_CACHE_DIR first.
compact  merges the small files of each closed hour (ended ARCHIVE_COMPACT_MIN_AGE_MS ago, default 2 h),
         per Kafka partition, into files of up to ARCHIVE_COMPACT_MAX_MB; only files the archiver group
         (ARCHIVE_CONSUMER_GROUP) has committed. Under a Postgres advisory lock (DATABASE_URL).`;

const queryEnv = z.object(archiveQueryShape);
const compactEnv = z.object(archiveMaintenanceShape);

async function query(args: string[]): Promise<number> {
  const json = args.includes('--json');
  const positional = args.filter((a) => a !== '--json');
  if (positional.length !== 1) {
    console.error(usage);
    return 2;
  }
  const config = loadConfig(queryEnv);
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

const [command, ...rest] = process.argv.slice(2);
if (command === 'compact') {
  maintenanceMain(usage, {
    compact: (dryRun) => {
      const config = loadConfig(compactEnv);
      const storage = openStorage(config.ARCHIVE_URL, { forcePathStyle: config.ARCHIVE_S3_FORCE_PATH_STYLE, region: config.AWS_REGION });
      return {
        name: 'archive-compact',
        databaseUrl: config.DATABASE_URL,
        dryRun,
        run: async () => {
          const admin = createKafka(config, { clientId: 'archive-compact', logger: createLogger({ service: 'archive-compact' }) }).admin();
          await admin.connect();
          let committed: Map<number, bigint>;
          try {
            const [offsets] = await admin.fetchOffsets({ groupId: config.ARCHIVE_CONSUMER_GROUP, topics: [config.ARCHIVE_INPUT_TOPIC] });
            committed = new Map((offsets?.partitions ?? []).filter((p) => p.offset !== '-1').map((p) => [p.partition, BigInt(p.offset)]));
          } finally {
            await admin.disconnect();
          }
          return compactArchive(storage, {
            table: tableOf(config.ARCHIVE_INPUT_TOPIC),
            now: Date.now(),
            minAgeMs: config.ARCHIVE_COMPACT_MIN_AGE_MS,
            maxBytes: config.ARCHIVE_COMPACT_MAX_MB * 1024 * 1024,
            committed,
            dryRun,
          });
        },
      };
    },
  }, ['compact', ...rest]);
} else if (command === 'query') {
  query(rest).then(
    (code) => process.exit(code),
    (err: unknown) => {
      console.error(`sluice archive: ${err instanceof Error ? err.message : String(err)}`);
      process.exit(1);
    },
  );
} else {
  console.error(usage);
  process.exit(2);
}
