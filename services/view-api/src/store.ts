import { types as pgTypes, type CustomTypesConfig, type Pool, type PoolClient } from 'pg';
import type { WindowAggregate } from '@sluice/contracts';
import type { AggregatesQuery, Cursor, StreamQuery, TopQuery } from './query';
import { ROLLUP_GRAINS_SECONDS, splitRange } from './rollups';

export const CHANGES_CHANNEL = 'view_window_changes';
/** Advisory lock (transaction-scoped) under which projection writers take change sequence numbers and commit. */
const CHANGE_ORDER_LOCK = 0x5e0c;

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

/** A window row as read with `WINDOW_TYPES`: timestamps already in the API's ISO form. */
interface DbRow {
  dimension: 'entity' | 'category';
  key: string;
  window_start: string;
  window_end: string;
  count: string;
  sum: number;
  min: number;
  max: number;
  last_event_at: string;
  is_final: boolean;
  revision: string;
  change_seq: string;
}

const COLUMNS = 'dimension, key, window_start, window_end, count, sum, min, max, last_event_at, is_final, revision, change_seq';

const TIMESTAMPTZ = 1184;
const viaDate = pgTypes.getTypeParser(TIMESTAMPTZ, 'text') as (text: string) => Date;

/**
 * A `timestamptz` as Postgres prints it, in `Date.prototype.toISOString`'s form. In a UTC session with up to
 * millisecond precision (`2026-01-31 12:00:00.5+00`, every window) it is rewritten as text: parsing three Dates
 * per row and printing them again was a fifth of the view's CPU per query. Anything else (another time zone,
 * microseconds, years outside 1–9999, BC) goes through a Date as before.
 */
export function isoTimestamp(text: string): string {
  const n = text.length;
  if (n >= 22 && n <= 26 && n !== 23 && text.charCodeAt(4) === 45 && text.charCodeAt(10) === 32 && text.endsWith('+00') && (n === 22 || text.charCodeAt(19) === 46)) {
    return `${text.slice(0, 10)}T${text.slice(11, 19)}${n === 22 ? '.000' : text.slice(19, n - 3).padEnd(4, '0')}Z`;
  }
  return viaDate(text).toISOString();
}

/** Type parsers of the queries that read window rows. */
const WINDOW_TYPES: CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') => (oid === TIMESTAMPTZ && format !== 'binary' ? isoTimestamp : pgTypes.getTypeParser(oid, format))) as CustomTypesConfig['getTypeParser'],
};

export function toWindowRow(r: DbRow): WindowRow {
  return {
    dimension: r.dimension,
    key: r.key,
    windowStart: r.window_start,
    windowEnd: r.window_end,
    count: Number(r.count),
    sum: r.sum,
    min: r.min,
    max: r.max,
    lastEventAt: r.last_event_at,
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
    // Writers of windows in the same bucket of the finest grain take turns: the rollup rows of those buckets are
    // created if new and locked, in one order, before anything is read. So the windows the next statement reads as
    // "before" are exactly the versions its upsert replaces, even when two transactions (a replica that has not yet
    // seen it lost a partition, or a partition count that grew) write the same window, new or not.
    const finest = Math.min(...ROLLUP_GRAINS_SECONDS);
    const lockKeys = [rows.map((p) => p.record.dimension), rows.map((p) => p.record.key), rows.map((p) => p.record.windowStart), finest];
    // A bucket is computed as the rollup statement below computes it, so that the locked rows are the ones it adds to.
    await client.query(
      `insert into window_rollups (dimension, grain_seconds, bucket_start, key, count, sum, windows)
       select distinct d, $4::integer, to_timestamp(floor(extract(epoch from to_timestamp(ws / 1000.0)) / $4) * $4), k, 0::bigint, 0::float8, 0::bigint
       from unnest($1::text[], $2::text[], $3::bigint[]) as t(d, k, ws)
       order by 1, 3, 4
       on conflict do nothing`,
      lockKeys,
    );
    await client.query(
      `select 1 from window_rollups r
       join (select distinct d, k, to_timestamp(floor(extract(epoch from to_timestamp(ws / 1000.0)) / $4) * $4) as b
             from unnest($1::text[], $2::text[], $3::bigint[]) as t(d, k, ws)) as t
         on r.dimension = t.d and r.grain_seconds = $4 and r.bucket_start = t.b and r.key = t.k
       order by r.dimension, r.bucket_start, r.key
       for update of r`,
      lockKeys,
    );
    // Change sequence numbers are taken in commit order: writers (other partitions, other replicas) take turns from
    // here to their commit. Otherwise a writer that took 10 and committed after one that took 11 would be skipped by
    // every live stream (they send only higher numbers) and by a catch-up from Last-Event-ID 11.
    await client.query('select pg_advisory_xact_lock($1)', [CHANGE_ORDER_LOCK]);
    // Then one statement: the rows as they were, the upsert, and the change of each upserted window added to the
    // rollup buckets that hold it, so that the rollups move in the same transaction as the windows.
    const res = await client.query<DbRow>({
      types: WINDOW_TYPES,
      text: `with input as (
         select d, k, to_timestamp(ws / 1000.0) as ws, to_timestamp(we / 1000.0) as we, c, s, mn, mx, to_timestamp(le / 1000.0) as le, f, r, o
         from unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[], $6::float8[], $7::float8[], $8::float8[], $9::bigint[], $10::boolean[], $11::bigint[], $12::bigint[])
           as t(d, k, ws, we, c, s, mn, mx, le, f, r, o)
       ),
       before as (
         select w.dimension, w.key, w.window_start, w.count, w.sum
         from window_aggregates w join input i on w.dimension = i.d and w.key = i.k and w.window_start = i.ws
       ),
       changed as (
         insert into window_aggregates as w (dimension, key, window_start, window_end, count, sum, min, max, last_event_at, is_final, revision, source_partition, source_offset, change_seq)
         select d, k, ws, we, c, s, mn, mx, le, f, r, $13, o, nextval('window_aggregates_change_seq') from input
         on conflict (dimension, key, window_start) do update set
           window_end = excluded.window_end, count = excluded.count, sum = excluded.sum, min = excluded.min, max = excluded.max,
           last_event_at = excluded.last_event_at, is_final = excluded.is_final, revision = excluded.revision,
           source_partition = excluded.source_partition, source_offset = excluded.source_offset, change_seq = excluded.change_seq, updated_at = now()
         where w.revision < excluded.revision
         returning ${COLUMNS}
       ),
       delta as (
         select c.dimension, c.key, c.window_start, c.count - coalesce(b.count, 0) as dc, c.sum - coalesce(b.sum, 0) as ds, case when b.key is null then 1 else 0 end as dw
         from changed c left join before b on b.dimension = c.dimension and b.key = c.key and b.window_start = c.window_start
       ),
       rolled as (
         insert into window_rollups as r (dimension, grain_seconds, bucket_start, key, count, sum, windows)
         select dimension, g, to_timestamp(floor(extract(epoch from window_start) / g) * g), key, sum(dc), sum(ds), sum(dw)
         from delta cross join unnest($14::integer[]) as g
         group by 1, 2, 3, 4
         order by 1, 2, 3, 4
         on conflict (dimension, grain_seconds, bucket_start, key) do update set
           count = r.count + excluded.count, sum = r.sum + excluded.sum, windows = r.windows + excluded.windows
       )
       select * from changed`,
      values: [
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
        ROLLUP_GRAINS_SECONDS,
      ],
    });
    const changes = res.rows.map((r) => ({ seq: r.change_seq, window: toWindowRow(r) })).sort((a, b) => (BigInt(a.seq) < BigInt(b.seq) ? -1 : 1));
    if (changes.length > 0) {
      await client.query('select pg_notify($1, payload) from unnest($2::text[]) as payload', [CHANGES_CHANNEL, changes.map((c) => JSON.stringify(c))]);
    }
    return changes;
  }

  async aggregates(q: AggregatesQuery): Promise<{ windows: WindowRow[]; next?: Cursor }> {
    const { sql, params } = aggregatesSql(q);
    const res = await this.pool.query<DbRow>({ text: sql, values: params, types: WINDOW_TYPES });
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
    const res = await this.pool.query<DbRow>({ text: sql, values: params, types: WINDOW_TYPES });
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

/**
 * Top-N over [from, to): whole days and hours from the rollups, the rest of the
 * range from the windows (see splitRange), summed per key.
 */
export function topSql(q: TopQuery): { sql: string; params: unknown[] } {
  const params: unknown[] = [q.dimension];
  const param = (value: unknown) => {
    params.push(value);
    return `$${params.length}`;
  };
  const metric = q.metric === 'sum' ? 'sum' : 'count';
  const parts = splitRange(q.from, q.to).map((segment) => {
    const range = `>= to_timestamp(${param(segment.from)}::bigint / 1000.0) and %s < to_timestamp(${param(segment.to)}::bigint / 1000.0)`;
    return segment.grainSeconds === undefined
      ? `select key, ${metric} as v, 1 as n from window_aggregates where dimension = $1 and window_start ${range.replace('%s', 'window_start')}`
      : `select key, ${metric} as v, windows as n from window_rollups where dimension = $1 and grain_seconds = ${param(segment.grainSeconds)} and bucket_start ${range.replace('%s', 'bucket_start')}`;
  });
  return {
    sql: `select key, sum(v)::float8 as value, sum(n) as windows from (${parts.join(' union all ')}) as t
          group by key order by value desc, key limit ${param(q.limit)}`,
    params,
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
