export { env, loadConfig, type Env, type EnvSchema } from './config';
export { ConfigError, RuntimeError, RUNTIME_ERROR_CODES, type ConfigIssue, type RuntimeErrorCode } from './errors';
export { kafkaClientConfig, kafkaEnvShape, type KafkaEnv } from './kafka';
