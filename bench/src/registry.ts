import autocannon from 'autocannon';
import { startTestService, uniqueName } from '@sluice/testing';
import { writeResults } from './results';

const post = (url: string, body: unknown) =>
  fetch(url, { method: 'POST', headers: { 'content-type': 'application/vnd.schemaregistry.v1+json' }, body: JSON.stringify(body) });

/**
 * Registry scenario: registrations per second (distinct schemas, 8 clients in
 * parallel, each a Postgres write under the registry's write lock), then cached
 * GET /schemas/ids/{id} requests per second and their latency at saturation.
 */
export async function registryBench(): Promise<string> {
  const registry = await startTestService('schema-registry', {
    env: { REGISTRY_DB_SCHEMA: uniqueName('bench_registry').replace(/-/g, '_'), LOG_LEVEL: 'warn' },
  });
  try {
    const subject = 'bench-value';
    await fetch(`${registry.url}/config/${subject}`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ compatibility: 'NONE' }) });
    const registrations = 2_000;
    const concurrency = 8;
    let next = 0;
    const started = process.hrtime.bigint();
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < registrations) {
          const i = next++;
          const schema = { type: 'record', name: `R${i}`, fields: [{ name: `f${i}`, type: 'string' }] };
          const res = await post(`${registry.url}/subjects/${subject}/versions`, { schema: JSON.stringify(schema) });
          if (!res.ok) throw new Error(`registration ${i} failed: ${res.status} ${await res.text()}`);
        }
      }),
    );
    const registerSeconds = Number(process.hrtime.bigint() - started) / 1e9;

    const byId = await autocannon({ url: `${registry.url}/schemas/ids/1`, connections: 16, duration: 10, pipelining: 1 });
    const figures = {
      registrations: { count: registrations, concurrency, seconds: +registerSeconds.toFixed(2), perSecond: Math.round(registrations / registerSeconds) },
      cachedGetSchemaById: {
        connections: 16,
        durationSeconds: 10,
        requestsPerSecond: Math.round(byId.requests.average),
        latencyMs: { p50: byId.latency.p50, p99: byId.latency.p99, max: byId.latency.max },
        non2xx: byId.non2xx,
        errors: byId.errors,
      },
    };
    return writeResults('registry', figures);
  } finally {
    await registry.stop();
  }
}
