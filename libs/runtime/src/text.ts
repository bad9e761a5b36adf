/**
 * What no stage can store, in text that arrives from outside: Postgres text refuses NUL, a string that
 * is not well-formed Unicode (a lone surrogate, from a JSON escape such as "\ud800") cannot be encoded
 * as UTF-8 and would be stored as U+FFFD, and ids, names and keys with control characters break logs,
 * headers and the people who read them. Pure.
 */

// C0 controls (NUL included) and DEL.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

/**
 * Why `text` cannot be accepted, or undefined. `identifier`: an id, a type, a name used as a key (no
 * control character at all); otherwise free text, where only NUL is refused (tabs and newlines are text).
 */
export function textProblem(text: string, kind: 'identifier' | 'text'): string | undefined {
  if (!text.isWellFormed()) return 'must be well-formed Unicode (it holds a lone surrogate)';
  if (kind === 'identifier' && CONTROL.test(text)) return 'must not contain control characters (U+0000 to U+001F, U+007F)';
  if (kind === 'text' && text.includes('\u0000')) return 'must not contain NUL (U+0000)';
  return undefined;
}

/**
 * The rules of `textProblem` as JSON Schema patterns, for OpenAPI documents: no control character in an
 * identifier, no NUL in text. (Text must also be well-formed Unicode: no lone surrogate, which a pattern cannot say.)
 */
export const TEXT_PATTERNS = {
  identifier: '^[^\\u0000-\\u001f\\u007f]*$',
  text: '^[^\\u0000]*$',
} as const;

/**
 * Length in Unicode code points, as JSON Schema's maxLength counts (and the OpenAPI documents state):
 * a character outside the Basic Multilingual Plane is one, not two UTF-16 units. Counted only when the
 * UTF-16 length is past `max` (a string within it in units is within it in code points).
 */
export function longerThan(value: string, max: number): boolean {
  if (value.length <= max) return false;
  let points = 0;
  for (const _ of value) if (++points > max) return true;
  return false;
}
