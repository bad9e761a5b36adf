import { httpJson, startTestService, uniqueName, type TestService } from '@sluice/testing';

export interface RegistryClient {
  url: string;
  call(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<{ status: number; body: unknown; contentType: string | null }>;
}

/** A registry process of its own, with its own tables, so ids start at 1 and global settings are private. */
export async function startRegistry(env: Record<string, string> = {}): Promise<TestService & RegistryClient & { dbSchema: string }> {
  const dbSchema = env.REGISTRY_DB_SCHEMA ?? uniqueName('registry').replace(/-/g, '_');
  const service = await startTestService('schema-registry', { env: { REGISTRY_DB_SCHEMA: dbSchema, LOG_LEVEL: 'warn', ...env } });
  return { ...service, dbSchema, call: (method, path, body, headers) => call(service.url, method, path, body, headers) };
}

export async function call(base: string, method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
  const res = await httpJson(`${base}${path}`, method, body, { 'content-type': 'application/vnd.schemaregistry.v1+json', ...headers });
  return { status: res.status, body: res.body as unknown, contentType: res.headers.get('content-type') };
}

export const avro = (schema: unknown) => ({ schema: JSON.stringify(schema) });

export const record = (name: string, fields: unknown[]) => ({ type: 'record', name, fields });
