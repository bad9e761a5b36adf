import { z } from 'zod';
import { env, loadConfig } from './config';
import { ConfigError } from './errors';

const schema = z.object({
  HTTP_PORT: env.port(8080),
  KAFKA_BROKERS: env.list('127.0.0.1:9092'),
  DEBUG_SQL: env.bool(false),
  MODE: env.enum(['fast', 'safe'], 'safe'),
  API_URL: env.url(),
});

test('defaults fill what the environment leaves unset', () => {
  const config = loadConfig(schema, { API_URL: 'http://x.test' });
  expect(config).toEqual({ HTTP_PORT: 8080, KAFKA_BROKERS: ['127.0.0.1:9092'], DEBUG_SQL: false, MODE: 'safe', API_URL: 'http://x.test' });
});

test('values are coerced from their text', () => {
  const config = loadConfig(schema, { HTTP_PORT: '9000', KAFKA_BROKERS: 'a:1, b:2', DEBUG_SQL: 'yes', MODE: 'fast', API_URL: 'http://y.test' });
  expect(config.HTTP_PORT).toBe(9000);
  expect(config.KAFKA_BROKERS).toEqual(['a:1', 'b:2']);
  expect(config.DEBUG_SQL).toBe(true);
  expect(config.MODE).toBe('fast');
});

test('an empty variable counts as unset', () => {
  expect(loadConfig(schema, { HTTP_PORT: '', API_URL: 'http://x.test' }).HTTP_PORT).toBe(8080);
});

test('every bad or missing variable is named in one error', () => {
  let error: unknown;
  try {
    loadConfig(schema, { HTTP_PORT: '70000', DEBUG_SQL: 'maybe', MODE: 'turbo' });
  } catch (err) {
    error = err;
  }
  expect(error).toBeInstanceOf(ConfigError);
  const configError = error as ConfigError;
  expect(configError.code).toBe('RUNTIME_CONFIG_INVALID');
  expect(configError.issues.map((i) => i.variable).sort()).toEqual(['API_URL', 'DEBUG_SQL', 'HTTP_PORT', 'MODE']);
  expect(configError.message).toContain('HTTP_PORT: must be a port number from 0 to 65535');
  expect(configError.message).toContain('MODE: must be one of fast, safe');
});

test('a whole number out of its range is told its range', () => {
  const bounded = z.object({ CONCURRENCY: env.int(16, { min: 1, max: 64 }), SIZE: env.int(5, { min: 1 }) });
  const issues = (values: Record<string, string>) => {
    try {
      loadConfig(bounded, values);
      return [];
    } catch (err) {
      return (err as ConfigError).issues.map((i) => `${i.variable}: ${i.problem}`);
    }
  };
  expect(issues({ CONCURRENCY: '96' })).toEqual(['CONCURRENCY: must be a whole number from 1 to 64']);
  expect(issues({ CONCURRENCY: '1.5', SIZE: '0' })).toEqual(['CONCURRENCY: must be a whole number', 'SIZE: must be a whole number of at least 1']);
  expect(issues({ CONCURRENCY: 'many' })).toEqual(['CONCURRENCY: must be a whole number']);
});
