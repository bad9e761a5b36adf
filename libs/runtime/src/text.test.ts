import { textProblem } from './text';

test('identifiers: no control character, well-formed Unicode', () => {
  for (const ok of ['sku-1', 'é', '日本', '😀', 'a b', '\u00a0', '\u2028']) expect(textProblem(ok, 'identifier')).toBeUndefined();
  for (const bad of ['a\u0000b', 'a\tb', '\n', '\u007f', '\u001f']) expect(textProblem(bad, 'identifier')).toMatch(/control characters/);
  for (const bad of ['\ud800', 'a\udc00', '\udc00\ud800', 'x\ud83d']) expect(textProblem(bad, 'identifier')).toMatch(/lone surrogate/);
});

test('free text: tabs and newlines are text; NUL and lone surrogates are not', () => {
  for (const ok of ['line 1\nline 2', 'a\tb', '😀', '']) expect(textProblem(ok, 'text')).toBeUndefined();
  expect(textProblem('a\u0000', 'text')).toMatch(/NUL/);
  expect(textProblem('\ud83d', 'text')).toMatch(/lone surrogate/);
});
