import fc from 'fast-check';
import { request } from 'node:http';
import { eventually, openApiChecker } from '@sluice/testing';
import { eventBody, gatewayFixture, type GatewayFixture } from './gateway-fixture';

jest.setTimeout(120_000);

let gw: GatewayFixture;
beforeAll(async () => {
  gw = await gatewayFixture();
});
afterAll(async () => {
  await gw.close();
});

test('accepted events are in Kafka, decoded exactly as sent, keyed by entityId, at the partition and offset the 202 named', async () => {
  // Attribute names are data: names of Object.prototype members too (`__proto__` was once dropped without a word).
  const prototypeNames = JSON.parse('{"__proto__":"p","constructor":"c","toString":""}') as Record<string, string>;
  const events = [eventBody('sku-1'), eventBody('sku-2', { userId: 'u-9' }), eventBody('sku-3', { attributes: prototypeNames })];
  const res = await gw.post('/v1/events', { events });
  expect(res.status).toBe(202);
  expect(res.body.accepted).toBe(3);
  const single = eventBody('sku-1');
  expect((await gw.post('/v1/events', single)).status).toBe(202);
  const records = await gw.readEvents(4);
  expect(records).toHaveLength(4);
  for (const sent of [...events, single]) {
    const record = records.find((r) => r.event.eventId === sent.eventId)!;
    expect(record.key).toBe(sent.entityId);
    expect(record.event).toEqual({
      eventId: sent.eventId,
      type: 'view',
      entityId: sent.entityId,
      userId: (sent as { userId?: string }).userId ?? null,
      occurredAt: Date.parse(sent.occurredAt),
      value: sent.value,
      attributes: sent.attributes,
    });
    expect(Object.entries(record.event.attributes).sort()).toEqual(Object.entries(sent.attributes).sort());
  }
  for (const result of res.body.results) {
    const record = records.find((r) => r.event.eventId === result.eventId)!;
    expect({ partition: record.partition, offset: record.offset }).toEqual({ partition: result.partition, offset: result.offset });
  }
  expect(records[0]!.headers.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$/);
});

test('a batch with one invalid event is refused whole: 400 and nothing produced', async () => {
  const fresh = await gatewayFixture();
  try {
    const res = await fresh.post('/v1/events', { events: [eventBody(), { ...eventBody(), value: 'NaN' }] });
    expect(res.status).toBe(400);
    expect(res.body.error).toMatchObject({ code: 'INVALID_EVENTS', details: [{ index: 1, path: '/events/1/value' }] });
    expect((await fresh.post('/v1/events', eventBody())).status).toBe(202);
    const records = await fresh.readEvents(2, 5_000);
    expect(records).toHaveLength(1);
  } finally {
    await fresh.close();
  }
});

test('catalog upserts go to the compacted topic and a delete writes a tombstone', async () => {
  const put = await gw.post('/v1/catalog/sku-7', { name: 'Kettle', category: 'kitchen', price: 19.5 }, {}, 'PUT');
  expect(put.status).toBe(200);
  expect(put.body).toMatchObject({ entityId: 'sku-7', partition: expect.any(Number), offset: expect.any(String) });
  const del = await gw.post('/v1/catalog/sku-7', undefined, {}, 'DELETE');
  expect(del.body).toMatchObject({ entityId: 'sku-7', deleted: true });
  const records = await gw.readCatalog(2);
  expect(records.map((r) => [r.key, r.item?.name ?? null])).toEqual([
    ['sku-7', 'Kettle'],
    ['sku-7', null],
  ]);
  expect(records[0]!.item).toMatchObject({ entityId: 'sku-7', category: 'kitchen', price: 19.5 });
});

test('client mistakes get the documented status and code', async () => {
  expect((await gw.post('/v1/events', '{"events": [', {})).body.error.code).toBe('REQUEST_BODY_INVALID_JSON');
  expect((await gw.post('/v1/events', eventBody(), { 'content-type': 'text/plain' })).status).toBe(415);
  const huge = { events: [eventBody('sku-1', { attributes: { big: 'x'.repeat(1_100_000) } })] };
  expect((await gw.post('/v1/events', huge)).status).toBe(413);
  expect((await gw.post('/v1/nope', {})).status).toBe(404);
});

test('with API keys configured, a missing or wrong key gets 401; a key over its rate gets 429 with Retry-After', async () => {
  const locked = await gatewayFixture({ GATEWAY_API_KEYS: 'k-one,k-two', GATEWAY_RATE_LIMIT_PER_SEC: '5', GATEWAY_RATE_LIMIT_BURST: '5' });
  try {
    expect((await locked.post('/v1/events', eventBody())).status).toBe(401);
    expect((await locked.post('/v1/events', eventBody(), { authorization: 'Bearer nope' })).status).toBe(401);
    expect((await locked.post('/v1/catalog/x', undefined, { 'x-api-key': 'wrong' }, 'DELETE')).status).toBe(401);
    const five = { events: [1, 2, 3, 4, 5].map(() => eventBody()) };
    expect((await locked.post('/v1/events', five, { authorization: 'Bearer k-one' })).status).toBe(202);
    const limited = await locked.post('/v1/events', eventBody(), { authorization: 'Bearer k-one' });
    expect(limited.status).toBe(429);
    expect(limited.body.error.code).toBe('RATE_LIMITED');
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect((await locked.post('/v1/events', eventBody(), { 'x-api-key': 'k-two' })).status).toBe(202);
  } finally {
    await locked.close();
  }
});

test('request bodies held at once are bounded: past the bound 503 OVERLOADED before the body is read, and a closed request gives its share back', async () => {
  const bounded = await gatewayFixture({ GATEWAY_MAX_INFLIGHT_BODY_BYTES: '4096' });
  const held = request(`${bounded.gateway.url}/v1/events`, { method: 'POST', headers: { 'content-type': 'application/json', 'content-length': '3000' } });
  held.on('error', () => undefined);
  try {
    // A slow client: its headers declare 3,000 bytes, its body never comes.
    held.write('{"events": [');
    const heldBytes = async () => {
      const text = await (await fetch(`${bounded.gateway.url}/metrics`)).text();
      return Number(/^gateway_inflight_body_bytes(?:{[^}]*})? (\S+)$/m.exec(text)?.[1]);
    };
    await eventually('the held body counted', heldBytes, (bytes) => bytes === 3000, 10_000);
    const body = { events: [eventBody('sku-1', { attributes: { pad: 'é'.repeat(600) } })] };
    expect(Buffer.byteLength(JSON.stringify(body))).toBeGreaterThan(1100);
    const refused = await bounded.post('/v1/events', body);
    expect(refused.status).toBe(503);
    expect(refused.body.error.code).toBe('OVERLOADED');
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    // A small request still fits beside the held one.
    expect((await bounded.post('/v1/events', eventBody('sku-2'))).status).toBe(202);
    held.destroy();
    await eventually('the held body given back', heldBytes, (bytes) => bytes === 0, 10_000);
    expect((await bounded.post('/v1/events', body)).status).toBe(202);
    const records = await bounded.readEvents(2);
    expect(records.map((r) => r.event.entityId).sort()).toEqual(['sku-1', 'sku-2']);
  } finally {
    held.destroy();
    await bounded.close();
  }
});

test('real responses match /openapi.json, on every operation', async () => {
  const doc = (await gw.post('/openapi.json', undefined, {}, 'GET')).body;
  expect(doc.openapi).toBe('3.1.0');
  const api = openApiChecker(doc);
  const problems = [
    api.check('/v1/events', 'post', await gw.post('/v1/events', { events: [eventBody(), eventBody()] })),
    api.check('/v1/events', 'post', await gw.post('/v1/events', { events: [{}] })),
    api.check('/v1/events', 'post', await gw.post('/v1/events', 'x', { 'content-type': 'text/plain' })),
    api.check('/v1/events', 'post', await gw.post('/v1/events', '[', {})),
    api.check('/v1/catalog/{entityId}', 'put', await gw.post('/v1/catalog/a', { name: 'A', category: 'c' }, {}, 'PUT')),
    api.check('/v1/catalog/{entityId}', 'put', await gw.post('/v1/catalog/a', { name: 3 }, {}, 'PUT')),
    api.check('/v1/catalog/{entityId}', 'delete', await gw.post('/v1/catalog/a', undefined, {}, 'DELETE')),
  ].flat();
  expect(problems).toEqual([]);
  expect(api.unchecked()).toEqual([]);
});

test('fuzzed bodies, headers and content types never get a 5xx', async () => {
  const json = fc.jsonValue();
  const nearlyEvent = fc.record(
    {
      eventId: fc.oneof(fc.string(), fc.integer(), fc.constant(null)),
      type: fc.oneof(fc.string(), fc.boolean()),
      entityId: fc.oneof(fc.string({ minLength: 1 }), fc.constant('')),
      occurredAt: fc.oneof(fc.date({ noInvalidDate: true }).map((d) => d.toISOString()), fc.string()),
      value: fc.oneof(fc.double(), fc.string(), fc.constant(null)),
      attributes: fc.oneof(fc.dictionary(fc.string(), fc.string()), json),
      userId: fc.oneof(fc.string(), fc.constant(null), fc.integer()),
    },
    { requiredKeys: [] },
  );
  const body = fc.oneof(json, nearlyEvent, fc.record({ events: fc.array(nearlyEvent, { maxLength: 5 }) }), fc.string());
  const contentType = fc.oneof(fc.constant('application/json'), fc.constant('application/json; charset=utf-8'), fc.constant('text/plain'), fc.constant(''), fc.string());
  const path = fc.constantFrom('/v1/events', '/v1/catalog/x', '/v1/catalog/%E0%A4%A', '/v1/events?x=1');
  const method = fc.constantFrom('POST', 'PUT', 'DELETE', 'GET');
  await fc.assert(
    fc.asyncProperty(body, contentType, path, method, async (b, type, p, m) => {
      const headers: Record<string, string> = {};
      if (/^[\t\x20-\x7e]*$/.test(type)) headers['content-type'] = type;
      const res = await fetch(`${gw.gateway.url}${p}`, { method: m, headers, ...(m === 'GET' ? {} : { body: typeof b === 'string' ? b : JSON.stringify(b) }) });
      await res.arrayBuffer();
      return res.status < 500;
    }),
    { numRuns: 300 },
  );
});
