import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { provisionTopics, Serde, topicCatalog, valueSubjectOf, type EnrichedEvent } from '@sluice/contracts';
import { runningStack, startTestService, testKafka, uniqueName, withAdmin, type TestService } from '@sluice/testing';
import { Partitioners, type Kafka, type Producer } from 'kafkajs';
import { parseFileName, tableOf } from '../src/parquet';
import { queryArchive } from '../src/query';

/** A topic set of its own, an archive directory of its own, a transactional producer, and the archive read back. */
export interface ArchiveFixture {
  kafka: Kafka;
  topic: string;
  table: string;
  group: string;
  /** The archive's directory (a local archive) or where it is mirrored (S3). */
  dir: string;
  start(env?: Record<string, string>): Promise<TestService>;
  /** Sends events in one transaction; `abort` aborts it (its events must never be archived). */
  send(events: EnrichedEvent[], options?: { abort?: boolean }): Promise<void>;
  sendRaw(key: string, value: Buffer): Promise<void>;
  /** Every archived row: event id, partition, offset, file, and the columns a test compares. */
  rows(dir?: string): Promise<ArchivedRow[]>;
  /** The event ids the table gives, as `sluice archive query` reads it (files an unfinished compaction merged are skipped). */
  tableIds(dir?: string): Promise<string[]>;
  /** The group's committed offset per partition. */
  committed(): Promise<Map<number, bigint>>;
  close(): Promise<void>;
}

export interface ArchivedRow {
  event_id: string;
  kafka_partition: number;
  kafka_offset: string;
  filename: string;
  [column: string]: unknown;
}

export async function archiveFixture(partitions = 3): Promise<ArchiveFixture> {
  const kafka = testKafka();
  const prefix = `${uniqueName('arc')}.`;
  await withAdmin(kafka, (admin) => provisionTopics(admin, topicCatalog({ prefix, partitions })));
  const topic = `${prefix}events.enriched`;
  const encoder = await new Serde(runningStack().schemaRegistryUrl).encoder<EnrichedEvent>(valueSubjectOf(topic), 'EnrichedEvent');
  const producer: Producer = kafka.producer({ transactionalId: uniqueName('arc-producer'), idempotent: true, maxInFlightRequests: 1, createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  const plain: Producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, createPartitioner: Partitioners.DefaultPartitioner });
  await plain.connect();
  const dir = mkdtempSync(join(tmpdir(), 'sluice-archive-'));
  const group = uniqueName('archiver');
  const services: TestService[] = [];
  const table = tableOf(topic);
  return {
    kafka,
    topic,
    table,
    group,
    dir,
    async start(env = {}) {
      const service = await startTestService('archiver', {
        env: {
          ARCHIVE_URL: dir,
          ARCHIVE_INPUT_TOPIC: topic,
          ARCHIVE_CONSUMER_GROUP: group,
          ARCHIVE_ROLL_INTERVAL_MS: '300',
          ARCHIVE_SESSION_TIMEOUT_MS: '6000',
          ARCHIVE_RETRY_MAX_MS: '1000',
          LOG_LEVEL: 'info',
          ...env,
        },
      });
      services.push(service);
      return service;
    },
    async send(events, options = {}) {
      const transaction = await producer.transaction();
      try {
        await transaction.send({ topic, acks: -1, messages: events.map((e) => ({ key: e.entityId, value: encoder.encode(e) })) });
      } catch (err) {
        await transaction.abort();
        throw err;
      }
      await (options.abort ? transaction.abort() : transaction.commit());
    },
    async sendRaw(key, value) {
      await plain.send({ topic, acks: -1, messages: [{ key, value }] });
    },
    async rows(at = dir) {
      const result = await queryArchive(at, `select *, epoch_ms(occurred_at) as occurred_ms, epoch_ms(enriched_at) as enriched_ms from read_parquet('${join(at, table).replace(/'/g, "''")}/*/*/*.parquet', hive_partitioning = true, filename = true)`).catch((err: unknown) => {
        if (String(err).includes('No files found')) return { columns: [], rows: [] };
        throw err;
      });
      return result.rows as unknown as ArchivedRow[];
    },
    async tableIds(at = dir) {
      return (await queryArchive(at, `select event_id from ${table}`)).rows.map((r) => r.event_id as string);
    },
    async committed() {
      const [offsets] = await withAdmin(kafka, (admin) => admin.fetchOffsets({ groupId: group, topics: [topic] }));
      return new Map((offsets?.partitions ?? []).map((p) => [p.partition, BigInt(p.offset)]));
    },
    async close() {
      await Promise.all(services.map((s) => s.stop()));
      await producer.disconnect();
      await plain.disconnect();
    },
  };
}

/** Every file under `dir`, relative, `/`-separated. */
export function filesUnder(dir: string): string[] {
  return (readdirSync(dir, { recursive: true, withFileTypes: true }) as import('node:fs').Dirent[])
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name).slice(dir.length + 1))
    .sort();
}

/**
 * What every archive must be, whatever happened while it was written: each file's name says its partition
 * and first and last offsets, its rows are of that partition and hour, and nothing else is visible.
 */
export function archiveProblems(table: string, rows: ArchivedRow[], files: string[]): string[] {
  const problems: string[] = [];
  const byFile = new Map<string, ArchivedRow[]>();
  for (const row of rows) {
    const key = row.filename.slice(row.filename.indexOf(`/${table}/`) + 1);
    byFile.set(key, [...(byFile.get(key) ?? []), row]);
  }
  for (const file of files) {
    if (file.startsWith('_sluice/rolls/') && file.endsWith('.json')) continue;
    if (!file.startsWith(`${table}/`) || !file.endsWith('.parquet')) problems.push(`unexpected file ${file}`);
  }
  for (const [file, fileRows] of byFile) {
    const match = /\/dt=(\d{4}-\d{2}-\d{2})\/hour=(\d{2})\/(part-[^/]+)$/.exec(file);
    const name = match ? parseFileName(match[3]!) : undefined;
    if (!match || !name) {
      problems.push(`badly named file ${file}`);
      continue;
    }
    const offsets = fileRows.map((r) => BigInt(r.kafka_offset)).sort((a, b) => (a < b ? -1 : 1));
    if (offsets[0] !== name.first || offsets.at(-1) !== name.last) problems.push(`${file} holds offsets ${offsets[0]}..${offsets.at(-1)}`);
    if (fileRows.some((r) => r.kafka_partition !== name.partition)) problems.push(`${file} holds rows of another partition`);
    for (const row of fileRows) {
      const iso = new Date(Number(row.occurred_ms)).toISOString();
      if (iso.slice(0, 10) !== match[1] || iso.slice(11, 13) !== match[2]) problems.push(`${file} holds ${row.event_id} of ${iso}`);
    }
  }
  return problems;
}
