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
  expect(results.every((r) => r.status === 200)).toBe(true);
  expect(new Set(results.map((r) => (r.body as { id: number }).id)).size).toBe(1);
  expect((await a.call('GET', '/subjects/same-value/versions')).body).toEqual([1]);
});

test('parallel registrations of different schemas never share an id or a version', async () => {
  await a.call('PUT', '/config/many-value', { compatibility: 'NONE' });
  const schemas = Array.from({ length: 24 }, (_, i) => avro(record(`S${i}`, [{ name: `f${i}`, type: 'int' }])));
  const results = await Promise.all(schemas.map((s, i) => call((i % 2 ? a : b).url, 'POST', '/subjects/many-value/versions', s)));
  expect(results.every((r) => r.status === 200)).toBe(true);
  const ids = results.map((r) => (r.body as { id: number }).id);
  expect(new Set(ids).size).toBe(24);
  const versions = (await b.call('GET', '/subjects/many-value/versions')).body as number[];
  expect(versions).toEqual(Array.from({ length: 24 }, (_, i) => i + 1));
  const idsByVersion = await Promise.all(versions.map(async (v) => ((await a.call('GET', `/subjects/many-value/versions/${v}`)).body as { id: number }).id));
  expect(new Set(idsByVersion)).toEqual(new Set(ids));
});

test('the same schema registered in parallel under many subjects gets one id everywhere', async () => {
  const schema = avro(record('Everywhere', [{ name: 'y', type: 'long' }]));
  const results = await Promise.all(Array.from({ length: 20 }, (_, i) => call((i % 2 ? a : b).url, 'POST', `/subjects/everywhere-${i}/versions`, schema)));
  expect(new Set(results.map((r) => (r.body as { id: number }).id)).size).toBe(1);
});

test('a delete through one replica is seen through the other, whose cache held the subject', async () => {
  await a.call('POST', '/subjects/cached-value/versions', avro(record('C', [{ name: 'z', type: 'string' }])));
  expect((await b.call('GET', '/subjects/cached-value/versions/latest')).status).toBe(200);
  await a.call('DELETE', '/subjects/cached-value');
  const deadline = Date.now() + 5_000;
  let status = 200;
  while (Date.now() < deadline && status === 200) {
    status = (await b.call('GET', '/subjects/cached-value/versions/latest')).status;
    if (status === 200) await new Promise((r) => setTimeout(r, 20));
  }
  expect(status).toBe(404);
});
