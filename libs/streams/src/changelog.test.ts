import { resumeOffset } from './changelog';

describe('resumeOffset', () => {
  test("the changelog's progress decides when there is one, whether the group's offset lags it or leads it", () => {
    expect(resumeOffset(1516n, 1016n)).toBe(1516n); // the group's offset fetched before a committed transaction's offsets were written
    expect(resumeOffset(22n, 38n)).toBe(22n); // a transaction's offsets committed by the brokers while its data was aborted
    expect(resumeOffset(7n, 7n)).toBe(7n);
  });

  test("without a changelog's progress (an input no store follows, or a first start), the group's offset; else from the start", () => {
    expect(resumeOffset(undefined, 38n)).toBe(38n);
    expect(resumeOffset(undefined, undefined)).toBeUndefined();
  });
});
