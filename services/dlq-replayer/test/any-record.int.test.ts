import { followTopic } from '@sluice/streams';
import type { KafkaMessage } from 'kafkajs';
import { replayerFixture, type ReplayerFixture } from './replayer-fixture';
import type { TestService } from '@sluice/testing';

// The dead-letter index stores any record at all, whatever its producer wrote:
// a NUL in the key or in a header, header bytes that are not UTF-8, numbers and
// times that do not parse. Nothing stalls its partition; text that cannot be
// text is shown escaped; a replay sends the original bytes.
jest.setTimeout(120_000);

let dlq: ReplayerFixture;
let api: TestService;

beforeAll(async () => {
  dlq = await replayerFixture();
  api = await dlq.start();
});

afterAll(async () => {
  await dlq?.close();
});

const origin = (offset: string) => ({
  'dlq.original.topic': dlq.topics.raw,
  'dlq.original.partition': '0',
  'dlq.original.offset': offset,
  'dlq.stage': 'any-record-test',
  'dlq.error.code': 'catalog.missing',
  'dlq.error.message': 'm',
  'dlq.failed.at': new Date().toISOString(),
});

test('records text cannot hold are indexed, shown escaped, and the partition flows on; a copy of one dead letter is one entry', async () => {
  const binary = Buffer.from([0xff, 0xfe, 0x41, 0x00]);
  await dlq.produce([
    { key: 'a\u0000b', value: Buffer.from('v1'), headers: origin('1') },
    // Header names that are Object.prototype members (`constructor` once stalled the partition, `__proto__` was lost).
    { key: 'k2', value: Buffer.from([0, 1, 2]), headers: { ...origin('2'), 'x-bin': binary, 'dlq.error.message': 'bad\u0000message', ['__proto__']: 'p', constructor: 'c' } },
    { key: Buffer.from([0xc3, 0x28]), value: null, headers: { ...origin('not-a-number'), 'dlq.original.partition': '-5', 'dlq.failed.at': 'yesterday', 'dlq.replay.count': 'x' } },
    // The same dead letter sent twice (a sink that crashed between sending it and committing): one entry.
    { key: 'k4', value: Buffer.from('v4'), headers: origin('4') },
    { key: 'k4', value: Buffer.from('v4'), headers: origin('4') },
    { key: 'after', value: Buffer.from('v5'), headers: origin('5') },
  ]);
  let listed: { key: string; keyBase64: string; sourceOffset: string | null; id: string }[] = [];
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    listed = (await dlq.call(api, 'GET', '/admin/dlq?limit=100&stage=any-record-test')).body.deadLetters ?? [];
    if (listed.some((d) => d.key === 'after')) break;
    await new Promise((r) => setTimeout(r, 300));
  }
  expect(listed.map((d) => [d.key, d.sourceOffset])).toEqual([
    ['a\\u0000b', '1'],
    ['k2', '2'],
    ['\\xc3(', null],
    ['k4', '4'],
    ['after', '5'],
  ]);
  expect(Buffer.from(listed[0]!.keyBase64, 'base64')).toEqual(Buffer.from('a\u0000b'));
  const second = (await dlq.call(api, 'GET', `/admin/dlq/${listed[1]!.id}`)).body;
  expect(second.headers['x-bin']).toBe('\\xff\\xfeA\\u0000');
  expect([Object.hasOwn(second.headers, '__proto__') && second.headers['__proto__'], second.headers.constructor]).toEqual(['p', 'c']);
  expect(second.errorMessage).toBe('bad\\u0000message');
  // Found by its exact key bytes, NUL included.
  expect((await dlq.call(api, 'GET', `/admin/dlq?key=${encodeURIComponent('a\u0000b')}`)).body.deadLetters.map((d: { id: string }) => d.id)).toEqual([listed[0]!.id]);

  // A replay sends the header bytes as they were, not their escaped text.
  const started = await dlq.call(api, 'POST', '/admin/dlq/replays', { ids: [listed[1]!.id] });
  expect(started.status).toBe(202);
  await dlq.waitFor(api, started.body.replayId, 'completed');
  const replayed: KafkaMessage[] = [];
  const follower = await followTopic(dlq.kafka, dlq.topics.raw, { onRecord: (_p, m) => replayed.push(m) });
  await follower.caughtUp;
  await follower.stop();
  const mine = replayed.filter((m) => String(m.headers?.['dlq.replay.id']) === started.body.replayId);
  expect(mine).toHaveLength(1);
  expect(mine[0]!.headers!['x-bin']).toEqual(binary);
  const names = mine[0]!.headers!;
  expect([Object.hasOwn(names, '__proto__') && names['__proto__'], names.constructor]).toEqual([Buffer.from('p'), Buffer.from('c')]);
  expect(mine[0]!.value).toEqual(Buffer.from([0, 1, 2]));
});
