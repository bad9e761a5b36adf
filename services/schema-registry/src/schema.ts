import { createHash } from 'node:crypto';
import { parseAvro, type AvroNode } from '@sluice/contracts';
import { textProblem } from '@sluice/runtime';
import avro from 'avsc';
import { REGISTRY_ERRORS, RegistryError } from './errors';

export const SUPPORTED_SCHEMA_TYPES = ['AVRO'] as const;
const KNOWN_SCHEMA_TYPES = ['AVRO', 'JSON', 'PROTOBUF'];

/** A schema reference, as Confluent's API carries it: a named type defined by a version of another subject. */
export interface SchemaReference {
  name: string;
  subject: string;
  /** A version from 1; -1 (latest) is resolved to a number when the schema is registered. */
  version: number;
}

/** A submission checked for shape, its references not resolved yet. */
export interface Submission {
  /** The text as the client sent it; the first registration's text is what the registry returns. */
  text: string;
  json: unknown;
  references: SchemaReference[];
}

export interface ParsedSchema extends Submission {
  /** Identity of the schema: equal for texts that differ only in white space and carry the same references. */
  fingerprint: string;
  node: AvroNode;
}

/** What a client posts to register, look up or check a schema. */
interface SchemaSubmission {
  schema?: unknown;
  schemaType?: unknown;
  references?: unknown;
}

const invalid = (message: string) => new RegistryError(REGISTRY_ERRORS.invalidSchema, message);

function parseReferences(raw: unknown): SchemaReference[] {
  if (raw === undefined || raw === null) return [];
  if (!Array.isArray(raw)) throw invalid('Invalid schema: "references" must be an array of { name, subject, version }.');
  return raw.map((r: unknown, i) => {
    const ref = r as Partial<Record<keyof SchemaReference, unknown>> | null;
    const at = `references[${i}]`;
    if (ref === null || typeof ref !== 'object') throw invalid(`Invalid schema: ${at} must be an object { name, subject, version }.`);
    if (typeof ref.name !== 'string' || ref.name === '') throw invalid(`Invalid schema: ${at}.name must be the full name of a type.`);
    if (typeof ref.subject !== 'string' || ref.subject === '' || textProblem(ref.subject, 'identifier')) throw invalid(`Invalid schema: ${at}.subject must be a subject name.`);
    const version = ref.version;
    if (typeof version !== 'number' || !Number.isSafeInteger(version) || (version < 1 && version !== -1)) {
      throw invalid(`Invalid schema: ${at}.version must be a version number from 1, or -1 for the latest.`);
    }
    return { name: ref.name, subject: ref.subject, version };
  });
}

/** Checks a submission's shape: an Avro schema in JSON, and well-formed references. Every client mistake is a 42x. */
export function readSubmission(body: unknown): Submission {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new RegistryError(REGISTRY_ERRORS.badRequest, 'The request body must be a JSON object with a "schema" field.');
  }
  const { schema, schemaType, references } = body as SchemaSubmission;
  const type = schemaType === undefined || schemaType === null ? 'AVRO' : schemaType;
  if (typeof type !== 'string' || !KNOWN_SCHEMA_TYPES.includes(type)) {
    throw new RegistryError(REGISTRY_ERRORS.unprocessable, `Invalid schema type ${JSON.stringify(type)}.`);
  }
  if (type !== 'AVRO') throw invalid(`Schema type ${type} is not supported by this registry; it serves AVRO.`);
  if (typeof schema !== 'string' || schema.trim() === '') throw invalid('Invalid schema: "schema" must be a non-empty string.');
  // Its text is stored as it came: what Postgres text cannot hold is the client's mistake, not a 50001.
  const problem = textProblem(schema, 'text');
  if (problem) throw invalid(`Invalid schema: its text ${problem}.`);
  let json: unknown;
  try {
    json = JSON.parse(schema);
  } catch (err) {
    throw invalid(`Invalid schema: not JSON (${(err as Error).message}).`);
  }
  return { text: schema, json, references: parseReferences(references) };
}

/**
 * The schema checked as Avro, with the schemas its references resolve to (dependencies first) defining
 * the named types it may use. Its fingerprint covers its references: the same text with other references
 * is another schema.
 */
export function parseWithReferences(submission: Submission, resolved: unknown[]): ParsedSchema {
  // Without a prototype: a type named `constructor` or `__proto__` is a name like any other.
  const registry = Object.create(null) as Record<string, avro.Type>;
  const named = new Map<string, AvroNode>();
  try {
    for (const dependency of resolved) {
      avro.Type.forSchema(dependency as avro.Schema, { registry, noAnonymousTypes: false });
      parseAvro(dependency as never, named);
    }
  } catch (err) {
    throw invalid(`Invalid schema: a referenced schema does not parse: ${(err as Error).message}`);
  }
  try {
    avro.Type.forSchema(submission.json as avro.Schema, { registry, noAnonymousTypes: false });
  } catch (err) {
    throw invalid(`Invalid schema: ${(err as Error).message}`);
  }
  const canonical = JSON.stringify(submission.json);
  const identity = submission.references.length === 0 ? canonical : `${canonical}\n${JSON.stringify(submission.references)}`;
  return {
    ...submission,
    fingerprint: createHash('sha256').update(identity).digest('hex'),
    node: parseAvro(submission.json as never, named),
  };
}

/** Reads the schema a reference points at: its JSON and its own references. */
export type ReferenceLoader = (subject: string, version: number) => Promise<{ version: number; json: unknown; references: SchemaReference[] } | undefined>;

/**
 * The schemas `references` resolve to, recursively, dependencies first, each once; the references with
 * -1 replaced by the version found. A missing subject or version, or a cycle, is a 42201 naming it.
 */
export async function resolveReferences(references: SchemaReference[], load: ReferenceLoader): Promise<{ references: SchemaReference[]; schemas: unknown[] }> {
  const schemas: unknown[] = [];
  const done = new Set<string>();
  const visit = async (ref: SchemaReference, path: string[]): Promise<SchemaReference> => {
    const found = await load(ref.subject, ref.version);
    if (!found) {
      throw invalid(`Invalid schema: reference ${JSON.stringify(ref.name)} points at subject ${JSON.stringify(ref.subject)} version ${ref.version === -1 ? 'latest' : ref.version}, which does not exist.`);
    }
    const key = `${ref.subject}\u0000${found.version}`;
    if (path.includes(key)) throw invalid(`Invalid schema: the references form a cycle through subject ${JSON.stringify(ref.subject)} version ${found.version}.`);
    if (!done.has(key)) {
      for (const inner of found.references) await visit(inner, [...path, key]);
      done.add(key);
      schemas.push(found.json);
    }
    return { ...ref, version: found.version };
  };
  const resolved: SchemaReference[] = [];
  for (const ref of references) resolved.push(await visit(ref, []));
  return { references: resolved, schemas };
}

/** A submission without references, checked and parsed (used where no reference can exist). */
export function parseSubmission(body: unknown): ParsedSchema {
  const submission = readSubmission(body);
  if (submission.references.length > 0) throw invalid('Invalid schema: references need the registry to resolve them.');
  return parseWithReferences(submission, []);
}
