import { readFileSync } from 'node:fs';
import type { KafkaConfig, SASLOptions } from 'kafkajs';
import { env } from './config';
import { ConfigError } from './errors';

/** Environment variables of the Kafka client; defaults fit the local stack. */
export const kafkaEnvShape = {
  KAFKA_BROKERS: env.list('127.0.0.1:9092'),
  KAFKA_CLIENT_ID: env.optionalString(),
  KAFKA_SSL: env.bool(false),
  KAFKA_SSL_CA_FILE: env.optionalString(),
  KAFKA_SASL_MECHANISM: env.enum(['none', 'plain', 'scram-sha-256', 'scram-sha-512'], 'none'),
  KAFKA_SASL_USERNAME: env.optionalString(),
  KAFKA_SASL_PASSWORD: env.optionalString(),
  KAFKA_CONNECTION_TIMEOUT_MS: env.int(3_000, { min: 100 }),
  KAFKA_REQUEST_TIMEOUT_MS: env.int(30_000, { min: 100 }),
};

export interface KafkaEnv {
  KAFKA_BROKERS: string[];
  KAFKA_CLIENT_ID?: string | undefined;
  KAFKA_SSL: boolean;
  KAFKA_SSL_CA_FILE?: string | undefined;
  KAFKA_SASL_MECHANISM: 'none' | 'plain' | 'scram-sha-256' | 'scram-sha-512';
  KAFKA_SASL_USERNAME?: string | undefined;
  KAFKA_SASL_PASSWORD?: string | undefined;
  KAFKA_CONNECTION_TIMEOUT_MS: number;
  KAFKA_REQUEST_TIMEOUT_MS: number;
}

/** Compiles the Kafka variables into a kafkajs config; checks the rules that span several variables. */
export function kafkaClientConfig(config: KafkaEnv, defaultClientId: string): KafkaConfig {
  if (config.KAFKA_BROKERS.length === 0) {
    throw new ConfigError([{ variable: 'KAFKA_BROKERS', problem: 'must name at least one host:port' }]);
  }
  const badBroker = config.KAFKA_BROKERS.find((b) => !/^[^\s:]+:\d{1,5}$/.test(b));
  if (badBroker) {
    throw new ConfigError([{ variable: 'KAFKA_BROKERS', problem: `"${badBroker}" is not host:port` }]);
  }
  let sasl: SASLOptions | undefined;
  if (config.KAFKA_SASL_MECHANISM !== 'none') {
    const missing = (['KAFKA_SASL_USERNAME', 'KAFKA_SASL_PASSWORD'] as const).filter((v) => !config[v]);
    if (missing.length > 0) {
      throw new ConfigError(
        missing.map((variable) => ({ variable, problem: `required when KAFKA_SASL_MECHANISM=${config.KAFKA_SASL_MECHANISM}` })),
      );
    }
    sasl = {
      mechanism: config.KAFKA_SASL_MECHANISM,
      username: config.KAFKA_SASL_USERNAME!,
      password: config.KAFKA_SASL_PASSWORD!,
    } as SASLOptions;
  }
  const ssl = config.KAFKA_SSL
    ? config.KAFKA_SSL_CA_FILE
      ? { ca: [readFileSync(config.KAFKA_SSL_CA_FILE, 'utf8')] }
      : true
    : undefined;
  return {
    clientId: config.KAFKA_CLIENT_ID ?? defaultClientId,
    brokers: config.KAFKA_BROKERS,
    connectionTimeout: config.KAFKA_CONNECTION_TIMEOUT_MS,
    requestTimeout: config.KAFKA_REQUEST_TIMEOUT_MS,
    ...(ssl !== undefined ? { ssl } : {}),
    ...(sasl ? { sasl } : {}),
  };
}
