import { ADMIN_TOKEN, eventually, startOtlpReceiver, startPipeline, type OtlpReceiver, type Pipeline, type ReceivedSpan } from '@sluice/testing';

// One trace across every hop (issue 18): every service of a pipeline exports its spans over OTLP/HTTP
// to a receiver inside this test; one event sent through the gateway is followed to the view's
// projection, and a dead letter's replay is followed too, each span the child of the hop before.
jest.setTimeout(300_000);

const SERVER = 2;
const PRODUCER = 4;
const CONSUMER = 5;
const admin = { authorization: `Bearer ${ADMIN_TOKEN}`, 'x-operator': 'e2e' };

let receiver: OtlpReceiver;
let p: Pipeline;

beforeAll(async () => {
  receiver = await startOtlpReceiver();
  p = await startPipeline({ windowRetentionMs: 24 * 3_600_000, env: { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_BSP_SCHEDULE_DELAY: '200' } });
});

afterAll(async () => {
  await p?.close();
  await receiver?.close();
});

async function catalogHolds(entries: number): Promise<void> {
  await eventually(
    "the enricher's catalog table holds the entries",
    async () => Number(/^enricher_catalog_entries(?:\{[^}]*\})? (\d+)/m.exec(await fetch(`${p.enricher.url}/metrics`).then((r) => r.text()))?.[1] ?? 0),
    (n) => n >= entries,
  );
}

const traceOf = (traceId: string) => receiver.spans().filter((s) => s.traceId === traceId);

/** The one span of `spans` matching, or a failure that lists what the trace holds. */
function one(spans: ReceivedSpan[], what: string, match: (s: ReceivedSpan) => boolean): ReceivedSpan {
  const found = spans.filter(match);
  if (found.length !== 1) throw new Error(`${found.length} spans for ${what}; the trace holds: ${JSON.stringify(spans.map((s) => [s.service, s.name, s.kind, s.spanId, s.parentSpanId]))}`);
  return found[0]!;
}

/** Every span's parent is in the trace, and the only root is the gateway's request span. */
function expectOneTree(spans: ReceivedSpan[]): ReceivedSpan {
  const ids = new Set(spans.map((s) => s.spanId));
  const orphans = spans.filter((s) => s.parentSpanId !== '' && !ids.has(s.parentSpanId));
  expect(orphans.map((s) => [s.service, s.name])).toEqual([]);
  const roots = spans.filter((s) => s.parentSpanId === '');
  expect(roots.map((s) => [s.service, s.kind])).toEqual([['ingest-gateway', SERVER]]);
  return roots[0]!;
}

/** Whether `descendant` is `ancestor` or below it in `spans`. */
function below(spans: ReceivedSpan[], descendant: ReceivedSpan, ancestor: ReceivedSpan): boolean {
  const byId = new Map(spans.map((s) => [s.spanId, s]));
  for (let s: ReceivedSpan | undefined = descendant; s; s = byId.get(s.parentSpanId)) if (s.spanId === ancestor.spanId) return true;
  return false;
}

test('one event: a single trace holds the gateway request and the enricher, both aggregator stages and the view projection, each the child of the hop before', async () => {
  const entityId = `tr-${Date.now().toString(36)}`;
  expect((await p.http(p.gateway, 'PUT', `/v1/catalog/${entityId}`, { name: 'Traced', category: 'tr-cat', price: 5 })).status).toBe(200);
  await catalogHolds(1);
  const eventId = `${entityId}-1`;
  const res = await p.http(p.gateway, 'POST', '/v1/events', { events: [{ eventId, entityId, type: 'view', value: 3, occurredAt: new Date().toISOString() }] });
  expect(res.status).toBe(202);

  const names = {
    enricher: `process ${p.topic('events.raw')}`,
    entity: `process ${p.topic('events.enriched')}`,
    category: `process ${p.groups.aggregator}-by-category-repartition`,
    project: `project ${p.topic('aggregates')}`,
  };
  // The enricher's span of this event, then its trace until the view has projected both windows.
  const enricher = await eventually('the enricher span', async () => receiver.spans().filter((s) => s.service === 'enricher' && s.name === names.enricher), (s) => s.length === 1);
  const trace = await eventually(
    'the view projects both windows in the same trace',
    async () => traceOf(enricher[0]!.traceId),
    (spans) => spans.filter((s) => s.service === 'view-api' && s.name === names.project).length === 2,
  );

  const root = expectOneTree(trace);
  expect(root.name).toMatch(/^POST/);
  const enrich = one(trace, 'the enricher', (s) => s.service === 'enricher' && s.name === names.enricher);
  expect(enrich.kind).toBe(CONSUMER);
  // The record the enricher read was produced within the gateway's request.
  const produced = one(trace, 'the record enriched', (s) => s.spanId === enrich.parentSpanId);
  expect(produced.service).toBe('ingest-gateway');
  expect(below(trace, produced, root)).toBe(true);

  const entity = one(trace, 'the aggregator entity stage', (s) => s.service === 'aggregator' && s.name === names.entity);
  expect(entity.parentSpanId).toBe(enrich.spanId);
  const category = one(trace, 'the aggregator category stage', (s) => s.service === 'aggregator' && s.name === names.category);
  expect(category.parentSpanId).toBe(entity.spanId);
  const projections = trace.filter((s) => s.service === 'view-api' && s.name === names.project);
  expect(projections.map((s) => s.parentSpanId).sort()).toEqual([entity.spanId, category.spanId].sort());
  expect(projections.every((s) => s.kind === CONSUMER)).toBe(true);
});

test('a dead letter replayed: the replay and what it leads to stay in the trace of the request that sent the event', async () => {
  // An entity with no catalog entry: its event becomes a dead letter (catalog.missing).
  const entityId = `tr-missing-${Date.now().toString(36)}`;
  const eventId = `${entityId}-1`;
  expect((await p.http(p.gateway, 'POST', '/v1/events', { events: [{ eventId, entityId, type: 'view', value: 4, occurredAt: new Date().toISOString() }] })).status).toBe(202);
  const letters = await eventually(
    'the dead letter is indexed',
    async (): Promise<{ errorCode: string }[]> => (await p.http(p.replayer, 'GET', `/admin/dlq?key=${entityId}`, undefined, admin)).body.deadLetters ?? [],
    (l) => l.length === 1,
  );
  expect(letters[0]!.errorCode).toBe('catalog.missing');

  // The catalog fixed, the dead letter replayed.
  expect((await p.http(p.gateway, 'PUT', `/v1/catalog/${entityId}`, { name: 'Found', category: 'tr-cat', price: 5 })).status).toBe(200);
  await catalogHolds(2);
  const started = await p.http(p.replayer, 'POST', '/admin/dlq/replays', { filter: { key: entityId } }, admin);
  expect(started.status).toBe(202);

  const enricherName = `process ${p.topic('events.raw')}`;
  // The trace of the request that sent the event, from the gateway's send of its record.
  const [send] = await eventually(
    "the gateway's send of the event",
    // (The catalog fix is sent under the same key, to the catalog topic.)
    async () => receiver.spans().filter((s) => s.service === 'ingest-gateway' && s.name === `send ${p.topic('events.raw')}` && s.attributes['messaging.kafka.message.key'] === entityId),
    (s) => s.length === 1,
  );
  const fromReplayer = (spans: ReceivedSpan[], s: ReceivedSpan) => spans.some((r) => r.spanId === s.parentSpanId && r.service === 'dlq-replayer');
  const trace = await eventually(
    'the replayed event enriched, aggregated and projected in the same trace',
    async () => traceOf(send!.traceId),
    (spans) => spans.some((s) => s.service === 'enricher' && s.name === enricherName && fromReplayer(spans, s)) && spans.some((s) => s.service === 'view-api'),
  );
  const root = expectOneTree(trace);
  // The enricher's attempts at the original record (it waits for the catalog, then dead-letters it), and the index of the dead letter.
  expect(trace.filter((s) => s.service === 'enricher' && s.name === enricherName && s.parentSpanId === send!.spanId).length).toBeGreaterThanOrEqual(1);
  expect(one(trace, 'the index of the dead letter', (s) => s.service === 'dlq-replayer' && s.name === `index ${p.topic('events.raw.dlq')}`).kind).toBe(CONSUMER);
  // The replay's record, produced by the dlq-replayer within the trace, enriched, then aggregated and projected below that.
  const replayed = one(trace, 'the replayed record enriched', (s) => s.service === 'enricher' && s.name === enricherName && fromReplayer(trace, s));
  const replaySend = one(trace, 'the replay send', (s) => s.spanId === replayed.parentSpanId);
  expect(replaySend.kind).toBe(PRODUCER);
  expect(below(trace, replaySend, root)).toBe(true);
  const entity = one(trace, 'the aggregator entity stage', (s) => s.service === 'aggregator' && s.name === `process ${p.topic('events.enriched')}`);
  expect(entity.parentSpanId).toBe(replayed.spanId);
  expect(trace.filter((s) => s.service === 'view-api').every((s) => below(trace, s, entity))).toBe(true);
});
