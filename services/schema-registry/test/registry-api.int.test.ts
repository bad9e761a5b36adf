import { startRegistry, avro, record } from './helpers';

// The Confluent Schema Registry REST API, over plain HTTP, against a real
// registry process and Postgres. Scenarios follow what Karapace checks
// against Confluent's registry; the code is our own.
jest.setTimeout(60_000);

let registry: Awaited<ReturnType<typeof startRegistry>>;
let n = 0;
const subject = () => `subject-${++n}`;
const call = (...args: Parameters<typeof registry.call>) => registry.call(...args);

beforeAll(async () => {
  registry = await startRegistry();
});

afterAll(async () => {
  await registry.stop();
});

const userV1 = record('user', [
  { name: 'name', type: 'string' },
  { name: 'age', type: 'int' },
]);
const userV2 = record('user', [
  { name: 'name', type: 'string' },
  { name: 'age', type: 'int' },
  { name: 'color', type: 'string', default: 'green' },
]);

describe('registering', () => {
  test('posting the same schema again returns the same id and adds no version', async () => {
    const s = subject();
    const first = await call('POST', `/subjects/${s}/versions`, avro(userV1));
    const again = await call('POST', `/subjects/${s}/versions`, avro(userV1));
    expect(first.status).toBe(200);
    expect(again.body).toEqual(first.body);
    expect((await call('GET', `/subjects/${s}/versions`)).body).toEqual([1]);
  });

  test('texts that differ only in white space are the same schema', async () => {
    const s = subject();
    const compact = await call('POST', `/subjects/${s}/versions`, { schema: JSON.stringify(userV1) });
    const spaced = await call('POST', `/subjects/${s}/versions`, { schema: JSON.stringify(userV1, null, 2) });
    expect(spaced.body).toEqual(compact.body);
  });

  test('one schema in three subjects has one global id and version 1 in each', async () => {
    const schema = record('shared', [{ name: 'x', type: 'long' }]);
    const subjects = [subject(), subject(), subject()];
    const ids = [];
    for (const s of subjects) ids.push(((await call('POST', `/subjects/${s}/versions`, avro(schema))).body as { id: number }).id);
    expect(new Set(ids).size).toBe(1);
    for (const s of subjects) expect((await call('GET', `/subjects/${s}/versions/1`)).body).toMatchObject({ subject: s, version: 1, id: ids[0] });
    const where = (await call('GET', `/schemas/ids/${ids[0]}/versions`)).body as { subject: string; version: number }[];
    expect(where).toEqual(subjects.map((s) => ({ subject: s, version: 1 })).sort((a, b) => a.subject.localeCompare(b.subject)));
  });

  test('a compatible evolution gets a new id and the next version; the registry returns each text as registered', async () => {
    const s = subject();
    const v1 = (await call('POST', `/subjects/${s}/versions`, avro(userV1))).body as { id: number };
    const v2 = (await call('POST', `/subjects/${s}/versions`, avro(userV2))).body as { id: number };
    expect(v2.id).not.toBe(v1.id);
    expect((await call('GET', `/subjects/${s}/versions/1`)).body).toEqual({ subject: s, version: 1, id: v1.id, schema: JSON.stringify(userV1) });
    expect((await call('GET', `/subjects/${s}/versions/latest`)).body).toEqual({ subject: s, version: 2, id: v2.id, schema: JSON.stringify(userV2) });
    expect((await call('GET', `/subjects/${s}/versions/-1`)).body).toMatchObject({ version: 2 });
    expect((await call('GET', `/subjects/${s}/versions/2/schema`)).body).toEqual(userV2);
    expect((await call('GET', `/schemas/ids/${v2.id}`)).body).toEqual({ schema: JSON.stringify(userV2) });
  });

  test('an incompatible schema is refused with 409 and the reason', async () => {
    const s = subject();
    await call('POST', `/subjects/${s}/versions`, avro(userV1));
    const res = await call('POST', `/subjects/${s}/versions`, avro(record('user', [{ name: 'name', type: 'int' }])));
    expect(res.status).toBe(409);
    expect(res.body).toMatchObject({ error_code: 409, message: expect.stringContaining('incompatible') });
  });

  test('a change inside a nested record is incompatible', async () => {
    const s = subject();
    const nested = (t: string) => record('Objct', [{ name: 'nested', type: record('first_name_record', [{ name: 'first_name', type: t }]) }]);
    expect((await call('POST', `/subjects/${s}/versions`, avro(nested('string')))).status).toBe(200);
    expect((await call('POST', `/subjects/${s}/versions`, avro(nested('int')))).status).toBe(409);
  });

  test('union to union: a reader union must cover every branch the writer could have written', async () => {
    const init = record('init', [{ name: 'inner', type: ['string', 'int'] }]);
    const evolved = record('init', [{ name: 'inner', type: ['null', 'string'] }]);
    const widened = record('init', [{ name: 'inner', type: ['int', 'string', record('foobar_fields', [{ name: 'foo', type: 'string' }])] }]);
    const backward = subject();
    await call('PUT', `/config/${backward}`, { compatibility: 'BACKWARD' });
    expect((await call('POST', `/subjects/${backward}/versions`, avro(init))).status).toBe(200);
    expect((await call('POST', `/subjects/${backward}/versions`, avro(evolved))).status).toBe(409);
    expect((await call('POST', `/subjects/${backward}/versions`, avro(widened))).status).toBe(200);
    const forward = subject();
    await call('PUT', `/config/${forward}`, { compatibility: 'FORWARD' });
    expect((await call('POST', `/subjects/${forward}/versions`, avro(widened))).status).toBe(200);
    expect((await call('POST', `/subjects/${forward}/versions`, avro(evolved))).status).toBe(409);
    expect((await call('POST', `/subjects/${forward}/versions`, avro(init))).status).toBe(200);
  });
});

describe('type promotions through the compatibility endpoint (BACKWARD)', () => {
  const promotions: [string, string, boolean][] = [
    ['int', 'long', true],
    ['int', 'float', true],
    ['int', 'double', true],
    ['long', 'double', true],
    ['float', 'double', true],
    ['string', 'bytes', true],
    ['bytes', 'string', true],
    ['long', 'int', false],
    ['double', 'float', false],
    ['int', 'string', false],
    ['boolean', 'int', false],
  ];
  test.each(promotions)('a field written as %s and read as %s: compatible = %s', async (writer, reader, compatible) => {
    const s = subject();
    await call('PUT', `/config/${s}`, { compatibility: 'BACKWARD' });
    await call('POST', `/subjects/${s}/versions`, avro(record('P', [{ name: 'f', type: writer }])));
    const res = await call('POST', `/compatibility/subjects/${s}/versions/latest`, avro(record('P', [{ name: 'f', type: reader }])));
    expect(res).toMatchObject({ status: 200, body: { is_compatible: compatible } });
  });

  test('verbose explains an incompatibility', async () => {
    const s = subject();
    await call('POST', `/subjects/${s}/versions`, avro(record('P', [{ name: 'f', type: 'int' }])));
    const res = await call('POST', `/compatibility/subjects/${s}/versions/1?verbose=true`, avro(record('P', [{ name: 'f', type: 'string' }])));
    expect(res.body).toMatchObject({ is_compatible: false, messages: [expect.stringContaining('/f')] });
  });

  test('checking against a subject or version that does not exist is a 404', async () => {
    const s = subject();
    expect((await call('POST', `/compatibility/subjects/${s}/versions/1`, avro(userV1))).body).toMatchObject({ error_code: 40402 });
    expect((await call('POST', `/compatibility/subjects/${s}/versions/latest`, avro(userV1))).body).toMatchObject({ error_code: 40401 });
  });
});

describe('deleting', () => {
  test('versions continue from the highest ever used after a soft delete of the subject', async () => {
    const s = subject();
    await call('POST', `/subjects/${s}/versions`, avro(userV1));
    await call('POST', `/subjects/${s}/versions`, avro(userV2));
    expect((await call('DELETE', `/subjects/${s}`)).body).toEqual([1, 2]);
    expect((await call('GET', `/subjects/${s}/versions`)).body).toMatchObject({ error_code: 40401 });
    await call('POST', `/subjects/${s}/versions`, avro(userV1));
    expect((await call('GET', `/subjects/${s}/versions`)).body).toEqual([3]);
    expect((await call('GET', `/subjects/${s}/versions?deleted=true`)).body).toEqual([1, 2, 3]);
  });

  test('listing subjects with deleted=true includes soft-deleted ones', async () => {
    const s = subject();
    await call('POST', `/subjects/${s}/versions`, avro(userV1));
    await call('DELETE', `/subjects/${s}`);
    expect((await call('GET', '/subjects')).body).not.toContain(s);
    expect((await call('GET', '/subjects?deleted=true')).body).toContain(s);
    expect((await call('GET', `/subjects/${s}/versions/1`)).status).toBe(404);
    expect((await call('GET', `/subjects/${s}/versions/1?deleted=true`)).body).toMatchObject({ version: 1 });
  });

  test('a permanent delete needs a soft delete first; then the subject is gone and can be created again', async () => {
    const s = subject();
    const { id } = (await call('POST', `/subjects/${s}/versions`, avro(userV1))).body as { id: number };
    expect((await call('DELETE', `/subjects/${s}?permanent=true`)).body).toMatchObject({ error_code: 40405 });
    expect((await call('DELETE', `/subjects/${s}`)).body).toEqual([1]);
    expect((await call('DELETE', `/subjects/${s}`)).body).toMatchObject({ error_code: 40404 });
    expect((await call('DELETE', `/subjects/${s}?permanent=true`)).body).toEqual([1]);
    expect((await call('GET', '/subjects?deleted=true')).body).not.toContain(s);
    expect((await call('DELETE', `/subjects/${s}`)).body).toMatchObject({ error_code: 40401 });
    const again = (await call('POST', `/subjects/${s}/versions`, avro(userV1))).body as { id: number };
    expect(again.id).toBe(id);
    expect((await call('GET', `/subjects/${s}/versions`)).body).toEqual([1]);
  });

  test('versions are deleted one at a time with the same two steps', async () => {
    const s = subject();
    await call('POST', `/subjects/${s}/versions`, avro(userV1));
    await call('POST', `/subjects/${s}/versions`, avro(userV2));
    expect((await call('DELETE', `/subjects/${s}/versions/1?permanent=true`)).body).toMatchObject({ error_code: 40407 });
    expect((await call('DELETE', `/subjects/${s}/versions/1`)).body).toBe(1);
    expect((await call('DELETE', `/subjects/${s}/versions/1`)).body).toMatchObject({ error_code: 40406 });
    expect((await call('DELETE', `/subjects/${s}/versions/1?permanent=true`)).body).toBe(1);
    expect((await call('DELETE', `/subjects/${s}/versions/9`)).body).toMatchObject({ error_code: 40402 });
    expect((await call('DELETE', `/subjects/${s}/versions/latest`)).body).toBe(2);
    expect((await call('GET', `/subjects/${s}/versions?deleted=true`)).body).toEqual([2]);
  });

  test('transitive levels ignore deleted versions', async () => {
    const s = subject();
    await call('PUT', `/config/${s}`, { compatibility: 'BACKWARD_TRANSITIVE' });
    await call('POST', `/subjects/${s}/versions`, avro(record('T', [{ name: 'a', type: 'string' }])));
    await call('POST', `/subjects/${s}/versions`, avro(record('T', [{ name: 'a', type: 'string' }, { name: 'b', type: 'int', default: 0 }])));
    // Reads v2 (b is there) but not v1 (b missing and no default).
    const v3 = record('T', [{ name: 'a', type: 'string' }, { name: 'b', type: 'int' }]);
    expect((await call('POST', `/subjects/${s}/versions`, avro(v3))).status).toBe(409);
    await call('DELETE', `/subjects/${s}/versions/1`);
    expect((await call('POST', `/subjects/${s}/versions`, avro(v3))).status).toBe(200);
  });
});

describe('lookup', () => {
  test('POST /subjects/{s} finds the version of a schema', async () => {
    const s = subject();
    const { id } = (await call('POST', `/subjects/${s}/versions`, avro(userV1))).body as { id: number };
    await call('POST', `/subjects/${s}/versions`, avro(userV2));
    expect((await call('POST', `/subjects/${s}`, avro(userV1))).body).toEqual({ subject: s, version: 1, id, schema: JSON.stringify(userV1) });
    expect((await call('POST', `/subjects/${s}`, avro(record('other', [])))).body).toMatchObject({ error_code: 40403 });
    expect((await call('POST', `/subjects/${subject()}`, avro(userV1))).body).toMatchObject({ error_code: 40401 });
  });
});

describe('config and mode', () => {
  test('a subject without its own level answers 40408 unless asked to default to the global one', async () => {
    const s = subject();
    await call('POST', `/subjects/${s}/versions`, avro({ type: 'string' }));
    expect((await call('GET', `/config/${s}`)).body).toMatchObject({ error_code: 40408 });
    expect((await call('GET', `/config/${s}?defaultToGlobal=false`)).status).toBe(404);
    expect((await call('GET', `/config/${s}?defaultToGlobal=true`)).body).toEqual({ compatibilityLevel: 'BACKWARD' });
  });

  test('levels are set globally and per subject, and a subject level can be deleted', async () => {
    const s = subject();
    expect((await call('PUT', `/config/${s}`, { compatibility: 'FULL_TRANSITIVE' })).body).toEqual({ compatibility: 'FULL_TRANSITIVE' });
    expect((await call('GET', `/config/${s}`)).body).toEqual({ compatibilityLevel: 'FULL_TRANSITIVE' });
    expect((await call('DELETE', `/config/${s}`)).body).toEqual({ compatibilityLevel: 'FULL_TRANSITIVE' });
    expect((await call('GET', `/config/${s}`)).status).toBe(404);
    expect((await call('PUT', '/config', { compatibility: 'NONE' })).body).toEqual({ compatibility: 'NONE' });
    expect((await call('GET', '/config')).body).toEqual({ compatibilityLevel: 'NONE' });
    await call('POST', `/subjects/${s}/versions`, avro({ type: 'string' }));
    expect((await call('POST', `/subjects/${s}/versions`, avro({ type: 'int' }))).status).toBe(200);
    await call('PUT', '/config', { compatibility: 'BACKWARD' });
  });

  test('READONLY refuses registrations with 42205, per subject or globally', async () => {
    const s = subject();
    expect((await call('GET', '/mode')).body).toEqual({ mode: 'READWRITE' });
    expect((await call('GET', `/mode/${s}`)).body).toMatchObject({ error_code: 40409 });
    expect((await call('PUT', `/mode/${s}`, { mode: 'READONLY' })).body).toEqual({ mode: 'READONLY' });
    expect((await call('POST', `/subjects/${s}/versions`, avro(userV1))).body).toMatchObject({ error_code: 42205 });
    expect((await call('DELETE', `/mode/${s}`)).body).toEqual({ mode: 'READONLY' });
    expect((await call('POST', `/subjects/${s}/versions`, avro(userV1))).status).toBe(200);
    await call('PUT', '/mode', { mode: 'READONLY' });
    expect((await call('POST', `/subjects/${subject()}/versions`, avro(userV1))).status).toBe(422);
    await call('PUT', '/mode', { mode: 'READWRITE' });
  });
});

describe('client mistakes are 4xx with Confluent error codes, never 500', () => {
  test.each([
    ['an unknown schema id', 'GET', '/schemas/ids/99999', undefined, 404, 40403],
    ['a schema id that is not a number', 'GET', '/schemas/ids/abc', undefined, 404, 40403],
    ['a schema that is not Avro', 'POST', '/subjects/bad/versions', { schema: '{"type":"nope"}' }, 422, 42201],
    ['a schema that is not JSON', 'POST', '/subjects/bad/versions', { schema: '{not json' }, 422, 42201],
    ['a body without a schema', 'POST', '/subjects/bad/versions', {}, 422, 42201],
    ['an unknown schema type', 'POST', '/subjects/bad/versions', { schema: '"string"', schemaType: 'AVROO' }, 422, 422],
    ['an unsupported schema type', 'POST', '/subjects/bad/versions', { schema: '{}', schemaType: 'PROTOBUF' }, 422, 42201],
    ['version 0', 'GET', '/subjects/bad/versions/0', undefined, 422, 42202],
    ['a version that is a word', 'GET', '/subjects/bad/versions/first', undefined, 422, 42202],
    ['an unknown compatibility level', 'PUT', '/config', { compatibility: 'SIDEWAYS' }, 422, 42203],
    ['an unknown mode', 'PUT', '/mode', { mode: 'WRITEONLY' }, 422, 42204],
    ['a body that is not JSON', 'POST', '/subjects/bad/versions', '{"schema": ', 400, 400],
    ['a route that does not exist', 'GET', '/nope', undefined, 404, 404],
    ['a NUL in a subject', 'POST', '/subjects/a%00b/versions', { schema: '"string"' }, 422, 42208],
    ['a control character in a subject', 'GET', '/subjects/a%0Ab/versions', undefined, 422, 42208],
    ['a path that is not UTF-8', 'GET', '/subjects/%ED%A0%80/versions', undefined, 400, 400],
    // Raw in the schema's text (not escaped within it): what Postgres text cannot hold.
    ['a NUL in a schema', 'POST', '/subjects/bad/versions', { schema: '{"type":"record","name":"N","doc":"a\u0000b","fields":[]}' }, 422, 42201],
    ['a lone surrogate in a schema', 'POST', '/subjects/bad/versions', { schema: '{"type":"record","name":"N","doc":"\ud800","fields":[]}' }, 422, 42201],
  ])('%s', async (_what, method, path, body, status, errorCode) => {
    const res = await call(method, path, body);
    expect(res.status).toBe(status);
    expect(res.body).toMatchObject({ error_code: errorCode, message: expect.any(String) });
    expect(res.contentType).toContain('application/vnd.schemaregistry.v1+json');
  });

  test('a body over the limit is refused with 413', async () => {
    const big = record('Big', [{ name: 'x', type: 'string', doc: 'x'.repeat(2 * 1024 * 1024) }]);
    const res = await call('POST', `/subjects/${subject()}/versions`, avro(big));
    expect(res).toMatchObject({ status: 413, body: { error_code: 413 } });
  });

  test('only Avro is offered', async () => {
    expect((await call('GET', '/schemas/types')).body).toEqual(['AVRO']);
  });
});
