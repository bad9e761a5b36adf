import { Serde, type ActivityEvent } from '@sluice/contracts';
import { runningStack, testKafka, withAdmin } from '@sluice/testing';
import { followTopic } from '@sluice/streams';
import fc from 'fast-check';
import type { KafkaMessage } from 'kafkajs';
import { ADMIN_TOKEN, eventually, startPipeline, type Pipeline } from '@sluice/testing';

// Every public endpoint of the pipeline, 10,000 generated requests each, with
// full-Unicode strings, arbitrary UTF-16 code units (lone surrogates, controls,
// NUL), arbitrary JSON and raw bytes: no 5xx, no crash; and afterwards every
// event the gateway accepted is counted in the view or is in a dead-letter topic
// with a reason, and no partition of any group is left stalled.
jest.setTimeout(900_000);

const RUNS = 10_000;
const CONCURRENCY = 16;
const MIN = 60_000;
// Every event in one window two hours back: none is late, so each one is in the view or a dead letter.
const W = Math.floor(Date.now() / MIN) * MIN - 120 * MIN;

let p: Pipeline;
afterAll(async () => {
  await p?.close();
});

/** Any code point, astral ones included. */
const unicode = (max: number) => fc.string({ unit: 'binary', minLength: 1, maxLength: max });
/** Any UTF-16 code units: lone surrogates, C0 controls, NUL. */
const units = (max: number) => fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)), minLength: 1, maxLength: max });
const anyText = (max: number) => fc.oneof(unicode(max), units(max), fc.string({ maxLength: max }));
const bytes = fc.uint8Array({ maxLength: 200 });

interface Request {
  method: string;
  url: string;
  headers?: Record<string, string>;
  body?: string | Uint8Array;
}

/** Runs the requests, CONCURRENCY at a time; every 5xx (or a connection that fails: a crash) is collected. */
async function fire(requests: Request[], onResponse: (req: Request, status: number, body: unknown) => void = () => undefined): Promise<string[]> {
  const failures: string[] = [];
  let next = 0;
  const worker = async () => {
    while (next < requests.length) {
      const req = requests[next++]!;
      try {
        const res = await fetch(req.url, { method: req.method, ...(req.headers ? { headers: req.headers } : {}), ...(req.body !== undefined ? { body: req.body } : {}) });
        const text = await res.text();
        if (res.status >= 500) failures.push(`${res.status} ${req.method} ${req.url}: ${text.slice(0, 200)}`);
        let parsed: unknown;
        try {
          parsed = JSON.parse(text);
        } catch {
          parsed = undefined;
        }
        onResponse(req, res.status, parsed);
      } catch (err) {
        failures.push(`no response to ${req.method} ${req.url}: ${String(err)}`);
      }
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  return failures;
}

const json = { 'content-type': 'application/json' };

/**
 * Percent-encodes any string, lone surrogates included (as the three bytes WTF-8 gives them, which are
 * not UTF-8): what a client can put in a URL, byte for byte.
 */
function encodeAny(s: string): string {
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const pair = c >= 0xd800 && c <= 0xdbff && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00;
    if (pair) {
      out += encodeURIComponent(s.slice(i, i + 2));
      i += 1;
    } else if (c >= 0xd800 && c <= 0xdfff) {
      out += [0xe0 | (c >> 12), 0x80 | ((c >> 6) & 0x3f), 0x80 | (c & 0x3f)].map((b) => `%${b.toString(16).toUpperCase()}`).join('');
    } else out += encodeURIComponent(s[i]!);
  }
  return out;
}

interface GeneratedEvent {
  entity: string;
  suffix: string;
  type: string;
  at: number;
  value: unknown;
  attributes: unknown;
}

test('10,000 generated requests per public endpoint: no 5xx, no crash; every accepted event is in the view or a dead letter; nothing stalls', async () => {
  // Entities without a catalog entry wait this long before they are dead letters (one wait per entity).
  p = await startPipeline({ windowRetentionMs: 24 * 3_600_000, env: { ENRICHER_CATALOG_WAIT_MS: '50', LOG_LEVEL: 'warn' } });
  const tag = `fz${Date.now().toString(36)}`;

  // 1. The catalog: ids and fields from every generator; what is accepted is what events use.
  const catalog = fc.sample(
    fc.record({ id: anyText(30), name: fc.oneof(anyText(40), fc.jsonValue()), category: fc.oneof(anyText(20), fc.constantFrom('c1', 'c2')), raw: fc.option(bytes, { freq: 10 }) }),
    RUNS,
  );
  const known = new Set<string>();
  const catalogRequests = catalog.map((c, i) => ({
    id: c.id,
    method: i % 10 === 9 ? 'DELETE' : 'PUT',
    url: `${p.gateway.url}/v1/catalog/${encodeAny(c.id)}`,
    headers: json,
    body: c.raw ?? JSON.stringify({ name: c.name, category: c.category }),
  }));
  const catalogFailures = await fire(catalogRequests, (req, status) => {
    const { id } = req as (typeof catalogRequests)[number];
    if (req.method === 'PUT' && status === 200) known.add(id);
    if (req.method === 'DELETE' && status === 200) known.delete(id);
  });
  expect(catalogFailures).toEqual([]);
  expect(known.size).toBeGreaterThan(100);

  // 2. Events: mostly for entities in the catalog, some for entities that are not, some garbage.
  const ids = [...known.keys()];
  let seq = 0;
  // Mostly what a client would send, in full Unicode; now and then what no stage could store.
  const mostly = <T, U>(good: fc.Arbitrary<T>, bad: fc.Arbitrary<U>) => fc.oneof({ weight: 6, arbitrary: good }, { weight: 1, arbitrary: bad });
  const event = fc.record({
    entity: fc.oneof({ weight: 30, arbitrary: fc.constantFrom(...ids) }, { weight: 1, arbitrary: anyText(30) }),
    suffix: mostly(unicode(10), units(10)),
    type: mostly(fc.constantFrom('view', 'buy'), anyText(10)),
    at: fc.integer({ min: 0, max: 50_000 }),
    value: mostly(fc.double({ noNaN: true, noDefaultInfinity: true, min: -1e9, max: 1e9 }), fc.jsonValue()),
    attributes: mostly(fc.dictionary(unicode(10), unicode(20), { maxKeys: 4 }), fc.oneof(fc.dictionary(anyText(10), anyText(20), { maxKeys: 4 }), fc.jsonValue())),
  });
  const bodies = fc.sample(fc.oneof({ weight: 6, arbitrary: fc.array(event, { minLength: 1, maxLength: 3 }) }, { weight: 1, arbitrary: fc.jsonValue() }, { weight: 1, arbitrary: bytes }), RUNS);
  const sent = new Map<string, ActivityEvent[]>();
  const requests: Request[] = bodies.map((b) => {
    if (b instanceof Uint8Array) return { method: 'POST', url: `${p.gateway.url}/v1/events`, headers: json, body: b };
    if (!Array.isArray(b) || !b.every((e) => typeof e === 'object' && e !== null && 'suffix' in e)) return { method: 'POST', url: `${p.gateway.url}/v1/events`, headers: json, body: JSON.stringify(b) };
    const events = (b as GeneratedEvent[]).map((e) => ({
      // Unique, so that none is dropped as a client retry; the rest of the id is whatever was generated.
      eventId: `${tag}-${++seq}-${e.suffix}`,
      type: e.type,
      entityId: e.entity,
      occurredAt: new Date(W + e.at).toISOString(),
      value: e.value,
      attributes: e.attributes,
    }));
    const body = JSON.stringify({ events });
    sent.set(body, events as unknown as ActivityEvent[]);
    return { method: 'POST', url: `${p.gateway.url}/v1/events`, headers: json, body };
  });
  const accepted: ActivityEvent[] = [];
  const eventFailures = await fire(requests, (req, status) => {
    if (status === 202 && typeof req.body === 'string') accepted.push(...(sent.get(req.body) ?? []));
  });
  expect(eventFailures).toEqual([]);
  expect(accepted.length).toBeGreaterThan(1_000);

  // 3. The view's queries, 4. the admin API of the dead letters, 5. the registry: generated parameters and bodies.
  // Names of the routes' parameters, and names of Object.prototype's members (a parser that looks names up on a
  // plain object finds those: `constructor` once made the replayer's admin routes answer 500).
  const names = ['dimension', 'key', 'from', 'to', 'limit', 'cursor', 'metric', 'status', 'code', 'stage', 'topic', 'constructor', '__proto__', 'toString', 'hasOwnProperty'];
  const param = fc.tuple(fc.constantFrom(...names), anyText(20));
  const queries = fc.sample(fc.tuple(fc.array(param, { maxLength: 5 }), fc.constantFrom('/v1/aggregates', '/v1/top', '/v1/aggregates?dimension=entity&')), RUNS);
  const qs = (params: [string, string][]) => params.map(([k, v]) => `${k}=${encodeAny(v)}`).join('&');
  expect(await fire(queries.map(([params, path]) => ({ method: 'GET', url: `${p.view.url}${path}${path.endsWith('&') ? '' : '?'}${qs(params)}` })))).toEqual([]);

  const admin = { authorization: `Bearer ${ADMIN_TOKEN}`, 'x-operator': 'fuzz', ...json };
  const adminRequests = fc.sample(fc.tuple(fc.array(param, { maxLength: 5 }), fc.oneof(fc.jsonValue(), bytes), fc.nat(9)), RUNS).map(([params, body, pick]): Request => {
    if (pick < 6) return { method: 'GET', url: `${p.replayer.url}/admin/dlq?${qs(params)}`, headers: admin };
    if (pick < 8) return { method: 'GET', url: `${p.replayer.url}/admin/dlq/${encodeAny(params[0]?.[1] ?? 'x')}`, headers: admin };
    // A replay request that is only ever a dry run when it is valid at all.
    const raw = body instanceof Uint8Array ? body : JSON.stringify(typeof body === 'object' && body !== null && !Array.isArray(body) ? { ...body, dryRun: true } : body);
    return { method: 'POST', url: `${p.replayer.url}/admin/dlq/replays`, headers: admin, body: raw };
  });
  expect(await fire(adminRequests)).toEqual([]);

  const registry = runningStack().schemaRegistryUrl;
  const registryRequests = fc.sample(fc.tuple(anyText(30), fc.oneof(fc.jsonValue(), bytes), fc.nat(3)), RUNS).map(([subject, body, pick]): Request => {
    const s = encodeAny(subject);
    if (pick === 0) return { method: 'GET', url: `${registry}/subjects/${s}/versions` };
    if (pick === 1) return { method: 'GET', url: `${registry}/subjects/${s}/versions/latest` };
    // Lookups (they register nothing) with generated bodies.
    return { method: 'POST', url: `${registry}/subjects/${s}`, headers: { 'content-type': 'application/vnd.schemaregistry.v1+json' }, body: body instanceof Uint8Array ? body : JSON.stringify(body) };
  });
  expect(await fire(registryRequests)).toEqual([]);

  // Afterwards: every accepted event is counted in its entity's window, or is a dead letter with a reason.
  const deadLetters = new Map<string, string>();
  const serde = new Serde(runningStack().schemaRegistryUrl);
  const decoder = serde.decoder<{ eventId: string }>('ActivityEvent');
  const readDeadLetters = async () => {
    for (const topic of ['events.raw.dlq', 'events.enriched.dlq']) {
      const records: KafkaMessage[] = [];
      const follower = await followTopic(testKafka(), p.topic(topic), { onRecord: (_partition, m) => records.push(m) });
      await follower.caughtUp;
      await follower.stop();
      for (const m of records) {
        const reason = m.headers?.['dlq.error.code']?.toString();
        const id = await decoder.decode(m.value).then((e) => e.eventId, () => undefined);
        if (id !== undefined && reason) deadLetters.set(id, reason);
      }
    }
  };
  const byEntity = new Map<string, number>();
  const counted = new Map<string, number>();
  const missing = () => [...byEntity].filter(([entity, n]) => (counted.get(entity) ?? 0) !== n);
  await eventually(
    'every accepted event is in the view or a dead letter',
    async () => {
      await readDeadLetters();
      byEntity.clear();
      for (const e of accepted) if (!deadLetters.has(e.eventId)) byEntity.set(e.entityId, (byEntity.get(e.entityId) ?? 0) + 1);
      for (const [entity, n] of missing()) {
        const res = await p.http(p.view, 'GET', `/v1/aggregates?dimension=entity&key=${encodeURIComponent(entity)}&from=${new Date(W).toISOString()}&to=${new Date(W + MIN).toISOString()}`);
        counted.set(entity, res.body.windows?.[0]?.count ?? 0);
        if (counted.get(entity) !== n) break;
      }
      return missing().length;
    },
    (left) => left === 0,
    300_000,
  );
  expect([...deadLetters.values()].every((reason) => reason.length > 0)).toBe(true);

  // Nothing crashed, nothing is stalled: every service ready, every group through its topics.
  for (const s of [p.gateway, p.enricher, p.aggregator, p.view, p.replayer]) expect((await fetch(`${s.url}/readyz`)).status).toBe(200);
  // Every group has consumed every committed record of its topic (compared with the last committed record,
  // not the end: a transactional topic ends with commit markers, and aborted records nobody reads).
  const kafka = testKafka();
  for (const [group, topic] of [[p.groups.enricher, 'events.raw'], [p.groups.aggregator, 'events.enriched'], [p.groups.view, 'aggregates']] as const) {
    const last = new Map<number, bigint>();
    const follower = await followTopic(kafka, p.topic(topic), { onRecord: (partition, m) => last.set(partition, BigInt(m.offset)) });
    await follower.caughtUp;
    await follower.stop();
    await eventually(
      `${group} has consumed every record of ${topic}`,
      () =>
        withAdmin(kafka, async (a) => {
          const [committed] = await a.fetchOffsets({ groupId: group, topics: [p.topic(topic)] });
          const behind: string[] = [];
          for (const [partition, offset] of last) {
            const at = BigInt(committed?.partitions.find((x) => x.partition === partition)?.offset ?? '-1');
            if (at <= offset) behind.push(`${partition}: committed ${at}, last record ${offset}`);
          }
          return behind;
        }),
      (behind) => behind.length === 0,
      120_000,
    );
  }
});
