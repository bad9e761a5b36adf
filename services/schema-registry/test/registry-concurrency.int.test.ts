import { startRegistry, call, avro, record } from './helpers';

// Several replicas over one Postgres: ids and versions stay consistent, and a
// write through one replica is seen through the other at once.
jest.setTimeout(90_000);

let a: Awaited<ReturnType<typeof startRegistry>>;
let b: Awaited<ReturnType<typeof startRegistry>>;

beforeAll(async () => {
  a = await startRegistry();
  b = await startRegistry({ REGISTRY_DB_SCHEMA: a.dbSchema });
});
afterAll(async () => {
  await Promise.all([a.stop(), b.stop()]);
});

test('many parallel registrations of one schema in one subject give one id and one version', async () => {
  const schema = avro(record('Same', [{ name: 'x', type: 'string' }]));
  const results = await Promise.all(
    Array.from({ length: 30 }, (_, i) => call((i % 2 ? a : b).url, 'POST', '/subjects/same-value/versions', schema)),
  );
  expect(results.map((r) => r.status)).toEqual(results.map(() => 200));
  const ids = new Set(results.map((r) => (r.body as { id: number }).id));
  expect(ids.size).toBe(1);
  const [id] = [...ids];
  expect(Number.isInteger(id) && id! > 0).toBe(true);
  expect((await a.call('GET', '/subjects/same-value/versions')).body).toEqual([1]);
  expect((await b.call('GET', `/schemas/ids/${id}`)).body).toMatchObject({ schema: schema.schema });
});

test('parallel registrations of different schemas never share an id or a version', async () => {
  expect((await a.call('PUT', '/config/many-value', { compatibility: 'NONE' })).status).toBe(200);
  const schemas = Array.from({ length: 24 }, (_, i) => avro(record(`S${i}`, [{ name: `f${i}`, type: 'int' }])));
  const results = await Promise.all(schemas.map((s, i) => call((i % 2 ? a : b).url, 'POST', '/subjects/many-value/versions', s)));
  expect(results.map((r) => r.status)).toEqual(results.map(() => 200));
  const ids = results.map((r) => (r.body as { id: number }).id);
  expect(ids.every((id) => Number.isInteger(id) && id > 0)).toBe(true);
  expect(new Set(ids).size).toBe(24);
  const versions = (await b.call('GET', '/subjects/many-value/versions')).body as number[];
  expect(versions).toEqual(Array.from({ length: 24 }, (_, i) => i + 1));
  const idsByVersion = await Promise.all(versions.map(async (v) => ((await a.call('GET', `/subjects/many-value/versions/${v}`)).body as { id: number }).id));
  expect(new Set(idsByVersion)).toEqual(new Set(ids));
});

test('the same schema registered in parallel under many subjects gets one id everywhere', async () => {
  const schema = avro(record('Everywhere', [{ name: 'y', type: 'long' }]));
  const results = await Promise.all(Array.from({ length: 20 }, (_, i) => call((i % 2 ? a : b).url, 'POST', `/subjects/everywhere-${i}/versions`, schema)));
  expect(results.map((r) => r.status)).toEqual(results.map(() => 200));
  const ids = new Set(results.map((r) => (r.body as { id: number }).id));
  expect(ids.size).toBe(1);
  const [id] = [...ids];
  expect(Number.isInteger(id) && id! > 0).toBe(true);
  // Every subject holds it as its version 1, under that id.
  const latest = await Promise.all(Array.from({ length: 20 }, (_, i) => a.call('GET', `/subjects/everywhere-${i}/versions/latest`)));
  expect(latest.map((r) => [r.status, (r.body as { id: number; version: number }).id, (r.body as { version: number }).version])).toEqual(latest.map(() => [200, id, 1]));
});

test('a delete through one replica is seen through the other, whose cache held the subject', async () => {
  expect((await a.call('POST', '/subjects/cached-value/versions', avro(record('C', [{ name: 'z', type: 'string' }])))).status).toBe(200);
  expect((await b.call('GET', '/subjects/cached-value/versions/latest')).status).toBe(200);
  expect((await a.call('DELETE', '/subjects/cached-value')).status).toBe(200);
  const deadline = Date.now() + 5_000;
  let status = 200;
  while (Date.now() < deadline && status === 200) {
    status = (await b.call('GET', '/subjects/cached-value/versions/latest')).status;
    if (status === 200) await new Promise((r) => setTimeout(r, 20));
  }
  expect(status).toBe(404);
});
