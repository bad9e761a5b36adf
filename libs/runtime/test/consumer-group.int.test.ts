import { createTopics, testKafka, uniqueName } from '@sluice/testing';
import type { Consumer } from 'kafkajs';

jest.setTimeout(60_000);

test('two members of one consumer group split the partitions of a topic between them', async () => {
  const kafka = testKafka();
  const topic = uniqueName('group-split');
  const groupId = uniqueName('group');
  await createTopics(kafka, [{ topic, numPartitions: 4 }]);
  const assigned = new Map<string, number[]>();
  const members: Consumer[] = [];
  try {
    for (const member of ['a', 'b']) {
      const consumer = kafka.consumer({ groupId, sessionTimeout: 6000, heartbeatInterval: 500 });
      consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => {
        assigned.set(member, payload.memberAssignment[topic] ?? []);
      });
      await consumer.connect();
      await consumer.subscribe({ topic, fromBeginning: true });
      await consumer.run({ eachMessage: async () => undefined });
      members.push(consumer);
    }
    const deadline = Date.now() + 30_000;
    const total = () => [...assigned.values()].reduce((n, p) => n + p.length, 0);
    while (Date.now() < deadline && !(assigned.size === 2 && total() === 4 && [...assigned.values()].every((p) => p.length === 2))) {
      await new Promise((r) => setTimeout(r, 200));
    }
    const all = [...assigned.values()].flat().sort();
    expect(all).toEqual([0, 1, 2, 3]);
    expect(assigned.get('a')).toHaveLength(2);
    expect(assigned.get('b')).toHaveLength(2);
  } finally {
    await Promise.all(members.map((c) => c.disconnect()));
  }
});
