import { decodeCursor, encodeCursor, parseAggregatesQuery, parseStreamQuery, parseTopQuery } from './query';

test('a window query needs a dimension and takes key, range, limit and cursor', () => {
  const cursor = encodeCursor({ windowStart: 120_000, key: 'k' });
  expect(parseAggregatesQuery({ dimension: 'entity', key: 'k', from: '2026-01-01T00:00:00Z', to: '2026-01-02T00:00:00Z', limit: '5', cursor }, 1000)).toEqual({
    query: { dimension: 'entity', key: 'k', from: Date.UTC(2026, 0, 1), to: Date.UTC(2026, 0, 2), limit: 5, after: { windowStart: 120_000, key: 'k' } },
  });
  expect(parseAggregatesQuery({}, 1000)).toEqual({ problems: [{ parameter: 'dimension', message: 'is required: entity or category' }] });
});

test('bad values are reported one by one with the parameter they concern', () => {
  const result = parseAggregatesQuery({ dimension: 'sku', from: 'yesterday', limit: '0', cursor: 'nope', extra: '1' }, 1000);
  expect(result).toEqual({
    problems: expect.arrayContaining([
      { parameter: 'extra', message: 'is not a parameter of this route' },
      { parameter: 'dimension', message: 'must be entity or category' },
      { parameter: 'from', message: expect.stringContaining('RFC 3339') },
      { parameter: 'limit', message: 'must be a whole number from 1 to 1000' },
      { parameter: 'cursor', message: 'is not a cursor returned by this API' },
    ]),
  });
  expect(parseAggregatesQuery({ dimension: 'entity', limit: '1001' }, 1000)).toHaveProperty('problems');
  expect(parseAggregatesQuery({ dimension: ['entity', 'category'] }, 1000)).toHaveProperty('problems');
  expect(parseAggregatesQuery({ dimension: 'entity', from: '2026-01-02T00:00:00Z', to: '2026-01-01T00:00:00Z' }, 1000)).toEqual({
    problems: [{ parameter: 'from', message: 'must be before to' }],
  });
});

test('top defaults to count over the last 24 hours', () => {
  expect(parseTopQuery({ dimension: 'category' }, 100, 86_400_000)).toEqual({ query: { dimension: 'category', from: 0, to: 86_400_000, metric: 'count', limit: 10 } });
  expect(parseTopQuery({ dimension: 'category', metric: 'avg' }, 100, 0)).toHaveProperty('problems');
});

test('a stream filter may be empty; a key needs its dimension', () => {
  expect(parseStreamQuery({})).toEqual({ query: { filter: {} } });
  expect(parseStreamQuery({ dimension: 'entity', key: 'k', lastEventId: '42' })).toEqual({ query: { filter: { dimension: 'entity', key: 'k' }, since: 42n } });
  expect(parseStreamQuery({ lastEventId: '1234567890123456789' })).toEqual({ problems: [{ parameter: 'lastEventId', message: 'must be an event id from this stream' }] });
  expect(parseStreamQuery({ key: 'k' })).toEqual({ problems: [{ parameter: 'key', message: 'needs a dimension' }] });
});

test('cursors round-trip and forgeries are refused', () => {
  expect(decodeCursor(encodeCursor({ windowStart: 5, key: 'a|b' }))).toEqual({ windowStart: 5, key: 'a|b' });
  expect(decodeCursor(Buffer.from('[1.5,"x"]').toString('base64url'))).toBeUndefined();
  expect(decodeCursor('%%%')).toBeUndefined();
});
