import { createHash, timingSafeEqual } from 'node:crypto';
import type { Serde } from '@sluice/contracts';
import { errorFactory, type Logger } from '@sluice/runtime';
import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import { csvHeader, csvLine } from './export';
import { parseFilter, verdictFor, type DeadLetterFilter } from './filter';
import { printable, ReplayConflict, type DeadLetter, type ReplayerStore } from './store';
import type { PartitionLag } from '@sluice/streams';
import type { ReplayWorker } from './worker';

export const ADMIN_ERRORS = {
  INVALID_REQUEST: { status: 400, description: 'The body is not what the route takes.' },
  UNAUTHORIZED: { status: 401, description: 'No bearer token, or a wrong one.' },
  NOT_FOUND: { status: 404, description: 'No such dead letter or replay.' },
  REPLAY_CONFLICT: { status: 409, description: 'Some selected records are already in a running replay.' },
  NOT_PENDING: { status: 409, description: 'Only a pending dead letter can be discarded.' },
  INVALID_FILTER: { status: 422, description: 'The filter, the ids or the target topic are not acceptable; details names each problem.' },
} as const;

const fail = errorFactory(ADMIN_ERRORS);
const digest = (v: string) => createHash('sha256').update(v).digest();

export interface AdminDeps {
  store: ReplayerStore;
  worker: ReplayWorker;
  serde: Serde;
  logger: Logger;
  token: string;
  allowedTopics: string[];
  maxReplays: number;
  defaultRatePerSec: number;
  partitionsOf: (topic: string) => Promise<number>;
  partitionFor: (topic: string, key: Buffer | null, partitions: number, id: string) => number;
  openApi: unknown;
  /** The stages' consumer lag as last read from Kafka. */
  lag: () => readonly PartitionLag[];
}

function summary(d: DeadLetter) {
  return {
    id: d.id,
    sourceTopic: d.sourceTopic,
    sourcePartition: d.sourcePartition,
    sourceOffset: d.sourceOffset,
    // Escaped where the bytes are not text (a NUL, bytes that are not UTF-8); keyBase64 is exact.
    key: d.key ? printable(d.key).text : null,
    keyBase64: d.key?.toString('base64') ?? null,
    errorCode: d.errorCode,
    errorMessage: d.errorMessage,
    stage: d.stage,
    failedAt: d.failedAt,
    status: d.status,
    replayCount: d.replayCount,
    lastReplayId: d.lastReplayId,
  };
}

export function adminRoutes(deps: AdminDeps): Router {
  const router = express.Router();
  const expected = digest(deps.token);

  router.get('/openapi.json', (_req, res) => {
    res.json(deps.openApi);
  });

  // Every admin route needs the bearer token, compared in constant time.
  router.use('/admin', (req: Request, res: Response, next: NextFunction) => {
    const header = req.header('authorization') ?? '';
    const presented = /^Bearer\s+/i.test(header) ? header.replace(/^Bearer\s+/i, '') : '';
    if (!timingSafeEqual(digest(presented), expected)) {
      next(fail('UNAUTHORIZED', 'a valid bearer token is required'));
      return;
    }
    res.locals.actor = req.header('x-operator') ?? 'admin';
    next();
  });
  router.use('/admin', express.json({ limit: '1mb' }));

  const audit = async (res: Response, action: string, target: string | undefined, count: number | undefined, details?: unknown) => {
    const entry = { actor: String(res.locals.actor), action, target, count, details };
    deps.logger.info({ audit: entry }, `admin: ${action}`);
    await deps.store.audit(entry);
  };

  router.get('/admin/dlq', async (req, res) => {
    const { limit: rawLimit, cursor, ...rest } = req.query as Record<string, unknown>;
    const parsed = parseFilter(rest);
    const problems = 'problems' in parsed ? [...parsed.problems] : [];
    const limit = rawLimit === undefined ? 100 : Number(rawLimit);
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) problems.push({ field: 'limit', message: 'must be a whole number from 1 to 1000' });
    if (cursor !== undefined && (typeof cursor !== 'string' || !/^\d{1,18}$/.test(cursor))) problems.push({ field: 'cursor', message: 'is not a cursor from this API' });
    if (problems.length > 0 || !('filter' in parsed)) throw fail('INVALID_FILTER', 'the filter is not valid', problems);
    const rows = await deps.store.list(parsed.filter, limit + 1, cursor as string | undefined);
    const page = rows.slice(0, limit);
    res.json({ deadLetters: page.map(summary), nextCursor: rows.length > limit ? page[page.length - 1]!.id : null });
  });

  router.get('/admin/overview', async (_req, res) => {
    res.json({ ...(await deps.store.overview(24)), lag: deps.lag() });
  });

  router.get('/admin/audit', async (req, res) => {
    const { limit: rawLimit, before } = req.query as Record<string, unknown>;
    const limit = rawLimit === undefined ? 100 : Number(rawLimit);
    const problems = [];
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) problems.push({ field: 'limit', message: 'must be a whole number from 1 to 1000' });
    if (before !== undefined && (typeof before !== 'string' || !/^\d{1,18}$/.test(before))) problems.push({ field: 'before', message: 'is not a cursor from this API' });
    if (problems.length > 0) throw fail('INVALID_FILTER', 'the query is not valid', problems);
    const rows = await deps.store.auditLog(limit + 1, before as string | undefined);
    const page = rows.slice(0, limit);
    res.json({ entries: page, nextCursor: rows.length > limit ? page[page.length - 1]!.id : null });
  });

  // Everything matching a filter, streamed page by page: JSON Lines (each line as /admin/dlq lists it,
  // plus headers, and the value when `payload=true`) or CSV.
  router.get('/admin/dlq/export', async (req, res) => {
    const { format = 'jsonl', payload = 'false', ...rest } = req.query as Record<string, unknown>;
    const parsed = parseFilter(rest);
    const problems = 'problems' in parsed ? [...parsed.problems] : [];
    if (format !== 'jsonl' && format !== 'csv') problems.push({ field: 'format', message: 'must be jsonl or csv' });
    if (payload !== 'true' && payload !== 'false') problems.push({ field: 'payload', message: 'must be true or false' });
    if (problems.length > 0 || !('filter' in parsed)) throw fail('INVALID_FILTER', 'the export request is not valid', problems);
    const withPayload = payload === 'true';
    const stamp = new Date().toISOString().replace(/[:.]/g, '-');
    res.set({
      'content-type': format === 'csv' ? 'text/csv; charset=utf-8' : 'application/x-ndjson; charset=utf-8',
      'content-disposition': `attachment; filename="dead-letters-${stamp}.${format}"`,
    });
    if (format === 'csv') res.write(csvHeader(withPayload));
    let count = 0;
    for (let after: string | undefined; ; ) {
      const rows = await deps.store.list(parsed.filter, 1000, after);
      for (const d of rows) {
        const row = { ...summary(d), headers: d.headers, ...(withPayload ? { valueBase64: d.value?.toString('base64') ?? null } : {}) };
        res.write(format === 'csv' ? csvLine(row, withPayload) : `${JSON.stringify(row)}\n`);
      }
      count += rows.length;
      if (rows.length < 1000) break;
      after = rows[rows.length - 1]!.id;
    }
    await audit(res, 'dead-letters.export', undefined, count, { filter: rest, format, payload: withPayload });
    res.end();
  });

  router.get('/admin/dlq/replays/:id', async (req, res) => {
    const replay = /^[0-9a-f-]{36}$/.test(req.params.id) ? await deps.store.replay(req.params.id) : undefined;
    if (!replay) throw fail('NOT_FOUND', `no replay ${req.params.id}`);
    res.json(replay);
  });

  router.get('/admin/dlq/:id', async (req, res) => {
    const d = /^\d{1,18}$/.test(req.params.id) ? await deps.store.get(req.params.id) : undefined;
    if (!d) throw fail('NOT_FOUND', `no dead letter ${req.params.id}`);
    let decoded: unknown = null;
    let decodeError: string | null = null;
    try {
      decoded = (await deps.serde.decodeAny(d.value)).value;
    } catch (err) {
      decodeError = err instanceof Error ? err.message : String(err);
    }
    res.json({ ...summary(d), headers: d.headers, valueBase64: d.value?.toString('base64') ?? null, decoded, decodeError, discardReason: d.discardReason, history: await deps.store.history(d.id) });
  });

  router.post('/admin/dlq/replays', async (req, res) => {
    const body = req.body as Record<string, unknown> | undefined;
    if (!body || typeof body !== 'object' || Array.isArray(body)) throw fail('INVALID_REQUEST', 'the body must be a JSON object');
    const problems: { field: string; message: string }[] = [];
    const known = ['ids', 'filter', 'dryRun', 'ratePerSec', 'targetTopic', 'force'];
    for (const k of Object.keys(body)) if (!known.includes(k)) problems.push({ field: k, message: 'is not a field of a replay request' });
    let ids: string[] | undefined;
    let filter: DeadLetterFilter | undefined;
    if (body.ids !== undefined) {
      if (!Array.isArray(body.ids) || body.ids.length === 0 || body.ids.length > 10_000 || !body.ids.every((i) => /^\d{1,18}$/.test(String(i)))) {
        problems.push({ field: 'ids', message: 'must be a non-empty list of dead-letter ids' });
      } else ids = body.ids.map(String);
    }
    if (body.filter !== undefined) {
      const parsed = parseFilter(body.filter);
      if ('problems' in parsed) problems.push(...parsed.problems.map((p) => ({ ...p, field: `filter.${p.field}` })));
      else filter = parsed.filter;
    }
    if ((ids === undefined) === (filter === undefined) && !problems.some((p) => p.field.startsWith('filter') || p.field === 'ids')) {
      problems.push({ field: 'ids', message: 'give either ids or a filter' });
    }
    const ratePerSec = body.ratePerSec === undefined ? deps.defaultRatePerSec : Number(body.ratePerSec);
    if (!Number.isInteger(ratePerSec) || ratePerSec < 1 || ratePerSec > 100_000) problems.push({ field: 'ratePerSec', message: 'must be a whole number from 1 to 100000' });
    const targetTopic = body.targetTopic === undefined ? undefined : String(body.targetTopic);
    if (targetTopic !== undefined && !deps.allowedTopics.includes(targetTopic)) problems.push({ field: 'targetTopic', message: `must be one of ${deps.allowedTopics.join(', ')}` });
    const force = body.force === true;
    const dryRun = body.dryRun === true;
    if (problems.length > 0) throw fail('INVALID_FILTER', 'the replay request is not valid', problems);

    const candidates = await deps.store.selectForReplay(ids, filter, 10_000);
    if (ids && candidates.length < ids.length) {
      const found = new Set(candidates.map((c) => c.id));
      throw fail('INVALID_FILTER', 'some ids are not dead letters', ids.filter((i) => !found.has(i)).map((i) => ({ field: 'ids', message: `no dead letter ${i}` })));
    }
    const selected: { deadLetter: DeadLetter; target: string }[] = [];
    const skipped: { id: string; reason: string }[] = [];
    const refused: { id: string; reason: string }[] = [];
    for (const d of candidates) {
      const target = targetTopic ?? d.sourceTopic;
      const verdict = verdictFor(d, { force, maxReplays: deps.maxReplays });
      if (verdict.verdict === 'skipped') skipped.push({ id: d.id, reason: verdict.reason! });
      else if (verdict.verdict === 'refused') refused.push({ id: d.id, reason: verdict.reason! });
      else if (!deps.allowedTopics.includes(target)) refused.push({ id: d.id, reason: `topic ${target} is not on the allow-list` });
      else selected.push({ deadLetter: d, target });
    }
    if (dryRun) {
      await audit(res, 'replay.dry-run', undefined, selected.length, { ids, filter, targetTopic, force });
      res.json({
        dryRun: true,
        selected: selected.length,
        skipped,
        refused,
        records: selected.slice(0, 1000).map((s) => ({ ...summary(s.deadLetter), targetTopic: s.target })),
      });
      return;
    }
    const items = [];
    for (const s of selected) {
      const partitions = await deps.partitionsOf(s.target);
      items.push({ deadLetterId: s.deadLetter.id, targetTopic: s.target, targetPartition: deps.partitionFor(s.target, s.deadLetter.key, partitions, s.deadLetter.id) });
    }
    let replayId: string;
    try {
      replayId = await deps.store.createReplay({ requestedBy: String(res.locals.actor), request: body, ratePerSec, targetTopic, force, items, refused: refused.length });
    } catch (err) {
      if (err instanceof ReplayConflict) throw fail('REPLAY_CONFLICT', err.message, { ids: err.ids });
      throw err;
    }
    await audit(res, 'replay.start', replayId, selected.length, { ids, filter, targetTopic, force, ratePerSec, skipped: skipped.length, refused: refused.length });
    deps.worker.poke();
    res.status(202).json({ replayId, selected: selected.length, skipped, refused });
  });

  router.post('/admin/dlq/replays/:id/cancel', async (req, res) => {
    const replay = /^[0-9a-f-]{36}$/.test(req.params.id) ? await deps.store.replay(req.params.id) : undefined;
    if (!replay) throw fail('NOT_FOUND', `no replay ${req.params.id}`);
    const cancelled = await deps.store.setReplayStatus(replay.id, 'cancelled');
    await audit(res, 'replay.cancel', replay.id, undefined, { wasRunning: cancelled });
    res.json(await deps.store.replay(replay.id));
  });

  router.post('/admin/dlq/:id/discard', async (req, res) => {
    const reason = (req.body as { reason?: unknown } | undefined)?.reason;
    if (typeof reason !== 'string' || reason.trim().length === 0 || reason.length > 1000) throw fail('INVALID_REQUEST', 'a reason (1 to 1000 characters) is required');
    if (!/^\d{1,18}$/.test(req.params.id)) throw fail('NOT_FOUND', `no dead letter ${req.params.id}`);
    const outcome = await deps.store.discard(req.params.id, reason);
    if (!outcome.done && outcome.status === 'not found') throw fail('NOT_FOUND', `no dead letter ${req.params.id}`);
    if (!outcome.done) throw fail('NOT_PENDING', `dead letter ${req.params.id} is ${outcome.status}, not pending`);
    await audit(res, 'dead-letter.discard', req.params.id, 1, { reason });
    res.json(summary((await deps.store.get(req.params.id))!));
  });

  return router;
}
