import { createTopics, readTopic, testKafka, uniqueName } from '@sluice/testing';
import type { Kafka, Producer } from 'kafkajs';

// Proof that the broker the stack runs supports what the exactly-once design
// needs from kafkajs: transactions with sendOffsets, and read_committed reads.
jest.setTimeout(60_000);

let kafka: Kafka;
const opened: { disconnect(): Promise<void> }[] = [];

beforeAll(() => {
  kafka = testKafka();
});

afterEach(async () => {
  await Promise.all(opened.splice(0).map((c) => c.disconnect()));
});

async function transactionalProducer(): Promise<Producer> {
  const producer = kafka.producer({ transactionalId: uniqueName('txn'), idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  opened.push(producer);
  return producer;
}

test('a read_committed consumer sees committed transactions and never aborted ones', async () => {
  const topic = uniqueName('txn-out');
  await createTopics(kafka, [{ topic, numPartitions: 2 }]);
  const producer = await transactionalProducer();

  const committed = await producer.transaction();
  await committed.send({ topic, messages: [{ key: 'a', value: 'committed-1' }, { key: 'b', value: 'committed-2' }] });
  await committed.commit();

  const aborted = await producer.transaction();
  await aborted.send({ topic, messages: [{ key: 'a', value: 'aborted-1' }] });
  await aborted.abort();

  const last = await producer.transaction();
  await last.send({ topic, messages: [{ key: 'c', value: 'committed-3' }] });
  await last.commit();

  const committedRead = await readTopic(kafka, topic, { done: (r) => r.length >= 3 });
  expect(committedRead.map((r) => r.value?.toString()).sort()).toEqual(['committed-1', 'committed-2', 'committed-3']);

  const uncommittedRead = await readTopic(kafka, topic, { done: (r) => r.length >= 4, readUncommitted: true });
  expect(uncommittedRead.map((r) => r.value?.toString())).toContain('aborted-1');
});

test('sendOffsets commits the input offsets of a consumer group only when the transaction commits', async () => {
  const input = uniqueName('txn-in');
  const output = uniqueName('txn-out');
  const groupId = uniqueName('group');
  await createTopics(kafka, [
    { topic: input, numPartitions: 1 },
    { topic: output, numPartitions: 1 },
  ]);
  const producer = await transactionalProducer();

  const abortedTxn = await producer.transaction();
  await abortedTxn.send({ topic: output, messages: [{ value: 'x' }] });
  await abortedTxn.sendOffsets({ consumerGroupId: groupId, topics: [{ topic: input, partitions: [{ partition: 0, offset: '7' }] }] });
  await abortedTxn.abort();

  const admin = kafka.admin();
  await admin.connect();
  opened.push(admin);
  const afterAbort = await admin.fetchOffsets({ groupId, topics: [input] });
  expect(afterAbort[0]?.partitions[0]?.offset).toBe('-1');

  const committedTxn = await producer.transaction();
  await committedTxn.send({ topic: output, messages: [{ value: 'y' }] });
  await committedTxn.sendOffsets({ consumerGroupId: groupId, topics: [{ topic: input, partitions: [{ partition: 0, offset: '5' }] }] });
  await committedTxn.commit();

  const afterCommit = await admin.fetchOffsets({ groupId, topics: [input] });
  expect(afterCommit[0]?.partitions[0]?.offset).toBe('5');
});

test('a new producer with the same transactional id fences the old one', async () => {
  const topic = uniqueName('txn-fence');
  await createTopics(kafka, [{ topic, numPartitions: 1 }]);
  const transactionalId = uniqueName('txn');
  const zombie = kafka.producer({ transactionalId, idempotent: true, maxInFlightRequests: 1 });
  await zombie.connect();
  opened.push(zombie);
  const zombieTxn = await zombie.transaction();
  await zombieTxn.send({ topic, messages: [{ value: 'from-zombie' }] });

  const successor = kafka.producer({ transactionalId, idempotent: true, maxInFlightRequests: 1 });
  await successor.connect();
  opened.push(successor);
  const successorTxn = await successor.transaction();
  await successorTxn.send({ topic, messages: [{ value: 'from-successor' }] });
  await successorTxn.commit();

  await expect(zombieTxn.commit()).rejects.toThrow();
  const read = await readTopic(kafka, topic, { done: (r) => r.length >= 1 });
  expect(read.map((r) => r.value?.toString())).toEqual(['from-successor']);
});

test('records of several aborted transactions interleaved in one partition never reach a read_committed consumer', async () => {
  const topic = uniqueName('txn-interleaved');
  await createTopics(kafka, [{ topic, numPartitions: 1 }]);
  const [a, b, c] = [await transactionalProducer(), await transactionalProducer(), await transactionalProducer()];
  // Three writers of one partition, as the entity stage writes the category repartition topic.
  for (let round = 0; round < 3; round++) {
    const ta = await a.transaction();
    const tb = await b.transaction();
    await ta.send({ topic, messages: [{ value: `a-${round}-1` }] });
    await tb.send({ topic, messages: [{ value: `b-${round}-1` }] });
    await ta.send({ topic, messages: [{ value: `a-${round}-2` }] });
    await tb.send({ topic, messages: [{ value: `b-${round}-2` }] });
    await tb.abort();
    await ta.abort();
    const tc = await c.transaction();
    await tc.send({ topic, messages: [{ value: `c-${round}` }] });
    await tc.commit();
  }
  const read = await readTopic(kafka, topic, { done: (r) => r.length >= 3 });
  expect(read.map((r) => r.value?.toString())).toEqual(['c-0', 'c-1', 'c-2']);
});
