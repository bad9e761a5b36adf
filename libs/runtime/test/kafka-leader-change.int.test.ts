import { API_KEYS, startFaultyNetwork, startKafkaCluster, uniqueName, withAdmin, type KafkaCluster } from '@sluice/testing';
import { followTopic } from '@sluice/streams';
import { Kafka, logLevel, type Producer } from 'kafkajs';

// kafkajs 2.2.4 kept the acknowledgements of one send per broker: when the
// leader of a partition that failed moved to a broker that had already
// answered for another partition of the same send, the retry skipped it and
// the send resolved without writing it (kafkajs issue #1303). Inside a
// transaction, the commit then went through with the input offsets and the
// state changelog but without the output. The patch in patches/ keeps them
// per partition; these tests fail without it. The last test makes a request to one broker fail while the other's
// is still in flight (libs/testing's faulty network): a retry that started before it settled sent its partition twice.
jest.setTimeout(240_000);

let cluster: KafkaCluster;
let kafka: Kafka;
const opened: { disconnect(): Promise<void> }[] = [];

beforeAll(async () => {
  cluster = await startKafkaCluster({ nodes: 3 });
  kafka = cluster.kafka(uniqueName('leader-change'));
});

afterEach(async () => {
  await Promise.all(opened.splice(0).map((c) => c.disconnect()));
});

afterAll(async () => {
  await cluster?.close();
});

/** A topic whose partition 0 is led by broker 1 and partition 1 by broker 2. */
async function twoLeaderTopic(): Promise<string> {
  const topic = uniqueName('leader-change');
  await withAdmin(kafka, async (admin) => {
    await admin.createTopics({
      waitForLeaders: false,
      topics: [{ topic, replicaAssignment: [{ partition: 0, replicas: [1, 2] }, { partition: 1, replicas: [2, 3] }], configEntries: [{ name: 'min.insync.replicas', value: '1' }] }],
    });
    await until(`${topic} has its leaders`, async () => {
      const [metadata] = (await admin.fetchTopicMetadata({ topics: [topic] })).topics;
      const leaders = metadata?.partitions.map((p) => [p.partitionId, p.leader]).sort();
      return JSON.stringify(leaders) === JSON.stringify([[0, 1], [1, 2]]);
    });
  });
  return topic;
}

/** Polls `condition` (an error counts as not yet) until it holds, for at most a minute. */
async function until(what: string, condition: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 60_000;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      if (await condition()) return;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${what}: not within a minute${last ? ` (${String(last)})` : ''}`);
}

/** Moves partition 1 to brokers [1, 3]: broker 1, which already leads partition 0, becomes its leader; broker 2 no longer has it. */
async function moveLeaderOfPartitionOneToBrokerOne(topic: string): Promise<void> {
  await withAdmin(kafka, async (admin) => {
    await admin.alterPartitionReassignments({ topics: [{ topic, partitionAssignment: [{ partition: 1, replicas: [1, 3] }] }] });
    await until('partition 1 moves to brokers 1 and 3', async () => {
      const [metadata] = (await admin.fetchTopicMetadata({ topics: [topic] })).topics;
      const partition = metadata?.partitions.find((p) => p.partitionId === 1);
      const { topics } = await admin.listPartitionReassignments({ topics: [{ topic, partitions: [1] }] });
      return partition?.leader === 1 && !partition.replicas.includes(2) && topics.length === 0;
    });
  });
}

async function valuesOf(topic: string): Promise<Record<number, string[]>> {
  const values: Record<number, string[]> = { 0: [], 1: [] };
  const follower = await followTopic(kafka, topic, { onRecord: (partition, message) => values[partition]!.push(message.value!.toString()) });
  await follower.caughtUp;
  await follower.stop();
  return values;
}

async function connected(producer: Producer): Promise<Producer> {
  await producer.connect();
  opened.push(producer);
  return producer;
}

const batch = (topic: string, tag: string) => ({
  topicMessages: [{ topic, messages: [{ partition: 0, value: `${tag}-0` }, { partition: 1, value: `${tag}-1` }] }],
});

test('an idempotent send to two partitions writes both when one leader moves to the broker of the other', async () => {
  const topic = await twoLeaderTopic();
  const producer = await connected(kafka.producer({ idempotent: true, maxInFlightRequests: 1 }));
  await producer.sendBatch({ ...batch(topic, 'before'), acks: -1 });

  await moveLeaderOfPartitionOneToBrokerOne(topic);
  // The producer still believes broker 2 leads partition 1: that request fails, broker 1's succeeds.
  const acknowledged = await producer.sendBatch({ ...batch(topic, 'after'), acks: -1 });

  expect(acknowledged.map((r) => r.partition).sort()).toEqual([0, 1]);
  expect(await valuesOf(topic)).toEqual({ 0: ['before-0', 'after-0'], 1: ['before-1', 'after-1'] });
});

test('a transaction that commits after such a leader change holds every record it sent', async () => {
  const topic = await twoLeaderTopic();
  const producer = await connected(kafka.producer({ transactionalId: uniqueName('leader-change-txn'), idempotent: true, maxInFlightRequests: 1 }));
  const first = await producer.transaction();
  await first.sendBatch(batch(topic, 'before'));
  await first.commit();

  await moveLeaderOfPartitionOneToBrokerOne(topic);
  const second = await producer.transaction();
  await second.sendBatch(batch(topic, 'after'));
  await second.commit();

  expect(await valuesOf(topic)).toEqual({ 0: ['before-0', 'after-0'], 1: ['before-1', 'after-1'] });
});

test('a send to two brokers retries only once both requests have settled: the slow one is not written twice', async () => {
  const topic = await twoLeaderTopic();
  const network = await startFaultyNetwork();
  const producer = new Kafka({ clientId: uniqueName('settle'), brokers: cluster.brokers, socketFactory: network.socketFactory, logLevel: logLevel.NOTHING }).producer({
    idempotent: true,
    maxInFlightRequests: 5, // as the gateway's producer: the retry's metadata request need not wait behind the slow one
    retry: { retries: 5, initialRetryTime: 100, maxRetryTime: 300 },
  });
  try {
    await producer.connect();
    await producer.sendBatch({ ...batch(topic, 'before'), acks: -1 });
    const address = await withAdmin(kafka, async (admin) => {
      const { brokers } = await admin.describeCluster();
      return (nodeId: number) => brokers.filter((b) => b.nodeId === nodeId).map((b) => `${b.host}:${b.port}`)[0]!;
    });
    // Broker 1's request is cut before it arrives (partition 0 not written); broker 2 writes partition 1 and answers
    // 1.5 s later, long after the retry's backoff (the client's metadata requests are not held up behind it, so the
    // retry is free to start at once).
    const cut = network.inject({ apiKey: API_KEYS.produce, broker: address(1), action: 'close' });
    const slow = network.inject({ apiKey: API_KEYS.produce, broker: address(2), action: 'delay-response', delayMs: 1500, overtaken: true });
    await producer.sendBatch({ ...batch(topic, 'after'), acks: -1 });
    await Promise.all([cut, slow]);
  } finally {
    await producer.disconnect();
    await network.close();
  }

  expect(await valuesOf(topic)).toEqual({ 0: ['before-0', 'after-0'], 1: ['before-1', 'after-1'] });
});
