import { textProblem } from '@sluice/runtime';
/** Query parameters of the view API, validated: pure functions, no I/O. */

export type Dimension = 'entity' | 'category';

export interface ParameterProblem {
  parameter: string;
  message: string;
}

export interface Cursor {
  windowStart: number;
  key: string;
}

export interface AggregatesQuery {
  dimension: Dimension;
  key?: string;
  from?: number;
  to?: number;
  limit: number;
  after?: Cursor;
}

export interface TopQuery {
  dimension: Dimension;
  from: number;
  to: number;
  metric: 'count' | 'sum';
  limit: number;
}

export interface StreamQuery {
  dimension?: Dimension;
  key?: string;
}

type Raw = Record<string, unknown>;

const DIMENSIONS = ['entity', 'category'];
const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$/;

export function encodeCursor(cursor: Cursor): string {
  return Buffer.from(JSON.stringify([cursor.windowStart, cursor.key])).toString('base64url');
}

export function decodeCursor(text: string): Cursor | undefined {
  try {
    const parsed = JSON.parse(Buffer.from(text, 'base64url').toString()) as unknown;
    if (Array.isArray(parsed) && parsed.length === 2 && Number.isSafeInteger(parsed[0]) && typeof parsed[1] === 'string') {
      return { windowStart: parsed[0] as number, key: parsed[1] };
    }
  } catch {
    // Not a cursor this API made.
  }
  return undefined;
}

class Reader {
  readonly problems: ParameterProblem[] = [];
  constructor(private readonly raw: Raw) {}

  private single(name: string): string | undefined {
    const value = this.raw[name];
    if (value === undefined) return undefined;
    if (typeof value !== 'string') {
      this.problems.push({ parameter: name, message: 'must be given once, as a plain value' });
      return undefined;
    }
    const problem = textProblem(value, 'identifier');
    if (problem) {
      this.problems.push({ parameter: name, message: problem });
      return undefined;
    }
    return value;
  }

  dimension(required: boolean): Dimension | undefined {
    const value = this.single('dimension');
    if (value === undefined) {
      if (required) this.problems.push({ parameter: 'dimension', message: 'is required: entity or category' });
      return undefined;
    }
    if (!DIMENSIONS.includes(value)) {
      this.problems.push({ parameter: 'dimension', message: 'must be entity or category' });
      return undefined;
    }
    return value as Dimension;
  }

  key(): string | undefined {
    const value = this.single('key');
    if (value !== undefined && (value.length === 0 || value.length > 256)) {
      this.problems.push({ parameter: 'key', message: 'must be 1 to 256 characters' });
      return undefined;
    }
    return value;
  }

  time(name: string): number | undefined {
    const value = this.single(name);
    if (value === undefined) return undefined;
    const ms = RFC3339.test(value) ? Date.parse(value.toUpperCase()) : Number.NaN;
    if (!Number.isFinite(ms)) {
      this.problems.push({ parameter: name, message: 'must be an RFC 3339 date-time, e.g. 2026-01-31T12:00:00Z' });
      return undefined;
    }
    return ms;
  }

  limit(fallback: number, max: number): number {
    const value = this.single('limit');
    if (value === undefined) return Math.min(fallback, max);
    const n = Number(value);
    if (!/^\d+$/.test(value) || n < 1 || n > max) {
      this.problems.push({ parameter: 'limit', message: `must be a whole number from 1 to ${max}` });
      return fallback;
    }
    return n;
  }

  range(from: number | undefined, to: number | undefined): void {
    if (from !== undefined && to !== undefined && from >= to) this.problems.push({ parameter: 'from', message: 'must be before to' });
  }

  cursor(): Cursor | undefined {
    const value = this.single('cursor');
    if (value === undefined) return undefined;
    const cursor = decodeCursor(value);
    if (!cursor) this.problems.push({ parameter: 'cursor', message: 'is not a cursor returned by this API' });
    return cursor;
  }

  metric(): 'count' | 'sum' {
    const value = this.single('metric');
    if (value === undefined) return 'count';
    if (value !== 'count' && value !== 'sum') {
      this.problems.push({ parameter: 'metric', message: 'must be count or sum' });
      return 'count';
    }
    return value;
  }

  unknown(allowed: string[]): void {
    for (const name of Object.keys(this.raw)) if (!allowed.includes(name)) this.problems.push({ parameter: name, message: 'is not a parameter of this route' });
  }
}

type Parsed<T> = { query: T } | { problems: ParameterProblem[] };

export function parseAggregatesQuery(raw: Raw, maxLimit: number): Parsed<AggregatesQuery> {
  const r = new Reader(raw);
  r.unknown(['dimension', 'key', 'from', 'to', 'limit', 'cursor']);
  const dimension = r.dimension(true);
  const key = r.key();
  const from = r.time('from');
  const to = r.time('to');
  r.range(from, to);
  const limit = r.limit(100, maxLimit);
  const after = r.cursor();
  if (r.problems.length > 0 || !dimension) return { problems: r.problems };
  return {
    query: { dimension, limit, ...(key !== undefined ? { key } : {}), ...(from !== undefined ? { from } : {}), ...(to !== undefined ? { to } : {}), ...(after ? { after } : {}) },
  };
}

/** Without a range, the top of the last 24 hours up to `now`. */
export function parseTopQuery(raw: Raw, maxLimit: number, now: number): Parsed<TopQuery> {
  const r = new Reader(raw);
  r.unknown(['dimension', 'from', 'to', 'metric', 'limit']);
  const dimension = r.dimension(true);
  const to = r.time('to') ?? now;
  const from = r.time('from') ?? to - 24 * 3_600_000;
  r.range(from, to);
  const metric = r.metric();
  const limit = r.limit(10, maxLimit);
  if (r.problems.length > 0 || !dimension) return { problems: r.problems };
  return { query: { dimension, from, to, metric, limit } };
}

export function parseStreamQuery(raw: Raw): Parsed<StreamQuery> {
  const r = new Reader(raw);
  r.unknown(['dimension', 'key', 'lastEventId']);
  const dimension = r.dimension(false);
  const key = r.key();
  if (key !== undefined && dimension === undefined && r.problems.length === 0) r.problems.push({ parameter: 'key', message: 'needs a dimension' });
  if (r.problems.length > 0) return { problems: r.problems };
  return { query: { ...(dimension ? { dimension } : {}), ...(key !== undefined ? { key } : {}) } };
}
