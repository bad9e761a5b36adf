import type { Registry } from 'prom-client';
import { z } from 'zod';
import { ConfigError, env, loadConfig, type Env } from '@sluice/config';
import { serviceEnvShape } from './config';
import { createHttpServer, type HttpServer } from './http';
import { Lifecycle } from './lifecycle';
import { createLogger, type Logger } from './logger';
import { createMetricsRegistry } from './metrics';
import { startTracing } from './tracing';

type Shape = Record<string, z.ZodType>;

const baseShape = (defaultPort: number) => ({ ...serviceEnvShape, HTTP_PORT: env.port(defaultPort) });

export type BaseServiceConfig = z.infer<z.ZodObject<ReturnType<typeof baseShape>>>;

export type ServiceConfig<S extends Shape> = BaseServiceConfig & z.infer<z.ZodObject<S>>;

/** Loads the base and the service's own variables, reporting the problems of both at once. */
function loadServiceConfig<S extends Shape>(definition: ServiceDefinition<S>, source: Env): ServiceConfig<S> {
  const issues: ConfigError['issues'][number][] = [];
  const attempt = <T>(load: () => T): T | undefined => {
    try {
      return load();
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      issues.push(...err.issues);
      return undefined;
    }
  };
  const base = attempt(() => loadConfig(z.object(baseShape(definition.defaultPort)), source));
  const own = attempt(() => loadConfig(z.object(definition.envShape), source));
  if (issues.length > 0 || !base || !own) throw new ConfigError(issues);
  return { ...base, ...own } as ServiceConfig<S>;
}

export interface ServiceContext<S extends Shape> {
  readonly name: string;
  readonly config: ServiceConfig<S>;
  readonly logger: Logger;
  readonly metrics: Registry;
  readonly http: HttpServer;
  readonly lifecycle: Lifecycle;
}

export interface ServiceDefinition<S extends Shape> {
  /** The service's name: logs, metrics, traces and the Kafka client id use it. */
  name: string;
  /** Port of the health, metrics and API server when HTTP_PORT is not set. */
  defaultPort: number;
  /** The service's own environment variables. */
  envShape: S;
  /**
   * Wires the service: create resources, register each with
   * `lifecycle.onShutdown` right after it starts, add routes and readiness checks.
   */
  start(context: ServiceContext<S>): Promise<void>;
}

export interface RunOptions {
  env?: Env;
  /** Replaces process.exit, for tests. */
  exit?: (code: number) => void;
}

/**
 * Starts a service: validated config, logger, tracing, metrics, the HTTP base,
 * one signal owner. A bad config stops the process with exit code 2 and a
 * message naming each variable; a failure while starting shuts down what
 * already started and exits 1.
 */
export async function runService<S extends Shape>(
  definition: ServiceDefinition<S>,
  options: RunOptions = {},
): Promise<ServiceContext<S>> {
  const exit = options.exit ?? ((code: number) => process.exit(code));
  let config: ServiceConfig<S>;
  try {
    config = loadServiceConfig(definition, options.env ?? process.env);
  } catch (err) {
    if (err instanceof ConfigError) process.stderr.write(`${definition.name}: ${err.message}\n`);
    exit(2);
    throw err;
  }
  const logger = createLogger({ service: definition.name, level: config.LOG_LEVEL });
  const lifecycle = new Lifecycle({ logger, graceMs: config.SHUTDOWN_GRACE_MS, exit });
  lifecycle.installSignalHandlers();
  // A promise nobody awaited, or an exception nobody caught, leaves the process in a state nobody
  // planned for: log it with its context and exit non-zero, so the supervisor restarts a clean process
  // (exactly-once holds across the restart; a half-broken process could stall its partitions for good).
  process.on('unhandledRejection', (reason) => {
    logger.fatal({ err: reason }, 'unhandled promise rejection: exiting to be restarted');
    void lifecycle.shutdown('unhandledRejection', 1);
  });
  process.on('uncaughtException', (err, origin) => {
    logger.fatal({ err, origin }, 'uncaught exception: exiting to be restarted');
    void lifecycle.shutdown('uncaughtException', 1);
  });
  const tracing = startTracing({ service: definition.name, otlpEndpoint: config.OTEL_EXPORTER_OTLP_ENDPOINT });
  lifecycle.onShutdown('tracing', () => tracing.shutdown());
  const metrics = createMetricsRegistry(definition.name);
  const http = createHttpServer({ logger, metrics, port: config.HTTP_PORT, drainDelayMs: config.HTTP_DRAIN_DELAY_MS });
  const context: ServiceContext<S> = { name: definition.name, config, logger, metrics, http, lifecycle };
  try {
    await definition.start(context);
    // Registered last so that it closes first: no new request is accepted while the rest shuts down.
    lifecycle.onShutdown('http', () => http.close());
    const port = await http.listen();
    logger.info({ port, tracesExported: tracing.exporting }, 'started');
  } catch (err) {
    // A configuration error found while starting (a rule that spans several variables) exits like one found before.
    if (err instanceof ConfigError) process.stderr.write(`${definition.name}: ${err.message}\n`);
    logger.fatal({ err }, 'failed to start');
    await lifecycle.shutdown('start failed', err instanceof ConfigError ? 2 : 1);
  }
  return context;
}
