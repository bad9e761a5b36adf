import fc from 'fast-check';
import { types } from 'pg';
import { isoTimestamp } from './store';

const viaDate = (text: string) => (types.getTypeParser(1184, 'text') as (t: string) => Date)(text).toISOString();
const pad = (n: number, width: number) => String(n).padStart(width, '0');

// A timestamptz as Postgres prints it with DateStyle ISO: fraction without trailing zeros (up to microseconds),
// the zone's offset as +HH, +HH:MM or +HH:MM:SS, years of four or more digits, BC after the zone.
const printed = fc
  .record({
    year: fc.oneof(fc.integer({ min: 1, max: 9999 }), fc.integer({ min: 10_000, max: 200_000 })),
    month: fc.integer({ min: 1, max: 12 }),
    day: fc.integer({ min: 1, max: 28 }),
    hour: fc.integer({ min: 0, max: 23 }),
    minute: fc.integer({ min: 0, max: 59 }),
    second: fc.integer({ min: 0, max: 59 }),
    micros: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 999 }).map((ms) => ms * 1000), fc.integer({ min: 0, max: 999_999 })),
    zone: fc.oneof({ weight: 4, arbitrary: fc.constant('+00') }, { weight: 1, arbitrary: fc.constantFrom('-08', '+05:30', '+00:09:21', '-00:30') }),
    bc: fc.integer({ min: 0, max: 9 }).map((n) => n === 0),
  })
  .map(({ year, month, day, hour, minute, second, micros, zone, bc }) => {
    const fraction = micros === 0 ? '' : `.${pad(micros, 6).replace(/0+$/, '')}`;
    return `${pad(year, 4)}-${pad(month, 2)}-${pad(day, 2)} ${pad(hour, 2)}:${pad(minute, 2)}:${pad(second, 2)}${fraction}${zone}${bc ? ' BC' : ''}`;
  });

test('a timestamp printed by Postgres becomes the same ISO text as through a Date, in any form Postgres prints', () => {
  fc.assert(
    fc.property(printed, (text) => {
      expect(isoTimestamp(text)).toBe(viaDate(text));
    }),
    { numRuns: 20_000 },
  );
});

test('the forms a window has, and the ones that need a Date', () => {
  expect(isoTimestamp('2026-01-31 12:00:00+00')).toBe('2026-01-31T12:00:00.000Z');
  expect(isoTimestamp('2026-01-31 12:00:00.5+00')).toBe('2026-01-31T12:00:00.500Z');
  expect(isoTimestamp('2026-01-31 12:00:00.05+00')).toBe('2026-01-31T12:00:00.050Z');
  expect(isoTimestamp('0001-01-01 00:00:00.123+00')).toBe('0001-01-01T00:00:00.123Z');
  expect(isoTimestamp('2026-01-31 12:00:00.123456+00')).toBe('2026-01-31T12:00:00.123Z');
  expect(isoTimestamp('2026-01-31 12:00:00-08')).toBe('2026-01-31T20:00:00.000Z');
  expect(isoTimestamp('0001-01-01 00:00:00+00 BC')).toBe('0000-01-01T00:00:00.000Z');
  expect(isoTimestamp('10000-01-01 00:00:00+00')).toBe('+010000-01-01T00:00:00.000Z');
});
