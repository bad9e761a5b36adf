import { mkdir, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { JOURNAL_PREFIX, replacedFiles } from './compaction';
import { LocalStorage, type ArchiveStorage } from './storage';

export interface QueryResult {
  columns: string[];
  /** JSON-safe values: big integers and timestamps as strings, maps as arrays of {key, value}. */
  rows: Record<string, unknown>[];
}

const quote = (text: string): string => `'${text.replace(/'/g, "''")}'`;

/**
 * Runs SQL with DuckDB over a local copy of the archive: each table directory (`events_enriched`, …) is a
 * view of the same name over its Parquet files, with the Hive partitions `dt` (DATE) and `hour` (INTEGER)
 * as columns. Nothing is written to the archive.
 */
export async function queryArchive(root: string, sql: string): Promise<QueryResult> {
  const { DuckDBInstance } = await import('@duckdb/node-api');
  const instance = await DuckDBInstance.create(':memory:');
  const connection = await instance.connect();
  try {
    const storage = new LocalStorage(root);
    // The small files an interrupted compaction already merged are read from the merged file only.
    const replaced = await replacedFiles(storage);
    // Each table directory (not `_sluice`) with its Parquet files, from one listing.
    const tables = new Map<string, string[]>();
    for (const object of await storage.list('')) {
      const table = object.key.slice(0, object.key.indexOf('/'));
      if (table === '' || table.startsWith('_') || !object.key.endsWith('.parquet') || replaced.has(object.key)) continue;
      tables.set(table, [...(tables.get(table) ?? []), quote(join(root, object.key))]);
    }
    for (const [table, files] of tables) {
      await connection.run(
        `create view "${table.replace(/"/g, '""')}" as select * from read_parquet([${files.join(', ')}], hive_partitioning = true, hive_types = {'dt': DATE, 'hour': INTEGER})`,
      );
    }
    const reader = await connection.runAndReadAll(sql);
    return { columns: reader.columnNames(), rows: reader.getRowObjectsJson() as Record<string, unknown>[] };
  } finally {
    connection.closeSync();
    instance.closeSync();
  }
}

/**
 * Mirrors the Parquet files of an archive in an object store into `dir` (new and changed files are
 * downloaded, files gone from the store removed), so that DuckDB reads them locally: DuckDB reads S3
 * itself only through its httpfs extension, which it downloads at run time.
 */
export async function mirrorArchive(storage: ArchiveStorage, dir: string): Promise<{ downloaded: number; removed: number; files: number }> {
  // The Parquet files, and the journals of compactions under way (the query reads them).
  const objects = (await storage.list('')).filter((o) => (o.key.endsWith('.parquet') && !o.key.startsWith('_')) || o.key.startsWith(JOURNAL_PREFIX));
  const wanted = new Set(objects.map((o) => o.key));
  let downloaded = 0;
  for (const object of objects) {
    const target = join(dir, ...object.key.split('/'));
    const local = await stat(target).catch(() => undefined);
    if (local?.size === object.size) continue;
    const body = await storage.get(object.key);
    if (!body) continue;
    await mkdir(dirname(target), { recursive: true });
    await writeFile(`${target}.part`, body);
    await rename(`${target}.part`, target);
    downloaded++;
  }
  let removed = 0;
  for (const file of await readdir(dir, { recursive: true }).catch(() => [] as string[])) {
    if (!(file.endsWith('.parquet') || file.endsWith('.json')) || wanted.has(file.split('\\').join('/'))) continue;
    await rm(join(dir, file), { force: true });
    removed++;
  }
  return { downloaded, removed, files: objects.length };
}

/** A result as an aligned text table, as psql prints one. */
export function formatTable(result: QueryResult): string {
  const cell = (value: unknown): string => (value === null || value === undefined ? '' : typeof value === 'object' ? JSON.stringify(value) : String(value));
  const cells = result.rows.map((row) => result.columns.map((c) => cell(row[c])));
  const widths = result.columns.map((c, i) => Math.max(c.length, ...cells.map((r) => r[i]!.length)));
  const line = (values: string[]) => values.map((v, i) => v.padEnd(widths[i]!)).join(' | ').trimEnd();
  return [line(result.columns), widths.map((w) => '-'.repeat(w)).join('-+-'), ...cells.map(line), `(${result.rows.length} ${result.rows.length === 1 ? 'row' : 'rows'})`].join('\n');
}
