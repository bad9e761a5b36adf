import { printable } from './store';

describe('dead-letter bytes as text', () => {
  it('keep a leading U+FEFF: the text is still exactly the bytes', () => {
    const bytes = Buffer.from('\uFEFFtrace-id', 'utf8');
    expect(printable(bytes)).toEqual({ text: '\uFEFFtrace-id', exact: true });
    expect(Buffer.from(printable(bytes).text, 'utf8').equals(bytes)).toBe(true);
  });

  it('show a NUL and bytes that are not UTF-8, and say the text is not exact', () => {
    expect(printable(Buffer.from([0x61, 0x00, 0x62]))).toEqual({ text: 'a\\u0000b', exact: false });
    expect(printable(Buffer.from([0xef, 0xbb, 0xbf, 0xff, 0x41]))).toEqual({ text: '\uFEFF\\xffA', exact: false });
  });
});
