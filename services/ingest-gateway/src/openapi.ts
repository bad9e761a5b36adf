import { errorResponse, errorSchema, TEXT_PATTERNS } from '@sluice/runtime';
import { GATEWAY_ERRORS } from './errors';
import type { Limits } from './validation';

const retryAfter = { 'Retry-After': { description: 'Seconds to wait before retrying', schema: { type: 'string', pattern: '^[0-9]+$' } } };

const error = (...codes: (keyof typeof GATEWAY_ERRORS)[]) => errorResponse(GATEWAY_ERRORS, ...codes);

// What validation refuses in text, as patterns: control characters in ids, types and names; NUL in free text.
const { identifier: IDENTIFIER, text: TEXT } = TEXT_PATTERNS;

/**
 * OpenAPI 3.1 description of exactly what the gateway does, with the limits validation enforces (the same
 * `Limits`; lengths in Unicode code points, as JSON Schema counts them). The tests check real responses
 * against it, and that it accepts exactly the bodies validation accepts.
 */
export function openApiDocument(options: { limits: Limits; serverUrl?: string }) {
  const { limits } = options;
  const id = { type: 'string', minLength: 1, maxLength: limits.maxIdLength, pattern: IDENTIFIER };
  const attributes = {
    type: ['object', 'null'],
    maxProperties: limits.maxAttributes,
    propertyNames: { maxLength: limits.maxAttributeLength, pattern: IDENTIFIER },
    additionalProperties: { type: 'string', maxLength: limits.maxAttributeLength, pattern: TEXT },
  };
  return {
    openapi: '3.1.0',
    info: {
      title: 'Sluice ingest-gateway',
      version: '1.0.0',
      description:
        'Accepts events over HTTP and answers 202 only after Kafka acknowledged every event (acks=all, idempotent producer). A client that gets anything else retries with the same eventIds: duplicates are dropped downstream.',
    },
    ...(options.serverUrl ? { servers: [{ url: options.serverUrl }] } : {}),
    components: {
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer', description: 'Only when GATEWAY_API_KEYS is set; X-API-Key works too.' },
        apiKey: { type: 'apiKey', in: 'header', name: 'X-API-Key' },
      },
      schemas: {
        Event: {
          type: 'object',
          additionalProperties: false,
          required: ['eventId', 'type', 'entityId', 'occurredAt', 'value'],
          properties: {
            eventId: { ...id, description: 'Idempotency key: resend the same eventId when retrying.' },
            type: id,
            entityId: { ...id, description: 'The partition key.' },
            userId: { ...id, type: ['string', 'null'] },
            occurredAt: { type: 'string', format: 'date-time', description: 'RFC 3339 event time.' },
            value: { type: 'number' },
            attributes,
          },
        },
        EventBatch: {
          type: 'object',
          additionalProperties: false,
          required: ['events'],
          properties: { events: { type: 'array', minItems: 1, maxItems: limits.maxEvents, items: { $ref: '#/components/schemas/Event' } } },
        },
        Accepted: {
          type: 'object',
          additionalProperties: false,
          required: ['accepted', 'results'],
          properties: {
            accepted: { type: 'integer', minimum: 1 },
            results: {
              type: 'array',
              items: {
                type: 'object',
                additionalProperties: false,
                required: ['eventId', 'partition', 'offset'],
                properties: { eventId: { type: 'string' }, partition: { type: 'integer', minimum: 0 }, offset: { type: 'string', pattern: '^[0-9]+$' } },
              },
            },
          },
        },
        CatalogItem: {
          type: 'object',
          additionalProperties: false,
          required: ['name', 'category'],
          properties: {
            name: { type: 'string', minLength: 1, maxLength: limits.maxAttributeLength, pattern: TEXT },
            category: id,
            price: { type: ['number', 'null'] },
            attributes,
            updatedAt: { type: 'string', format: 'date-time', description: 'Defaults to the time of the request.' },
          },
        },
        CatalogAck: {
          type: 'object',
          additionalProperties: false,
          required: ['entityId', 'partition', 'offset'],
          properties: { entityId: { type: 'string' }, partition: { type: 'integer', minimum: 0 }, offset: { type: 'string', pattern: '^[0-9]+$' }, deleted: { type: 'boolean' } },
        },
        Error: errorSchema(GATEWAY_ERRORS),
      },
    },
    security: [{}, { bearer: [] }, { apiKey: [] }],
    paths: {
      '/v1/events': {
        post: {
          summary: 'Send one event or a batch of events (all or nothing)',
          requestBody: {
            required: true,
            content: { 'application/json': { schema: { oneOf: [{ $ref: '#/components/schemas/Event' }, { $ref: '#/components/schemas/EventBatch' }] } } },
          },
          responses: {
            '202': { description: 'Kafka acknowledged every event', content: { 'application/json': { schema: { $ref: '#/components/schemas/Accepted' } } } },
            '400': error('INVALID_EVENTS', 'REQUEST_BODY_INVALID_JSON'),
            '401': error('UNAUTHORIZED'),
            '413': error('REQUEST_BODY_TOO_LARGE'),
            '415': error('UNSUPPORTED_MEDIA_TYPE'),
            '429': { ...error('RATE_LIMITED'), headers: retryAfter },
            '503': { ...error('OVERLOADED', 'KAFKA_UNAVAILABLE', 'KAFKA_ACK_TIMEOUT', 'SHUTTING_DOWN'), headers: retryAfter },
          },
        },
      },
      '/v1/catalog/{entityId}': {
        parameters: [{ name: 'entityId', in: 'path', required: true, schema: id }],
        put: {
          summary: 'Create or replace the catalog entry of an entity (compacted catalog.items)',
          requestBody: { required: true, content: { 'application/json': { schema: { $ref: '#/components/schemas/CatalogItem' } } } },
          responses: {
            '200': { description: 'Kafka acknowledged the entry', content: { 'application/json': { schema: { $ref: '#/components/schemas/CatalogAck' } } } },
            '400': error('INVALID_CATALOG_ITEM', 'REQUEST_BODY_INVALID_JSON'),
            '401': error('UNAUTHORIZED'),
            '413': error('REQUEST_BODY_TOO_LARGE'),
            '415': error('UNSUPPORTED_MEDIA_TYPE'),
            '503': { ...error('OVERLOADED', 'KAFKA_UNAVAILABLE', 'KAFKA_ACK_TIMEOUT', 'SHUTTING_DOWN'), headers: retryAfter },
          },
        },
        delete: {
          summary: 'Delete the catalog entry of an entity (a tombstone)',
          responses: {
            '200': { description: 'Kafka acknowledged the tombstone', content: { 'application/json': { schema: { $ref: '#/components/schemas/CatalogAck' } } } },
            '401': error('UNAUTHORIZED'),
            '503': { ...error('OVERLOADED', 'KAFKA_UNAVAILABLE', 'KAFKA_ACK_TIMEOUT', 'SHUTTING_DOWN'), headers: retryAfter },
          },
        },
      },
    },
  };
}
