import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';

// The exit codes the README promises: 2 for a bad configuration (found before or while starting, the
// variable named), 1 for any other failure while starting. A real service is started each time.
jest.setTimeout(60_000);

const enricher = join(__dirname, '..', '..', '..', 'services', 'enricher', 'dist', 'main.js');
const viewApi = join(__dirname, '..', '..', '..', 'services', 'view-api', 'dist', 'main.js');

async function run(script: string, env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  const child = spawn(process.execPath, [script], { env: { ...process.env, HTTP_PORT: '0', LOG_LEVEL: 'error', SHUTDOWN_GRACE_MS: '2000', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const [code] = (await once(child, 'exit')) as [number | null];
  return { code, output };
}

test('a variable that does not parse: exit 2, naming it', async () => {
  const { code, output } = await run(enricher, { STREAM_MAX_BATCH_SIZE: 'many' });
  expect(code).toBe(2);
  expect(output).toMatch(/STREAM_MAX_BATCH_SIZE/);
});

test('variables that disagree, found while starting (SASL without credentials): exit 2, naming them', async () => {
  const { code, output } = await run(enricher, { KAFKA_SASL_MECHANISM: 'plain' });
  expect(code).toBe(2);
  expect(output).toMatch(/KAFKA_SASL_USERNAME/);
  expect(output).toMatch(/KAFKA_SASL_PASSWORD/);
});

test('any other failure while starting (Postgres not there): exit 1', async () => {
  const { code, output } = await run(viewApi, { DATABASE_URL: 'postgres://postgres:postgres@127.0.0.1:1/sluice' });
  expect(code).toBe(1);
  expect(output).toMatch(/failed to start/);
});
