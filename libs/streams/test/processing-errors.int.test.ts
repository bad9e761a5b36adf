import { createTopics, eventually, readTopic, testKafka, uniqueName } from '@sluice/testing';
import type { Kafka, Producer } from 'kafkajs';
import { createLogger } from '@sluice/runtime';
import { Registry } from 'prom-client';
import { StreamProcessor, type StreamProcessorOptions } from '../src';

// A processor with a bug (an error of no known kind, thrown for one record) on a
// real broker: the record is tried a bounded number of times, then it becomes a
// dead letter (processing.failed) and its partition flows on; or, with the stop
// policy, its partition stops, says so, and the other partitions flow.
jest.setTimeout(120_000);

let kafka: Kafka;
let producer: Producer;
const processors: StreamProcessor[] = [];

beforeAll(async () => {
  kafka = testKafka();
  producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
});

afterEach(async () => {
  await Promise.all(processors.splice(0).map((p) => p.close()));
});

afterAll(async () => {
  await producer.disconnect();
});

async function topics(): Promise<{ input: string; output: string; dlq: string }> {
  const input = uniqueName('errors-in');
  const t = { input, output: uniqueName('errors-out'), dlq: `${input}.dlq` };
  await createTopics(kafka, [
    { topic: t.input, numPartitions: 2 },
    { topic: t.output, numPartitions: 1 },
    { topic: t.dlq, numPartitions: 1 },
  ]);
  return t;
}

/** Copies each record to the output topic; `bug` throws a TypeError for the records it picks. */
function start(t: { input: string; output: string }, options: Partial<StreamProcessorOptions> & { bug: (value: string) => boolean }): StreamProcessor {
  const processor = new StreamProcessor({
    application: uniqueName('errors-app'),
    kafka,
    inputTopics: [t.input],
    logger: createLogger({ service: 'processing-errors-test', level: 'silent' }),
    metrics: new Registry(),
    retryBackoffMs: { initial: 50, max: 200 },
    maxUnknownRetries: 2,
    sessionTimeoutMs: 6_000,
    process(ctx) {
      const value = ctx.record.value!.toString();
      if (options.bug(value)) (undefined as unknown as { x: number }).x += 1;
      ctx.send({ topic: t.output, key: ctx.record.key, value: ctx.record.value });
    },
    ...options,
  });
  processors.push(processor);
  void processor.start();
  return processor;
}

const send = (topic: string, partition: number, values: string[]) =>
  producer.send({ topic, acks: -1, messages: values.map((v) => ({ key: v, value: v, partition })) });

test('a record that keeps failing with an unknown error becomes a dead letter after the bounded retries; its partition flows on', async () => {
  const t = await topics();
  start(t, { bug: (v) => v === 'p0-bug' });
  await send(t.input, 0, ['p0-a', 'p0-bug', 'p0-b', 'p0-c']);
  await send(t.input, 1, ['p1-a', 'p1-b']);
  const out = await readTopic(kafka, t.output, { done: (r) => r.length >= 5, timeoutMs: 60_000 });
  expect(out.map((r) => r.value!.toString()).sort()).toEqual(['p0-a', 'p0-b', 'p0-c', 'p1-a', 'p1-b']);
  const dead = await readTopic(kafka, t.dlq, { done: (r) => r.length >= 1, timeoutMs: 30_000 });
  expect(dead.map((r) => [r.value!.toString(), r.headers['dlq.error.code'], r.headers['dlq.original.offset']])).toEqual([['p0-bug', 'processing.failed', '1']]);
  expect(dead[0]!.headers['dlq.error.message']).toMatch(/Cannot read properties of undefined/);
});

test('with the stop policy, the partition of such a record stops and says so; the other partitions flow', async () => {
  const t = await topics();
  const processor = start(t, { bug: (v) => v === 'p0-bug', onUnknownError: 'stop' });
  await send(t.input, 0, ['p0-a', 'p0-bug', 'p0-b']);
  await send(t.input, 1, ['p1-a', 'p1-b']);
  // Once partition 0 has stopped, nothing more comes of it: then the output is read to its end.
  await eventually('partition 0 stops', async () => processor.stalled(0), (stalled) => stalled.length > 0, 60_000);
  const out = await readTopic(kafka, t.output, { done: (r) => r.length >= 3, timeoutMs: 60_000 });
  expect(out.map((r) => r.value!.toString()).sort()).toEqual(['p0-a', 'p1-a', 'p1-b']);
  expect(processor.stalled(0)).toEqual([expect.objectContaining({ topic: t.input, partition: 0, reason: expect.stringMatching(/^stopped at offset 1: Cannot read properties/) })]);
  await send(t.input, 1, ['p1-c']);
  const later = await readTopic(kafka, t.output, { done: (r) => r.length >= 4, timeoutMs: 30_000 });
  expect(later.map((r) => r.value!.toString())).toContain('p1-c');
  expect(later.map((r) => r.value!.toString())).not.toContain('p0-b');
  expect(await readTopic(kafka, t.dlq, {})).toEqual([]);
});

test('a flush that fails for one record is attributed to it: the records are tried one by one, that one becomes a dead letter', async () => {
  const t = await topics();
  start(t, {
    bug: () => false,
    flush(ctx) {
      // The bug sits in the flush, triggered by what one record left in the transaction.
      if (ctx.store<string>('seen').has('p0-bug')) throw new RangeError('flush cannot handle p0-bug');
    },
    stores: [{ name: 'seen', inputTopic: t.input }],
    process(ctx) {
      const value = ctx.record.value!.toString();
      ctx.store<string>('seen').put(value, value);
      ctx.send({ topic: t.output, key: ctx.record.key, value: ctx.record.value });
    },
  });
  await send(t.input, 0, ['p0-a', 'p0-bug', 'p0-b']);
  const out = await readTopic(kafka, t.output, { done: (r) => r.length >= 2, timeoutMs: 60_000 });
  expect(out.map((r) => r.value!.toString()).sort()).toEqual(['p0-a', 'p0-b']);
  const dead = await readTopic(kafka, t.dlq, { done: (r) => r.length >= 1, timeoutMs: 30_000 });
  expect(dead.map((r) => [r.value!.toString(), r.headers['dlq.error.code']])).toEqual([['p0-bug', 'processing.failed']]);
});
