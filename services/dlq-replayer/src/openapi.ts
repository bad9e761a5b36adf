import { errorResponse, errorSchema } from '@sluice/runtime';
import { ADMIN_ERRORS } from './routes';

const error = (...codes: (keyof typeof ADMIN_ERRORS)[]) => errorResponse(ADMIN_ERRORS, ...codes);
const ok = (description: string) => ({ description, content: { 'application/json': { schema: { type: 'object' } } } });
const filterParams = ['topic', 'stage', 'code', 'key', 'from', 'to', 'status', 'header'].map((name) => ({ name, in: 'query', required: false, schema: { type: 'string' } }));

/** OpenAPI 3.1 description of the admin API. */
export function adminOpenApi() {
  return {
    openapi: '3.1.0',
    info: { title: 'Sluice dlq-replayer admin API', version: '1.0.0', description: 'Inspect dead letters and replay them. Every route needs Authorization: Bearer <DLQ_ADMIN_TOKEN>; X-Operator names who acts, for the audit log.' },
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
      schemas: {
        Error: errorSchema(ADMIN_ERRORS),
        Filter: {
          type: 'object',
          additionalProperties: false,
          properties: {
            topic: { type: 'string' },
            stage: { type: 'string' },
            code: { type: 'string' },
            key: { type: 'string' },
            from: { type: 'string', format: 'date-time' },
            to: { type: 'string', format: 'date-time' },
            status: { type: 'string', enum: ['pending', 'replayed', 'discarded'] },
            header: { type: 'string', description: 'name=value: dead letters with that header value, exactly' },
          },
        },
        ReplayRequest: {
          type: 'object',
          additionalProperties: false,
          properties: {
            ids: { type: 'array', items: { type: 'string', pattern: '^[0-9]+$' }, minItems: 1 },
            filter: { $ref: '#/components/schemas/Filter' },
            dryRun: { type: 'boolean', default: false },
            ratePerSec: { type: 'integer', minimum: 1 },
            targetTopic: { type: 'string', description: 'Default: each record\'s original topic; only topics on DLQ_REPLAY_ALLOWED_TOPICS' },
            force: { type: 'boolean', default: false, description: 'Replay records replayed before too' },
          },
        },
      },
    },
    security: [{ bearer: [] }],
    paths: {
      '/admin/dlq': { get: { summary: 'Dead letters by filter, oldest first, a page at a time', parameters: [...filterParams, { name: 'limit', in: 'query', schema: { type: 'integer' } }, { name: 'cursor', in: 'query', schema: { type: 'string' } }], responses: { '200': ok('{ deadLetters, nextCursor }'), '401': error('UNAUTHORIZED'), '422': error('INVALID_FILTER') } } },
      '/admin/dlq/export': { get: { summary: 'Everything matching the filter as JSON Lines (as listed, plus headers) or CSV; the value (base64) only with payload=true', parameters: [...filterParams, { name: 'format', in: 'query', schema: { type: 'string', enum: ['jsonl', 'csv'] } }, { name: 'payload', in: 'query', schema: { type: 'string', enum: ['true', 'false'] } }], responses: { '200': { description: 'A file, streamed' }, '401': error('UNAUTHORIZED'), '422': error('INVALID_FILTER') } } },
      '/admin/overview': { get: { summary: 'Dead letters counted by topic, stage, code and status; per hour over 24 hours; the stages\' consumer lag from Kafka', responses: { '200': ok('{ groups, hourly, lag }'), '401': error('UNAUTHORIZED') } } },
      '/admin/audit': { get: { summary: 'The audit log, newest first, a page at a time', parameters: [{ name: 'limit', in: 'query', schema: { type: 'integer' } }, { name: 'before', in: 'query', schema: { type: 'string' } }], responses: { '200': ok('{ entries, nextCursor }'), '401': error('UNAUTHORIZED'), '422': error('INVALID_FILTER') } } },
      '/admin/dlq/{id}': { get: { summary: 'One dead letter: headers, raw value (base64), decoded payload when it decodes, its history (replays, audit entries)', responses: { '200': ok('The dead letter'), '401': error('UNAUTHORIZED'), '404': error('NOT_FOUND') } } },
      '/admin/dlq/{id}/discard': { post: { summary: 'Discard a pending dead letter, with a reason', requestBody: { content: { 'application/json': { schema: { type: 'object', required: ['reason'], properties: { reason: { type: 'string' } } } } } }, responses: { '200': ok('The discarded dead letter'), '400': error('INVALID_REQUEST'), '401': error('UNAUTHORIZED'), '404': error('NOT_FOUND'), '409': error('NOT_PENDING') } } },
      '/admin/dlq/replays': { post: { summary: 'Replay dead letters by ids or filter; a dry run reports what would be replayed', requestBody: { content: { 'application/json': { schema: { $ref: '#/components/schemas/ReplayRequest' } } } }, responses: { '200': ok('Dry run: { dryRun, selected, skipped, refused, records }'), '202': ok('{ replayId, selected, skipped, refused }'), '400': error('INVALID_REQUEST'), '401': error('UNAUTHORIZED'), '409': error('REPLAY_CONFLICT'), '422': error('INVALID_FILTER') } } },
      '/admin/dlq/replays/{id}': { get: { summary: 'Progress of a replay: status, counts per item status, errors', responses: { '200': ok('The replay'), '401': error('UNAUTHORIZED'), '404': error('NOT_FOUND') } } },
      '/admin/dlq/replays/{id}/cancel': { post: { summary: 'Stop a running replay; what was not produced stays pending', responses: { '200': ok('The replay'), '401': error('UNAUTHORIZED'), '404': error('NOT_FOUND') } } },
    },
  };
}
