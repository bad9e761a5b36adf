import type { Pool, PoolClient } from 'pg';
import type { WindowAggregate } from '@sluice/contracts';
import type { AggregatesQuery, Cursor, StreamQuery, TopQuery } from './query';

export const CHANGES_CHANNEL = 'view_window_changes';

/** A window as the API returns it. */
export interface WindowRow {
  dimension: 'entity' | 'category';
  key: string;
  windowStart: string;
  windowEnd: string;
  count: number;
  sum: number;
  min: number;
  max: number;
  lastEventAt: string;
  isFinal: boolean;
  revision: number;
}

export interface Change {
  seq: string;
  window: WindowRow;
}

interface DbRow {
  dimension: 'entity' | 'category';
  key: string;
  window_start: Date;
  window_end: Date;
  count: string;
  sum: number;
  min: number;
  max: number;
  last_event_at: Date;
  is_final: boolean;
  revision: string;
  change_seq: string;
}

const COLUMNS = 'dimension, key, window_start, window_end, count, sum, min, max, last_event_at, is_final, revision, change_seq';

export function toWindowRow(r: DbRow): WindowRow {
  return {
    dimension: r.dimension,
    key: r.key,
    windowStart: r.window_start.toISOString(),
    windowEnd: r.window_end.toISOString(),
    count: Number(r.count),
    sum: r.sum,
    min: r.min,
    max: r.max,
    lastEventAt: r.last_event_at.toISOString(),
    isFinal: r.is_final,
    revision: Number(r.revision),
  };
}

export interface Positioned {
  record: WindowAggregate;
  partition: number;
  offset: string;
}

/** Every statement of the view, parametrised; each query has an index behind it. */
export class ViewStore {
  constructor(private readonly pool: Pool) {}

  async ping(): Promise<void> {
    await this.pool.query('select 1');
  }

  /**
   * Inside the sink's transaction: the rows (a row changes only for a higher
   * revision) and a notification per changed row, delivered to every replica's
   * live streams when the transaction commits.
   */
  async apply(client: PoolClient, partition: number, records: Positioned[]): Promise<Change[]> {
    // One row per window: the highest revision in the batch (ON CONFLICT cannot touch a row twice).
    const latest = new Map<string, Positioned>();
    for (const p of records) {
      const id = `${p.record.dimension}|${p.record.key}|${p.record.windowStart}`;
      const current = latest.get(id);
      if (!current || p.record.revision > current.record.revision) latest.set(id, p);
    }
    const rows = [...latest.values()];
    if (rows.length === 0) return [];
    const res = await client.query<DbRow>(
      `insert into window_aggregates as w (dimension, key, window_start, window_end, count, sum, min, max, last_event_at, is_final, revision, source_partition, source_offset, change_seq)
       select d, k, to_timestamp(ws / 1000.0), to_timestamp(we / 1000.0), c, s, mn, mx, to_timestamp(le / 1000.0), f, r, $13, o, nextval('window_aggregates_change_seq')
       from unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[], $6::float8[], $7::float8[], $8::float8[], $9::bigint[], $10::boolean[], $11::bigint[], $12::bigint[])
         as t(d, k, ws, we, c, s, mn, mx, le, f, r, o)
       on conflict (dimension, key, window_start) do update set
         window_end = excluded.window_end, count = excluded.count, sum = excluded.sum, min = excluded.min, max = excluded.max,
         last_event_at = excluded.last_event_at, is_final = excluded.is_final, revision = excluded.revision,
         source_partition = excluded.source_partition, source_offset = excluded.source_offset, change_seq = excluded.change_seq, updated_at = now()
       where w.revision < excluded.revision
       returning ${COLUMNS}`,
      [
        rows.map((p) => p.record.dimension),
        rows.map((p) => p.record.key),
        rows.map((p) => p.record.windowStart),
        rows.map((p) => p.record.windowEnd),
        rows.map((p) => p.record.count),
        rows.map((p) => p.record.sum),
        rows.map((p) => p.record.min),
        rows.map((p) => p.record.max),
        rows.map((p) => p.record.lastEventAt),
        rows.map((p) => p.record.isFinal),
        rows.map((p) => p.record.revision),
        rows.map((p) => p.offset),
        partition,
      ],
    );
    const changes = res.rows.map((r) => ({ seq: r.change_seq, window: toWindowRow(r) })).sort((a, b) => (BigInt(a.seq) < BigInt(b.seq) ? -1 : 1));
    if (changes.length > 0) {
      await client.query('select pg_notify($1, payload) from unnest($2::text[]) as payload', [CHANGES_CHANNEL, changes.map((c) => JSON.stringify(c))]);
    }
    return changes;
  }

  async aggregates(q: AggregatesQuery): Promise<{ windows: WindowRow[]; next?: Cursor }> {
    const { sql, params } = aggregatesSql(q);
    const res = await this.pool.query<DbRow>(sql, params);
    const windows = res.rows.slice(0, q.limit).map(toWindowRow);
    const last = windows[windows.length - 1];
    return res.rows.length > q.limit && last ? { windows, next: { windowStart: Date.parse(last.windowStart), key: last.key } } : { windows };
  }

  async top(q: TopQuery): Promise<{ key: string; value: number; windows: number }[]> {
    const { sql, params } = topSql(q);
    const res = await this.pool.query<{ key: string; value: number; windows: string }>(sql, params);
    return res.rows.map((r) => ({ key: r.key, value: Number(r.value), windows: Number(r.windows) }));
  }

  /** Changes after `seq` that match a stream's filter, in order: what a reconnecting client missed. */
  async changesSince(seq: bigint, filter: StreamQuery, limit: number): Promise<Change[]> {
    const { sql, params } = changesSql(seq, filter, limit);
    const res = await this.pool.query<DbRow>(sql, params);
    return res.rows.map((r) => ({ seq: r.change_seq, window: toWindowRow(r) }));
  }
}

/** The SQL of each query, built from validated parameters only; the EXPLAIN test plans exactly these. */
export function aggregatesSql(q: AggregatesQuery): { sql: string; params: unknown[] } {
  const params: unknown[] = [q.dimension];
  const where = ['dimension = $1'];
  const param = (value: unknown) => {
    params.push(value);
    return `$${params.length}`;
  };
  if (q.key !== undefined) where.push(`key = ${param(q.key)}`);
  if (q.from !== undefined) where.push(`window_start >= to_timestamp(${param(q.from)}::bigint / 1000.0)`);
  if (q.to !== undefined) where.push(`window_start < to_timestamp(${param(q.to)}::bigint / 1000.0)`);
  if (q.after) where.push(`(dimension, window_start, key) > ($1, to_timestamp(${param(q.after.windowStart)}::bigint / 1000.0), ${param(q.after.key)})`);
  const order = q.key !== undefined ? 'order by window_start' : 'order by window_start, key';
  return { sql: `select ${COLUMNS} from window_aggregates where ${where.join(' and ')} ${order} limit ${param(q.limit + 1)}`, params };
}

export function topSql(q: TopQuery): { sql: string; params: unknown[] } {
  return {
    sql: `select key, sum(${q.metric === 'sum' ? 'sum' : 'count'})::float8 as value, count(*) as windows
          from window_aggregates
          where dimension = $1 and window_start >= to_timestamp($2::bigint / 1000.0) and window_start < to_timestamp($3::bigint / 1000.0)
          group by key order by value desc, key limit $4`,
    params: [q.dimension, q.from, q.to, q.limit],
  };
}

export function changesSql(seq: bigint, filter: StreamQuery, limit: number): { sql: string; params: unknown[] } {
  const params: unknown[] = [seq.toString()];
  const where = ['change_seq > $1'];
  if (filter.dimension) {
    params.push(filter.dimension);
    where.push(`dimension = $${params.length}`);
  }
  if (filter.key !== undefined) {
    params.push(filter.key);
    where.push(`key = $${params.length}`);
  }
  params.push(limit);
  return { sql: `select ${COLUMNS} from window_aggregates where ${where.join(' and ')} order by change_seq limit $${params.length}`, params };
}
