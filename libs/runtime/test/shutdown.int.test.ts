import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';

jest.setTimeout(30_000);

const fixture = join(__dirname, 'fixtures', 'slow-service.js');

interface Started {
  child: ChildProcess;
  port: number;
  output: () => string;
}

async function startFixture(env: Record<string, string>): Promise<Started> {
  const child = spawn(process.execPath, [fixture], { env: { ...process.env, HTTP_PORT: '0', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    const match = /"port":(\d+)[^\n]*"msg":"started"/.exec(output);
    if (match) return { child, port: Number(match[1]), output: () => output };
    if (child.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  child.kill('SIGKILL');
  throw new Error(`fixture did not start:\n${output}`);
}

async function exitOf(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null) return child.exitCode;
  const [code] = (await once(child, 'exit')) as [number | null];
  return code;
}

test('on SIGTERM a service finishes its in-flight request, closes its resources and exits 0 within its grace', async () => {
  const graceMs = 4000;
  const { child, port, output } = await startFixture({ SHUTDOWN_GRACE_MS: String(graceMs), SLOW_MS: '1000' });
  const inFlight = fetch(`http://127.0.0.1:${port}/slow`);
  await new Promise((r) => setTimeout(r, 200));
  const signalledAt = Date.now();
  child.kill('SIGTERM');

  const response = await inFlight;
  expect(response.status).toBe(200);
  expect(await response.json()).toEqual({ done: true });
  const code = await exitOf(child);
  expect(code).toBe(0);
  expect(Date.now() - signalledAt).toBeLessThan(graceMs);
  expect(output()).toContain('"msg":"stopped"');
});

test('once shutting down a service says it is not ready, asks clients to leave their connections, then refuses new ones', async () => {
  const { child, port } = await startFixture({ SHUTDOWN_GRACE_MS: '4000', SLOW_MS: '1500', HTTP_DRAIN_DELAY_MS: '500' });
  const inFlight = fetch(`http://127.0.0.1:${port}/slow`);
  await new Promise((r) => setTimeout(r, 200));
  child.kill('SIGTERM');
  await new Promise((r) => setTimeout(r, 100));
  const draining = await fetch(`http://127.0.0.1:${port}/readyz`);
  expect(draining.status).toBe(503);
  expect(draining.headers.get('connection')).toBe('close');
  await new Promise((r) => setTimeout(r, 800));
  await expect(fetch(`http://127.0.0.1:${port}/healthz`)).rejects.toThrow();
  // The request came in before the signal; its response still tells the client to leave the
  // connection, so the client never sends its next request on a socket the server is closing.
  const answered = await inFlight;
  expect(answered.status).toBe(200);
  expect(answered.headers.get('connection')).toBe('close');
  expect(await exitOf(child)).toBe(0);
});

test('a resource that never closes cannot hold the process past its grace deadline', async () => {
  const graceMs = 1500;
  const { child, output } = await startFixture({ SHUTDOWN_GRACE_MS: String(graceMs), CLOSE_MS: 'never' });
  const signalledAt = Date.now();
  child.kill('SIGTERM');
  const code = await exitOf(child);
  expect(code).toBe(1);
  expect(Date.now() - signalledAt).toBeGreaterThanOrEqual(graceMs - 50);
  expect(output()).toContain('shutdown passed its grace deadline');
});

test('a bad variable stops the service at start-up with exit code 2 and a message naming it', async () => {
  const child = spawn(process.execPath, [fixture], { env: { ...process.env, HTTP_PORT: 'eighty', SHUTDOWN_GRACE_MS: '5' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  expect(await exitOf(child)).toBe(2);
  expect(stderr).toContain('HTTP_PORT: must be a port number');
  expect(stderr).toContain('SHUTDOWN_GRACE_MS');
});
