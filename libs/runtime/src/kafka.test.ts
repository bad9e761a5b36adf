import { ConfigError, kafkaClientConfig, type KafkaEnv } from '@sluice/config';
import { isTransientKafkaError } from './kafka';

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

describe('isTransientKafkaError', () => {
  // The error classes kafkajs itself throws, built as kafkajs builds them.
  const {
    KafkaJSConnectionError,
    KafkaJSNumberOfRetriesExceeded,
    KafkaJSProtocolError,
    KafkaJSNonRetriableError,
    KafkaJSGroupCoordinatorNotFound,
  } = jest.requireActual<Record<'KafkaJSConnectionError' | 'KafkaJSNumberOfRetriesExceeded' | 'KafkaJSProtocolError' | 'KafkaJSNonRetriableError' | 'KafkaJSGroupCoordinatorNotFound', new (...args: unknown[]) => Error>>('kafkajs');
  const notLeader = new KafkaJSProtocolError({ type: 'NOT_LEADER_OR_FOLLOWER', code: 6, retriable: true, message: 'not the leader' });
  const tooLarge = new KafkaJSProtocolError({ type: 'MESSAGE_TOO_LARGE', code: 10, retriable: false, message: 'too large' });

  test('a broker that cannot answer now is transient: a lost connection, a moving leader, no coordinator yet', () => {
    expect(isTransientKafkaError(new KafkaJSConnectionError('Connection error: ECONNREFUSED'))).toBe(true);
    expect(isTransientKafkaError(notLeader)).toBe(true);
    expect(isTransientKafkaError(new KafkaJSGroupCoordinatorNotFound('no coordinator'))).toBe(true);
  });

  test('a call whose retries ran out is judged by the error that made them run out', () => {
    expect(isTransientKafkaError(new KafkaJSNumberOfRetriesExceeded(notLeader, { retryCount: 5, retryTime: 100 }))).toBe(true);
    expect(isTransientKafkaError(new KafkaJSNumberOfRetriesExceeded(tooLarge, { retryCount: 5, retryTime: 100 }))).toBe(false);
  });

  test('a request the broker refuses for what it is, and errors that are not kafkajs errors, are not transient', () => {
    expect(isTransientKafkaError(tooLarge)).toBe(false);
    expect(isTransientKafkaError(new KafkaJSNonRetriableError('invalid'))).toBe(false);
    expect(isTransientKafkaError(new Error('ECONNREFUSED'))).toBe(false);
    expect(isTransientKafkaError(undefined)).toBe(false);
  });
});
