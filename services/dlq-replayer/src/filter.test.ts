import { csvField, csvLine } from './export';
import { filterSql, verdictFor } from './filter';

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

test('a header filter becomes a parametrised lookup', () => {
  expect(filterSql({ code: 'c', header: { name: 'traceparent', value: "'; --" } }, 1)).toEqual({
    where: ['error_code = $1', 'headers ->> $2 = $3'],
    params: ['c', 'traceparent', "'; --"],
  });
});

test('CSV export: RFC 4180 quoting, and no value a spreadsheet would run as a formula', () => {
  expect(csvField('plain')).toBe('plain');
  expect(csvField('a,b')).toBe('"a,b"');
  expect(csvField('say "hi"\nbye')).toBe('"say ""hi""\nbye"');
  expect(csvField('=HYPERLINK("x")')).toBe(`"'=HYPERLINK(""x"")"`);
  expect(csvField('-1')).toBe("'-1");
  expect(csvField(null)).toBe('');
  expect(csvField({ a: 1 })).toBe('"{""a"":1}"');
  expect(csvLine({ id: '7', key: 'k', headers: {} }, false)).toBe('7,,,,k,,,,,,,,{}\r\n');
});
