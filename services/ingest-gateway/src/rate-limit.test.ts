import { ApiKeys, presentedKey } from './api-keys';
import { partitionFor } from './batcher';
import { RateLimiter } from './rate-limit';

test('a key may spend its burst at once, then its rate per second', () => {
  const limiter = new RateLimiter(10, 20);
  expect(limiter.take('k', 20, 0)).toEqual({ allowed: true });
  expect(limiter.take('k', 1, 0)).toEqual({ allowed: false, retryAfterSec: 1 });
  expect(limiter.take('k', 10, 1_000)).toEqual({ allowed: true });
  expect(limiter.take('k', 10, 1_000)).toEqual({ allowed: false, retryAfterSec: 1 });
  expect(limiter.take('other', 20, 1_000)).toEqual({ allowed: true });
});

test('a request larger than the burst says how long it would take', () => {
  expect(new RateLimiter(10, 20).take('k', 50, 0)).toEqual({ allowed: false, retryAfterSec: 5 });
});

test('a rate of 0 means no limit', () => {
  expect(new RateLimiter(0, 1).take('k', 1_000_000, 0)).toEqual({ allowed: true });
});

test('API keys match exactly, from either header, and are identified without being revealed', () => {
  const keys = new ApiKeys(['s3cret', 'other']);
  const id = keys.match('s3cret');
  expect(id).toMatch(/^[0-9a-f]{12}$/);
  expect(id).not.toContain('s3cret');
  expect(keys.match('s3cre')).toBeUndefined();
  expect(keys.match(undefined)).toBeUndefined();
  expect(presentedKey({ authorization: 'Bearer s3cret' })).toBe('s3cret');
  expect(presentedKey({ 'x-api-key': 's3cret' })).toBe('s3cret');
  expect(new ApiKeys([]).open).toBe(true);
});

test('a key always goes to the same partition, spread over all of them', () => {
  const seen = new Set<number>();
  for (let i = 0; i < 200; i++) {
    const p = partitionFor('t', `key-${i}`, 6);
    expect(partitionFor('t', `key-${i}`, 6)).toBe(p);
    seen.add(p);
  }
  expect([...seen].sort()).toEqual([0, 1, 2, 3, 4, 5]);
});
