import { filterSql, parseFilter, verdictFor } from './filter';

test('a filter takes topic, stage, code, key, a time range and a status', () => {
  expect(parseFilter({ topic: 'events.raw', code: 'catalog.missing', from: '2026-01-01T00:00:00Z', status: 'pending' })).toEqual({
    filter: { topic: 'events.raw', code: 'catalog.missing', from: Date.UTC(2026, 0, 1), status: 'pending' },
  });
});

test('a bad filter names every problem', () => {
  expect(parseFilter({ topic: '', colour: 'red', from: 'monday', status: 'lost' })).toEqual({
    problems: [
      { field: 'topic', message: 'must be a non-empty string' },
      { field: 'colour', message: 'is not a filter field' },
      { field: 'from', message: 'must be an RFC 3339 date-time' },
      { field: 'status', message: 'must be one of pending, replayed, discarded' },
    ],
  });
  expect(parseFilter('x')).toHaveProperty('problems');
});

test('filters become parametrised SQL only', () => {
  expect(filterSql({ topic: "x'; drop table dead_letters; --", key: 'k' }, 3)).toEqual({
    where: ['source_topic = $3', 'key = $4::bytea'],
    params: ["x'; drop table dead_letters; --", Buffer.from('k')],
  });
});

test('replay verdicts: pending goes, replayed only with force, the loop guard and discards refuse', () => {
  const opts = { force: false, maxReplays: 3 };
  expect(verdictFor({ status: 'pending', replayCount: 0 }, opts)).toEqual({ verdict: 'selected' });
  expect(verdictFor({ status: 'replayed', replayCount: 1 }, opts)).toMatchObject({ verdict: 'skipped' });
  expect(verdictFor({ status: 'replayed', replayCount: 1 }, { ...opts, force: true })).toEqual({ verdict: 'selected' });
  expect(verdictFor({ status: 'pending', replayCount: 3 }, { ...opts, force: true })).toMatchObject({ verdict: 'refused' });
  expect(verdictFor({ status: 'discarded', replayCount: 0 }, { ...opts, force: true })).toMatchObject({ verdict: 'refused', reason: 'discarded' });
});
