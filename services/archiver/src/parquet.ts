import type { EnrichedEvent } from '@sluice/contracts';

/** One archived record: the event and where it was in Kafka. */
export interface ArchivedRecord {
  event: EnrichedEvent;
  partition: number;
  offset: bigint;
  /** Its encoded size in Kafka, which counts towards ARCHIVE_MAX_FILE_MB. */
  bytes?: number;
}

/** A file of a roll: its key in the archive and its rows, in offset order. */
export interface PlannedFile {
  key: string;
  hour: string;
  rows: ArchivedRecord[];
}

/** The directory of a topic's table in the archive: `events.enriched` → `events_enriched`. */
export const tableOf = (topic: string): string => topic.replace(/[^A-Za-z0-9_]/g, '_');

/** The Hive partition of an event time: `dt=YYYY-MM-DD/hour=HH` (UTC), or undefined outside years 0–9999. */
export function hourPartition(epochMs: number): string | undefined {
  if (!Number.isFinite(epochMs)) return undefined;
  const date = new Date(epochMs);
  const year = date.getUTCFullYear();
  if (Number.isNaN(year) || year < 0 || year > 9999) return undefined;
  const iso = date.toISOString();
  return `dt=${iso.slice(0, 10)}/hour=${iso.slice(11, 13)}`;
}

/**
 * The files of a roll: one per event-time hour, named from the first and last Kafka offset it holds.
 * The same records always give the same files (names and rows): a roll done again after a crash writes
 * exactly what the first attempt wrote.
 */
export function planFiles(table: string, partition: number, records: ArchivedRecord[]): PlannedFile[] {
  const byHour = new Map<string, ArchivedRecord[]>();
  for (const record of records) {
    const hour = hourPartition(record.event.occurredAt);
    if (hour === undefined) throw new Error(`occurredAt ${record.event.occurredAt} has no hour (checked before planning)`);
    let rows = byHour.get(hour);
    if (!rows) byHour.set(hour, (rows = []));
    rows.push(record);
  }
  const files: PlannedFile[] = [];
  for (const [hour, rows] of [...byHour].sort(([a], [b]) => (a < b ? -1 : 1))) {
    rows.sort((a, b) => (a.offset < b.offset ? -1 : a.offset > b.offset ? 1 : 0));
    const first = rows[0]!.offset;
    const last = rows[rows.length - 1]!.offset;
    files.push({ key: `${table}/${hour}/part-${partition}-${first}-${last}.parquet`, hour, rows });
  }
  return files;
}

/** The offsets a file name says it holds. */
export function parseFileName(name: string): { partition: number; first: bigint; last: bigint } | undefined {
  const match = /^part-(\d+)-(\d+)-(\d+)\.parquet$/.exec(name);
  if (!match) return undefined;
  return { partition: Number(match[1]), first: BigInt(match[2]!), last: BigInt(match[3]!) };
}

const utf8 = { type: 'BYTE_ARRAY', converted_type: 'UTF8', logical_type: { type: 'STRING' } } as const;
const utcMillis = { type: 'INT64', logical_type: { type: 'TIMESTAMP', isAdjustedToUTC: true, unit: 'MILLIS' } } as const;

/**
 * The Parquet schema of the archive: one column per field of EnrichedEvent (timestamps as UTC timestamps
 * in milliseconds, attributes as a MAP of strings), then `kafka_partition` and `kafka_offset`. `dt` and
 * `hour` are not columns: they are the Hive partition of the file's directory.
 */
export const ARCHIVE_SCHEMA = [
  { name: 'schema', num_children: 14 },
  { name: 'event_id', ...utf8, repetition_type: 'REQUIRED' },
  { name: 'type', ...utf8, repetition_type: 'REQUIRED' },
  { name: 'entity_id', ...utf8, repetition_type: 'REQUIRED' },
  { name: 'user_id', ...utf8, repetition_type: 'OPTIONAL' },
  { name: 'occurred_at', ...utcMillis, repetition_type: 'REQUIRED' },
  { name: 'value', type: 'DOUBLE', repetition_type: 'REQUIRED' },
  { name: 'attributes', converted_type: 'MAP', logical_type: { type: 'MAP' }, repetition_type: 'REQUIRED', num_children: 1 },
  { name: 'key_value', repetition_type: 'REPEATED', num_children: 2 },
  { name: 'key', ...utf8, repetition_type: 'REQUIRED' },
  { name: 'value', ...utf8, repetition_type: 'REQUIRED' },
  { name: 'name', ...utf8, repetition_type: 'REQUIRED' },
  { name: 'category', ...utf8, repetition_type: 'REQUIRED' },
  { name: 'enriched_at', ...utcMillis, repetition_type: 'REQUIRED' },
  { name: 'source_partition', type: 'INT32', repetition_type: 'REQUIRED' },
  { name: 'source_offset', type: 'INT64', repetition_type: 'REQUIRED' },
  { name: 'kafka_partition', type: 'INT32', repetition_type: 'REQUIRED' },
  { name: 'kafka_offset', type: 'INT64', repetition_type: 'REQUIRED' },
];

type Writer = typeof import('hyparquet-writer', { with: { 'resolution-mode': 'import' } });
let writer: Promise<Writer> | undefined;
// hyparquet-writer is an ES module; this package is CommonJS.
const loadWriter = (): Promise<Writer> => (writer ??= import('hyparquet-writer'));

/** The Parquet bytes of rows (snappy, one row group per 100,000 rows). Deterministic: same rows, same bytes. */
export async function encodeParquet(rows: ArchivedRecord[]): Promise<Uint8Array> {
  const { parquetWriteBuffer } = await loadWriter();
  const column = <T>(name: string, pick: (r: ArchivedRecord) => T) => ({ name, data: rows.map(pick) });
  const buffer = parquetWriteBuffer({
    codec: 'SNAPPY',
    rowGroupSize: 100_000,
    createdBy: 'sluice-archiver',
    schema: ARCHIVE_SCHEMA as never,
    columnData: [
      column('event_id', (r) => r.event.eventId),
      column('type', (r) => r.event.type),
      column('entity_id', (r) => r.event.entityId),
      column('user_id', (r) => r.event.userId),
      column('occurred_at', (r) => BigInt(r.event.occurredAt)),
      column('value', (r) => r.event.value),
      // Sorted by key, so the same map gives the same bytes whatever order it was decoded in.
      column('attributes', (r) =>
        Object.keys(r.event.attributes)
          .sort()
          .map((key) => ({ key, value: r.event.attributes[key]! })),
      ),
      column('name', (r) => r.event.name),
      column('category', (r) => r.event.category),
      column('enriched_at', (r) => BigInt(r.event.enrichedAt)),
      column('source_partition', (r) => r.event.sourcePartition),
      column('source_offset', (r) => BigInt(r.event.sourceOffset)),
      column('kafka_partition', (r) => r.partition),
      column('kafka_offset', (r) => r.offset),
    ],
  });
  return new Uint8Array(buffer);
}

const keepBom = new TextDecoder('utf-8', { ignoreBOM: true });

type Reader = typeof import('hyparquet', { with: { 'resolution-mode': 'import' } });
let reader: Promise<Reader> | undefined;
const loadReader = (): Promise<Reader> => (reader ??= import('hyparquet'));

/** The records of an archive file, as `encodeParquet` was given them (compaction reads files back with it). */
export async function decodeParquet(bytes: Uint8Array): Promise<ArchivedRecord[]> {
  const { parquetReadObjects } = await loadReader();
  const file = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  // Strings as they were: hyparquet's default decoder drops a leading U+FEFF (a byte order mark is data here).
  const rows = (await parquetReadObjects({ file, parsers: { stringFromBytes: (bytes: Uint8Array) => bytes && keepBom.decode(bytes) } })) as Record<string, unknown>[];
  const millis = (v: unknown): number => (v instanceof Date ? v.getTime() : Number(v));
  return rows.map((row) => ({
    event: {
      eventId: row.event_id as string,
      type: row.type as string,
      entityId: row.entity_id as string,
      userId: (row.user_id as string | null | undefined) ?? null,
      occurredAt: millis(row.occurred_at),
      value: row.value as number,
      attributes: { ...(row.attributes as Record<string, string>) },
      name: row.name as string,
      category: row.category as string,
      enrichedAt: millis(row.enriched_at),
      sourcePartition: row.source_partition as number,
      sourceOffset: Number(row.source_offset),
    },
    partition: row.kafka_partition as number,
    offset: BigInt(row.kafka_offset as bigint),
  }));
}
