import { env } from '@sluice/config';

/** Variables every service reads. */
export const serviceEnvShape = {
  LOG_LEVEL: env.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], 'info'),
  SHUTDOWN_GRACE_MS: env.int(10_000, { min: 100, max: 600_000 }),
  /** At shutdown, how long HTTP keeps answering with Connection: close before it stops listening. */
  HTTP_DRAIN_DELAY_MS: env.int(500, { min: 0, max: 60_000 }),
  OTEL_EXPORTER_OTLP_ENDPOINT: env.optionalString(),
};
