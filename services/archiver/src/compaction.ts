import type { MaintenanceOutcome } from '@sluice/runtime';
import { decodeParquet, encodeParquet, parseFileName, type ArchivedRecord } from './parquet';
import { readJson, type ArchiveStorage, type StoredObject } from './storage';

/**
 * An interrupted compaction's intent: the merged file and the files it replaces. Readers that see the
 * journal and the merged file read the merged file and not the small ones (`sluice archive query` does),
 * so the hour reads exactly once at every step; the next run finishes or abandons it.
 */
export interface CompactionJournal {
  merged: string;
  smalls: string[];
}

export const JOURNAL_PREFIX = '_sluice/compactions/';
const journalKey = (merged: string): string => `${JOURNAL_PREFIX}${merged.replace(/\//g, '~')}.json`;

interface HourFile extends StoredObject {
  dir: string;
  partition: number;
  first: bigint;
  last: bigint;
}

/** The journals of compactions that did not finish, each with whether its merged file was written. */
async function openJournals(storage: ArchiveStorage): Promise<{ key: string; journal: CompactionJournal | undefined; merged: boolean }[]> {
  const found = [];
  for (const object of await storage.list(JOURNAL_PREFIX)) {
    const journal = await readJson<CompactionJournal>(storage, object.key);
    found.push({ key: object.key, journal, merged: journal !== undefined && (await storage.exists(journal.merged)) });
  }
  return found;
}

/** The small files that an unfinished compaction's merged file already holds: readers skip them. */
export async function replacedFiles(storage: ArchiveStorage): Promise<Set<string>> {
  return new Set((await openJournals(storage)).flatMap(({ journal, merged }) => (merged ? journal!.smalls : [])));
}

/** Finishes (merged file written: the small ones go) or abandons (it was not: they stay) interrupted compactions. */
async function recover(storage: ArchiveStorage): Promise<{ finished: number; abandoned: number }> {
  let finished = 0;
  let abandoned = 0;
  for (const { key, journal, merged } of await openJournals(storage)) {
    if (merged) {
      for (const small of journal!.smalls) await storage.remove(small);
      finished++;
    } else if (journal) abandoned++;
    await storage.remove(key);
  }
  return { finished, abandoned };
}

export interface CompactionOptions {
  table: string;
  now: number;
  /** An hour is closed this long after it ended. */
  minAgeMs: number;
  /** A merged file holds at most this many bytes of small files; an hour with more becomes several. */
  maxBytes: number;
  /** The archiver group's committed offset per partition: only files of committed rolls are merged (a roll not yet committed may be written again). */
  committed: Map<number, bigint>;
  dryRun: boolean;
}

/**
 * Merges the small files of each closed hour, per Kafka partition, into one (the name again says the first
 * and last offsets). Each merge: journal, merged file (atomic), small files removed, journal removed. Must
 * run under the task's lock (two compactions at once would take each other's journals for leftovers).
 */
export async function compactArchive(storage: ArchiveStorage, options: CompactionOptions): Promise<MaintenanceOutcome> {
  const recovered = options.dryRun ? { finished: 0, abandoned: 0 } : await recover(storage);
  const groups = new Map<string, HourFile[]>();
  for (const object of await storage.list(`${options.table}/`)) {
    const match = /^(.*\/dt=(\d{4}-\d{2}-\d{2})\/hour=(\d{2}))\/([^/]+)$/.exec(object.key);
    const name = match ? parseFileName(match[4]!) : undefined;
    if (!match || !name) continue;
    const hourEnd = Date.parse(`${match[2]}T${match[3]}:00:00Z`) + 3_600_000;
    if (options.now - hourEnd < options.minAgeMs) continue;
    const committed = options.committed.get(name.partition);
    if (committed === undefined || name.last >= committed) continue;
    const id = `${match[1]}|${name.partition}`;
    groups.set(id, [...(groups.get(id) ?? []), { ...object, dir: match[1]!, ...name }]);
  }
  let merges = 0;
  let smalls = 0;
  let rows = 0;
  for (const files of groups.values()) {
    files.sort((a, b) => (a.first < b.first ? -1 : 1));
    // Consecutive runs of small files up to maxBytes each; a file already that big stays as it is.
    const chunks: HourFile[][] = [];
    let chunk: HourFile[] = [];
    let size = 0;
    for (const file of files) {
      if (chunk.length > 0 && size + file.size > options.maxBytes) {
        chunks.push(chunk);
        chunk = [];
        size = 0;
      }
      chunk.push(file);
      size += file.size;
    }
    chunks.push(chunk);
    for (const run of chunks.filter((c) => c.length >= 2)) {
      merges++;
      smalls += run.length;
      if (options.dryRun) continue;
      const records: ArchivedRecord[] = [];
      for (const file of run) {
        const body = await storage.get(file.key);
        if (!body) throw new Error(`${file.key} disappeared while compacting (is another compaction running without the lock?)`);
        records.push(...(await decodeParquet(body)));
      }
      records.sort((a, b) => (a.offset < b.offset ? -1 : a.offset > b.offset ? 1 : 0));
      rows += records.length;
      const first = run[0]!;
      const merged = `${first.dir}/part-${first.partition}-${records[0]!.offset}-${records[records.length - 1]!.offset}.parquet`;
      const journal: CompactionJournal = { merged, smalls: run.map((f) => f.key) };
      if (!(await storage.create(journalKey(merged), Buffer.from(JSON.stringify(journal))))) throw new Error(`a compaction journal for ${merged} exists: another compaction is running`);
      await storage.put(merged, await encodeParquet(records));
      for (const file of run) await storage.remove(file.key);
      await storage.remove(journalKey(merged));
    }
  }
  const leftovers = recovered.finished + recovered.abandoned > 0 ? `; finished ${recovered.finished} and abandoned ${recovered.abandoned} interrupted compactions` : '';
  return {
    summary: options.dryRun
      ? `would merge ${smalls} files into ${merges} in closed hours of ${options.table}`
      : `merged ${smalls} files (${rows} rows) into ${merges} in closed hours of ${options.table}${leftovers}`,
    counts: { merges, files: smalls, rows, finished: recovered.finished, abandoned: recovered.abandoned },
  };
}
