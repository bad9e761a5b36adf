import { kafkaClientConfig, type KafkaEnv } from './kafka';
import { ConfigError } from './errors';

const base: KafkaEnv = {
  KAFKA_BROKERS: ['127.0.0.1:9092'],
  KAFKA_SSL: false,
  KAFKA_SASL_MECHANISM: 'none',
  KAFKA_CONNECTION_TIMEOUT_MS: 3000,
  KAFKA_REQUEST_TIMEOUT_MS: 30000,
};

test('the client id defaults to the service name', () => {
  expect(kafkaClientConfig(base, 'enricher').clientId).toBe('enricher');
  expect(kafkaClientConfig({ ...base, KAFKA_CLIENT_ID: 'custom' }, 'enricher').clientId).toBe('custom');
});

test('SASL/SCRAM takes its mechanism, user and password from the environment', () => {
  const config = kafkaClientConfig(
    { ...base, KAFKA_SSL: true, KAFKA_SASL_MECHANISM: 'scram-sha-512', KAFKA_SASL_USERNAME: 'u', KAFKA_SASL_PASSWORD: 'p' },
    'svc',
  );
  expect(config.sasl).toEqual({ mechanism: 'scram-sha-512', username: 'u', password: 'p' });
  expect(config.ssl).toBe(true);
});

test('a SASL mechanism without credentials names the missing variables', () => {
  expect(() => kafkaClientConfig({ ...base, KAFKA_SASL_MECHANISM: 'scram-sha-256' }, 'svc')).toThrow(ConfigError);
  expect(() => kafkaClientConfig({ ...base, KAFKA_SASL_MECHANISM: 'plain', KAFKA_SASL_USERNAME: 'u' }, 'svc')).toThrow(/KAFKA_SASL_PASSWORD/);
});

test('a broker that is not host:port is refused', () => {
  expect(() => kafkaClientConfig({ ...base, KAFKA_BROKERS: ['localhost'] }, 'svc')).toThrow(/KAFKA_BROKERS: "localhost" is not host:port/);
});
