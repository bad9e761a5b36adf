import { dateTimeField, parseQuery, parseRfc3339, problemsOf, textField, textProblem, type RequestProblem } from '@sluice/runtime';
import { z } from 'zod';
import { STATUSES, type DeadLetterFilter } from './filter';

/**
 * The admin API's requests, each one zod schema: it validates the request, gives its type, and is its part of the
 * OpenAPI document (`openapi.ts`). Rules across fields (a range's from before its to, ids or a filter) are refinements,
 * stated in the descriptions.
 */

export const MAX_PAGE = 1000;
export const MAX_REPLAY_IDS = 10_000;
export const MAX_RATE_PER_SEC = 100_000;
const ID = /^[0-9]{1,18}$/;

const idField = (message: string) => z.string({ error: message }).regex(ID, message);

/** Whether a path's id can name a dead letter at all (a larger number could not reach Postgres' bigint). */
export const isDeadLetterId = (id: string): boolean => ID.test(id);

/** The fields of a dead-letter filter: as query parameters, and as the `filter` object of a replay request. */
export const filterShape = {
  topic: textField('identifier', 512).optional(),
  stage: textField('identifier', 512).optional(),
  code: textField('identifier', 512).optional(),
  // A key is bytes: any text names it (NUL included), but a lone surrogate names no bytes.
  key: textField((value) => textProblem(value.replaceAll('\u0000', ''), 'text'), 512)
    .meta({ description: 'The key as text, exactly' })
    .optional(),
  from: dateTimeField().meta({ description: 'Failed at or after' }).optional(),
  to: dateTimeField().meta({ description: 'Failed before; after from' }).optional(),
  status: z.enum(STATUSES, { error: `must be one of ${STATUSES.join(', ')}` }).optional(),
  header: textField('text', 512)
    .refine((value) => value.indexOf('=') >= 1, 'must be name=value')
    .meta({ description: 'name=value: dead letters with that header value, exactly', pattern: '^[^\\u0000=][^\\u0000=]*=[^\\u0000]*$' })
    .optional(),
};

type FilterInput = { [K in keyof typeof filterShape]?: z.output<(typeof filterShape)[K]> };

function rangeInOrder<T extends { from?: string | undefined; to?: string | undefined }>(schema: z.ZodType<T>): z.ZodType<T> {
  return schema.refine(
    (f) => {
      const [from, to] = [f.from, f.to].map((t) => (t === undefined ? undefined : parseRfc3339(t)));
      return from === undefined || to === undefined || from < to;
    },
    { message: 'must be before to', path: ['from'] },
  );
}

/** The filter as the store takes it. */
export function toFilter(input: FilterInput): DeadLetterFilter {
  const filter: DeadLetterFilter = {};
  if (input.topic !== undefined) filter.topic = input.topic;
  if (input.stage !== undefined) filter.stage = input.stage;
  if (input.code !== undefined) filter.code = input.code;
  if (input.key !== undefined) filter.key = input.key;
  if (input.from !== undefined) filter.from = parseRfc3339(input.from)!;
  if (input.to !== undefined) filter.to = parseRfc3339(input.to)!;
  if (input.status !== undefined) filter.status = input.status;
  if (input.header !== undefined) {
    const at = input.header.indexOf('=');
    filter.header = { name: input.header.slice(0, at), value: input.header.slice(at + 1) };
  }
  return filter;
}

export const filterSchema = rangeInOrder(z.strictObject(filterShape));

const limit = z.int({ error: `must be a whole number from 1 to ${MAX_PAGE}` }).min(1, `must be a whole number from 1 to ${MAX_PAGE}`).max(MAX_PAGE, `must be a whole number from 1 to ${MAX_PAGE}`).default(100);

export const listShape = { ...filterShape, limit, cursor: idField('is not a cursor from this API').meta({ description: 'nextCursor of the previous page' }).optional() };
export const exportShape = {
  ...filterShape,
  format: z.enum(['jsonl', 'csv'], { error: 'must be jsonl or csv' }).default('jsonl'),
  payload: z.enum(['true', 'false'], { error: 'must be true or false' }).default('false').meta({ description: 'true: with each value, base64' }),
};
export const auditShape = { limit, before: idField('is not a cursor from this API').meta({ description: 'nextCursor of the previous page' }).optional() };

type Parsed<T> = { value: T } | { problems: RequestProblem[] };

export function parseListQuery(raw: Record<string, unknown>): Parsed<{ filter: DeadLetterFilter; limit: number; cursor: string | undefined }> {
  const parsed = parseQuery(listShape, raw, rangeInOrder);
  if ('problems' in parsed) return parsed;
  const { limit: size, cursor, ...filter } = parsed.value;
  return { value: { filter: toFilter(filter), limit: size, cursor } };
}

export function parseExportQuery(raw: Record<string, unknown>): Parsed<{ filter: DeadLetterFilter; format: 'jsonl' | 'csv'; payload: boolean; raw: FilterInput }> {
  const parsed = parseQuery(exportShape, raw, rangeInOrder);
  if ('problems' in parsed) return parsed;
  const { format, payload, ...filter } = parsed.value;
  return { value: { filter: toFilter(filter), format, payload: payload === 'true', raw: filter } };
}

export function parseAuditQuery(raw: Record<string, unknown>): Parsed<{ limit: number; before: string | undefined }> {
  return parseQuery(auditShape, raw);
}

/** A replay request; `targetTopic` must be on the allow-list, so the schema is made per configuration. */
export function replayRequestSchema(allowedTopics: string[]) {
  return z
    .strictObject({
      ids: z
        .array(idField('must be a dead-letter id'), { error: 'must be a non-empty list of dead-letter ids' })
        .min(1, 'must be a non-empty list of dead-letter ids')
        .max(MAX_REPLAY_IDS, `must list at most ${MAX_REPLAY_IDS} ids`)
        .meta({ description: 'Either ids or a filter' })
        .optional(),
      filter: filterSchema.optional(),
      dryRun: z.boolean({ error: 'must be true or false' }).default(false),
      ratePerSec: z
        .int({ error: `must be a whole number from 1 to ${MAX_RATE_PER_SEC}` })
        .min(1, `must be a whole number from 1 to ${MAX_RATE_PER_SEC}`)
        .max(MAX_RATE_PER_SEC, `must be a whole number from 1 to ${MAX_RATE_PER_SEC}`)
        .meta({ description: 'Default: DLQ_REPLAY_RATE_PER_SEC' })
        .optional(),
      targetTopic: z
        .enum(allowedTopics as [string, ...string[]], { error: `must be one of ${allowedTopics.join(', ')}` })
        .meta({ description: "Default: each record's original topic (which must be on DLQ_REPLAY_ALLOWED_TOPICS too)" })
        .optional(),
      force: z.boolean({ error: 'must be true or false' }).default(false).meta({ description: 'Replay records replayed before too' }),
    })
    .refine((r) => (r.ids === undefined) !== (r.filter === undefined), { message: 'give either ids or a filter', path: ['ids'] });
}

export type ReplayRequest = z.output<ReturnType<typeof replayRequestSchema>>;

export function parseReplayRequest(schema: ReturnType<typeof replayRequestSchema>, body: unknown): Parsed<ReplayRequest> {
  const parsed = schema.safeParse(body);
  return parsed.success ? { value: parsed.data } : { problems: problemsOf(parsed.error, 'is not a field of a replay request') };
}

export const discardSchema = z.strictObject({
  reason: textField((value) => textProblem(value, 'text') ?? (/\S/.test(value) ? undefined : 'must not be blank'), 1000, 'is required').meta({
    description: 'Why, for the audit log',
    pattern: '^[^\\u0000]*[^\\u0000\\s][^\\u0000]*$',
  }),
});

