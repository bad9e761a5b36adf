import { longerThan, parseRfc3339, RFC3339_PATTERN, textProblem, TEXT_PATTERNS } from '@sluice/runtime';
/** Query parameters of the view API: one table that the parsers and the OpenAPI document both follow. Pure, no I/O. */

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

/** A stream request: its filter, and the change it resumes after (the `lastEventId` parameter). */
export interface StreamRequest {
  filter: StreamQuery;
  since?: bigint;
}

type Raw = Record<string, unknown>;

const DIMENSIONS = ['entity', 'category'];
/** Keys are ids from the gateway: identifiers, counted in code points. */
export const KEY_MAX_LENGTH = 256;
/** A change sequence number: 18 digits always fit Postgres' bigint. */
export const EVENT_ID_PATTERN = '^[0-9]{1,18}$';
export const EVENT_ID = new RegExp(EVENT_ID_PATTERN);
const DEFAULT_LIMITS = { aggregates: 100, top: 10 };

/** An OpenAPI 3.1 query parameter. */
export interface QueryParameter {
  name: string;
  in: 'query';
  required: boolean;
  description?: string;
  schema: Record<string, unknown>;
}

/**
 * The query parameters of each route, as the OpenAPI document lists them; the parsers below check each rule
 * stated here, refuse any parameter not listed, and take their defaults from here. Rules across parameters
 * (a range's from before its to, a stream's key with a dimension) are in the descriptions.
 */
export function queryParameters(maxLimit: number) {
  const parameter = (name: string, schema: Record<string, unknown>, required = false, description?: string): QueryParameter => ({ name, in: 'query', required, ...(description ? { description } : {}), schema });
  const dimension = (required: boolean) => parameter('dimension', { type: 'string', enum: DIMENSIONS }, required);
  const key = (description?: string) => parameter('key', { type: 'string', minLength: 1, maxLength: KEY_MAX_LENGTH, pattern: TEXT_PATTERNS.identifier }, false, description);
  const time = (name: string, description: string) => parameter(name, { type: 'string', format: 'date-time', pattern: RFC3339_PATTERN }, false, `${description} (RFC 3339)`);
  const limit = (fallback: number) => parameter('limit', { type: 'integer', minimum: 1, maximum: maxLimit, default: Math.min(fallback, maxLimit) });
  return {
    aggregates: [
      dimension(true),
      key(),
      time('from', 'Windows starting at or after this time; before to'),
      time('to', 'Windows starting before this time'),
      limit(DEFAULT_LIMITS.aggregates),
      parameter('cursor', { type: 'string', pattern: '^[A-Za-z0-9_-]+$' }, false, 'nextCursor of the previous page (any other value is refused)'),
    ],
    top: [
      dimension(true),
      time('from', 'Default: 24 hours before to; before to'),
      time('to', 'Default: now'),
      parameter('metric', { type: 'string', enum: ['count', 'sum'], default: 'count' }),
      limit(DEFAULT_LIMITS.top),
    ],
    stream: [
      dimension(false),
      key('Needs a dimension'),
      parameter('lastEventId', { type: 'string', pattern: EVENT_ID_PATTERN }, false, 'As the Last-Event-ID header, for clients that cannot set it; the header wins'),
    ],
  } satisfies Record<string, QueryParameter[]>;
}

const ROUTE_PARAMETERS = queryParameters(1);
const namesOf = (route: keyof typeof ROUTE_PARAMETERS) => ROUTE_PARAMETERS[route].map((p) => p.name);

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
    if (value !== undefined && (value.length === 0 || longerThan(value, KEY_MAX_LENGTH))) {
      this.problems.push({ parameter: 'key', message: `must be 1 to ${KEY_MAX_LENGTH} characters` });
      return undefined;
    }
    return value;
  }

  time(name: string): number | undefined {
    const value = this.single(name);
    if (value === undefined) return undefined;
    const ms = parseRfc3339(value);
    if (ms === undefined) {
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

  eventId(name: string): bigint | undefined {
    const value = this.single(name);
    if (value === undefined) return undefined;
    if (!EVENT_ID.test(value)) {
      this.problems.push({ parameter: name, message: 'must be an event id from this stream' });
      return undefined;
    }
    return BigInt(value);
  }

  unknown(allowed: string[]): void {
    for (const name of Object.keys(this.raw)) if (!allowed.includes(name)) this.problems.push({ parameter: name, message: 'is not a parameter of this route' });
  }
}

type Parsed<T> = { query: T } | { problems: ParameterProblem[] };

export function parseAggregatesQuery(raw: Raw, maxLimit: number): Parsed<AggregatesQuery> {
  const r = new Reader(raw);
  r.unknown(namesOf('aggregates'));
  const dimension = r.dimension(true);
  const key = r.key();
  const from = r.time('from');
  const to = r.time('to');
  r.range(from, to);
  const limit = r.limit(DEFAULT_LIMITS.aggregates, maxLimit);
  const after = r.cursor();
  if (r.problems.length > 0 || !dimension) return { problems: r.problems };
  return {
    query: { dimension, limit, ...(key !== undefined ? { key } : {}), ...(from !== undefined ? { from } : {}), ...(to !== undefined ? { to } : {}), ...(after ? { after } : {}) },
  };
}

/** Without a range, the top of the last 24 hours up to `now`. */
export function parseTopQuery(raw: Raw, maxLimit: number, now: number): Parsed<TopQuery> {
  const r = new Reader(raw);
  r.unknown(namesOf('top'));
  const dimension = r.dimension(true);
  const to = r.time('to') ?? now;
  const from = r.time('from') ?? to - 24 * 3_600_000;
  r.range(from, to);
  const metric = r.metric();
  const limit = r.limit(DEFAULT_LIMITS.top, maxLimit);
  if (r.problems.length > 0 || !dimension) return { problems: r.problems };
  return { query: { dimension, from, to, metric, limit } };
}

export function parseStreamQuery(raw: Raw): Parsed<StreamRequest> {
  const r = new Reader(raw);
  r.unknown(namesOf('stream'));
  const dimension = r.dimension(false);
  const key = r.key();
  const since = r.eventId('lastEventId');
  if (key !== undefined && dimension === undefined && r.problems.length === 0) r.problems.push({ parameter: 'key', message: 'needs a dimension' });
  if (r.problems.length > 0) return { problems: r.problems };
  return { query: { filter: { ...(dimension ? { dimension } : {}), ...(key !== undefined ? { key } : {}) }, ...(since !== undefined ? { since } : {}) } };
}
