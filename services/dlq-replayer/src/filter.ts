import { textProblem } from '@sluice/runtime';
/** Filters of dead letters, from query strings or replay requests: validated, pure. */

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

export interface FilterProblem {
  field: string;
  message: string;
}

const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$/;
const FIELDS = ['topic', 'stage', 'code', 'key', 'from', 'to', 'status', 'header'];

export function parseFilter(raw: unknown, extra: string[] = []): { filter: DeadLetterFilter } | { problems: FilterProblem[] } {
  const problems: FilterProblem[] = [];
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return { problems: [{ field: 'filter', message: 'must be an object' }] };
  const input = raw as Record<string, unknown>;
  const filter: DeadLetterFilter = {};
  for (const [name, value] of Object.entries(input)) {
    if (extra.includes(name)) continue;
    if (!FIELDS.includes(name)) {
      problems.push({ field: name, message: 'is not a filter field' });
      continue;
    }
    if (typeof value !== 'string' || value.length === 0 || value.length > 512) {
      problems.push({ field: name, message: 'must be a non-empty string' });
      continue;
    }
    if (name === 'from' || name === 'to') {
      const ms = RFC3339.test(value) ? Date.parse(value.toUpperCase()) : Number.NaN;
      if (!Number.isFinite(ms)) problems.push({ field: name, message: 'must be an RFC 3339 date-time' });
      else filter[name] = ms;
    } else if (name === 'status') {
      if (!(STATUSES as readonly string[]).includes(value)) problems.push({ field: name, message: `must be one of ${STATUSES.join(', ')}` });
      else filter.status = value as Status;
    } else if (name === 'header') {
      const at = value.indexOf('=');
      const problem = textProblem(value, 'text');
      if (at < 1) problems.push({ field: name, message: 'must be name=value' });
      else if (problem) problems.push({ field: name, message: problem });
      else filter.header = { name: value.slice(0, at), value: value.slice(at + 1) };
    } else if (name === 'key') {
      // A key is bytes: any text names it, but a lone surrogate names no bytes.
      const problem = textProblem(value.replaceAll('\u0000', ''), 'text');
      if (problem) problems.push({ field: name, message: problem });
      else filter.key = value;
    } else {
      const problem = textProblem(value, 'identifier');
      if (problem) problems.push({ field: name, message: problem });
      else filter[name as 'topic' | 'stage' | 'code'] = value;
    }
  }
  if (filter.from !== undefined && filter.to !== undefined && filter.from >= filter.to) problems.push({ field: 'from', message: 'must be before to' });
  return problems.length > 0 ? { problems } : { filter };
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
