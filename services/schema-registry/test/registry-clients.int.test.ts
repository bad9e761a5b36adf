import { SchemaRegistryClient } from '@confluentinc/schemaregistry';
import { SchemaRegistry, SchemaType } from '@kafkajs/confluent-schema-registry';
import { startRegistry, record } from './helpers';

// The same scenarios through the two npm clients people use with Confluent's registry.
jest.setTimeout(60_000);

let registry: Awaited<ReturnType<typeof startRegistry>>;
beforeAll(async () => {
  registry = await startRegistry();
});
afterAll(async () => {
  await registry.stop();
});

const v1 = record('dev.sluice.test.Order', [
  { name: 'id', type: 'string' },
  { name: 'amount', type: 'double' },
]);
const v2 = record('dev.sluice.test.Order', [
  { name: 'id', type: 'string' },
  { name: 'amount', type: 'double' },
  { name: 'note', type: ['null', 'string'], default: null },
]);
const incompatible = record('dev.sluice.test.Order', [{ name: 'id', type: 'int' }]);

describe('@kafkajs/confluent-schema-registry', () => {
  test('registers, encodes in the wire format and decodes, including across versions', async () => {
    const client = new SchemaRegistry({ host: registry.url });
    const subject = 'kafkajs-orders-value';
    const { id: id1 } = await client.register({ type: SchemaType.AVRO, schema: JSON.stringify(v1) }, { subject });
    const again = await client.register({ type: SchemaType.AVRO, schema: JSON.stringify(v1) }, { subject });
    expect(again.id).toBe(id1);
    const { id: id2 } = await client.register({ type: SchemaType.AVRO, schema: JSON.stringify(v2) }, { subject });
    expect(id2).not.toBe(id1);
    expect(await client.getLatestSchemaId(subject)).toBe(id2);
    expect(await client.getRegistryId(subject, 1)).toBe(id1);

    const encoded = await client.encode(id1, { id: 'o-1', amount: 9.5 });
    expect(encoded.readUInt8(0)).toBe(0);
    expect(encoded.readInt32BE(1)).toBe(id1);
    expect(await client.decode(encoded)).toEqual({ id: 'o-1', amount: 9.5 });
    expect(await client.decode(await client.encode(id2, { id: 'o-2', amount: 1, note: 'x' }))).toEqual({ id: 'o-2', amount: 1, note: 'x' });
  });

  test('an incompatible schema is refused with the registry’s own message', async () => {
    const client = new SchemaRegistry({ host: registry.url });
    const subject = 'kafkajs-refused-value';
    await client.register({ type: SchemaType.AVRO, schema: JSON.stringify(v1) }, { subject });
    await expect(client.register({ type: SchemaType.AVRO, schema: JSON.stringify(incompatible) }, { subject })).rejects.toThrow(/incompatible/);
  });
});

describe('@confluentinc/schemaregistry', () => {
  let client: SchemaRegistryClient;
  beforeAll(() => {
    client = new SchemaRegistryClient({ baseURLs: [registry.url], maxRetries: 0 });
  });
  afterAll(async () => {
    await client.close();
  });

  test('registers, reads back by subject, version and id, and lists', async () => {
    const subject = 'confluent-orders-value';
    const id1 = await client.register(subject, { schemaType: 'AVRO', schema: JSON.stringify(v1) });
    const id2 = await client.register(subject, { schemaType: 'AVRO', schema: JSON.stringify(v2) });
    expect(id2).not.toBe(id1);
    const latest = await client.getLatestSchemaMetadata(subject);
    expect(latest).toMatchObject({ id: id2, version: 2 });
    expect(JSON.parse(latest.schema!)).toEqual(v2);
    expect(await client.getSchemaMetadata(subject, 1)).toMatchObject({ id: id1, version: 1 });
    expect(JSON.parse((await client.getBySubjectAndId(subject, id1)).schema)).toEqual(v1);
    expect(await client.getId(subject, { schemaType: 'AVRO', schema: JSON.stringify(v1) })).toBe(id1);
    expect(await client.getVersion(subject, { schemaType: 'AVRO', schema: JSON.stringify(v2) })).toBe(2);
    expect(await client.getAllVersions(subject)).toEqual([1, 2]);
    expect(await client.getAllSubjects()).toContain(subject);
  });

  test('compatibility is tested and configured per subject', async () => {
    const subject = 'confluent-compat-value';
    await client.register(subject, { schemaType: 'AVRO', schema: JSON.stringify(v1) });
    expect(await client.testSubjectCompatibility(subject, { schemaType: 'AVRO', schema: JSON.stringify(v2) })).toBe(true);
    expect(await client.testCompatibility(subject, 1, { schemaType: 'AVRO', schema: JSON.stringify(incompatible) })).toBe(false);
    expect(await client.updateCompatibility(subject, 'FULL' as never)).toBe('FULL');
    expect(await client.getCompatibility(subject)).toBe('FULL');
    await expect(client.register(subject, { schemaType: 'AVRO', schema: JSON.stringify(incompatible) })).rejects.toThrow();
  });

  test('deletes softly, then permanently', async () => {
    const subject = 'confluent-delete-value';
    await client.register(subject, { schemaType: 'AVRO', schema: JSON.stringify(v1) });
    await client.register(subject, { schemaType: 'AVRO', schema: JSON.stringify(v2) });
    expect(await client.deleteSubjectVersion(subject, 2)).toBe(2);
    expect(await client.deleteSubject(subject)).toEqual([1]);
    expect(await client.deleteSubject(subject, true)).toEqual([1, 2]);
    expect(await client.getAllSubjects()).not.toContain(subject);
  });
});
