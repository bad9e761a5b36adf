import { once } from 'node:events';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express, { type ErrorRequestHandler, type Express, type RequestHandler } from 'express';
import { Histogram, type Registry } from 'prom-client';
import type { Logger } from './logger';

/** An error that becomes `{ "error": { code, message, details } }` with its HTTP status. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: unknown,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

export interface ErrorBody {
  error: { code: string; message: string; details?: unknown };
}

export function errorBody(code: string, message: string, details?: unknown): ErrorBody {
  return { error: details === undefined ? { code, message } : { code, message, details } };
}

/** A dependency the service needs to do its work; `/readyz` asks each one. */
export type ReadinessCheck = () => Promise<void>;

export interface HttpServerOptions {
  logger: Logger;
  metrics: Registry;
  port: number;
  host?: string;
  /** How long a readiness check may take before it counts as failed. @default 2000 */
  readinessTimeoutMs?: number;
  /**
   * At shutdown, how long the server keeps answering (not ready, every response
   * with `Connection: close`) before it stops listening, so that clients leave
   * their keep-alive connections instead of sending on one the server is closing. @default 500
   */
  drainDelayMs?: number;
}

export interface HttpServer {
  readonly app: Express;
  /** Registers a dependency for `/readyz`. */
  addReadinessCheck(name: string, check: ReadinessCheck): void;
  /** Runs when closing begins, after the drain delay: end long-lived responses (server-sent events) here. */
  beforeClose(hook: () => void): void;
  /** Starts listening; resolves with the bound port. */
  listen(): Promise<number>;
  /** Stops accepting, lets in-flight requests finish, then drops what is left. Runs once. */
  close(drainMs?: number): Promise<void>;
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * The express base of every service: `/healthz` (the process is alive),
 * `/readyz` (every registered dependency answers) and `/metrics`.
 * Routes added to `app` before `listen()` come before the 404 and error handlers.
 */
export function createHttpServer(options: HttpServerOptions): HttpServer {
  const app = express();
  app.disable('x-powered-by');
  const checks = new Map<string, ReadinessCheck>();
  const readinessTimeoutMs = options.readinessTimeoutMs ?? 2_000;
  let server: Server | undefined;
  let closing = false;

  const requestDuration = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'HTTP requests by method, route and status, with their duration',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [options.metrics],
  });
  app.use((req, res, next) => {
    // Decided when the headers go out, not when the request arrived: a response to a request
    // that came in before closing began must still tell the client to leave the connection,
    // or the client reuses it just as the server closes it (ECONNRESET on its next request).
    const writeHead = res.writeHead;
    res.writeHead = function (this: typeof res, ...args: Parameters<typeof writeHead>) {
      if (closing && !this.headersSent) this.setHeader('Connection', 'close');
      return writeHead.apply(this, args);
    } as typeof writeHead;
    const end = requestDuration.startTimer();
    res.once('finish', () => {
      // The matched route pattern, never the raw path: ids in paths would explode the label set.
      const route = req.route ? `${req.baseUrl}${String(req.route.path)}` : 'unmatched';
      end({ method: req.method, route, status: String(res.statusCode) });
    });
    next();
  });

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });

  app.get('/readyz', async (_req, res) => {
    if (closing) {
      res.status(503).json({ status: 'stopping', checks: {} });
      return;
    }
    const results: Record<string, { ok: boolean; error?: string }> = {};
    await Promise.all(
      [...checks].map(async ([name, check]) => {
        try {
          await withTimeout(check(), readinessTimeoutMs, name);
          results[name] = { ok: true };
        } catch (err) {
          results[name] = { ok: false, error: err instanceof Error ? err.message : String(err) };
        }
      }),
    );
    const ready = Object.values(results).every((r) => r.ok);
    res.status(ready ? 200 : 503).json({ status: ready ? 'ready' : 'not ready', checks: results });
  });

  app.get('/metrics', async (_req, res) => {
    res.setHeader('content-type', options.metrics.contentType);
    res.send(await options.metrics.metrics());
  });

  const notFound: RequestHandler = (req, _res, next) => {
    next(new HttpError(404, 'ROUTE_NOT_FOUND', `no route for ${req.method} ${req.path}`));
  };

  const onError: ErrorRequestHandler = (err: unknown, _req, res, _next) => {
    const httpError = toHttpError(err);
    if (httpError.status >= 500) options.logger.error({ err }, 'request failed');
    for (const [name, value] of Object.entries(httpError.headers)) res.setHeader(name, value);
    res.status(httpError.status).json(errorBody(httpError.code, httpError.message, httpError.details));
  };

  let closingOnce: Promise<void> | undefined;
  const closeHooks: (() => void)[] = [];
  const closeServer = async (drainMs: number): Promise<void> => {
    closing = true;
    const listening = server;
    if (!listening) return;
    await new Promise((resolve) => setTimeout(resolve, options.drainDelayMs ?? 500));
    for (const hook of closeHooks) hook();
    const closed = new Promise<void>((resolve) => listening.close(() => resolve()));
    // Keep-alive connections become idle as their in-flight requests finish: close each as it does.
    const closeIdle = setInterval(() => listening.closeIdleConnections(), 50);
    listening.closeIdleConnections();
    const drain = setTimeout(() => listening.closeAllConnections(), drainMs);
    await closed;
    clearInterval(closeIdle);
    clearTimeout(drain);
  };

  return {
    app,
    addReadinessCheck(name, check) {
      checks.set(name, check);
    },
    beforeClose(hook) {
      closeHooks.push(hook);
    },
    async listen() {
      app.use(notFound);
      app.use(onError);
      server = app.listen(options.port, options.host ?? '0.0.0.0');
      await once(server, 'listening');
      return (server.address() as AddressInfo).port;
    },
    close(drainMs = 5_000) {
      closingOnce ??= closeServer(drainMs);
      return closingOnce;
    },
  };
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * A body parser's `verify`: refuses a body that is not well-formed UTF-8 (the parser would turn the bad
 * bytes into U+FFFD, and what is stored would differ from what the client sent).
 */
export function verifyUtf8(_req: unknown, _res: unknown, body: Buffer): void {
  try {
    strictUtf8.decode(body);
  } catch {
    throw Object.assign(new Error('the request body is not well-formed UTF-8'), { status: 400, type: 'entity.encoding.invalid' });
  }
}

/** Maps what express and body parsers throw to stable error codes; anything unknown is a 500. */
export function toHttpError(err: unknown): HttpError {
  if (err instanceof HttpError) return err;
  const parserError = err as { type?: string; status?: number; message?: string };
  switch (parserError.type) {
    case 'entity.parse.failed':
      return new HttpError(400, 'REQUEST_BODY_INVALID_JSON', 'the request body is not valid JSON');
    case 'entity.encoding.invalid':
      return new HttpError(400, 'REQUEST_BODY_INVALID_UTF8', 'the request body is not well-formed UTF-8');
    case 'entity.too.large':
      return new HttpError(413, 'REQUEST_BODY_TOO_LARGE', 'the request body is larger than the limit');
    case 'encoding.unsupported':
    case 'charset.unsupported':
      return new HttpError(415, 'REQUEST_BODY_ENCODING_UNSUPPORTED', parserError.message ?? 'unsupported encoding');
    case 'request.aborted':
      return new HttpError(400, 'REQUEST_ABORTED', 'the client aborted the request');
    default:
      if (typeof parserError.status === 'number' && parserError.status >= 400 && parserError.status < 500) {
        return new HttpError(parserError.status, 'REQUEST_INVALID', parserError.message ?? 'bad request');
      }
      return new HttpError(500, 'INTERNAL', 'internal error');
  }
}
