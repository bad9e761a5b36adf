import type { Logger } from '@sluice/runtime';
import { ProduceBatcher, type ProducerHolder } from './batcher';
import type { GatewayMetrics } from './metrics';

/** The batching decisions alone, against a producer that acknowledges when told to (Kafka itself is in the integration tests). */
function harness(lingerMs: number) {
  const sends: { size: number; ack: () => void }[] = [];
  const producer = {
    send: ({ messages }: { messages: { partition: number }[] }) =>
      new Promise((resolve) => sends.push({ size: messages.length, ack: () => resolve([...new Set(messages.map((m) => m.partition))].map((partition) => ({ partition, baseOffset: '0' }))) })),
  };
  const holder = { get: async () => producer, reset: async () => undefined } as unknown as ProducerHolder;
  const metrics = { inflightEvents: { set: () => undefined }, batchSize: { observe: () => undefined }, produceLatency: { observe: () => undefined } } as unknown as GatewayMetrics;
  const logger = { warn: () => undefined } as unknown as Logger;
  const batcher = new ProduceBatcher({ topic: 't', producer: holder, partitions: () => 3, lingerMs, maxBatchEvents: 100, maxInflightEvents: 10_000, maxInflightBytes: 1 << 20, metrics, logger });
  const submit = () => batcher.submit([{ key: 'k', value: Buffer.from('v'), headers: {} }]);
  const settle = () => new Promise((r) => setImmediate(r));
  return { sends, submit, settle };
}

test('adaptive (linger 0): a batch leaves at once when none is in flight, and what arrives meanwhile leaves together when it is acknowledged', async () => {
  const { sends, submit, settle } = harness(0);
  const first = submit();
  await settle();
  await settle();
  expect(sends.map((s) => s.size)).toEqual([1]);
  const more = [submit(), submit(), submit()];
  await settle();
  await settle();
  expect(sends.map((s) => s.size)).toEqual([1]);
  sends[0]!.ack();
  await first;
  await settle();
  await settle();
  expect(sends.map((s) => s.size)).toEqual([1, 3]);
  sends[1]!.ack();
  expect(await Promise.all(more)).toHaveLength(3);
});

test('a fixed linger waits for company even when nothing is in flight', async () => {
  const { sends, submit, settle } = harness(30);
  const a = submit();
  await settle();
  await settle();
  expect(sends).toHaveLength(0);
  const b = submit();
  await new Promise((r) => setTimeout(r, 60));
  expect(sends.map((s) => s.size)).toEqual([2]);
  sends[0]!.ack();
  await Promise.all([a, b]);
});
