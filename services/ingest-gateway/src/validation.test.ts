import { parseRfc3339, validateCatalogItem, validateEvents, DEFAULT_LIMITS } from './validation';

const good = { eventId: 'e1', type: 'view', entityId: 'sku-1', occurredAt: '2026-01-31T12:00:00Z', value: 2.5 };

test('one event or a batch of events is accepted and normalised to the contract', () => {
  expect(validateEvents(good)).toEqual({
    events: [{ eventId: 'e1', type: 'view', entityId: 'sku-1', userId: null, occurredAt: Date.UTC(2026, 0, 31, 12), value: 2.5, attributes: {} }],
  });
  const batch = validateEvents({ events: [good, { ...good, eventId: 'e2', userId: 'u1', attributes: { page: 'home' } }] });
  expect('events' in batch && batch.events.map((e) => [e.eventId, e.userId, e.attributes])).toEqual([
    ['e1', null, {}],
    ['e2', 'u1', { page: 'home' }],
  ]);
});

test('every problem of every event is reported with its index and path', () => {
  const result = validateEvents({ events: [good, { ...good, eventId: '', value: Infinity }, { type: 3, extra: true }] });
  expect(result).toEqual({
    problems: expect.arrayContaining([
      { index: 1, path: '/events/1/eventId', message: 'must not be empty' },
      { index: 1, path: '/events/1/value', message: 'must be a finite number' },
      { index: 2, path: '/events/2/extra', message: 'is not a field of an event' },
      { index: 2, path: '/events/2/type', message: 'must be a string' },
      { index: 2, path: '/events/2/eventId', message: 'is required' },
      { index: 2, path: '/events/2/occurredAt', message: 'is required' },
    ]),
  });
});

test('batches are bounded and not empty', () => {
  expect(validateEvents({ events: [] })).toEqual({ problems: [{ path: '/events', message: 'must not be empty' }] });
  expect(validateEvents({ events: Array(3).fill(good) }, { ...DEFAULT_LIMITS, maxEvents: 2 })).toEqual({
    problems: [{ path: '/events', message: 'must have at most 2 events' }],
  });
  expect(validateEvents({ events: 'x' })).toEqual({ problems: [{ path: '/events', message: 'must be an array' }] });
});

test('attributes are a bounded map of strings', () => {
  const limits = { ...DEFAULT_LIMITS, maxAttributes: 1, maxAttributeLength: 3 };
  expect(validateEvents({ ...good, attributes: { a: 'x', b: 'y' } }, limits)).toMatchObject({ problems: [{ path: '/attributes', message: 'must have at most 1 entries' }] });
  expect(validateEvents({ ...good, attributes: { a: 'long' } }, limits)).toMatchObject({ problems: [{ path: '/attributes/a' }] });
  expect(validateEvents({ ...good, attributes: { a: 1 } })).toMatchObject({ problems: [{ path: '/attributes/a', message: 'must be a string' }] });
});

test('attribute names that are Object.prototype members are kept as names', () => {
  const attributes = JSON.parse('{"__proto__":"p","constructor":"c","hasOwnProperty":"h"}') as Record<string, string>;
  const batch = validateEvents({ ...good, attributes });
  const kept = 'events' in batch ? batch.events[0]!.attributes : {};
  expect(Object.entries(kept)).toEqual([['__proto__', 'p'], ['constructor', 'c'], ['hasOwnProperty', 'h']]);
  expect(Object.getPrototypeOf(kept)).toBe(Object.prototype);
});

test('occurredAt must be RFC 3339 with a zone', () => {
  expect(parseRfc3339('2026-01-31T12:00:00.123+02:00')).toBe(Date.UTC(2026, 0, 31, 10, 0, 0, 123));
  for (const bad of ['2026-01-31', '2026-01-31T12:00:00', '31/01/2026', '2026-13-01T00:00:00Z', 'yesterday']) expect(parseRfc3339(bad)).toBeUndefined();
});

test('non-objects are refused', () => {
  for (const body of [null, 42, 'text', [good]]) expect(validateEvents(body)).toHaveProperty('problems');
});

test('a catalog item takes its entityId from the path and its time from the request unless given', () => {
  expect(validateCatalogItem('sku-1', { name: 'Kettle', category: 'kitchen', price: 20 }, 5)).toEqual({
    item: { entityId: 'sku-1', name: 'Kettle', category: 'kitchen', price: 20, attributes: {}, updatedAt: 5 },
  });
  expect(validateCatalogItem('sku-1', { name: 'K', category: 'c', updatedAt: '2026-01-01T00:00:00Z' }, 5)).toMatchObject({ item: { updatedAt: Date.UTC(2026, 0, 1) } });
  expect(validateCatalogItem('sku-1', { category: 'c', price: 'cheap' }, 5)).toEqual({
    problems: [
      { path: '/name', message: 'is required' },
      { path: '/price', message: 'must be a finite number or null' },
    ],
  });
});

describe('what no stage can store is refused at the edge, naming the path', () => {
  const base = { eventId: 'e1', type: 'view', entityId: 'sku-1', occurredAt: '2026-01-31T12:00:00Z', value: 1 };
  const problemsOf = (body: unknown) => {
    const result = validateEvents(body);
    return 'problems' in result ? result.problems.map((p) => [p.path, p.message]) : [];
  };

  test('NUL or another control character in an id, a type or an attribute name', () => {
    expect(problemsOf({ ...base, entityId: 'a\u0000b' })).toEqual([['/entityId', expect.stringMatching(/control characters/)]]);
    expect(problemsOf({ ...base, eventId: 'e\n1' })).toEqual([['/eventId', expect.stringMatching(/control characters/)]]);
    expect(problemsOf({ ...base, type: '\u007f' })).toEqual([['/type', expect.stringMatching(/control characters/)]]);
    expect(problemsOf({ ...base, userId: 'u\u0001' })).toEqual([['/userId', expect.stringMatching(/control characters/)]]);
    expect(problemsOf({ ...base, attributes: { 'a\u0000': 'x' } })).toEqual([['/attributes/a\\u0000', expect.stringMatching(/name must not contain control/)]]);
  });

  test('a NUL in an attribute value; tabs and newlines are fine there', () => {
    expect(problemsOf({ ...base, attributes: { note: 'x\u0000' } })).toEqual([['/attributes/note', expect.stringMatching(/NUL/)]]);
    expect(problemsOf({ ...base, attributes: { note: 'line 1\nline 2\t.' } })).toEqual([]);
  });

  test('a lone surrogate anywhere', () => {
    expect(problemsOf({ ...base, eventId: '\ud800' })).toEqual([['/eventId', expect.stringMatching(/lone surrogate/)]]);
    expect(problemsOf({ events: [base, { ...base, attributes: { k: 'x\udc00' } }] })).toEqual([['/events/1/attributes/k', expect.stringMatching(/lone surrogate/)]]);
    expect(problemsOf({ ...base, entityId: '😀' })).toEqual([]);
  });

  test('the catalog: its entity id (from the path), its category and its name', () => {
    const item = { name: 'n', category: 'c' };
    const catalog = (id: string, body: unknown) => {
      const result = validateCatalogItem(id, body, 0);
      return 'problems' in result ? result.problems.map((p) => p.path) : [];
    };
    expect(catalog('a\u0000', item)).toEqual(['(path)/entityId']);
    expect(catalog('a', { ...item, category: 'c\u0000' })).toEqual(['/category']);
    expect(catalog('a', { ...item, name: 'n\ud800' })).toEqual(['/name']);
    expect(catalog('a', { ...item, name: 'two\nlines' })).toEqual([]);
  });
});
