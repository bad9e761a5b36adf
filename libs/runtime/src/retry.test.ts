import { backoffMs } from './retry';

test('waits double from the first and stop at the cap', () => {
  const policy = { initialMs: 100, maxMs: 1_000, jitter: false };
  expect([1, 2, 3, 4, 5, 40].map((attempt) => backoffMs(attempt, policy))).toEqual([100, 200, 400, 800, 1_000, 1_000]);
  expect(backoffMs(0, policy)).toBe(100);
});

test('with jitter, each wait lies between half of it and all of it', () => {
  const policy = { initialMs: 100, maxMs: 1_000 };
  expect(backoffMs(3, policy, () => 0)).toBe(200);
  expect(backoffMs(3, policy, () => 0.999_999)).toBe(400);
  for (let i = 0; i < 100; i++) {
    const wait = backoffMs(4, policy);
    expect(wait).toBeGreaterThanOrEqual(400);
    expect(wait).toBeLessThanOrEqual(800);
  }
});
