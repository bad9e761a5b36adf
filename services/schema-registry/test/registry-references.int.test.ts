import { AvroDeserializer, AvroSerializer, SchemaRegistryClient, SerdeType } from '@confluentinc/schemaregistry';
import { SchemaRegistry, SchemaType } from '@kafkajs/confluent-schema-registry';
import { avro, record, startRegistry } from './helpers';

// Avro schema references, as Confluent serves them: a schema uses a named type
// that another subject's version defines; through raw HTTP and both npm clients.
jest.setTimeout(60_000);

let registry: Awaited<ReturnType<typeof startRegistry>>;
beforeAll(async () => {
  registry = await startRegistry();
});
afterAll(async () => {
  await registry.stop();
});

const address = record('dev.sluice.shared.Address', [
  { name: 'street', type: 'string' },
  { name: 'city', type: 'string' },
]);
const money = record('dev.sluice.shared.Money', [
  { name: 'amount', type: 'double' },
  { name: 'currency', type: 'string' },
]);
// Uses Address (a reference), and is itself referenced by Order: nested references.
const customer = record('dev.sluice.shared.Customer', [
  { name: 'name', type: 'string' },
  { name: 'address', type: 'dev.sluice.shared.Address' },
]);
const order = (extra: unknown[] = []) =>
  record('dev.sluice.orders.Order', [
    { name: 'id', type: 'string' },
    { name: 'customer', type: 'dev.sluice.shared.Customer' },
    { name: 'total', type: 'dev.sluice.shared.Money' },
    ...extra,
  ]);

const ref = (name: string, subject: string, version: number) => ({ name, subject, version });

test('register with references (nested), read them back, look up, list referencedby, and the delete rules', async () => {
  const s = (name: string) => `http-${name}`;
  const call = registry.call;
  const addressId = ((await call('POST', `/subjects/${s('address')}/versions`, avro(address))).body as { id: number }).id;
  await call('POST', `/subjects/${s('money')}/versions`, avro(money));
  const customerRefs = [ref('dev.sluice.shared.Address', s('address'), 1)];
  const customerRes = await call('POST', `/subjects/${s('customer')}/versions`, { ...avro(customer), references: customerRefs });
  expect(customerRes.status).toBe(200);
  const customerId = (customerRes.body as { id: number }).id;
  // Order names Customer and Money; Customer's own reference (Address) is resolved through it.
  const orderRefs = [ref('dev.sluice.shared.Customer', s('customer'), 1), ref('dev.sluice.shared.Money', s('money'), -1)];
  const orderRes = await call('POST', `/subjects/${s('order')}/versions`, { ...avro(order()), references: orderRefs });
  expect(orderRes.status).toBe(200);
  const orderId = (orderRes.body as { id: number }).id;
  const storedOrderRefs = [orderRefs[0], { ...orderRefs[1], version: 1 }];

  expect((await call('GET', `/schemas/ids/${orderId}`)).body).toEqual({ schema: JSON.stringify(order()), references: storedOrderRefs });
  expect((await call('GET', `/subjects/${s('customer')}/versions/1`)).body).toEqual({ subject: s('customer'), version: 1, id: customerId, schema: JSON.stringify(customer), references: customerRefs });
  expect((await call('GET', `/schemas/ids/${addressId}`)).body).toEqual({ schema: JSON.stringify(address) });
  // Registering again is the same id; lookup finds it only with the same references.
  expect((await call('POST', `/subjects/${s('order')}/versions`, { ...avro(order()), references: storedOrderRefs })).body).toEqual({ id: orderId });
  expect((await call('POST', `/subjects/${s('order')}`, { ...avro(order()), references: storedOrderRefs })).body).toMatchObject({ id: orderId, version: 1 });
  expect((await call('POST', `/subjects/${s('order')}`, avro(order()))).status).toBe(422);

  // The same text with other references is another schema.
  await call('POST', `/subjects/${s('address')}/versions`, avro(record('dev.sluice.shared.Address', [{ name: 'street', type: 'string' }, { name: 'city', type: 'string' }, { name: 'zip', type: ['null', 'string'], default: null }])));
  const otherCustomer = await call('POST', `/subjects/${s('customer-2')}/versions`, { ...avro(customer), references: [ref('dev.sluice.shared.Address', s('address'), 2)] });
  expect(otherCustomer.status).toBe(200);
  expect((otherCustomer.body as { id: number }).id).not.toBe(customerId);

  expect((await call('GET', `/subjects/${s('address')}/versions/1/referencedby`)).body).toEqual([customerId]);
  expect((await call('GET', `/subjects/${s('customer')}/versions/1/referencedby`)).body).toEqual([orderId]);
  expect((await call('GET', `/subjects/${s('order')}/versions/1/referencedby`)).body).toEqual([]);

  // A referenced version stays while a version of a schema using it does.
  const refused = await call('DELETE', `/subjects/${s('customer')}/versions/1`);
  expect(refused).toMatchObject({ status: 422, body: { error_code: 42206 } });
  expect((refused.body as { message: string }).message).toMatch(new RegExp(`ids ${orderId}`));
  expect((await call('DELETE', `/subjects/${s('customer')}`)).body).toMatchObject({ error_code: 42206 });
  expect((await call('DELETE', `/subjects/${s('order')}/versions/1`)).status).toBe(200);
  // Soft-deleted users allow a soft delete, not yet a permanent one.
  expect((await call('DELETE', `/subjects/${s('customer')}/versions/1`)).status).toBe(200);
  expect((await call('DELETE', `/subjects/${s('customer')}/versions/1?permanent=true`)).body).toMatchObject({ error_code: 42206 });
  expect((await call('DELETE', `/subjects/${s('order')}/versions/1?permanent=true`)).status).toBe(200);
  expect((await call('DELETE', `/subjects/${s('customer')}/versions/1?permanent=true`)).status).toBe(200);
});

test('compatibility resolves references on both sides, at every level', async () => {
  const call = registry.call;
  await call('POST', '/subjects/compat-money/versions', avro(money));
  const refs = [ref('dev.sluice.shared.Money', 'compat-money', 1)];
  const priced = (fields: unknown[]) => ({ ...avro(record('dev.sluice.orders.Priced', [{ name: 'price', type: 'dev.sluice.shared.Money' }, ...fields])), references: refs });
  expect((await call('POST', '/subjects/compat-priced/versions', priced([]))).status).toBe(200);
  for (const level of ['BACKWARD', 'FORWARD', 'FULL', 'BACKWARD_TRANSITIVE', 'FORWARD_TRANSITIVE', 'FULL_TRANSITIVE', 'NONE']) {
    expect((await call('PUT', '/config/compat-priced', { compatibility: level })).status).toBe(200);
    const optional = await call('POST', '/compatibility/subjects/compat-priced/versions/latest', priced([{ name: 'note', type: ['null', 'string'], default: null }]));
    expect({ level, body: optional.body }).toEqual({ level, body: { is_compatible: true } });
    const breaking = await call('POST', '/compatibility/subjects/compat-priced/versions/latest', priced([{ name: 'required', type: 'int' }]));
    expect({ level, compatible: (breaking.body as { is_compatible: boolean }).is_compatible }).toEqual({ level, compatible: level === 'NONE' || level.startsWith('FORWARD') });
  }
  await call('PUT', '/config/compat-priced', { compatibility: 'BACKWARD' });
  const refused = await call('POST', '/subjects/compat-priced/versions', priced([{ name: 'required', type: 'int' }]));
  expect(refused).toMatchObject({ status: 409 });
});

test('every mistake with references is a 422 naming it, never a 500', async () => {
  const call = registry.call;
  await call('POST', '/subjects/err-money/versions', avro(money));
  const priced = avro(record('dev.sluice.orders.E', [{ name: 'price', type: 'dev.sluice.shared.Money' }]));
  const cases: [unknown, RegExp][] = [
    [[ref('dev.sluice.shared.Money', 'no-such-subject', 1)], /no-such-subject/],
    [[ref('dev.sluice.shared.Money', 'err-money', 7)], /version 7/],
    [[{ name: 'dev.sluice.shared.Money', subject: 'err-money' }], /version/],
    [[{ name: '', subject: 'err-money', version: 1 }], /name/],
    ['not-a-list', /references/],
    // The reference does not define the named type the schema uses.
    [[], /Money/],
  ];
  for (const [references, message] of cases) {
    const res = await call('POST', '/subjects/err-priced/versions', { ...priced, references });
    expect({ references, status: res.status, code: (res.body as { error_code: number }).error_code }).toEqual({ references, status: 422, code: 42201 });
    expect((res.body as { message: string }).message).toMatch(message);
  }
  expect((await call('GET', '/subjects/err-money/versions/1/referencedby')).body).toEqual([]);
  expect((await call('GET', '/subjects/nobody/versions/1/referencedby')).status).toBe(404);
});

test('@kafkajs/confluent-schema-registry: registers with references and encodes and decodes through them', async () => {
  const client = new SchemaRegistry({ host: registry.url });
  await client.register({ type: SchemaType.AVRO, schema: JSON.stringify(address) }, { subject: 'kjs-address' });
  await client.register({ type: SchemaType.AVRO, schema: JSON.stringify(money) }, { subject: 'kjs-money' });
  await client.register({ type: SchemaType.AVRO, schema: JSON.stringify(customer), references: [ref('dev.sluice.shared.Address', 'kjs-address', 1)] }, { subject: 'kjs-customer' });
  const { id } = await client.register(
    { type: SchemaType.AVRO, schema: JSON.stringify(order()), references: [ref('dev.sluice.shared.Customer', 'kjs-customer', 1), ref('dev.sluice.shared.Money', 'kjs-money', 1)] },
    { subject: 'kjs-order' },
  );
  const value = { id: 'o-1', customer: { name: 'Ada', address: { street: 'Rue 1', city: 'Paris' } }, total: { amount: 12.5, currency: 'EUR' } };
  // A client that did not register them decodes through the references it fetches.
  const reader = new SchemaRegistry({ host: registry.url });
  expect(await reader.decode(await client.encode(id, value))).toEqual(value);
});

test('@confluentinc/schemaregistry: serializers with references', async () => {
  const client = new SchemaRegistryClient({ baseURLs: [registry.url], maxRetries: 0 });
  try {
    await client.register('cf-address', { schemaType: 'AVRO', schema: JSON.stringify(address) });
    await client.register('cf-money', { schemaType: 'AVRO', schema: JSON.stringify(money) });
    await client.register('cf-customer', { schemaType: 'AVRO', schema: JSON.stringify(customer), references: [ref('dev.sluice.shared.Address', 'cf-address', 1)] });
    // This client defines referenced types in the order it meets them, a type before its own references:
    // a schema lists its transitive references first for it (Address before Customer), as with Confluent's registry.
    await client.register('cf-orders-value', {
      schemaType: 'AVRO',
      schema: JSON.stringify(order()),
      references: [ref('dev.sluice.shared.Address', 'cf-address', 1), ref('dev.sluice.shared.Customer', 'cf-customer', 1), ref('dev.sluice.shared.Money', 'cf-money', 1)],
    });
    const serializer = new AvroSerializer(client, SerdeType.VALUE, { useLatestVersion: true, autoRegisterSchemas: false });
    const value = { id: 'o-2', customer: { name: 'Grace', address: { street: 'Main St', city: 'Arlington' } }, total: { amount: 3, currency: 'USD' } };
    const bytes = await serializer.serialize('cf-orders', value);
    const reader = new SchemaRegistryClient({ baseURLs: [registry.url], maxRetries: 0 });
    try {
      expect(await new AvroDeserializer(reader, SerdeType.VALUE, {}).deserialize('cf-orders', bytes)).toEqual(value);
    } finally {
      await reader.close();
    }
  } finally {
    await client.close();
  }
});
