import { errorFactory, type HttpError } from '@sluice/runtime';
import express, { type Request, type Router } from 'express';
import type { LiveUpdates } from './live';
import { encodeCursor, EVENT_ID, parseAggregatesQuery, parseStreamQuery, parseTopQuery, type ParameterProblem } from './query';
import type { ViewStore } from './store';
import type { TopCache } from './top-cache';
import { Counter, type Registry } from 'prom-client';

export const VIEW_ERRORS = {
  INVALID_PARAMETER: { status: 400, description: 'A query parameter is missing, unknown or malformed; details lists each one.' },
  ROUTE_NOT_FOUND: { status: 404, description: 'No such route.' },
} as const;

const fail = errorFactory(VIEW_ERRORS);

function invalid(problems: ParameterProblem[]): HttpError {
  return fail('INVALID_PARAMETER', `${problems.length} invalid query parameter(s)`, problems);
}

/** The Last-Event-ID header of a reconnecting EventSource, checked as the `lastEventId` parameter is. */
function lastEventIdHeader(req: Request): bigint | undefined | ParameterProblem {
  const raw = req.header('last-event-id');
  if (raw === undefined) return undefined;
  return EVENT_ID.test(raw) ? BigInt(raw) : { parameter: 'Last-Event-ID', message: 'must be an event id from this stream' };
}

export function viewRoutes(deps: { store: ViewStore; live: LiveUpdates; topCache: TopCache; metrics: Registry; maxLimit: number; openApi: unknown }): Router {
  const router = express.Router();
  const topAnswers = new Counter({ name: 'view_top_requests_total', help: 'GET /v1/top answers, by whether a kept answer served them', labelNames: ['cache'], registers: [deps.metrics] });
  router.get('/openapi.json', (_req, res) => {
    res.json(deps.openApi);
  });

  // Express answers 304 to a matching If-None-Match: the ETag is a hash of the JSON body.
  router.get('/v1/aggregates', async (req, res) => {
    const parsed = parseAggregatesQuery(req.query as Record<string, unknown>, deps.maxLimit);
    if ('problems' in parsed) throw invalid(parsed.problems);
    const page = await deps.store.aggregates(parsed.query);
    res.json({ windows: page.windows, nextCursor: page.next ? encodeCursor(page.next) : null });
  });

  router.get('/v1/top', async (req, res) => {
    const parsed = parseTopQuery(req.query as Record<string, unknown>, deps.maxLimit, Date.now());
    if ('problems' in parsed) throw invalid(parsed.problems);
    const { query } = parsed;
    const { rows, cached } = await deps.topCache.get(query, () => deps.store.top(query));
    topAnswers.inc({ cache: cached ? 'hit' : 'miss' });
    res.json({
      dimension: query.dimension,
      metric: query.metric,
      from: new Date(query.from).toISOString(),
      to: new Date(query.to).toISOString(),
      top: rows,
    });
  });

  router.get('/v1/stream', async (req, res) => {
    const parsed = parseStreamQuery(req.query as Record<string, unknown>);
    const header = lastEventIdHeader(req);
    const problems = [...('problems' in parsed ? parsed.problems : []), ...(typeof header === 'object' ? [header] : [])];
    if (problems.length > 0 || !('query' in parsed)) throw invalid(problems);
    const { filter, since } = parsed.query;
    const after = typeof header === 'bigint' ? header : since;
    await deps.live.open(res, filter, after, (from) => deps.store.changesSince(from, filter, 1_000));
  });
  return router;
}
