import { errorResponse, errorSchema, jsonSchemaOf, queryParameters } from '@sluice/runtime';
import { auditShape, discardSchema, exportShape, filterSchema, listShape, replayRequestSchema } from './requests';
import { ADMIN_ERRORS } from './routes';

const error = (...codes: (keyof typeof ADMIN_ERRORS)[]) => errorResponse(ADMIN_ERRORS, ...codes);
const ok = (description: string, schema: string) => ({ description, content: { 'application/json': { schema: { $ref: `#/components/schemas/${schema}` } } } });
const obj = (properties: Record<string, unknown>, required = Object.keys(properties)) => ({ type: 'object', additionalProperties: false, required, properties });
const str = { type: 'string' };
const nullableStr = { type: ['string', 'null'] };
const offset = { type: 'string', pattern: '^[0-9]+$' };
const id = { type: 'string', pattern: '^[0-9]+$', description: 'A dead letter\'s id' };
const time = { type: 'string', format: 'date-time' };
const count = { type: 'integer', minimum: 0 };
const cursor = { type: ['string', 'null'], pattern: '^[0-9]+$', description: 'Pass it back to get the next page; null on the last page' };
const reasons = { type: 'array', items: obj({ id, reason: str }) };
const DEAD_LETTER = {
  id,
  sourceTopic: str,
  sourcePartition: { type: ['integer', 'null'], minimum: 0 },
  sourceOffset: { ...offset, type: ['string', 'null'] },
  key: { ...nullableStr, description: 'The key as text, escaped where its bytes are not (keyBase64 is exact)' },
  keyBase64: nullableStr,
  errorCode: str,
  errorMessage: str,
  stage: str,
  failedAt: time,
  status: { type: 'string', enum: ['pending', 'replayed', 'discarded'] },
  replayCount: count,
  lastReplayId: { type: ['string', 'null'], format: 'uuid' },
};
const AUDIT_ENTRY = obj({ id, at: time, actor: str, action: str, target: nullableStr, count: { type: ['integer', 'null'] }, details: {} });

/** OpenAPI 3.1 description of the admin API; its requests are the zod schemas the routes validate with (`requests.ts`). */
export function adminOpenApi(allowedTopics: string[]) {
  return {
    openapi: '3.1.0',
    info: { title: 'Sluice dlq-replayer admin API', version: '1.0.0', description: 'Inspect dead letters and replay them. Every route needs Authorization: Bearer <DLQ_ADMIN_TOKEN>; X-Operator names who acts, for the audit log. A query parameter a route does not list is refused (422 INVALID_FILTER), as is one given twice. Text must be well-formed Unicode (no lone surrogate).' },
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
      schemas: {
        Error: errorSchema(ADMIN_ERRORS),
        DeadLetter: obj(DEAD_LETTER),
        DeadLetterPage: obj({ deadLetters: { type: 'array', items: { $ref: '#/components/schemas/DeadLetter' } }, nextCursor: cursor }),
        DeadLetterDetail: obj({
          ...DEAD_LETTER,
          headers: { type: 'object', additionalProperties: str },
          valueBase64: nullableStr,
          decoded: { description: 'The value decoded with its writer schema from the registry, or null' },
          decodeError: { ...nullableStr, description: 'Why the value did not decode' },
          discardReason: nullableStr,
          history: obj({
            replays: { type: 'array', items: obj({ replayId: { type: 'string', format: 'uuid' }, itemStatus: str, replayStatus: str, requestedBy: str, createdAt: time, targetTopic: str }) },
            audit: { type: 'array', items: { $ref: '#/components/schemas/AuditEntry' } },
          }),
        }),
        AuditEntry: AUDIT_ENTRY,
        AuditPage: obj({ entries: { type: 'array', items: { $ref: '#/components/schemas/AuditEntry' } }, nextCursor: cursor }),
        Overview: obj({
          groups: { type: 'array', items: obj({ topic: str, stage: str, code: str, status: DEAD_LETTER.status, count }) },
          hourly: { type: 'array', items: obj({ hour: time, count }) },
          lag: { type: 'array', items: obj({ group: str, topic: str, partition: count, committed: { ...offset, type: ['string', 'null'] }, end: offset, lag: { type: 'integer' } }) },
        }),
        Replay: obj({
          id: { type: 'string', format: 'uuid' },
          requestedBy: str,
          status: { type: 'string', enum: ['running', 'completed', 'cancelled', 'failed'] },
          ratePerSec: { type: 'integer', minimum: 1 },
          selected: count,
          refused: count,
          error: nullableStr,
          createdAt: time,
          updatedAt: time,
          counts: { type: 'object', description: 'Items per status', propertyNames: { enum: ['pending', 'producing', 'replayed', 'skipped', 'failed'] }, additionalProperties: count },
        }),
        ReplayStarted: obj({ replayId: { type: 'string', format: 'uuid' }, selected: count, skipped: reasons, refused: reasons }),
        DryRun: obj({
          dryRun: { const: true },
          selected: count,
          skipped: reasons,
          refused: reasons,
          records: { type: 'array', maxItems: 1000, items: obj({ ...DEAD_LETTER, targetTopic: str }) },
        }),
        Filter: jsonSchemaOf(filterSchema),
        ReplayRequest: jsonSchemaOf(replayRequestSchema(allowedTopics)),
      },
    },
    security: [{ bearer: [] }],
    paths: {
      '/admin/dlq': { get: { summary: 'Dead letters by filter, oldest first, a page at a time', parameters: queryParameters(listShape), responses: { '200': ok('A page of dead letters', 'DeadLetterPage'), '401': error('UNAUTHORIZED'), '422': error('INVALID_FILTER') } } },
      '/admin/dlq/export': { get: { summary: 'Everything matching the filter as JSON Lines (as listed, plus headers) or CSV; the value (base64) only with payload=true', parameters: queryParameters(exportShape), responses: { '200': { description: 'A file, streamed', content: { 'application/x-ndjson': { schema: { type: 'string' } }, 'text/csv': { schema: { type: 'string' } } } }, '401': error('UNAUTHORIZED'), '422': error('INVALID_FILTER') } } },
      '/admin/overview': { get: { summary: 'Dead letters counted by topic, stage, code and status; per hour over 24 hours; the stages\' consumer lag from Kafka', responses: { '200': ok('Counts, hours and lag', 'Overview'), '401': error('UNAUTHORIZED') } } },
      '/admin/audit': { get: { summary: 'The audit log, newest first, a page at a time', parameters: queryParameters(auditShape), responses: { '200': ok('A page of the audit log', 'AuditPage'), '401': error('UNAUTHORIZED'), '422': error('INVALID_FILTER') } } },
      '/admin/dlq/{id}': { get: { summary: 'One dead letter: headers, raw value (base64), decoded payload when it decodes, its history (replays, audit entries)', responses: { '200': ok('The dead letter', 'DeadLetterDetail'), '401': error('UNAUTHORIZED'), '404': error('NOT_FOUND') } } },
      '/admin/dlq/{id}/discard': { post: { summary: 'Discard a pending dead letter, with a reason', requestBody: { content: { 'application/json': { schema: jsonSchemaOf(discardSchema) } } }, responses: { '200': ok('The discarded dead letter', 'DeadLetter'), '400': error('INVALID_REQUEST'), '401': error('UNAUTHORIZED'), '404': error('NOT_FOUND'), '409': error('NOT_PENDING') } } },
      '/admin/dlq/replays': { post: { summary: 'Replay dead letters by ids or filter; a dry run reports what would be replayed', requestBody: { content: { 'application/json': { schema: { $ref: '#/components/schemas/ReplayRequest' } } } }, responses: { '200': ok('Dry run: what would be replayed (the first 1,000 records)', 'DryRun'), '202': ok('The replay started', 'ReplayStarted'), '400': error('INVALID_REQUEST'), '401': error('UNAUTHORIZED'), '409': error('REPLAY_CONFLICT'), '422': error('INVALID_FILTER') } } },
      '/admin/dlq/replays/{id}': { get: { summary: 'Progress of a replay: status, counts per item status, errors', responses: { '200': ok('The replay', 'Replay'), '401': error('UNAUTHORIZED'), '404': error('NOT_FOUND') } } },
      '/admin/dlq/replays/{id}/cancel': { post: { summary: 'Stop a running replay; what was not produced stays pending', responses: { '200': ok('The replay', 'Replay'), '401': error('UNAUTHORIZED'), '404': error('NOT_FOUND') } } },
    },
  };
}
