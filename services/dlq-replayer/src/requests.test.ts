import { assertSameAcceptance, openApiValidators } from '@sluice/testing';
import fc from 'fast-check';
import { adminOpenApi } from './openapi';
import { discardSchema, parseAuditQuery, parseExportQuery, parseListQuery, parseReplayRequest, replayRequestSchema } from './requests';

const ALLOWED = ['events.raw', 'events.enriched'];
const validators = openApiValidators(adminOpenApi(ALLOWED));

test('a filter takes topic, stage, code, key, a time range, a status and a header', () => {
  expect(parseListQuery({ topic: 'events.raw', code: 'catalog.missing', from: '2026-01-01T00:00:00Z', status: 'pending', header: 'dlq.replay.id=a=b', key: 'a\u0000b' })).toEqual({
    value: { filter: { topic: 'events.raw', code: 'catalog.missing', from: Date.UTC(2026, 0, 1), status: 'pending', header: { name: 'dlq.replay.id', value: 'a=b' }, key: 'a\u0000b' }, limit: 100, cursor: undefined },
  });
});

test('a bad filter names every problem', () => {
  const parsed = parseListQuery({ topic: '', colour: 'red', from: 'monday', status: 'lost', header: '=x', limit: '0', cursor: ['1', '2'] });
  expect(parsed).toEqual({
    problems: expect.arrayContaining([
      { field: 'topic', message: 'must be a non-empty string' },
      { field: 'colour', message: 'is not a parameter of this route' },
      { field: 'from', message: 'must be an RFC 3339 date-time' },
      { field: 'status', message: 'must be one of pending, replayed, discarded' },
      { field: 'header', message: 'must be name=value' },
      { field: 'limit', message: 'must be a whole number from 1 to 1000' },
      { field: 'cursor', message: 'must be given once, as a plain value' },
    ]),
  });
  expect(parseListQuery({ from: '2026-01-02T00:00:00Z', to: '2026-01-01T00:00:00Z' })).toEqual({ problems: [{ field: 'from', message: 'must be before to' }] });
  expect(parseListQuery({ from: '2026-02-30T00:00:00Z' })).toEqual({ problems: [{ field: 'from', message: 'must be an RFC 3339 date-time' }] });
});

test('parameters named after Object.prototype members are unknown parameters, not a crash (they once threw: a 500)', () => {
  // As Node's query string parser hands them over: an object without a prototype.
  const raw = Object.assign(Object.create(null) as Record<string, string>, { topic: 'events.raw', constructor: '1', toString: 'x', ['__proto__']: 'p' });
  expect(parseListQuery(raw)).toEqual({
    problems: [
      { field: 'constructor', message: 'is not a parameter of this route' },
      { field: 'toString', message: 'is not a parameter of this route' },
      { field: '__proto__', message: 'is not a parameter of this route' },
    ],
  });
  expect(parseAuditQuery(Object.assign(Object.create(null) as Record<string, unknown>, { hasOwnProperty: ['a', 'b'] }))).toEqual({
    problems: [{ field: 'hasOwnProperty', message: 'is not a parameter of this route' }],
  });
});

test('a replay request names its problems by field, nested ones with their path', () => {
  const schema = replayRequestSchema(ALLOWED);
  expect(parseReplayRequest(schema, { ids: ['1', '2'], ratePerSec: 10 })).toEqual({ value: { ids: ['1', '2'], ratePerSec: 10, dryRun: false, force: false } });
  expect(parseReplayRequest(schema, { filter: { colour: 'red', from: 'x' }, targetTopic: 'elsewhere', bogus: 1, dryRun: 'yes' })).toEqual({
    problems: expect.arrayContaining([
      { field: 'filter.colour', message: 'is not a field of a replay request' },
      { field: 'filter.from', message: 'must be an RFC 3339 date-time' },
      { field: 'targetTopic', message: 'must be one of events.raw, events.enriched' },
      { field: 'bogus', message: 'is not a field of a replay request' },
      { field: 'dryRun', message: 'must be true or false' },
    ]),
  });
  expect(parseReplayRequest(schema, {})).toEqual({ problems: [{ field: 'ids', message: 'give either ids or a filter' }] });
  expect(parseReplayRequest(schema, { ids: [1] })).toEqual({ problems: [{ field: 'ids.0', message: 'must be a dead-letter id' }] });
});

test('audit pages take a limit and a cursor only', () => {
  expect(parseAuditQuery({ limit: '5', before: '42' })).toEqual({ value: { limit: 5, before: '42' } });
  expect(parseAuditQuery({ limit: '1e1' })).toEqual({ problems: [{ field: 'limit', message: 'must be a whole number from 1 to 1000' }] });
});

// Values on the edges of each rule, mostly valid so that acceptance is exercised as well as refusal. (A query
// cannot carry a lone surrogate; a JSON body can, as an escape, so the bodies have them.)
const units = (extra: string[]) => fc.constantFrom('a', 'Z', ' ', 'é', '😀', '=', '.', ...extra);
const edgy = (extra: string[]) => fc.string({ unit: fc.oneof({ arbitrary: units([]), weight: 8 }, { arbitrary: fc.constantFrom('\u0000', '\t', '\u001f', '\u007f', '\u00a0', ...extra), weight: 1 }), maxLength: 6 });
const longish = (n: number) => fc.constantFrom('x'.repeat(n), 'x'.repeat(n + 1), '😀'.repeat(n), '😀'.repeat(n + 1), '😀'.repeat(Math.ceil((n + 1) / 2)));
const text = (extra: string[]) => fc.oneof({ arbitrary: fc.string({ unit: fc.constantFrom('a', 'é', '😀', '-', '.'), minLength: 1, maxLength: 8 }), weight: 14 }, { arbitrary: edgy(extra), weight: 3 }, { arbitrary: longish(512), weight: 1 });
const time = fc.oneof(
  { arbitrary: fc.integer({ min: Date.UTC(2020, 0, 1), max: Date.UTC(2030, 0, 1) }).map((ms) => new Date(ms).toISOString()), weight: 8 },
  { arbitrary: fc.constantFrom('2026-01-31t12:00:00z', '2026-01-31T12:00:00+02:00', '2026-01-31 12:00:00Z', '2026-02-29T00:00:00Z', '2028-02-29T00:00:00Z', '2026-12-31T23:59:60Z', '2026-01-31T24:00:00Z', 'monday', ''), weight: 2 },
);
const header = fc.oneof({ arbitrary: fc.tuple(text([]), text([])).map(([n, v]) => `${n}=${v}`), weight: 4 }, { arbitrary: text([]), weight: 1 });
const status = fc.constantFrom('pending', 'replayed', 'discarded', 'lost');
const id = fc.oneof({ arbitrary: fc.bigInt({ min: 0n, max: 999_999_999_999_999_999n }).map(String), weight: 6 }, { arbitrary: fc.constantFrom('', '-1', 'x', '1'.repeat(19), ' 1'), weight: 1 });
const limit = fc.oneof({ arbitrary: fc.integer({ min: 1, max: 1000 }).map(String), weight: 6 }, { arbitrary: fc.constantFrom('0', '1001', '007', '1e1', '+5', '5.0', 'ten', '99999999999999999999'), weight: 1 });
const once = <T>(value: fc.Arbitrary<T>) => fc.oneof({ arbitrary: value, weight: 30 }, { arbitrary: fc.tuple(value, value), weight: 1 });
const filterFields = (extra: string[], wrap: <T>(a: fc.Arbitrary<T>) => fc.Arbitrary<unknown>) => ({
  topic: wrap(text(extra)),
  stage: wrap(text(extra)),
  code: wrap(text(extra)),
  key: wrap(text(extra)),
  from: wrap(time),
  to: wrap(time),
  status: wrap(status),
  header: wrap(header),
});
// Text must be well-formed Unicode: the documents say so in words (a pattern cannot).
const wellFormed = (input: unknown) => JSON.stringify(input).isWellFormed() && !/\\ud[89a-f][0-9a-f]{2}/i.test(JSON.stringify(input));
const inOrder = (f: Record<string, unknown> | undefined) => !f || typeof f.from !== 'string' || typeof f.to !== 'string' || !(Date.parse(f.from.toUpperCase()) >= Date.parse(f.to.toUpperCase()));

const agrees = <T>(requests: fc.Arbitrary<T>, accepts: (r: T) => boolean, documented: (r: T) => boolean, inWords: (r: T) => boolean) => assertSameAcceptance(requests, { accepts, documented, inWords });

const queryOf = (fields: Record<string, fc.Arbitrary<unknown>>) => fc.oneof({ arbitrary: fc.record(fields, { requiredKeys: [] }), weight: 20 }, { arbitrary: fc.constant({ page: '2' }), weight: 1 });

test('GET /admin/dlq accepts exactly the queries its OpenAPI parameters allow', () => {
  const query = queryOf({ ...filterFields([], once), limit: once(limit), cursor: once(id) });
  agrees(query, (q) => 'value' in parseListQuery(q as Record<string, unknown>), validators.query('/admin/dlq', 'get') as (q: unknown) => boolean, inOrder as (q: unknown) => boolean);
});

test('…GET /admin/dlq/export', () => {
  const query = queryOf({ ...filterFields([], once), format: once(fc.constantFrom('jsonl', 'csv', 'jsonl', 'csv', 'xml')), payload: once(fc.constantFrom('true', 'false', 'true', 'false', 'yes')) });
  agrees(query, (q) => 'value' in parseExportQuery(q as Record<string, unknown>), validators.query('/admin/dlq/export', 'get') as (q: unknown) => boolean, inOrder as (q: unknown) => boolean);
});

test('…GET /admin/audit', () => {
  agrees(queryOf({ limit: once(limit), before: once(id) }), (q) => 'value' in parseAuditQuery(q as Record<string, unknown>), validators.query('/admin/audit', 'get') as (q: unknown) => boolean, () => true);
});

test('…the body of POST /admin/dlq/replays', () => {
  const schema = replayRequestSchema(ALLOWED);
  const plain = <T>(a: fc.Arbitrary<T>) => a;
  const filter = fc.oneof({ arbitrary: fc.record(filterFields(['\ud800'], plain), { requiredKeys: [] }), weight: 8 }, { arbitrary: fc.constantFrom({ colour: 'red' }, 'topic', null), weight: 1 });
  const ids = fc.oneof({ arbitrary: fc.array(id, { minLength: 1, maxLength: 3 }), weight: 6 }, { arbitrary: fc.constantFrom([], [1], '1', null), weight: 1 });
  const body = fc.record(
    {
      ids,
      filter,
      dryRun: fc.oneof({ arbitrary: fc.boolean(), weight: 8 }, { arbitrary: fc.constant('yes'), weight: 1 }),
      ratePerSec: fc.oneof({ arbitrary: fc.integer({ min: 1, max: 100_000 }), weight: 8 }, { arbitrary: fc.constantFrom(0, 100_001, 1.5, '10'), weight: 1 }),
      targetTopic: fc.constantFrom(...ALLOWED, ...ALLOWED, 'elsewhere'),
      force: fc.oneof({ arbitrary: fc.boolean(), weight: 8 }, { arbitrary: fc.constant(1), weight: 1 }),
      bogus: fc.constant(1),
    },
    { requiredKeys: [] },
  )
    // An unknown field one time in ten.
    .chain((b) => fc.nat(9).map((n): Record<string, unknown> => (n === 0 ? b : Object.fromEntries(Object.entries(b).filter(([k]) => k !== 'bogus')))));
  const valid = fc.oneof({ arbitrary: body.map((b) => JSON.parse(JSON.stringify({ ...b, ids: ['1'], filter: undefined })) as Record<string, unknown>), weight: 1 }, { arbitrary: body, weight: 3 });
  agrees(
    valid,
    (b) => 'value' in parseReplayRequest(schema, b),
    validators.body('/admin/dlq/replays', 'post'),
    (b) => (b.ids === undefined) !== (b.filter === undefined) && inOrder(b.filter as Record<string, unknown> | undefined) && wellFormed(b),
  );
});

test('…and of POST /admin/dlq/{id}/discard', () => {
  const reason = fc.oneof({ arbitrary: text(['\ud800', '\n', '\u2028']), weight: 6 }, { arbitrary: fc.constantFrom(' ', ' \t\n', '', null, 3), weight: 1 }, { arbitrary: longish(1000), weight: 1 });
  agrees(
    fc.oneof({ arbitrary: fc.record({ reason }), weight: 10 }, { arbitrary: fc.constantFrom({}, { reason: 'x', extra: 1 }), weight: 1 }),
    (b) => discardSchema.safeParse(b).success,
    validators.body('/admin/dlq/{id}/discard', 'post'),
    wellFormed,
  );
});
