import fc from 'fast-check';
import { bucketStart, splitRange } from './rollups';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

test('whole days and hours come from the rollups, the edges from the windows', () => {
  const from = Date.UTC(2026, 0, 1, 22, 30);
  const to = Date.UTC(2026, 0, 4, 1, 10);
  expect(splitRange(from, to)).toEqual([
    { grainSeconds: 600, from, to: Date.UTC(2026, 0, 1, 23) },
    { grainSeconds: 3600, from: Date.UTC(2026, 0, 1, 23), to: Date.UTC(2026, 0, 2) },
    { grainSeconds: 86400, from: Date.UTC(2026, 0, 2), to: Date.UTC(2026, 0, 4) },
    { grainSeconds: 3600, from: Date.UTC(2026, 0, 4), to: Date.UTC(2026, 0, 4, 1) },
    { grainSeconds: 600, from: Date.UTC(2026, 0, 4, 1), to: Date.UTC(2026, 0, 4, 1, 10) },
  ]);
  expect(splitRange(Date.UTC(2026, 0, 1, 22, 35), Date.UTC(2026, 0, 1, 23, 7))).toEqual([
    { from: Date.UTC(2026, 0, 1, 22, 35), to: Date.UTC(2026, 0, 1, 22, 40) },
    { grainSeconds: 600, from: Date.UTC(2026, 0, 1, 22, 40), to: Date.UTC(2026, 0, 1, 23) },
    { from: Date.UTC(2026, 0, 1, 23), to: Date.UTC(2026, 0, 1, 23, 7) },
  ]);
  expect(splitRange(Date.UTC(2026, 0, 1, 12, 36, 40), Date.UTC(2026, 0, 1, 12, 46, 40))).toEqual([{ from: Date.UTC(2026, 0, 1, 12, 36, 40), to: Date.UTC(2026, 0, 1, 12, 46, 40) }]);
  expect(splitRange(5, 5)).toEqual([]);
});

test('the segments cover the range exactly once, each rollup segment is whole buckets, and a window falls in one segment', () => {
  const time = fc.integer({ min: -3 * DAY, max: 40 * DAY });
  fc.assert(
    fc.property(time, time, fc.array(time, { maxLength: 30 }), (a, b, starts) => {
      const [from, to] = a <= b ? [a, b] : [b, a];
      const segments = splitRange(from, to);
      let at = from;
      for (const s of segments) {
        if (s.from !== at || s.to <= s.from) return false;
        if (s.grainSeconds !== undefined && (bucketStart(s.from, s.grainSeconds) !== s.from || bucketStart(s.to, s.grainSeconds) !== s.to)) return false;
        at = s.to;
      }
      if (at !== (from < to ? to : from)) return false;
      // A window starting at t is counted by the segment whose [from, to) holds t; for a rollup segment, by its bucket.
      for (const t of starts) {
        const holders = segments.filter((s) => (s.grainSeconds === undefined ? t : bucketStart(t, s.grainSeconds)) >= s.from && (s.grainSeconds === undefined ? t : bucketStart(t, s.grainSeconds)) < s.to);
        if (holders.length !== (t >= from && t < to ? 1 : 0)) return false;
      }
      return true;
    }),
    { numRuns: 2000 },
  );
});

test('buckets are UTC and aligned on the epoch, before 1970 too', () => {
  expect(bucketStart(Date.UTC(2026, 5, 3, 17, 59, 59, 999), 3600)).toBe(Date.UTC(2026, 5, 3, 17));
  expect(bucketStart(Date.UTC(2026, 5, 3, 17), 86400)).toBe(Date.UTC(2026, 5, 3));
  expect(bucketStart(-1, 3600)).toBe(-HOUR);
});
