import { readTopic } from '@sluice/testing';
import { activity, catalogItem, enricherFixture, type EnricherFixture } from './pipeline';

jest.setTimeout(120_000);

let pipeline: EnricherFixture;
afterEach(async () => {
  await pipeline?.close();
});

test('events are joined with the catalog, keyed by entity, and a duplicate eventId counts once', async () => {
  pipeline = await enricherFixture();
  await pipeline.upsertCatalog([catalogItem('sku-1', 'kitchen'), catalogItem('sku-2', 'garden')]);
  const first = activity('sku-1');
  const events = [first, activity('sku-2'), { ...first }, activity('sku-1')];
  await pipeline.sendEvents(events);
  await pipeline.start();
  const enriched = await pipeline.readEnriched(3);
  expect(enriched.map((e) => e.eventId).sort()).toEqual([events[0]!.eventId, events[1]!.eventId, events[3]!.eventId].sort());
  for (const e of enriched) {
    expect(e.record.key).toBe(e.entityId);
    expect(e.category).toBe(e.entityId === 'sku-1' ? 'kitchen' : 'garden');
    expect(e.name).toBe(`Item ${e.entityId}`);
  }
});

test('garbage bytes and an event for an unknown entity end in the dead-letter topic with their headers, and the records behind them are processed', async () => {
  pipeline = await enricherFixture(1);
  await pipeline.upsertCatalog([catalogItem('known')]);
  const unknown = activity('nobody-knows');
  await pipeline.sendRaw('known', Buffer.from('definitely not avro'));
  await pipeline.sendEvents([unknown, activity('known'), activity('known')]);
  await pipeline.start();
  const enriched = await pipeline.readEnriched(2);
  expect(enriched).toHaveLength(2);
  const dead = await pipeline.readDeadLetters(2);
  expect(dead).toHaveLength(2);
  const byCode = new Map(dead.map((d) => [d.headers['dlq.error.code'], d]));
  expect([...byCode.keys()].sort()).toEqual(['catalog.missing', 'serde.bad_magic_byte']);
  const garbage = byCode.get('serde.bad_magic_byte')!;
  expect(garbage.value?.toString()).toBe('definitely not avro');
  expect(garbage.key).toBe('known');
  expect(garbage.headers).toMatchObject({
    'dlq.original.topic': pipeline.topics.raw,
    'dlq.original.partition': '0',
    'dlq.original.offset': '0',
    'dlq.stage': pipeline.applicationId,
  });
  for (const h of ['dlq.original.timestamp', 'dlq.error.message', 'dlq.failed.at']) expect(garbage.headers[h]).toBeTruthy();
  const missing = byCode.get('catalog.missing')!;
  expect(missing.headers['dlq.original.offset']).toBe('1');
  expect(missing.key).toBe('nobody-knows');
});

test('a catalog record that can never decode goes to catalog.items.dlq; the catalog records behind it load', async () => {
  pipeline = await enricherFixture(1);
  await pipeline.sendRawCatalog('broken', Buffer.from([0, 0, 0, 0, 1, 0xff]));
  await pipeline.upsertCatalog([catalogItem('after-it')]);
  await pipeline.start();
  await pipeline.sendEvents([activity('after-it')]);
  expect((await pipeline.readEnriched(1)).map((e) => e.entityId)).toEqual(['after-it']);
  const dead = await readTopic(pipeline.kafka, `${pipeline.topics.catalog}.dlq`, { done: (r) => r.length >= 1, timeoutMs: 30_000 });
  expect(dead.map((d) => [d.key, d.headers['dlq.original.topic'], d.headers['dlq.original.offset'], d.headers['dlq.stage']])).toEqual([
    ['broken', pipeline.topics.catalog, '0', pipeline.applicationId],
  ]);
  expect(dead[0]!.headers['dlq.error.code']).toMatch(/^serde\./);
});

test('the history of a record travels to its output: trace context, replay id and count', async () => {
  pipeline = await enricherFixture(1);
  await pipeline.upsertCatalog([catalogItem('traced')]);
  const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
  await pipeline.sendEvents([activity('traced')], { traceparent, 'dlq.replay.id': 'r-1', 'dlq.replay.count': '1', unrelated: 'x' });
  await pipeline.start();
  const [out] = await pipeline.readEnriched(1);
  expect(out!.record.headers).toMatchObject({ traceparent, 'dlq.replay.id': 'r-1', 'dlq.replay.count': '1' });
  expect(out!.record.headers.unrelated).toBeUndefined();
});
