import { errorResponse, errorSchema } from '@sluice/runtime';
import { EVENT_ID_PATTERN, queryParameters } from './query';
import { VIEW_ERRORS } from './routes';

const error = (...codes: (keyof typeof VIEW_ERRORS)[]) => errorResponse(VIEW_ERRORS, ...codes);

/** OpenAPI 3.1 description of the query API; the tests check real responses against it. */
export function openApiDocument(maxLimit: number) {
  const parameters = queryParameters(maxLimit);
  return {
    openapi: '3.1.0',
    info: { title: 'Sluice view-api', version: '1.0.0', description: 'Window aggregates as the aggregator decided them, projected exactly once into Postgres. A query parameter a route does not list is refused (400 INVALID_PARAMETER), as is one given twice.' },
    components: {
      schemas: {
        Window: {
          type: 'object',
          additionalProperties: false,
          required: ['dimension', 'key', 'windowStart', 'windowEnd', 'count', 'sum', 'min', 'max', 'lastEventAt', 'isFinal', 'revision'],
          properties: {
            dimension: { type: 'string', enum: ['entity', 'category'] },
            key: { type: 'string' },
            windowStart: { type: 'string', format: 'date-time' },
            windowEnd: { type: 'string', format: 'date-time' },
            count: { type: 'integer', minimum: 0 },
            sum: { type: 'number' },
            min: { type: 'number' },
            max: { type: 'number' },
            lastEventAt: { type: 'string', format: 'date-time' },
            isFinal: { type: 'boolean' },
            revision: { type: 'integer', minimum: 0, description: 'Grows with every emission of the window; a higher one always wins.' },
          },
        },
        WindowPage: {
          type: 'object',
          additionalProperties: false,
          required: ['windows', 'nextCursor'],
          properties: { windows: { type: 'array', items: { $ref: '#/components/schemas/Window' } }, nextCursor: { type: ['string', 'null'] } },
        },
        Top: {
          type: 'object',
          additionalProperties: false,
          required: ['dimension', 'metric', 'from', 'to', 'top'],
          properties: {
            dimension: { type: 'string', enum: ['entity', 'category'] },
            metric: { type: 'string', enum: ['count', 'sum'] },
            from: { type: 'string', format: 'date-time' },
            to: { type: 'string', format: 'date-time' },
            top: {
              type: 'array',
              items: {
                type: 'object',
                additionalProperties: false,
                required: ['key', 'value', 'windows'],
                properties: { key: { type: 'string' }, value: { type: 'number' }, windows: { type: 'integer', minimum: 1 } },
              },
            },
          },
        },
        Error: errorSchema(VIEW_ERRORS),
      },
    },
    paths: {
      '/v1/aggregates': {
        get: {
          summary: 'Windows of one dimension (optionally one key) in a time range, ordered by window start then key, a page at a time',
          parameters: parameters.aggregates,
          responses: {
            '200': { description: 'A page of windows; ETag, and 304 for a matching If-None-Match', content: { 'application/json': { schema: { $ref: '#/components/schemas/WindowPage' } } } },
            '304': { description: 'Not modified' },
            '400': error('INVALID_PARAMETER'),
          },
        },
      },
      '/v1/top': {
        get: {
          summary: 'The keys with the highest total count or sum over the windows starting in a range (default: the last 24 hours)',
          parameters: parameters.top,
          responses: {
            '200': { description: 'The top keys', content: { 'application/json': { schema: { $ref: '#/components/schemas/Top' } } } },
            '304': { description: 'Not modified' },
            '400': error('INVALID_PARAMETER'),
          },
        },
      },
      '/v1/stream': {
        get: {
          summary: 'Server-sent events: each window change as it is projected (event "window", id = change sequence), heartbeats as comments',
          parameters: [
            ...parameters.stream,
            { name: 'Last-Event-ID', in: 'header', required: false, description: 'Resume: first the windows changed since, then live changes', schema: { type: 'string', pattern: EVENT_ID_PATTERN } },
          ],
          responses: {
            '200': { description: 'An event stream', content: { 'text/event-stream': { schema: { type: 'string' } } } },
            '400': error('INVALID_PARAMETER'),
          },
        },
      },
    },
  };
}
