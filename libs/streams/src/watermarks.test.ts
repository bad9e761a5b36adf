import { SortedIndex } from './store';
import { applySourceRecord, applyWatermark, decodeWatermark, encodeWatermark, heldBack, initialMergedTime, withSources, type MergedTime } from './watermarks';

const mark = (state: MergedTime, source: number, time: number | null, idle = false) => applyWatermark(state, { source, time, idle });

describe('merged event time', () => {
  test('is the minimum over the sources, and waits for every source to report', () => {
    let s = initialMergedTime(3);
    s = mark(s, 0, 1_000);
    s = mark(s, 1, 9_000);
    expect(s.time).toBeNull();
    s = mark(s, 2, 5_000);
    expect(s.time).toBe(1_000);
    s = mark(s, 0, 20_000);
    expect(s.time).toBe(5_000);
  });

  test('a source that falls behind holds time where it is; the fast ones do not pull it forward', () => {
    let s = initialMergedTime(2);
    s = mark(s, 0, 10_000);
    s = mark(s, 1, 10_000);
    for (let t = 11_000; t < 100_000; t += 1_000) s = mark(s, 0, t);
    expect(s.time).toBe(10_000);
    expect(heldBack(s)).toEqual({ lagMs: 89_000, heldBy: 1, idleSources: 0 });
  });

  test('never moves back: a source reporting an older time (after a restart) changes nothing', () => {
    let s = mark(mark(initialMergedTime(2), 0, 10_000), 1, 10_000);
    s = mark(s, 0, 4_000);
    expect(s.time).toBe(10_000);
    expect(s.sources[0]!.time).toBe(10_000);
  });

  test('an idle source is left out of the minimum until it delivers again', () => {
    let s = mark(mark(initialMergedTime(2), 0, 10_000), 1, 2_000);
    expect(s.time).toBe(2_000);
    s = mark(s, 1, 2_000, true);
    expect(s.time).toBe(10_000);
    s = mark(s, 0, 30_000);
    expect(s.time).toBe(30_000);
    // Back with a record: it holds time again, but time does not go back to it.
    s = applySourceRecord(s, 1);
    expect(s.sources[1]!.idle).toBe(false);
    s = mark(s, 0, 50_000);
    expect(s.time).toBe(30_000);
    expect(heldBack(s).heldBy).toBe(1);
  });

  test('a source that never reported can be idle; when every source is idle, time goes as far as any has seen', () => {
    let s = mark(initialMergedTime(3), 0, 7_000);
    s = mark(s, 1, null, true);
    expect(s.time).toBeNull();
    s = mark(s, 2, null, true);
    expect(s.time).toBe(7_000);
    s = mark(s, 0, 7_000, true);
    expect(s.time).toBe(7_000);
  });

  test('sources added to the upstream topic hold time back until they report', () => {
    let s = mark(mark(initialMergedTime(2), 0, 5_000), 1, 5_000);
    s = withSources(s, 3);
    s = mark(s, 0, 9_000);
    s = mark(s, 1, 9_000);
    expect(s.time).toBe(5_000);
    expect(heldBack(s).heldBy).toBe(2);
  });

  test('watermarks round-trip; bytes that are not one are refused', () => {
    expect(decodeWatermark(encodeWatermark({ source: 3, time: 12, idle: true }))).toEqual({ source: 3, time: 12, idle: true });
    expect(decodeWatermark(Buffer.from('{"source":-1,"time":1}'))).toBeUndefined();
    expect(decodeWatermark(Buffer.from([0xff, 0x00]))).toBeUndefined();
    expect(decodeWatermark(null)).toBeUndefined();
  });
});

describe('sorted index', () => {
  test('yields the keys at most a bound, lowest first, and follows changes', () => {
    const index = new SortedIndex();
    index.set('c', 30);
    index.set('a', 10);
    index.set('b', 20);
    index.set('b2', 20);
    expect([...index.upTo(20)]).toEqual(['a', 'b', 'b2']);
    index.set('a', 40);
    index.set('b', undefined);
    expect([...index.upTo(35)]).toEqual(['b2', 'c']);
    expect(index.size).toBe(3);
  });

  test('a caller may change the index while it goes through what is due', () => {
    const index = new SortedIndex();
    for (let i = 0; i < 100; i++) index.set(`k${i}`, i % 10);
    const seen: string[] = [];
    for (const key of index.upTo(4)) {
      seen.push(key);
      index.set(key, undefined);
    }
    expect(seen).toHaveLength(50);
    expect(index.size).toBe(50);
    expect([...index.upTo(100)].every((k) => Number(k.slice(1)) % 10 >= 5)).toBe(true);
  });
});
