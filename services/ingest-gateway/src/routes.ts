import type { Encoder, ActivityEvent, CatalogItem } from '@sluice/contracts';
import { errorFactory, HttpError, injectTraceHeaders, verifyUtf8 } from '@sluice/runtime';
import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import type { IHeaders } from 'kafkajs';
import type { ApiKeys } from './api-keys';
import { presentedKey } from './api-keys';
import { ProduceError, type Ack, type ProduceBatcher } from './batcher';
import { GATEWAY_ERRORS } from './errors';
import type { GatewayMetrics } from './metrics';
import type { RateLimiter } from './rate-limit';
import { validateCatalogItem, validateEvents, type Limits } from './validation';

export interface GatewayDeps {
  events: { batcher: ProduceBatcher; encoder: Encoder<ActivityEvent> };
  catalog: { batcher: ProduceBatcher; encoder: Encoder<CatalogItem> };
  apiKeys: ApiKeys;
  rateLimiter: RateLimiter;
  limits: Limits;
  maxBodyBytes: number;
  maxInflightBodyBytes: number;
  ackTimeoutMs: number;
  retryAfterSec: number;
  metrics: GatewayMetrics;
  openApi: unknown;
}

const fail = errorFactory(GATEWAY_ERRORS);

/** Waits for Kafka's acknowledgement, but never longer than the request's deadline. */
async function acknowledged(submitted: Promise<Ack[]>, deps: GatewayDeps): Promise<Ack[]> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new ProduceError('KAFKA_ACK_TIMEOUT', `Kafka did not acknowledge within ${deps.ackTimeoutMs} ms`)), deps.ackTimeoutMs);
  });
  try {
    return await Promise.race([submitted, deadline]);
  } catch (err) {
    // Whatever happens to it later, the submission is no longer ours to report.
    submitted.catch(() => undefined);
    if (err instanceof ProduceError) throw fail(err.code, err.message, undefined, { 'Retry-After': String(deps.retryAfterSec) });
    throw err;
  } finally {
    clearTimeout(timer);
  }
}

/** Kafka headers of one produced record: the W3C trace context of the request. */
function traceHeaders(): IHeaders {
  return injectTraceHeaders({}) as IHeaders;
}

export function gatewayRoutes(deps: GatewayDeps): Router {
  const router = express.Router();

  router.get('/openapi.json', (_req, res) => {
    res.json(deps.openApi);
  });

  const authenticate = (req: Request, res: Response, next: NextFunction) => {
    if (deps.apiKeys.open) {
      res.locals.client = req.ip ?? 'anonymous';
      next();
      return;
    }
    const id = deps.apiKeys.match(presentedKey(req.headers));
    if (!id) {
      next(fail('UNAUTHORIZED', 'a valid API key is required: Authorization: Bearer <key> or X-API-Key'));
      return;
    }
    res.locals.client = id;
    next();
  };

  const requireJson = (req: Request, _res: Response, next: NextFunction) => {
    const type = req.headers['content-type'] ?? '';
    if (!/^application\/([a-z0-9.+-]*\+)?json\s*(;|$)/i.test(type)) {
      next(fail('UNSUPPORTED_MEDIA_TYPE', `the body must be application/json, not ${JSON.stringify(type || '(none)')}`));
      return;
    }
    next();
  };

  // Bodies held at once are bounded like the events waiting for Kafka: a request past the bound is refused
  // before its body is read, and its share is given back when it is answered (or its connection closes).
  let inflightBodyBytes = 0;
  const bodyBudget = (req: Request, res: Response, next: NextFunction) => {
    const declared = Number(req.headers['content-length']);
    const bytes = Number.isSafeInteger(declared) && declared >= 0 ? Math.min(declared, deps.maxBodyBytes) : deps.maxBodyBytes;
    if (inflightBodyBytes > 0 && inflightBodyBytes + bytes > deps.maxInflightBodyBytes) {
      next(fail('OVERLOADED', 'too many request bodies are being handled; try again shortly', undefined, { 'Retry-After': String(deps.retryAfterSec) }));
      return;
    }
    inflightBodyBytes += bytes;
    deps.metrics.inflightBodyBytes.set(inflightBodyBytes);
    res.once('close', () => {
      inflightBodyBytes -= bytes;
      deps.metrics.inflightBodyBytes.set(inflightBodyBytes);
    });
    next();
  };

  const json = express.json({ limit: deps.maxBodyBytes, strict: false, type: () => true, verify: verifyUtf8 });

  router.post('/v1/events', authenticate, requireJson, bodyBudget, json, async (req, res) => {
    const checked = validateEvents(req.body, deps.limits);
    if ('problems' in checked) {
      deps.metrics.eventsRejected.inc({ reason: 'invalid' });
      throw fail('INVALID_EVENTS', `${checked.problems.length} problem(s) in the request; nothing was produced`, checked.problems);
    }
    const { events } = checked;
    const limit = deps.rateLimiter.take(String(res.locals.client), events.length, Date.now());
    if (!limit.allowed) {
      deps.metrics.eventsRejected.inc({ reason: 'rate_limited' }, events.length);
      throw fail('RATE_LIMITED', 'too many events for this API key', undefined, { 'Retry-After': String(limit.retryAfterSec) });
    }
    const headers = traceHeaders();
    let acks: Ack[];
    try {
      acks = await acknowledged(
        deps.events.batcher.submit(events.map((e) => ({ key: e.entityId, value: deps.events.encoder.encode(e), headers }))),
        deps,
      );
    } catch (err) {
      deps.metrics.eventsRejected.inc({ reason: err instanceof HttpError ? err.code.toLowerCase() : 'error' }, events.length);
      throw err;
    }
    deps.metrics.eventsAccepted.inc(events.length);
    res.status(202).json({ accepted: events.length, results: events.map((e, i) => ({ eventId: e.eventId, ...acks[i]! })) });
  });

  router.put('/v1/catalog/:entityId', authenticate, requireJson, bodyBudget, json, async (req, res) => {
    const entityId = String(req.params.entityId);
    const checked = validateCatalogItem(entityId, req.body, Date.now(), deps.limits);
    if ('problems' in checked) throw fail('INVALID_CATALOG_ITEM', `${checked.problems.length} problem(s) in the catalog item`, checked.problems);
    const [ack] = await acknowledged(deps.catalog.batcher.submit([{ key: entityId, value: deps.catalog.encoder.encode(checked.item), headers: traceHeaders() }]), deps);
    res.json({ entityId, ...ack! });
  });

  router.delete('/v1/catalog/:entityId', authenticate, async (req, res) => {
    const entityId = String(req.params.entityId);
    const [ack] = await acknowledged(deps.catalog.batcher.submit([{ key: entityId, value: null, headers: traceHeaders() }]), deps);
    res.json({ entityId, deleted: true, ...ack! });
  });

  return router;
}
