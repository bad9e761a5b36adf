import { z } from 'zod';
import { longerThan, textProblem, TEXT_PATTERNS } from './text';

/**
 * HTTP contracts written once with zod: one schema validates a request, gives its TypeScript type, and is the
 * request's part of the OpenAPI document (its JSON Schema). Rules JSON Schema cannot say (well-formed Unicode,
 * a real calendar day) are checked by refinements and stated as patterns and formats where one exists.
 */

/** One problem of a request: the field (dotted path) or parameter, and what is wrong with it, in words. */
export interface RequestProblem {
  field: string;
  message: string;
}

// RFC 3339's date-time with its field ranges (the day checked against its month); seconds to 59: no leap second.
const RFC3339 = /^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])[Tt]([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d{1,9})?([Zz]|[+-]([01]\d|2[0-3]):[0-5]\d)$/;
export const RFC3339_PATTERN = RFC3339.source;

/** Epoch ms of an RFC 3339 date-time, or undefined when it is not one (Date.parse alone takes 2026-02-30 for March 2). */
export function parseRfc3339(value: string): number | undefined {
  if (!RFC3339.test(value)) return undefined;
  const [year, month, day] = [value.slice(0, 4), value.slice(5, 7), value.slice(8, 10)].map(Number) as [number, number, number];
  if (day > new Date(Date.UTC(year, month, 0)).getUTCDate()) return undefined;
  const ms = Date.parse(value.toUpperCase());
  return Number.isFinite(ms) ? ms : undefined;
}

/**
 * A string of 1 to `max` code points (as JSON Schema counts; zod's own max counts UTF-16 units) that `rule` accepts:
 * `textProblem`'s identifier or text rule, with the pattern that says so, or a check of its own.
 */
export function textField(rule: 'identifier' | 'text' | ((value: string) => string | undefined), max: number, empty = 'must be a non-empty string') {
  const problemOf = typeof rule === 'function' ? rule : (value: string) => textProblem(value, rule);
  return z
    .string({ error: empty })
    .superRefine((value, ctx) => {
      const problem = value.length === 0 ? empty : longerThan(value, max) ? `must be at most ${max} characters` : problemOf(value);
      if (problem) ctx.addIssue({ code: 'custom', message: problem });
    })
    .meta({ minLength: 1, maxLength: max, ...(typeof rule === 'string' ? { pattern: TEXT_PATTERNS[rule] } : {}) });
}

/** An RFC 3339 date-time (a real one: see parseRfc3339). */
export function dateTimeField(message = 'must be an RFC 3339 date-time') {
  return z
    .string({ error: message })
    .refine((value) => parseRfc3339(value) !== undefined, message)
    .meta({ format: 'date-time', pattern: RFC3339_PATTERN });
}

const jsonSchemas = new WeakMap<z.ZodType, Record<string, unknown>>();

/** The JSON Schema of a zod schema, as requests must be written (input side), for an OpenAPI 3.1 document. */
export function jsonSchemaOf(schema: z.ZodType): Record<string, unknown> {
  let json = jsonSchemas.get(schema);
  if (!json) {
    const { $schema: _, ...rest } = z.toJSONSchema(schema, { io: 'input' }) as Record<string, unknown>;
    json = rest;
    jsonSchemas.set(schema, json);
  }
  return json;
}

/** The problems of a failed parse, one per field; an unknown field is named with `unknownField`. */
export function problemsOf(error: z.ZodError, unknownField = 'is not a known field'): RequestProblem[] {
  return error.issues.flatMap((issue) => {
    const at = issue.path.map(String).join('.');
    if (issue.code === 'unrecognized_keys') return issue.keys.map((key) => ({ field: at ? `${at}.${key}` : key, message: unknownField }));
    return [{ field: at || '(body)', message: issue.message }];
  });
}

type QueryShape = Record<string, z.ZodType>;

/** The OpenAPI query parameters of a query schema: one per field, required unless optional. */
export function queryParameters(shape: QueryShape, descriptions: Record<string, string> = {}) {
  return Object.entries(shape).map(([name, schema]) => ({
    name,
    in: 'query' as const,
    required: !schema.safeParse(undefined).success,
    ...(descriptions[name] ? { description: descriptions[name] } : {}),
    schema: jsonSchemaOf(schema),
  }));
}

/**
 * Parses a query as express hands it over (a string per parameter given once, an array when repeated) with a
 * strict object of `shape` (refined by `refine`): each parameter given once, an integer parameter written in
 * decimal digits, no parameter the shape does not list.
 */
export function parseQuery<S extends QueryShape, T>(
  shape: S,
  raw: Record<string, unknown>,
  refine: (schema: z.ZodObject<S, z.core.$strict>) => z.ZodType<T> = (schema) => schema as unknown as z.ZodType<T>,
  unknownField = 'is not a parameter of this route',
): { value: T } | { problems: RequestProblem[] } {
  const problems: RequestProblem[] = [];
  const entries: [string, unknown][] = [];
  for (const [name, value] of Object.entries(raw)) {
    // A parameter's name is the client's: `constructor` or `__proto__` is an unknown name, not Object's member.
    const field = Object.hasOwn(shape, name) ? shape[name] : undefined;
    if (typeof value !== 'string') {
      problems.push({ field: name, message: field ? 'must be given once, as a plain value' : unknownField });
      continue;
    }
    entries.push([name, field && jsonSchemaOf(field).type === 'integer' && /^-?[0-9]+$/.test(value) ? Number(value) : value]);
  }
  // fromEntries defines every name as an own property, so the strict schema sees (and refuses) each unknown one.
  const input = Object.fromEntries(entries);
  const parsed = refine(z.strictObject(shape)).safeParse(input);
  if (!parsed.success) problems.push(...problemsOf(parsed.error, unknownField));
  return problems.length > 0 ? { problems } : { value: (parsed as { data: T }).data };
}
