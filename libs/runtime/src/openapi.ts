import { HttpError } from './http';

/** The documented error list of a service: each stable code with its HTTP status and what it means. */
export type ErrorCatalog = Record<string, { status: number; description: string }>;

/** Builds the service's errors from its catalog, so that a status always matches its documented code. */
export function errorFactory<E extends ErrorCatalog>(errors: E) {
  return (code: keyof E & string, message: string, details?: unknown, headers: Record<string, string> = {}): HttpError =>
    new HttpError(errors[code]!.status, code, message, details, headers);
}

/** OpenAPI 3.1 schema of `{ "error": { code, message, details } }`, with the service's codes. */
export function errorSchema(errors: ErrorCatalog) {
  return {
    type: 'object',
    additionalProperties: false,
    required: ['error'],
    properties: {
      error: {
        type: 'object',
        additionalProperties: false,
        required: ['code', 'message'],
        properties: { code: { type: 'string', enum: Object.keys(errors) }, message: { type: 'string' }, details: {} },
      },
    },
  };
}

/** A response of the Error schema, described by the codes it can carry. */
export function errorResponse<E extends ErrorCatalog>(errors: E, ...codes: (keyof E & string)[]) {
  return {
    description: codes.map((c) => `${c}: ${errors[c]!.description}`).join(' '),
    content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
  };
}
