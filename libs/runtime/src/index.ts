export { env, loadConfig, serviceEnvShape, type Env, type EnvSchema } from './config';
export { ConfigError, RuntimeError, RUNTIME_ERROR_CODES, type ConfigIssue, type RuntimeErrorCode } from './errors';
export { createHttpServer, errorBody, HttpError, toHttpError, type ErrorBody, type HttpServer, type ReadinessCheck } from './http';
export { createKafka, kafkaClientConfig, kafkaEnvShape, type KafkaEnv } from './kafka';
export { closeOnce, Lifecycle, type LifecycleOptions, type LifecycleState } from './lifecycle';
export { createLogger, type Logger } from './logger';
export { createMetricsRegistry } from './metrics';
export { runService, type RunOptions, type ServiceConfig, type ServiceContext, type ServiceDefinition } from './service';
export { extractTraceContext, injectTraceHeaders, startTracing, type KafkaHeaders, type Tracing } from './tracing';
