import { randomUUID } from 'node:crypto';
import { withTransaction } from '@sluice/runtime';
import type { KafkaMessage } from 'kafkajs';
import type { Pool, PoolClient } from 'pg';
import { filterSql, type DeadLetterFilter, type Status } from './filter';

export interface DeadLetter {
  id: string;
  dlqTopic: string;
  dlqPartition: number;
  dlqOffset: string;
  sourceTopic: string;
  sourcePartition: number | null;
  sourceOffset: string | null;
  key: Buffer | null;
  value: Buffer | null;
  headers: Record<string, string>;
  /** The exact header bytes, [name, value] in base64, when `headers` had to escape them. */
  rawHeaders: [string, string][] | null;
  errorCode: string;
  errorMessage: string;
  stage: string;
  failedAt: string;
  status: Status;
  replayCount: number;
  lastReplayId: string | null;
  discardReason: string | null;
}

interface Row {
  id: string;
  dlq_topic: string;
  dlq_partition: number;
  dlq_offset: string;
  source_topic: string;
  source_partition: number | null;
  source_offset: string | null;
  key: Buffer | null;
  value: Buffer | null;
  headers: Record<string, string>;
  raw_headers: [string, string][] | null;
  error_code: string;
  error_message: string;
  stage: string;
  failed_at: Date;
  status: Status;
  replay_count: number;
  last_replay_id: string | null;
  discard_reason: string | null;
}

const toDeadLetter = (r: Row): DeadLetter => ({
  id: r.id,
  dlqTopic: r.dlq_topic,
  dlqPartition: r.dlq_partition,
  dlqOffset: r.dlq_offset,
  sourceTopic: r.source_topic,
  sourcePartition: r.source_partition,
  sourceOffset: r.source_offset,
  key: r.key,
  value: r.value,
  headers: r.headers,
  rawHeaders: r.raw_headers,
  errorCode: r.error_code,
  errorMessage: r.error_message,
  stage: r.stage,
  failedAt: r.failed_at.toISOString(),
  status: r.status,
  replayCount: r.replay_count,
  lastReplayId: r.last_replay_id,
  discardReason: r.discard_reason,
});

// ignoreBOM: a leading U+FEFF is part of the value (the default decoder drops it, and the text would no longer be the bytes).
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const RFC3339_ISH = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

/**
 * Bytes as text Postgres can hold and a person can read: UTF-8 as it is, with a NUL shown as `\u0000`
 * and every byte that is not UTF-8 as `\xNN`. `exact` says whether that text is the bytes themselves.
 */
export function printable(bytes: Buffer): { text: string; exact: boolean } {
  let text: string;
  let exact = true;
  try {
    text = utf8.decode(bytes);
  } catch {
    exact = false;
    text = '';
    for (let i = 0; i < bytes.length; ) {
      const length = sequenceLength(bytes, i);
      if (length > 0) {
        text += bytes.subarray(i, i + length).toString('utf8');
        i += length;
      } else {
        text += `\\x${bytes[i]!.toString(16).padStart(2, '0')}`;
        i += 1;
      }
    }
  }
  if (text.includes('\u0000')) {
    exact = false;
    text = text.replaceAll('\u0000', '\\u0000');
  }
  return { text, exact };
}

/** The length of the well-formed UTF-8 sequence at `i`, or 0. */
function sequenceLength(bytes: Buffer, i: number): number {
  const b = bytes[i]!;
  const length = b < 0x80 ? 1 : b >= 0xc2 && b <= 0xdf ? 2 : b >= 0xe0 && b <= 0xef ? 3 : b >= 0xf0 && b <= 0xf4 ? 4 : 0;
  if (length <= 1 || i + length > bytes.length) return length === 1 ? 1 : 0;
  try {
    utf8.decode(bytes.subarray(i, i + length));
    return length;
  } catch {
    return 0;
  }
}

/** A string from a header (decoded by kafkajs) as text Postgres can hold. */
const storable = (text: string): string => printable(Buffer.from(text, 'utf8')).text;

/** The headers as readable text, and, when that text is not exactly the bytes, the bytes in base64. */
function headersOf(message: KafkaMessage): { text: Record<string, string>; raw: [string, string][] | null } {
  const text: [string, string][] = [];
  const raw: [string, string][] = [];
  let exact = true;
  for (const [k, v] of Object.entries(message.headers ?? {})) {
    if (v === undefined) continue;
    const first = Array.isArray(v) ? v[0] : v;
    if (first === undefined) continue;
    const bytes = Buffer.isBuffer(first) ? first : Buffer.from(first);
    const name = printable(Buffer.from(k, 'utf8'));
    const value = printable(bytes);
    exact &&= name.exact && value.exact;
    text.push([name.text, value.text]);
    raw.push([Buffer.from(k, 'utf8').toString('base64'), bytes.toString('base64')]);
  }
  // fromEntries defines each name as an own property (`text[name] = value` would drop `__proto__`).
  return { text: Object.fromEntries(text), raw: exact ? null : raw };
}

/** A whole number in [0, max] from header text, or null (a header is whatever the producer wrote). */
function wholeNumber(text: string | undefined, max: bigint): string | null {
  if (text === undefined || !/^\d{1,19}$/.test(text)) return null;
  return BigInt(text) <= max ? text : null;
}

export interface ReplayRow {
  id: string;
  requestedBy: string;
  status: 'running' | 'completed' | 'cancelled' | 'failed';
  ratePerSec: number;
  selected: number;
  refused: number;
  error: string | null;
  createdAt: string;
  updatedAt: string;
  counts: Record<string, number>;
}

export interface ReplayItem {
  deadLetterId: string;
  targetTopic: string;
  targetPartition: number;
  produceFrom: string | null;
  status: 'pending' | 'producing' | 'replayed' | 'skipped' | 'failed';
}

export class ReplayerStore {
  constructor(private readonly pool: Pool) {}

  async ping(): Promise<void> {
    await this.pool.query('select 1');
  }

  /** Inside the index sink's transaction: one row per dead letter, by its position (a repeat is the same row). */
  async index(client: PoolClient, topic: string, partition: number, messages: KafkaMessage[]): Promise<number> {
    if (messages.length === 0) return 0;
    // Whatever a record holds, it is indexed: text fields escaped where text cannot hold them, numbers
    // and times that do not parse left empty (or taken from the record), the raw headers kept.
    let rows = messages.map((m) => {
      const { text: h, raw } = headersOf(m);
      const failedAt = h['dlq.failed.at'] !== undefined && RFC3339_ISH.test(h['dlq.failed.at']) ? Date.parse(h['dlq.failed.at']) : NaN;
      return {
        sourceTopic: h['dlq.original.topic'] ?? storable(topic.replace(/\.dlq$/, '')),
        sourcePartition: wholeNumber(h['dlq.original.partition'], 2_147_483_647n),
        sourceOffset: wholeNumber(h['dlq.original.offset'], 9_223_372_036_854_775_807n),
        key: m.key ?? null,
        value: m.value ?? null,
        headers: h,
        raw: raw === null ? null : JSON.stringify(raw),
        code: h['dlq.error.code'] ?? 'unknown',
        message: h['dlq.error.message'] ?? '',
        stage: h['dlq.stage'] ?? 'unknown',
        failedAt: new Date(Number.isFinite(failedAt) && failedAt > 0 && failedAt < 253_402_300_800_000 ? failedAt : Number(m.timestamp)).toISOString(),
        replayCount: Number(wholeNumber(h['dlq.replay.count'], 1_000_000n) ?? 0),
        offset: m.offset,
      };
    });
    // One entry per original record and stage: a dead letter sent twice (at least once, by a sink that
    // crashed before committing) is the same entry. The copies of one record share a DLQ partition (same key).
    const origins = new Set<string>();
    const unique = rows.filter((r) => {
      if (r.sourcePartition === null || r.sourceOffset === null) return true;
      const origin = JSON.stringify([r.stage, r.sourceTopic, r.sourcePartition, r.sourceOffset]);
      if (origins.has(origin)) return false;
      origins.add(origin);
      return true;
    });
    rows = unique;
    const res = await client.query(
      `insert into dead_letters (dlq_topic, dlq_partition, dlq_offset, source_topic, source_partition, source_offset, key, value, headers, raw_headers, error_code, error_message, stage, failed_at, replay_count)
       select $1, $2, o, st, sp, so, k, v, h, rh, c, m, s, f, rc
       from unnest($3::bigint[], $4::text[], $5::int[], $6::bigint[], $7::bytea[], $8::bytea[], $9::jsonb[], $10::jsonb[], $11::text[], $12::text[], $13::text[], $14::timestamptz[], $15::int[])
         as t(o, st, sp, so, k, v, h, rh, c, m, s, f, rc)
       where t.sp is null or t.so is null or not exists (
         select 1 from dead_letters d where d.stage = t.s and d.source_topic = t.st and d.source_partition = t.sp and d.source_offset = t.so
       )
       on conflict (dlq_topic, dlq_partition, dlq_offset) do nothing`,
      [
        topic,
        partition,
        rows.map((r) => r.offset),
        rows.map((r) => r.sourceTopic),
        rows.map((r) => r.sourcePartition),
        rows.map((r) => r.sourceOffset),
        rows.map((r) => r.key),
        rows.map((r) => r.value),
        rows.map((r) => JSON.stringify(r.headers)),
        rows.map((r) => r.raw),
        rows.map((r) => r.code),
        rows.map((r) => r.message),
        rows.map((r) => r.stage),
        rows.map((r) => r.failedAt),
        rows.map((r) => r.replayCount),
      ],
    );
    return res.rowCount ?? 0;
  }

  async list(filter: DeadLetterFilter, limit: number, afterId: string | undefined): Promise<DeadLetter[]> {
    const { where, params } = filterSql(filter, 1);
    if (afterId !== undefined) {
      params.push(afterId);
      where.push(`id > $${params.length}`);
    }
    params.push(limit);
    const res = await this.pool.query<Row>(
      `select * from dead_letters ${where.length ? `where ${where.join(' and ')}` : ''} order by id limit $${params.length}`,
      params,
    );
    return res.rows.map(toDeadLetter);
  }

  async get(id: string): Promise<DeadLetter | undefined> {
    const res = await this.pool.query<Row>('select * from dead_letters where id = $1', [id]);
    return res.rows[0] ? toDeadLetter(res.rows[0]) : undefined;
  }

  async selectForReplay(ids: string[] | undefined, filter: DeadLetterFilter | undefined, limit: number): Promise<DeadLetter[]> {
    if (ids) {
      const res = await this.pool.query<Row>('select * from dead_letters where id = any($1::bigint[]) order by id', [ids]);
      return res.rows.map(toDeadLetter);
    }
    return this.list(filter ?? {}, limit, undefined);
  }

  /** Ids among `ids` that an unfinished replay is about to produce. */
  async inRunningReplays(ids: string[]): Promise<string[]> {
    const res = await this.pool.query<{ id: string }>(
      `select distinct i.dead_letter_id as id from replay_items i join replays r on r.id = i.replay_id
       where r.status = 'running' and i.status in ('pending', 'producing') and i.dead_letter_id = any($1::bigint[])`,
      [ids],
    );
    return res.rows.map((r) => r.id);
  }

  async createReplay(input: {
    requestedBy: string;
    request: unknown;
    ratePerSec: number;
    targetTopic: string | undefined;
    force: boolean;
    items: { deadLetterId: string; targetTopic: string; targetPartition: number }[];
    refused: number;
  }): Promise<string> {
    const id = randomUUID();
    await withTransaction(this.pool, async (client) => {
      // Two replays of the same records never run at once: the check and the insert share one lock.
      await client.query('select pg_advisory_xact_lock(7705)');
      const busy = await client.query<{ id: string }>(
        `select i.dead_letter_id as id from replay_items i join replays r on r.id = i.replay_id
         where r.status = 'running' and i.status in ('pending', 'producing') and i.dead_letter_id = any($1::bigint[]) limit 1`,
        [input.items.map((i) => i.deadLetterId)],
      );
      if (busy.rows.length > 0) throw new ReplayConflict(busy.rows.map((r) => r.id));
      await client.query(
        `insert into replays (id, requested_by, request, rate_per_sec, target_topic, force, status, selected, refused)
         values ($1, $2, $3, $4, $5, $6, 'running', $7, $8)`,
        [id, input.requestedBy, JSON.stringify(input.request), input.ratePerSec, input.targetTopic ?? null, input.force, input.items.length, input.refused],
      );
      await client.query(
        `insert into replay_items (replay_id, dead_letter_id, position, target_topic, target_partition, status)
         select $1, d, p, t, tp, 'pending' from unnest($2::bigint[], $3::int[], $4::text[], $5::int[]) as u(d, p, t, tp)`,
        [id, input.items.map((i) => i.deadLetterId), input.items.map((_, i) => i), input.items.map((i) => i.targetTopic), input.items.map((i) => i.targetPartition)],
      );
    });
    return id;
  }

  async replay(id: string): Promise<ReplayRow | undefined> {
    const res = await this.pool.query<{
      id: string;
      requested_by: string;
      status: ReplayRow['status'];
      rate_per_sec: number;
      selected: number;
      refused: number;
      error: string | null;
      created_at: Date;
      updated_at: Date;
    }>('select * from replays where id = $1', [id]);
    const r = res.rows[0];
    if (!r) return undefined;
    const counts = await this.pool.query<{ status: string; n: string }>('select status, count(*) as n from replay_items where replay_id = $1 group by status', [id]);
    return {
      id: r.id,
      requestedBy: r.requested_by,
      status: r.status,
      ratePerSec: r.rate_per_sec,
      selected: r.selected,
      refused: r.refused,
      error: r.error,
      createdAt: r.created_at.toISOString(),
      updatedAt: r.updated_at.toISOString(),
      counts: Object.fromEntries(counts.rows.map((c) => [c.status, Number(c.n)])),
    };
  }

  async runningReplays(): Promise<string[]> {
    const res = await this.pool.query<{ id: string }>("select id from replays where status = 'running' order by created_at");
    return res.rows.map((r) => r.id);
  }

  async setReplayStatus(id: string, status: ReplayRow['status'], error?: string): Promise<boolean> {
    const res = await this.pool.query("update replays set status = $2, error = $3, updated_at = now() where id = $1 and status = 'running'", [id, status, error ?? null]);
    return (res.rowCount ?? 0) > 0;
  }

  async replayStatus(id: string): Promise<ReplayRow['status'] | undefined> {
    const res = await this.pool.query<{ status: ReplayRow['status'] }>('select status from replays where id = $1', [id]);
    return res.rows[0]?.status;
  }

  async openItems(replayId: string): Promise<ReplayItem[]> {
    const res = await this.pool.query<{ dead_letter_id: string; target_topic: string; target_partition: number; produce_from: string | null; status: ReplayItem['status'] }>(
      `select dead_letter_id, target_topic, target_partition, produce_from, status from replay_items
       where replay_id = $1 and status in ('pending', 'producing') order by position`,
      [replayId],
    );
    return res.rows.map((r) => ({ deadLetterId: r.dead_letter_id, targetTopic: r.target_topic, targetPartition: r.target_partition, produceFrom: r.produce_from, status: r.status }));
  }

  /** Written before producing: where to look for the record if this process dies before it learns the offset. */
  async markProducing(replayId: string, deadLetterId: string, produceFrom: string): Promise<void> {
    await this.pool.query("update replay_items set status = 'producing', produce_from = $3 where replay_id = $1 and dead_letter_id = $2", [replayId, deadLetterId, produceFrom]);
  }

  /** Kafka acknowledged the record: the item and its dead letter are marked replayed together. */
  async markReplayed(replayId: string, deadLetterId: string, offset: string): Promise<void> {
    await withTransaction(this.pool, async (client) => {
      await client.query("update replay_items set status = 'replayed', produced_offset = $3 where replay_id = $1 and dead_letter_id = $2", [replayId, deadLetterId, offset]);
      await client.query("update dead_letters set status = 'replayed', replay_count = replay_count + 1, last_replay_id = $2 where id = $1", [deadLetterId, replayId]);
      await client.query('update replays set updated_at = now() where id = $1', [replayId]);
    });
  }

  async markItem(replayId: string, deadLetterId: string, status: 'failed' | 'skipped', error: string): Promise<void> {
    await this.pool.query('update replay_items set status = $3, error = $4 where replay_id = $1 and dead_letter_id = $2', [replayId, deadLetterId, status, error]);
  }

  /** 'done', or why not: the dead letter's current status, or 'not found'. */
  async discard(id: string, reason: string): Promise<{ done: true } | { done: false; status: Status | 'not found' }> {
    const res = await this.pool.query<{ status: Status }>(
      "update dead_letters set status = 'discarded', discard_reason = $2 where id = $1 and status = 'pending' returning status",
      [id, reason],
    );
    if ((res.rowCount ?? 0) > 0) return { done: true };
    const current = await this.pool.query<{ status: Status }>('select status from dead_letters where id = $1', [id]);
    return { done: false, status: current.rows[0]?.status ?? 'not found' };
  }

  /** Counts of dead letters by source topic, stage, code and status, and by hour of failure over the last `hours`. */
  async overview(hours: number): Promise<Overview> {
    const groups = await this.pool.query<{ topic: string; stage: string; code: string; status: Status; count: string }>(
      `select source_topic as topic, stage, error_code as code, status, count(*)::bigint as count
       from dead_letters group by 1, 2, 3, 4 order by 1, 2, 3, 4`,
    );
    const hourly = await this.pool.query<{ hour: Date; count: string }>(
      `select date_trunc('hour', failed_at) as hour, count(*)::bigint as count from dead_letters
       where failed_at >= date_trunc('hour', now()) - make_interval(hours => $1::int - 1) group by 1 order by 1`,
      [hours],
    );
    return {
      groups: groups.rows.map((r) => ({ topic: r.topic, stage: r.stage, code: r.code, status: r.status, count: Number(r.count) })),
      hourly: hourly.rows.map((r) => ({ hour: r.hour.toISOString(), count: Number(r.count) })),
    };
  }

  /** What happened to one dead letter: the replays it was in, and the audit entries that name it. */
  async history(id: string): Promise<{ replays: { replayId: string; itemStatus: string; replayStatus: string; requestedBy: string; createdAt: string; targetTopic: string }[]; audit: AuditEntry[] }> {
    const replays = await this.pool.query<{ replay_id: string; item_status: string; replay_status: string; requested_by: string; created_at: Date; target_topic: string }>(
      `select i.replay_id, i.status as item_status, r.status as replay_status, r.requested_by, r.created_at, i.target_topic
       from replay_items i join replays r on r.id = i.replay_id where i.dead_letter_id = $1 order by r.created_at`,
      [id],
    );
    const audit = await this.pool.query<{ id: string; at: Date; actor: string; action: string; target: string | null; count: number | null; details: unknown }>(
      'select id, at, actor, action, target, count, details from audit_log where target = $1 order by id',
      [id],
    );
    return {
      replays: replays.rows.map((r) => ({ replayId: r.replay_id, itemStatus: r.item_status, replayStatus: r.replay_status, requestedBy: r.requested_by, createdAt: r.created_at.toISOString(), targetTopic: r.target_topic })),
      audit: audit.rows.map((r) => ({ id: r.id, at: r.at.toISOString(), actor: r.actor, action: r.action, target: r.target, count: r.count, details: r.details })),
    };
  }

  /** The audit log, newest first, `limit` entries before the entry `beforeId`. */
  async auditLog(limit: number, beforeId: string | undefined): Promise<AuditEntry[]> {
    const res = await this.pool.query<{ id: string; at: Date; actor: string; action: string; target: string | null; count: number | null; details: unknown }>(
      `select id, at, actor, action, target, count, details from audit_log ${beforeId === undefined ? '' : 'where id < $2'} order by id desc limit $1`,
      beforeId === undefined ? [limit] : [limit, beforeId],
    );
    return res.rows.map((r) => ({ id: r.id, at: r.at.toISOString(), actor: r.actor, action: r.action, target: r.target, count: r.count, details: r.details }));
  }

  async audit(entry: { actor: string; action: string; target?: string; count?: number; details?: unknown }): Promise<void> {
    await this.pool.query('insert into audit_log (actor, action, target, count, details) values ($1, $2, $3, $4, $5)', [
      entry.actor,
      entry.action,
      entry.target ?? null,
      entry.count ?? null,
      entry.details === undefined ? null : JSON.stringify(entry.details),
    ]);
  }
}

export interface Overview {
  groups: { topic: string; stage: string; code: string; status: Status; count: number }[];
  hourly: { hour: string; count: number }[];
}

export interface AuditEntry {
  id: string;
  at: string;
  actor: string;
  action: string;
  target: string | null;
  count: number | null;
  details: unknown;
}

export class ReplayConflict extends Error {
  constructor(readonly ids: string[]) {
    super(`dead letters ${ids.join(', ')} are already in a running replay`);
    this.name = 'ReplayConflict';
  }
}
