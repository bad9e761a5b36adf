import { assertSameAcceptance, openApiValidators } from '@sluice/testing';
import fc from 'fast-check';
import { openApiDocument } from './openapi';
import { validateCatalogItem, validateEvents, type Limits } from './validation';

// Small limits, so that generated bodies fall on both sides of each.
const limits: Limits = { maxEvents: 3, maxAttributes: 2, maxAttributeLength: 4, maxIdLength: 5 };
const requestSchema = (path: '/v1/events' | '/v1/catalog/{entityId}', method: 'post' | 'put') => openApiValidators(openApiDocument({ limits })).body(path, method);

// Characters that sit on the edges of the rules: control characters (refused in ids), NUL (refused everywhere),
// tab and newline (text), one outside the Basic Multilingual Plane (one character, two UTF-16 units), and plain ones.
const char = fc.constantFrom('a', 'Z', ' ', 'é', '😀', '𝄞', '\u0000', '\t', '\n', '\u001f', '\u007f', '\u00a0');
const edgy = fc.string({ unit: char, maxLength: 7 });
// Mostly text that passes, so that acceptance is exercised as well as refusal; lengths still cross the limits.
const safe = (maxLength: number) => fc.string({ unit: fc.constantFrom('a', 'é', '😀', ' '), minLength: 1, maxLength });
const text = fc.oneof({ arbitrary: safe(4), weight: 6 }, { arbitrary: safe(7), weight: 2 }, { arbitrary: edgy, weight: 2 });
const attributes = fc.oneof(
  { arbitrary: fc.dictionary(safe(4), safe(4), { maxKeys: 2 }), weight: 6 },
  { arbitrary: fc.dictionary(text, text, { maxKeys: 3 }), weight: 2 },
  { arbitrary: fc.constantFrom(null, 'x'), weight: 1 },
  { arbitrary: fc.dictionary(text, fc.integer(), { minKeys: 1, maxKeys: 1 }), weight: 1 },
);
const event = fc.record(
  {
    eventId: fc.oneof(text, fc.integer()),
    type: text,
    entityId: text,
    userId: fc.oneof(text, fc.constant(null)),
    occurredAt: fc.constantFrom('2026-01-31T12:00:00Z', '2026-01-31T12:00:00.123+02:00', '2026-13-01T00:00:00Z', 'yesterday'),
    value: fc.oneof(fc.double({ noNaN: true, noDefaultInfinity: true }), fc.constant('1')),
    attributes,
  },
  { requiredKeys: [] },
);
// Mostly valid events (an unknown field one time in ten), so that acceptance is exercised as well as refusal.
const likely = fc.record(
  { eventId: text, type: text, entityId: text, occurredAt: fc.constant('2026-01-31T12:00:00Z'), value: fc.double({ noNaN: true, noDefaultInfinity: true }), userId: fc.oneof(text, fc.constant(null)), attributes, extra: fc.constant(true) },
  { requiredKeys: ['eventId', 'type', 'entityId', 'occurredAt', 'value'] },
).chain((e) => fc.nat(9).map((n) => Object.fromEntries(Object.entries(e).filter(([k]) => k !== 'extra' || n === 0))));

test('the OpenAPI document accepts exactly the events the gateway accepts, at its limits', () => {
  const validate = requestSchema('/v1/events', 'post');
  const body = fc.oneof(
    { arbitrary: likely, weight: 4 },
    { arbitrary: event, weight: 1 },
    { arbitrary: fc.record({ events: fc.array(fc.oneof({ arbitrary: likely, weight: 6 }, { arbitrary: event, weight: 1 }), { maxLength: 4 }) }), weight: 2 },
  );
  // About a fifth of the bodies are accepted; the helper asks both outcomes to be frequent.
  assertSameAcceptance(body, { accepts: (b) => 'events' in validateEvents(b, limits), documented: validate });
});

test('…and exactly the catalog entries', () => {
  const validate = requestSchema('/v1/catalog/{entityId}', 'put');
  const item = fc.record(
    { name: text, category: text, price: fc.oneof(fc.double({ noNaN: true, noDefaultInfinity: true }), fc.constant(null), fc.constant('1')), attributes, updatedAt: fc.constantFrom('2026-01-31T12:00:00Z', 'soon') },
    { requiredKeys: ['name', 'category'] },
  );
  assertSameAcceptance(item, { accepts: (b) => 'item' in validateCatalogItem('sku-1', b, 0, limits), documented: validate });
});
