import { createHash } from 'node:crypto';
import { parseAvro, type AvroNode } from '@sluice/contracts';
import avro from 'avsc';
import { REGISTRY_ERRORS, RegistryError } from './errors';

export const SUPPORTED_SCHEMA_TYPES = ['AVRO'] as const;
const KNOWN_SCHEMA_TYPES = ['AVRO', 'JSON', 'PROTOBUF'];

export interface ParsedSchema {
  /** The text as the client sent it; the first registration's text is what the registry returns. */
  text: string;
  /** Identity of the schema: equal for texts that differ only in white space. */
  fingerprint: string;
  node: AvroNode;
}

/** What a client posts to register, look up or check a schema. */
export interface SchemaSubmission {
  schema?: unknown;
  schemaType?: unknown;
  references?: unknown;
}

/** Validates a submission as an Avro schema; every client mistake is a 42x, never a 500. */
export function parseSubmission(body: unknown): ParsedSchema {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new RegistryError(REGISTRY_ERRORS.badRequest, 'The request body must be a JSON object with a "schema" field.');
  }
  const { schema, schemaType, references } = body as SchemaSubmission;
  const type = schemaType === undefined || schemaType === null ? 'AVRO' : schemaType;
  if (typeof type !== 'string' || !KNOWN_SCHEMA_TYPES.includes(type)) {
    throw new RegistryError(REGISTRY_ERRORS.unprocessable, `Invalid schema type ${JSON.stringify(type)}.`);
  }
  if (type !== 'AVRO') {
    throw new RegistryError(REGISTRY_ERRORS.invalidSchema, `Schema type ${type} is not supported by this registry; it serves AVRO.`);
  }
  if (Array.isArray(references) && references.length > 0) {
    throw new RegistryError(REGISTRY_ERRORS.invalidSchema, 'Schema references are not supported by this registry.');
  }
  if (typeof schema !== 'string' || schema.trim() === '') {
    throw new RegistryError(REGISTRY_ERRORS.invalidSchema, 'Invalid schema: "schema" must be a non-empty string.');
  }
  let json: unknown;
  try {
    json = JSON.parse(schema);
  } catch (err) {
    throw new RegistryError(REGISTRY_ERRORS.invalidSchema, `Invalid schema: not JSON (${(err as Error).message}).`);
  }
  try {
    avro.Type.forSchema(json as avro.Schema, { noAnonymousTypes: false });
  } catch (err) {
    throw new RegistryError(REGISTRY_ERRORS.invalidSchema, `Invalid schema: ${(err as Error).message}`);
  }
  const canonical = JSON.stringify(json);
  return {
    text: schema,
    fingerprint: createHash('sha256').update(canonical).digest('hex'),
    node: parseAvro(json as never),
  };
}
