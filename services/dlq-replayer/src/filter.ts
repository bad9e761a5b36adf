/** Filters of dead letters (validated by `requests.ts`) as SQL, and replay verdicts: pure. */

export const STATUSES = ['pending', 'replayed', 'discarded'] as const;
export type Status = (typeof STATUSES)[number];

export interface DeadLetterFilter {
  topic?: string;
  stage?: string;
  code?: string;
  key?: string;
  from?: number;
  to?: number;
  status?: Status;
  /** A header's value: `name=value` in a query, exact. */
  header?: { name: string; value: string };
}

/** SQL conditions of a filter, parametrised from `$first` on. */
export function filterSql(filter: DeadLetterFilter, first: number): { where: string[]; params: unknown[] } {
  const where: string[] = [];
  const params: unknown[] = [];
  const add = (sql: (p: string) => string, value: unknown) => {
    params.push(value);
    where.push(sql(`$${first + params.length - 1}`));
  };
  if (filter.topic !== undefined) add((p) => `source_topic = ${p}`, filter.topic);
  if (filter.stage !== undefined) add((p) => `stage = ${p}`, filter.stage);
  if (filter.code !== undefined) add((p) => `error_code = ${p}`, filter.code);
  // As bytes: a key may hold what text cannot (a NUL), and is found by exactly those bytes.
  if (filter.key !== undefined) add((p) => `key = ${p}::bytea`, Buffer.from(filter.key, 'utf8'));
  if (filter.from !== undefined) add((p) => `failed_at >= to_timestamp(${p}::bigint / 1000.0)`, filter.from);
  if (filter.to !== undefined) add((p) => `failed_at < to_timestamp(${p}::bigint / 1000.0)`, filter.to);
  if (filter.status !== undefined) add((p) => `status = ${p}`, filter.status);
  if (filter.header !== undefined) {
    params.push(filter.header.name, filter.header.value);
    where.push(`headers ->> $${first + params.length - 2} = $${first + params.length - 1}`);
  }
  return { where, params };
}

export type Verdict = 'selected' | 'skipped' | 'refused';

/** Whether a dead letter goes into a replay: the loop guard, and no second replay without force. */
export function verdictFor(row: { status: Status; replayCount: number }, options: { force: boolean; maxReplays: number }): { verdict: Verdict; reason?: string } {
  if (row.status === 'discarded') return { verdict: 'refused', reason: 'discarded' };
  if (row.replayCount >= options.maxReplays) return { verdict: 'refused', reason: `replayed ${row.replayCount} times already (limit ${options.maxReplays})` };
  if (row.status === 'replayed' && !options.force) return { verdict: 'skipped', reason: 'already replayed (use force)' };
  return { verdict: 'selected' };
}
