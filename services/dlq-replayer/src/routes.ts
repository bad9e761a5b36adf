import { createHash, timingSafeEqual } from 'node:crypto';
import type { Serde } from '@sluice/contracts';
import { errorFactory, problemsOf, type Logger } from '@sluice/runtime';
import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import { csvHeader, csvLine } from './export';
import { verdictFor } from './filter';
import { discardSchema, isDeadLetterId, parseAuditQuery, parseExportQuery, parseListQuery, parseReplayRequest, replayRequestSchema, toFilter } from './requests';
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
  const replayRequest = replayRequestSchema(deps.allowedTopics);
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
    const parsed = parseListQuery(req.query as Record<string, unknown>);
    if ('problems' in parsed) throw fail('INVALID_FILTER', 'the filter is not valid', parsed.problems);
    const { filter, limit, cursor } = parsed.value;
    const rows = await deps.store.list(filter, limit + 1, cursor);
    const page = rows.slice(0, limit);
    res.json({ deadLetters: page.map(summary), nextCursor: rows.length > limit ? page[page.length - 1]!.id : null });
  });

  router.get('/admin/overview', async (_req, res) => {
    res.json({ ...(await deps.store.overview(24)), lag: deps.lag() });
  });

  router.get('/admin/audit', async (req, res) => {
    const parsed = parseAuditQuery(req.query as Record<string, unknown>);
    if ('problems' in parsed) throw fail('INVALID_FILTER', 'the query is not valid', parsed.problems);
    const { limit, before } = parsed.value;
    const rows = await deps.store.auditLog(limit + 1, before);
    const page = rows.slice(0, limit);
    res.json({ entries: page, nextCursor: rows.length > limit ? page[page.length - 1]!.id : null });
  });

  // Everything matching a filter, streamed page by page: JSON Lines (each line as /admin/dlq lists it,
  // plus headers, and the value when `payload=true`) or CSV.
  router.get('/admin/dlq/export', async (req, res) => {
    const parsed = parseExportQuery(req.query as Record<string, unknown>);
    if ('problems' in parsed) throw fail('INVALID_FILTER', 'the export request is not valid', parsed.problems);
    const { filter, format, payload: withPayload, raw } = parsed.value;
    const stamp = new Date().toISOString().replace(/[:.]/g, '-');
    res.set({
      'content-type': format === 'csv' ? 'text/csv; charset=utf-8' : 'application/x-ndjson; charset=utf-8',
      'content-disposition': `attachment; filename="dead-letters-${stamp}.${format}"`,
    });
    if (format === 'csv') res.write(csvHeader(withPayload));
    let count = 0;
    for (let after: string | undefined; ; ) {
      const rows = await deps.store.list(filter, 1000, after);
      for (const d of rows) {
        const row = { ...summary(d), headers: d.headers, ...(withPayload ? { valueBase64: d.value?.toString('base64') ?? null } : {}) };
        res.write(format === 'csv' ? csvLine(row, withPayload) : `${JSON.stringify(row)}\n`);
      }
      count += rows.length;
      if (rows.length < 1000) break;
      after = rows[rows.length - 1]!.id;
    }
    await audit(res, 'dead-letters.export', undefined, count, { filter: raw, format, payload: withPayload });
    res.end();
  });

  router.get('/admin/dlq/replays/:id', async (req, res) => {
    const replay = /^[0-9a-f-]{36}$/.test(req.params.id) ? await deps.store.replay(req.params.id) : undefined;
    if (!replay) throw fail('NOT_FOUND', `no replay ${req.params.id}`);
    res.json(replay);
  });

  router.get('/admin/dlq/:id', async (req, res) => {
    const d = isDeadLetterId(req.params.id) ? await deps.store.get(req.params.id) : undefined;
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
    const body = req.body as unknown;
    if (!body || typeof body !== 'object' || Array.isArray(body)) throw fail('INVALID_REQUEST', 'the body must be a JSON object');
    const parsed = parseReplayRequest(replayRequest, body);
    if ('problems' in parsed) throw fail('INVALID_FILTER', 'the replay request is not valid', parsed.problems);
    const { ids, filter: rawFilter, dryRun, targetTopic, force } = parsed.value;
    const filter = rawFilter && toFilter(rawFilter);
    const ratePerSec = parsed.value.ratePerSec ?? deps.defaultRatePerSec;

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
    const parsed = discardSchema.safeParse(req.body ?? {});
    if (!parsed.success) throw fail('INVALID_REQUEST', 'a reason (1 to 1000 characters) is required', problemsOf(parsed.error, 'is not a field of a discard'));
    const { reason } = parsed.data;
    if (!isDeadLetterId(req.params.id)) throw fail('NOT_FOUND', `no dead letter ${req.params.id}`);
    const outcome = await deps.store.discard(req.params.id, reason);
    if (!outcome.done && outcome.status === 'not found') throw fail('NOT_FOUND', `no dead letter ${req.params.id}`);
    if (!outcome.done) throw fail('NOT_PENDING', `dead letter ${req.params.id} is ${outcome.status}, not pending`);
    await audit(res, 'dead-letter.discard', req.params.id, 1, { reason });
    res.json(summary((await deps.store.get(req.params.id))!));
  });

  return router;
}
