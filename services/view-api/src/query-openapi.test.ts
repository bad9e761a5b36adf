import { assertSameAcceptance, openApiValidators } from '@sluice/testing';
import fc from 'fast-check';
import { openApiDocument } from './openapi';
import { encodeCursor, parseAggregatesQuery, parseStreamQuery, parseTopQuery } from './query';

// A small limit, so that generated values fall on both sides of it.
const MAX_LIMIT = 20;
const validators = openApiValidators(openApiDocument(MAX_LIMIT));
const NOW = Date.UTC(2026, 11, 1);

// Values on the edges of each rule, mostly valid ones so that acceptance is exercised as well as refusal. (No lone
// surrogate: a URL cannot carry one; percent-encoded invalid UTF-8 reaches the service undecoded or replaced.)
const char = fc.constantFrom('a', 'Z', ' ', 'é', '😀', '\u0000', '\t', '\u001f', '\u007f', '\u00a0');
const key = fc.oneof(
  { arbitrary: fc.string({ unit: fc.constantFrom('a', 'é', '😀', '-'), minLength: 1, maxLength: 8 }), weight: 6 },
  { arbitrary: fc.string({ unit: char, maxLength: 4 }), weight: 2 },
  // Around the length limit, in UTF-16 units and in code points.
  { arbitrary: fc.constantFrom('k'.repeat(256), 'k'.repeat(257), '😀'.repeat(200), '😀'.repeat(256), '😀'.repeat(257)), weight: 1 },
);
const time = fc.oneof(
  { arbitrary: fc.integer({ min: Date.UTC(2020, 0, 1), max: Date.UTC(2030, 0, 1) }).map((ms) => new Date(ms).toISOString()), weight: 10 },
  {
    arbitrary: fc.constantFrom(
      '2026-01-31T12:00:00Z',
      '2026-01-31t12:00:00z',
      '2026-01-31T12:00:00.123456789+02:00',
      '2026-01-31 12:00:00Z',
      '2026-01-31T12:00:00',
      '2026-02-30T00:00:00Z',
      '2026-13-01T00:00:00Z',
      '2026-01-31T24:00:00Z',
      '2026-12-31T23:59:60Z',
      '2026-01-31T12:00:00+25:00',
      '2026-01-31',
      'yesterday',
      '',
    ),
    weight: 2,
  },
);
const digits = fc.oneof(
  { arbitrary: fc.integer({ min: 1, max: MAX_LIMIT }).map(String), weight: 4 },
  { arbitrary: fc.integer({ min: -3, max: MAX_LIMIT + 3 }).map(String), weight: 2 },
  { arbitrary: fc.constantFrom('007', '1e1', '+5', ' 5', '5.0', '', 'ten', '99999999999999999999'), weight: 1 },
);
// Forged cursors: base64url, but not one this API made (the document can only say so in words).
const FORGED = new Set(['nope', encodeCursor({ windowStart: 1, key: 'k' }).slice(1)]);
const cursor = fc.oneof({ arbitrary: fc.record({ windowStart: fc.integer({ min: 0 }), key: fc.string() }).map(encodeCursor), weight: 3 }, { arbitrary: fc.constantFrom(...FORGED, '', 'a b'), weight: 1 });
const eventId = fc.oneof(fc.bigInt({ min: 0n, max: 999_999_999_999_999_999n }).map(String), fc.constantFrom('', '-1', 'x', '1'.repeat(19), '00042'));
// Once, twice (express hands over an array), or an undocumented parameter.
const given = <T>(value: fc.Arbitrary<T>) => fc.oneof({ arbitrary: value, weight: 20 }, { arbitrary: fc.tuple(value, value), weight: 1 });
const dimension = fc.oneof({ arbitrary: fc.constantFrom('entity', 'category'), weight: 8 }, { arbitrary: fc.constantFrom('sku', '', 'Entity'), weight: 1 });
const extra = { arbitrary: fc.constant({ page: '2' }), weight: 1 };

/** `parse` accepts exactly the queries the document allows, the rules across parameters aside (`across`). */
function agrees(path: string, queries: fc.Arbitrary<Record<string, unknown>>, parse: (q: Record<string, unknown>) => object, across: (q: Record<string, string>) => boolean) {
  assertSameAcceptance(queries, { accepts: (q) => 'query' in parse(q), documented: validators.query(path, 'get'), inWords: (q) => across(q as Record<string, string>) });
}

const before = (q: Record<string, string>, to: string | undefined) => q.from === undefined || to === undefined || Date.parse(q.from.toUpperCase()) < Date.parse(to.toUpperCase());

test('GET /v1/aggregates accepts exactly the queries its OpenAPI parameters allow', () => {
  const query = fc.record({ dimension: given(dimension), key: given(key), from: given(time), to: given(time), limit: given(digits), cursor: given(cursor) }, { requiredKeys: ['dimension'] });
  agrees('/v1/aggregates', fc.oneof({ arbitrary: query, weight: 12 }, extra), (q) => parseAggregatesQuery(q, MAX_LIMIT), (q) => before(q, q.to) && !FORGED.has(q.cursor!));
});

test('…GET /v1/top', () => {
  const query = fc.record({ dimension: given(dimension), from: given(time), to: given(time), metric: given(fc.constantFrom('count', 'sum', 'avg')), limit: given(digits) }, { requiredKeys: ['dimension'] });
  agrees('/v1/top', fc.oneof({ arbitrary: query, weight: 12 }, extra), (q) => parseTopQuery(q, MAX_LIMIT, NOW), (q) => before(q, q.to ?? new Date(NOW).toISOString()));
});

test('…and GET /v1/stream', () => {
  const query = fc.record({ dimension: given(dimension), key: given(key), lastEventId: given(eventId) }, { requiredKeys: [] });
  agrees('/v1/stream', fc.oneof({ arbitrary: query, weight: 12 }, extra), parseStreamQuery, (q) => q.key === undefined || q.dimension !== undefined);
});
