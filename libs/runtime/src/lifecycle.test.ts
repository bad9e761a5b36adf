import pino from 'pino';
import { closeOnce, Lifecycle } from './lifecycle';

const logger = pino({ level: 'silent' });

afterEach(() => {
  jest.useRealTimers();
});

test('resources close in the reverse of their registration order', async () => {
  const closed: string[] = [];
  const exit = jest.fn();
  const lifecycle = new Lifecycle({ logger, exit });
  for (const name of ['pool', 'producer', 'consumer', 'http']) lifecycle.onShutdown(name, () => void closed.push(name));
  await lifecycle.shutdown('test');
  expect(closed).toEqual(['http', 'consumer', 'producer', 'pool']);
  expect(exit).toHaveBeenCalledWith(0);
  expect(lifecycle.state).toBe('stopped');
});

test('shutdown runs once however often it is asked for', async () => {
  const close = jest.fn();
  const exit = jest.fn();
  const lifecycle = new Lifecycle({ logger, exit });
  lifecycle.onShutdown('producer', close);
  await Promise.all([lifecycle.shutdown('SIGTERM'), lifecycle.shutdown('SIGINT'), lifecycle.shutdown('SIGTERM')]);
  expect(close).toHaveBeenCalledTimes(1);
  expect(exit).toHaveBeenCalledTimes(1);
});

test('a failing close does not stop the others, and the exit code says it failed', async () => {
  const closed: string[] = [];
  const exit = jest.fn();
  const lifecycle = new Lifecycle({ logger, exit });
  lifecycle.onShutdown('pool', () => void closed.push('pool'));
  lifecycle.onShutdown('producer', () => {
    throw new Error('broker gone');
  });
  await lifecycle.shutdown('test');
  expect(closed).toEqual(['pool']);
  expect(exit).toHaveBeenCalledWith(1);
  expect(lifecycle.state).toBe('failed');
});

test('a close that hangs past the grace deadline ends the process with code 1', async () => {
  jest.useFakeTimers();
  const exit = jest.fn();
  const lifecycle = new Lifecycle({ logger, exit, graceMs: 5_000 });
  lifecycle.onShutdown('stuck', () => new Promise<void>(() => undefined));
  void lifecycle.shutdown('test');
  await jest.advanceTimersByTimeAsync(4_999);
  expect(exit).not.toHaveBeenCalled();
  await jest.advanceTimersByTimeAsync(1);
  expect(exit).toHaveBeenCalledWith(1);
  expect(lifecycle.state).toBe('failed');
});

test('closeOnce returns the first call’s promise to every caller', async () => {
  let calls = 0;
  const close = closeOnce(async () => {
    calls += 1;
  });
  await Promise.all([close(), close()]);
  await close();
  expect(calls).toBe(1);
});
