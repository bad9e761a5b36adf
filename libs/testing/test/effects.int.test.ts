import { checkStageEffects, createTopics, testKafka, uniqueName, withAdmin } from '@sluice/testing';
import type { KafkaMessage, Producer } from 'kafkajs';

// The exactly-once checker the failure tests rely on must see every kind of
// fault it claims to: here a stage's input, outputs, changelog and committed
// offsets are written by hand, with one fault of each kind.
jest.setTimeout(60_000);

const kafka = testKafka();
const opened: Producer[] = [];
afterAll(async () => {
  await Promise.all(opened.map((p) => p.disconnect()));
});

async function producer(transactionalId?: string): Promise<Producer> {
  const p = kafka.producer(transactionalId ? { transactionalId, idempotent: true, maxInFlightRequests: 1 } : { idempotent: true, maxInFlightRequests: 1 });
  await p.connect();
  opened.push(p);
  return p;
}

const id = (m: KafkaMessage) => m.value?.toString();

test('an input below the committed offset whose output is missing, doubled or orphaned, or whose state change is missing, is reported', async () => {
  const [input, output, deadLetters, changelog] = ['in', 'out', 'dlq', 'changelog'].map((t) => uniqueName(`effects-${t}`)) as [string, string, string, string];
  await createTopics(kafka, [input, output, deadLetters, changelog].map((topic) => ({ topic, numPartitions: 1 })));
  const p = await producer();
  const send = (topic: string, ids: string[]) => p.send({ topic, acks: -1, messages: ids.map((v) => ({ value: v })) });
  await send(input, ['e1', 'e2', 'e3', 'e4', 'e5']);
  // e1 fine, e2 twice, e3 nowhere, e4 a dead letter (no state change needed), e9 with no input behind it.
  await send(output, ['e1', 'e2', 'e2', 'e9']);
  await send(deadLetters, ['e4']);
  await send(changelog, ['e1']);
  const group = uniqueName('effects-group');
  // The stage claims e1..e4 (offset 4); e5 is still ahead of it.
  await withAdmin(kafka, (admin) => admin.setOffsets({ groupId: group, topic: input, partitions: [{ partition: 0, offset: '4' }] }));

  const report = await checkStageEffects({
    kafka,
    group,
    input: { topic: input, identify: id },
    outputs: [
      { topic: output, identify: id },
      { topic: deadLetters, identify: id, stateless: true },
    ],
    state: [{ topic: changelog, identify: id }],
    settleMs: 0,
  });
  expect(report).toEqual({ processed: 4, pending: 1, missing: ['e3'], doubled: ['e2'], orphaned: ['e9'], missingState: ['e2', 'e3'], openTransactions: [] });
});

test('a transaction left open on an output is reported, and an input whose output it holds is missing until it commits', async () => {
  const [input, output] = ['in', 'out'].map((t) => uniqueName(`effects-${t}`)) as [string, string];
  await createTopics(kafka, [input, output].map((topic) => ({ topic, numPartitions: 2 })));
  const plain = await producer();
  await plain.send({ topic: input, acks: -1, messages: [{ value: 'e1', partition: 0 }] });
  const open = await (await producer(uniqueName('effects-open'))).transaction();
  await open.send({ topic: output, acks: -1, messages: [{ value: 'e1', partition: 1 }] });
  const group = uniqueName('effects-group');
  await withAdmin(kafka, (admin) => admin.setOffsets({ groupId: group, topic: input, partitions: [{ partition: 0, offset: '1' }] }));
  const check = { kafka, group, input: { topic: input, identify: id }, outputs: [{ topic: output, identify: id }], settleMs: 0 };

  expect(await checkStageEffects(check)).toEqual({ processed: 1, pending: 0, missing: ['e1'], doubled: [], orphaned: [], missingState: [], openTransactions: [`${output}[1]`] });
  await open.commit();
  expect(await checkStageEffects(check)).toEqual({ processed: 1, pending: 0, missing: [], doubled: [], orphaned: [], missingState: [], openTransactions: [] });
});
