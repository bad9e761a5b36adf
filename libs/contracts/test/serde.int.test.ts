import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { SchemaRegistry, SchemaType } from '@kafkajs/confluent-schema-registry';
import { checkAgainstRegistry, DecodeError, schemaHistory, Serde, writeWireFormat, type ActivityEvent, type WindowAggregate } from '@sluice/contracts';
import { runningStack, uniqueName } from '@sluice/testing';

jest.setTimeout(60_000);

const registryUrl = () => runningStack().schemaRegistryUrl;

const event: ActivityEvent = {
  eventId: 'e-1',
  type: 'click',
  entityId: 'sku-1',
  userId: null,
  occurredAt: 1_767_225_600_000,
  value: 2.5,
  attributes: { page: 'home' },
};

async function decodeError(promise: Promise<unknown>): Promise<DecodeError> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof DecodeError) return err;
    throw err;
  }
  throw new Error('decoded without an error');
}

test('a value encoded with a registered contract decodes to exactly what was sent', async () => {
  const serde = new Serde(registryUrl());
  const encoder = await serde.encoder<ActivityEvent>(uniqueName('events.raw'), 'ActivityEvent');
  const bytes = encoder.encode(event);
  expect(bytes[0]).toBe(0);
  expect(bytes.readInt32BE(1)).toBe(encoder.schemaId);
  expect(await serde.decoder<ActivityEvent>('ActivityEvent').decode(bytes)).toEqual(event);
});

test('a value that breaks its contract is refused before it is produced, with the path of each problem', async () => {
  const serde = new Serde(registryUrl());
  const encoder = await serde.encoder<ActivityEvent>(uniqueName('events.raw'), 'ActivityEvent');
  expect(() => encoder.encode({ ...event, value: 'high' as never })).toThrow(expect.objectContaining({ code: 'contract.violation', canRetry: false }));
});

test('records written with WindowAggregate v1 decode with the newest contract, revision 0', async () => {
  const subject = `${uniqueName('aggregates')}-value`;
  const client = new SchemaRegistry({ host: registryUrl() });
  const { id } = await client.register({ type: SchemaType.AVRO, schema: schemaHistory('WindowAggregate')[0]!.text }, { subject });
  const old = { dimension: 'entity', key: 'sku-1', windowStart: 0, windowEnd: 60_000, count: 3, sum: 6, min: 1, max: 3, isFinal: true, lastEventAt: 59_000 };
  const bytes = await client.encode(id, old);
  const decoded = await new Serde(registryUrl()).decoder<WindowAggregate>('WindowAggregate').decode(bytes);
  expect(decoded).toEqual({ ...old, revision: 0 });
});

test('decode errors have stable codes that say the record goes to a dead-letter topic', async () => {
  const decoder = new Serde(registryUrl()).decoder<ActivityEvent>('ActivityEvent');
  expect(await decodeError(decoder.decode(Buffer.from('not avro at all')))).toMatchObject({ code: 'serde.bad_magic_byte', canRetry: false });
  expect(await decodeError(decoder.decode(writeWireFormat(987_654, Buffer.from([1, 2, 3]))))).toMatchObject({
    code: 'serde.unknown_schema_id',
    canRetry: false,
  });
  const encoder = await new Serde(registryUrl()).encoder<ActivityEvent>(uniqueName('events.raw'), 'ActivityEvent');
  const truncated = encoder.encode(event).subarray(0, 9);
  expect(await decodeError(decoder.decode(truncated))).toMatchObject({ code: 'serde.malformed', canRetry: false });
});

test('a record whose schema the contract cannot read is refused as incompatible', async () => {
  const subject = `${uniqueName('other')}-value`;
  const client = new SchemaRegistry({ host: registryUrl() });
  const { id } = await client.register({ type: SchemaType.AVRO, schema: JSON.stringify({ type: 'record', name: 'Unrelated', fields: [{ name: 'x', type: 'int' }] }) }, { subject });
  const bytes = await client.encode(id, { x: 1 });
  expect(await decodeError(new Serde(registryUrl()).decoder('ActivityEvent').decode(bytes))).toMatchObject({ code: 'serde.incompatible_schema' });
});

test('a writer schema whose types are named after Object.prototype members is read, and refused as incompatible', async () => {
  // Its record named `constructor` was once taken for a type already defined, and the error was no decode error at
  // all (the record ended as stream.poison after the retries, not with its reason).
  const client = new SchemaRegistry({ host: registryUrl() });
  for (const name of ['constructor', 'toString', '__proto__']) {
    const schema = { type: 'record', name, fields: [{ name: 'x', type: 'int' }, { name: 'next', type: ['null', name], default: null }] };
    const { id } = await client.register({ type: SchemaType.AVRO, schema: JSON.stringify(schema) }, { subject: `${uniqueName('proto')}-value` });
    const bytes = await client.encode(id, { x: 1, next: null });
    expect(await decodeError(new Serde(registryUrl()).decoder('ActivityEvent').decode(bytes))).toMatchObject({ code: 'serde.incompatible_schema', canRetry: false });
    expect((await new Serde(registryUrl()).decodeAny(bytes)).value).toMatchObject({ x: 1, next: null });
  }
});

test('an unreachable registry is a retryable failure, not a dead letter', async () => {
  const decoder = new Serde('http://127.0.0.1:9').decoder('ActivityEvent');
  expect(await decodeError(decoder.decode(writeWireFormat(1, Buffer.from([0]))))).toMatchObject({ code: 'registry.unavailable', canRetry: true });
});

test('registering an incompatible schema at start-up fails fast with the registry’s message', async () => {
  const subject = `${uniqueName('events.raw')}-value`;
  const client = new SchemaRegistry({ host: registryUrl() });
  await client.register({ type: SchemaType.AVRO, schema: JSON.stringify({ type: 'record', name: 'ActivityEvent', namespace: 'dev.sluice.events', fields: [{ name: 'eventId', type: 'int' }] }) }, { subject });
  await expect(new Serde(registryUrl()).encoder(subject, 'ActivityEvent')).rejects.toMatchObject({
    code: 'registry.registration_refused',
    message: expect.stringContaining('incompatible'),
  });
});

test('the contracts check passes against the running registry, as a command and as a function', async () => {
  const results = await checkAgainstRegistry(registryUrl());
  expect(results.flatMap((r) => r.problems)).toEqual([]);
  const cli = spawnSync(process.execPath, [join(__dirname, '..', 'dist', 'cli.js'), 'check', '--registry', registryUrl()], { encoding: 'utf8' });
  expect(cli.stdout).toContain('ok   WindowAggregate');
  expect(cli.status).toBe(0);
});
