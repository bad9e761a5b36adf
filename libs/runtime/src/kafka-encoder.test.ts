import fc from 'fast-check';

// KafkaJS's Encoder takes its buffers from Node's pool without zero-filling them (patches/kafkajs@2.2.4.patch):
// what it sends must not depend on what those buffers held before. Each produce request below is encoded three
// times, with every buffer the Encoder gets pre-filled with a different byte; the bytes must be the same.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const produceRequest = require('kafkajs/src/protocol/requests/produce/v3/request') as (args: unknown) => { encode(): Promise<{ buffer: Buffer }> };

async function encodedWithPoolFilledWith(fill: number, args: unknown): Promise<Buffer> {
  const allocUnsafe = Buffer.allocUnsafe;
  Buffer.allocUnsafe = (size: number) => allocUnsafe(size).fill(fill);
  try {
    return Buffer.from((await produceRequest(args).encode()).buffer);
  } finally {
    Buffer.allocUnsafe = allocUnsafe;
  }
}

const text = fc.string({ unit: 'binary', maxLength: 40 });
const bytes = fc.uint8Array({ maxLength: 2_000 }).map((a) => Buffer.from(a));
const message = fc.record({
  key: fc.option(fc.oneof(text, bytes)),
  value: fc.option(fc.oneof(text, bytes)),
  headers: fc.dictionary(text, fc.oneof(text, bytes, fc.array(fc.oneof(text, bytes), { maxLength: 3 })), { maxKeys: 4 }),
  timestamp: fc.constant('1700000000000'),
});

test('a produce request encodes to the same bytes whatever the buffers it is written into held', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.record({ partition: fc.nat(11), firstSequence: fc.nat(1_000), messages: fc.array(message, { minLength: 1, maxLength: 30 }) }), { minLength: 1, maxLength: 4 }),
      fc.option(text),
      async (partitions, transactionalId) => {
        const args = { acks: -1, timeout: 30_000, transactionalId, topicData: [{ topic: 'events.raw', partitions }] };
        const zeros = await encodedWithPoolFilledWith(0x00, args);
        expect(await encodedWithPoolFilledWith(0xff, args)).toEqual(zeros);
        expect(await encodedWithPoolFilledWith(0xa5, args)).toEqual(zeros);
      },
    ),
    { numRuns: 300 },
  );
});
