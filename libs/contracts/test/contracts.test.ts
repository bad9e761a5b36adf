import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import avro from 'avsc';
import { checkHistories, CONTRACT_NAMES, encodeWireFormat, generateTypes, latestSchema, readWireHeader, schemaHistory, topicCatalog, writeWireFormat } from '@sluice/contracts';

test('the committed TypeScript types are exactly what the schemas generate', () => {
  const committed = readFileSync(join(__dirname, '..', 'src', 'generated', 'types.ts'), 'utf8');
  expect(committed).toBe(generateTypes());
});

test('every schema history is valid Avro and BACKWARD compatible with all earlier versions', () => {
  const results = checkHistories();
  expect(results.map((r) => r.contract)).toEqual([...CONTRACT_NAMES]);
  for (const r of results) expect({ contract: r.contract, problems: r.problems }).toEqual({ contract: r.contract, problems: [] });
});

test('every contract is namespaced, so its subject and full name are stable', () => {
  for (const name of CONTRACT_NAMES) {
    for (const version of schemaHistory(name)) {
      expect(version.json).toMatchObject({ type: 'record', name, namespace: expect.stringMatching(/^dev\.sluice\./) });
    }
  }
});

test('WindowAggregate v2 adds revision with a default, so v1 records read as revision 0', () => {
  const [v1, v2] = schemaHistory('WindowAggregate');
  const writer = avro.Type.forSchema(v1!.json as avro.Schema);
  const reader = avro.Type.forSchema(v2!.json as avro.Schema);
  const old = { dimension: 'entity', key: 'e1', windowStart: 0, windowEnd: 60000, count: 2, sum: 3, min: 1, max: 2, isFinal: true, lastEventAt: 5 };
  expect(reader.fromBuffer(writer.toBuffer(old), reader.createResolver(writer))).toEqual({ ...old, revision: 0 });
  expect(latestSchema('WindowAggregate').version).toBe(2);
});

test('the wire format is magic byte 0, a big-endian schema id, then the Avro bytes', () => {
  const framed = writeWireFormat(258, Buffer.from([7, 8]));
  expect([...framed]).toEqual([0, 0, 0, 1, 2, 7, 8]);
  expect(readWireHeader(framed)).toEqual({ schemaId: 258, payload: Buffer.from([7, 8]) });
});

test('encodeWireFormat frames like writeWireFormat around toBuffer, for records larger than its scratch space too, each in a buffer of its own', () => {
  const type = avro.Type.forSchema(latestSchema('ActivityEvent').json as avro.Schema);
  const event = (attribute: string) => ({ eventId: 'e-1', type: 'view', entityId: 'sku-1', userId: null, occurredAt: 1_700_000_000_000, value: 2.5, attributes: { a: attribute } });
  const small = event('x');
  const first = encodeWireFormat(7, type, small);
  expect(first).toEqual(writeWireFormat(7, type.toBuffer(small)));
  for (const length of [16 * 1024, 100_000, 300_000]) {
    const large = event('é'.repeat(length));
    const framed = encodeWireFormat(70_000, type, large);
    expect(framed).toEqual(writeWireFormat(70_000, type.toBuffer(large)));
    expect(type.fromBuffer(readWireHeader(framed).payload)).toEqual(large);
  }
  // Later encodings did not write over the first one's bytes.
  expect(first).toEqual(writeWireFormat(7, type.toBuffer(small)));
});

test('bytes without the magic byte or shorter than the header are refused with a stable code', () => {
  expect(() => readWireHeader(Buffer.from([1, 0, 0, 0, 1, 9]))).toThrow(expect.objectContaining({ code: 'serde.bad_magic_byte', canRetry: false }));
  expect(() => readWireHeader(Buffer.from([0, 0]))).toThrow(expect.objectContaining({ code: 'serde.bad_magic_byte' }));
  expect(() => readWireHeader(null)).toThrow(expect.objectContaining({ code: 'serde.bad_magic_byte' }));
});

test('the topic catalog compacts reference data and results, and gives every consumed topic a dead-letter topic', () => {
  const catalog = topicCatalog({ partitions: 3 });
  const byName = new Map(catalog.map((t) => [t.name, t]));
  for (const name of ['catalog.items', 'aggregates']) expect(byName.get(name)?.configs['cleanup.policy']).toBe('compact');
  for (const name of ['events.raw', 'events.enriched', 'events.late']) expect(byName.get(name)?.configs['cleanup.policy']).toBe('delete');
  for (const name of ['events.raw.dlq', 'catalog.items.dlq', 'events.enriched.dlq', 'aggregates.dlq']) expect(byName.has(name)).toBe(true);
  expect(catalog.every((t) => t.partitions === 3)).toBe(true);
});
