import { API_KEYS, createTopics, runningStack, startFaultyNetwork, testKafka, uniqueName, type FaultyNetwork } from '@sluice/testing';
import { followTopic } from '@sluice/streams';
import { Kafka, logLevel, type Producer } from 'kafkajs';

// Two of the kafkajs send fixes in patches/ (found by the broker failover test, which needed many runs to show them),
// each made to happen on cue: the client talks to the real broker through a network that fails one chosen request
// (libs/testing's faulty network). Each test loses or doubles records without its fix.
jest.setTimeout(120_000);

const REQUEST_TIMEOUT_MS = 2000;

let network: FaultyNetwork;
let kafka: Kafka;
const opened: Producer[] = [];

beforeAll(async () => {
  network = await startFaultyNetwork();
  kafka = new Kafka({
    clientId: uniqueName('send-faults'),
    brokers: runningStack().kafkaBrokers,
    socketFactory: network.socketFactory,
    requestTimeout: REQUEST_TIMEOUT_MS,
    logLevel: logLevel.NOTHING,
  });
});

afterEach(async () => {
  network.refuseConnections(false);
  await Promise.all(opened.splice(0).map((p) => p.disconnect()));
});

afterAll(async () => {
  await network?.close();
});

async function oneEmptyTopic(): Promise<string> {
  const topic = uniqueName('send-faults');
  await createTopics(testKafka(), [{ topic, numPartitions: 1 }]);
  return topic;
}

async function idempotentProducer(retry: { retries: number; initialRetryTime: number; maxRetryTime: number }): Promise<Producer> {
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, retry });
  await producer.connect();
  opened.push(producer);
  return producer;
}

const messages = (tag: string, count: number) => Array.from({ length: count }, (_, i) => ({ value: `${tag}-${i}` }));

/** Every value in the topic, in offset order, read without the faulty network. */
async function valuesOf(topic: string): Promise<string[]> {
  const values: string[] = [];
  const follower = await followTopic(testKafka(), topic, { onRecord: (_partition, message) => values.push(message.value!.toString()) });
  await follower.caughtUp;
  await follower.stop();
  return values;
}

test('after a send that failed for good, the next records of an idempotent producer are written, not taken for a duplicate of the failed ones', async () => {
  const topic = await oneEmptyTopic();
  const producer = await idempotentProducer({ retries: 2, initialRetryTime: 100, maxRetryTime: 300 });
  await producer.send({ topic, acks: -1, messages: messages('first', 1) });

  // The broker writes the request; its answer never arrives, and the broker cannot be reached again until every
  // retry is spent. Whether the records were written is unknown to the client.
  const lost = network.inject({ apiKey: API_KEYS.produce, action: 'drop-response', thenRefuseConnections: true });
  await expect(producer.send({ topic, acks: -1, messages: messages('unanswered', 3) })).rejects.toThrow();
  await lost;
  network.refuseConnections(false);

  // Without a new producer id, these take the sequence numbers of the unanswered records, and the broker,
  // which has those, answers "duplicate" without writing them.
  await producer.send({ topic, acks: -1, messages: messages('next', 3) });

  expect(await valuesOf(topic)).toEqual([...['first-0'], ...['unanswered-0', 'unanswered-1', 'unanswered-2'], ...['next-0', 'next-1', 'next-2']]);
});

test('two sends of one producer at once: one that times out after the broker wrote it neither doubles itself nor hides the other', async () => {
  const topic = await oneEmptyTopic();
  const producer = await idempotentProducer({ retries: 5, initialRetryTime: 100, maxRetryTime: 300 });
  await producer.send({ topic, acks: -1, messages: messages('first', 1) });

  // The broker writes the first produce request it gets and answers, but the answer comes after the request timeout
  // (and holds back the answers behind it on that connection, as a slow broker's would).
  const slow = network.inject({ apiKey: API_KEYS.produce, action: 'delay-response', delayMs: REQUEST_TIMEOUT_MS + 700 });
  const sends = await Promise.allSettled([
    producer.send({ topic, acks: -1, messages: messages('slow', 3) }),
    producer.send({ topic, acks: -1, messages: messages('beside', 3) }),
  ]);
  await slow;

  // Side by side, the send that went second took the sequence numbers the timed-out one gave back (the broker
  // called it a duplicate: lost), and the timed-out one's retry wrote it again under new numbers (doubled).
  expect(sends.map((s) => s.status)).toEqual(['fulfilled', 'fulfilled']);
  expect(await valuesOf(topic)).toEqual(['first-0', 'slow-0', 'slow-1', 'slow-2', 'beside-0', 'beside-1', 'beside-2']);
});
