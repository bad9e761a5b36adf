import type { ActivityEvent, CatalogItem } from '@sluice/contracts';
import { longerThan, textProblem } from '@sluice/runtime';

/** One thing wrong with a request body: where (JSON pointer from the body) and what. */
export interface Problem {
  index?: number;
  path: string;
  message: string;
}

export interface Limits {
  maxEvents: number;
  maxAttributes: number;
  maxAttributeLength: number;
  maxIdLength: number;
}

export const DEFAULT_LIMITS: Limits = { maxEvents: 1_000, maxAttributes: 50, maxAttributeLength: 1_024, maxIdLength: 256 };

// RFC 3339 date-time: date, 'T', time, optional fraction, zone Z or ±hh:mm.
const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$/;

/** Epoch milliseconds of an RFC 3339 timestamp, or undefined if it is not one. */
export function parseRfc3339(text: string): number | undefined {
  const m = RFC3339.exec(text);
  if (!m) return undefined;
  const [, , month, day, hour, minute, second] = m.map(Number) as number[];
  if (month! < 1 || month! > 12 || day! < 1 || day! > 31 || hour! > 23 || minute! > 59 || second! > 60) return undefined;
  const ms = Date.parse(text.toUpperCase());
  return Number.isFinite(ms) ? ms : undefined;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** A string field: ids, types and names are `identifier`s (no control characters); names for people are `text`. */
function text(value: unknown, path: string, problems: Problem[], index: number | undefined, max: number, required = true, kind: 'identifier' | 'text' = 'identifier'): string | undefined {
  const at = (message: string) => problems.push({ ...(index !== undefined ? { index } : {}), path, message });
  if (value === undefined) {
    if (required) at('is required');
    return undefined;
  }
  let problem: string | undefined;
  if (typeof value !== 'string') at('must be a string');
  else if (value.length === 0) at('must not be empty');
  else if (longerThan(value, max)) at(`must be at most ${max} characters`);
  else if ((problem = textProblem(value, kind)) !== undefined) at(problem);
  else return value;
  return undefined;
}

function attributes(value: unknown, path: string, problems: Problem[], index: number | undefined, limits: Limits): Record<string, string> {
  const at = (p: string, message: string) => problems.push({ ...(index !== undefined ? { index } : {}), path: p, message });
  if (value === undefined || value === null) return {};
  if (!isObject(value)) {
    at(path, 'must be an object of strings');
    return {};
  }
  const entries = Object.entries(value);
  if (entries.length > limits.maxAttributes) at(path, `must have at most ${limits.maxAttributes} entries`);
  const kept: [string, string][] = [];
  for (const [k, v] of entries) {
    // The path names the attribute as JSON would (a name may hold anything JSON can).
    const where = `${path}/${JSON.stringify(k).slice(1, -1)}`;
    let problem: string | undefined;
    if (typeof v !== 'string') at(where, 'must be a string');
    else if (longerThan(v, limits.maxAttributeLength)) at(where, `must be at most ${limits.maxAttributeLength} characters`);
    else if (longerThan(k, limits.maxAttributeLength)) at(where, `name must be at most ${limits.maxAttributeLength} characters`);
    else if ((problem = textProblem(k, 'identifier')) !== undefined) at(where, `name ${problem}`);
    else if ((problem = textProblem(v, 'text')) !== undefined) at(where, problem);
    else kept.push([k, v]);
  }
  // fromEntries defines each name as an own property: `out[k] = v` would drop a name such as `__proto__`.
  return Object.fromEntries(kept);
}

const EVENT_FIELDS = new Set(['eventId', 'type', 'entityId', 'userId', 'occurredAt', 'value', 'attributes']);

function event(raw: unknown, base: string, index: number | undefined, limits: Limits, problems: Problem[]): ActivityEvent | undefined {
  const before = problems.length;
  const at = (path: string, message: string) => problems.push({ ...(index !== undefined ? { index } : {}), path, message });
  if (!isObject(raw)) {
    at(base || '/', 'must be an object');
    return undefined;
  }
  for (const key of Object.keys(raw)) if (!EVENT_FIELDS.has(key)) at(`${base}/${JSON.stringify(key).slice(1, -1)}`, 'is not a field of an event');
  const eventId = text(raw.eventId, `${base}/eventId`, problems, index, limits.maxIdLength);
  const type = text(raw.type, `${base}/type`, problems, index, limits.maxIdLength);
  const entityId = text(raw.entityId, `${base}/entityId`, problems, index, limits.maxIdLength);
  const userId = raw.userId === null ? undefined : text(raw.userId, `${base}/userId`, problems, index, limits.maxIdLength, false);
  let occurredAt: number | undefined;
  if (raw.occurredAt === undefined) at(`${base}/occurredAt`, 'is required');
  else if (typeof raw.occurredAt !== 'string' || (occurredAt = parseRfc3339(raw.occurredAt)) === undefined) {
    at(`${base}/occurredAt`, 'must be an RFC 3339 date-time, e.g. 2026-01-31T12:00:00Z');
  }
  if (raw.value === undefined) at(`${base}/value`, 'is required');
  else if (typeof raw.value !== 'number' || !Number.isFinite(raw.value)) at(`${base}/value`, 'must be a finite number');
  const attrs = attributes(raw.attributes, `${base}/attributes`, problems, index, limits);
  if (problems.length > before) return undefined;
  return { eventId: eventId!, type: type!, entityId: entityId!, userId: userId ?? null, occurredAt: occurredAt!, value: raw.value as number, attributes: attrs };
}

/**
 * A body of one event or `{ "events": [...] }`: every event valid, or the
 * list of every problem with its index and path (all or nothing).
 */
export function validateEvents(body: unknown, limits: Limits = DEFAULT_LIMITS): { events: ActivityEvent[] } | { problems: Problem[] } {
  const problems: Problem[] = [];
  if (isObject(body) && 'events' in body) {
    const list = body.events;
    for (const key of Object.keys(body)) if (key !== 'events') problems.push({ path: `/${JSON.stringify(key).slice(1, -1)}`, message: 'is not a field of a batch' });
    if (!Array.isArray(list)) return { problems: [...problems, { path: '/events', message: 'must be an array' }] };
    if (list.length === 0) return { problems: [...problems, { path: '/events', message: 'must not be empty' }] };
    if (list.length > limits.maxEvents) return { problems: [...problems, { path: '/events', message: `must have at most ${limits.maxEvents} events` }] };
    const events = list.map((raw, index) => event(raw, `/events/${index}`, index, limits, problems));
    return problems.length > 0 ? { problems } : { events: events as ActivityEvent[] };
  }
  const single = event(body, '', undefined, limits, problems);
  return problems.length > 0 || !single ? { problems } : { events: [single] };
}

const CATALOG_FIELDS = new Set(['name', 'category', 'price', 'attributes', 'updatedAt']);

/** The body of PUT /v1/catalog/{entityId}. `updatedAt` defaults to the time of the request. */
export function validateCatalogItem(entityId: string, body: unknown, now: number, limits: Limits = DEFAULT_LIMITS): { item: CatalogItem } | { problems: Problem[] } {
  const problems: Problem[] = [];
  if (entityId.length === 0 || longerThan(entityId, limits.maxIdLength)) problems.push({ path: '(path)/entityId', message: `must be 1 to ${limits.maxIdLength} characters` });
  else {
    const problem = textProblem(entityId, 'identifier');
    if (problem) problems.push({ path: '(path)/entityId', message: problem });
  }
  if (!isObject(body)) return { problems: [...problems, { path: '/', message: 'must be an object' }] };
  for (const key of Object.keys(body)) if (!CATALOG_FIELDS.has(key)) problems.push({ path: `/${JSON.stringify(key).slice(1, -1)}`, message: 'is not a field of a catalog item' });
  const name = text(body.name, '/name', problems, undefined, limits.maxAttributeLength, true, 'text');
  const category = text(body.category, '/category', problems, undefined, limits.maxIdLength);
  let price: number | null = null;
  if (body.price !== undefined && body.price !== null) {
    if (typeof body.price !== 'number' || !Number.isFinite(body.price)) problems.push({ path: '/price', message: 'must be a finite number or null' });
    else price = body.price;
  }
  let updatedAt = now;
  if (body.updatedAt !== undefined) {
    const parsed = typeof body.updatedAt === 'string' ? parseRfc3339(body.updatedAt) : undefined;
    if (parsed === undefined) problems.push({ path: '/updatedAt', message: 'must be an RFC 3339 date-time' });
    else updatedAt = parsed;
  }
  const attrs = attributes(body.attributes, '/attributes', problems, undefined, limits);
  if (problems.length > 0) return { problems };
  return { item: { entityId, name: name!, category: category!, price, attributes: attrs, updatedAt } };
}
