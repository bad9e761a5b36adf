import type { KafkaMessage } from 'kafkajs';
import { RUNTIME_KEYS } from './changelog';
import { PoisonRecordError, RetryableError, STREAM_ERROR_CODES } from './errors';
import { DLQ_HEADERS, headerText } from './headers';
import { PartitionStore } from './store';
import { newTask, type PartitionTask } from './task';
import { buildTransaction, chunkEnd, type TransactionPlan, type TransactionRules } from './transaction';
import type { OutputRecord, ProcessContext } from './types';
import { decodeMergedTime, decodeWatermark, encodeWatermark, initialMergedTime, SOURCE_HEADER, SOURCE_TIME_HEADER, WATERMARK_HEADER } from './watermarks';

const NOW = Date.UTC(2026, 11, 1);
const changelog = 'app-counts-changelog';

function message(offset: number, value: string, headers: KafkaMessage['headers'] = {}): KafkaMessage & { value: Buffer } {
  return { offset: String(offset), key: Buffer.from(`k${offset}`), value: Buffer.from(value), timestamp: String(NOW), attributes: 0, headers };
}

function taskWithStore(topic = 'in'): PartitionTask {
  const task = newTask(topic, 3, NOW);
  task.stores.set('counts', new PartitionStore<unknown>('counts', undefined));
  return task;
}

function rules(overrides: Partial<TransactionRules> = {}): TransactionRules {
  return {
    application: 'app',
    // Counts each value in the store and sends it upper-cased; "poison", "later" and "bug" fail as named.
    process: (ctx: ProcessContext) => {
      const text = ctx.record.value!.toString();
      if (text === 'poison') throw new PoisonRecordError('test.poison', 'cannot be read');
      if (text === 'later') throw new RetryableError(STREAM_ERROR_CODES.notYetAvailable, 'not yet');
      if (text === 'bug') throw new TypeError('a bug');
      const counts = ctx.store<number>('counts');
      counts.put(text, (counts.get(text) ?? 0) + 1);
      ctx.send({ topic: 'out', key: text, value: Buffer.from(text.toUpperCase()) });
    },
    stores: [{ name: 'counts', inputTopic: 'in' }],
    feeds: [],
    partitionCounts: new Map(),
    maxUnknownRetries: 2,
    onUnknownError: 'dead-letter',
    exactlyOnce: true,
    now: () => NOW,
    ...overrides,
  };
}

const commit = (plan: Awaited<ReturnType<typeof buildTransaction>>): TransactionPlan => {
  if (plan.kind !== 'commit') throw new Error(`expected a transaction, got ${plan.reason}: ${String(plan.error)}`);
  return plan;
};
const to = (plan: TransactionPlan, topic: string): OutputRecord[] => plan.records.filter((r) => r.topic === topic);
const text = (value: Buffer | null | undefined) => value?.toString();

test('outputs carry the input history; store changes go to the changelog with the next offset, and reach the store only when applied', async () => {
  const task = taskWithStore();
  const plan = commit(await buildTransaction(task, [message(10, 'a', { traceparent: '00-abc-def-01', other: 'x' }), message(11, 'a'), message(12, 'b')], rules()));
  expect(plan.count).toBe(3);
  expect(plan.nextOffset).toBe('13');
  expect(to(plan, 'out').map((r) => text(r.value))).toEqual(['A', 'A', 'B']);
  expect(headerText(to(plan, 'out')[0]!.headers, 'traceparent')).toBe('00-abc-def-01');
  expect(headerText(to(plan, 'out')[0]!.headers, 'other')).toBeUndefined();
  const log = to(plan, changelog);
  expect(log.every((r) => r.partition === 3)).toBe(true);
  expect(log.find((r) => r.key === RUNTIME_KEYS.progress)?.value?.toString()).toBe('13');
  expect(JSON.parse(text(log.find((r) => r.key === 'a')?.value)!).v).toBe(2);
  expect(task.stores.get('counts')!.size).toBe(0);
  expect(plan.deadLetters).toEqual([]);
});

test('at-least-once records no progress in the changelog', async () => {
  const plan = commit(await buildTransaction(taskWithStore(), [message(0, 'a')], rules({ exactlyOnce: false })));
  expect(to(plan, changelog).map((r) => r.key)).toEqual(['a']);
});

test('a poison record becomes a dead letter with its bytes, headers and cause, and the records after it go on', async () => {
  const task = taskWithStore();
  const raw = Buffer.from([0xff, 0x00, 0xfe]);
  const poisoned: KafkaMessage = { offset: '5', key: raw, value: Buffer.from('poison'), timestamp: String(NOW), attributes: 0, headers: { 'ü-header': 'ẞ' } };
  const plan = commit(await buildTransaction(task, [message(4, 'a'), poisoned, message(6, 'b')], rules()));
  expect(plan.count).toBe(3);
  const [letter, ...more] = to(plan, 'in.dlq');
  expect(more).toEqual([]);
  expect(letter!.key).toEqual(raw);
  expect(text(letter!.value)).toBe('poison');
  expect(headerText(letter!.headers, 'ü-header')).toBe('ẞ');
  expect(headerText(letter!.headers, DLQ_HEADERS.errorCode)).toBe('test.poison');
  expect(headerText(letter!.headers, DLQ_HEADERS.originalOffset)).toBe('5');
  expect(headerText(letter!.headers, DLQ_HEADERS.originalPartition)).toBe('3');
  expect(headerText(letter!.headers, DLQ_HEADERS.stage)).toBe('app');
  expect(plan.deadLetters).toEqual(['test.poison']);
  expect(to(plan, 'out').map((r) => text(r.value))).toEqual(['A', 'B']);
});

test('a record that must wait ends the transaction before it; alone, nothing is committed', async () => {
  const task = taskWithStore();
  const plan = commit(await buildTransaction(task, [message(1, 'a'), message(2, 'later'), message(3, 'b')], rules()));
  expect(plan.count).toBe(1);
  expect(plan.nextOffset).toBe('2');
  expect(plan.retry?.reason).toBe('transient');
  expect(to(plan, 'out')).toHaveLength(1);
  const nothing = await buildTransaction(task, [message(2, 'later')], rules());
  expect(nothing).toMatchObject({ kind: 'retry', count: 0, reason: 'transient' });
});

test('an error of no known kind is tried a bounded number of times, then dead-lettered as processing.failed', async () => {
  const task = taskWithStore();
  for (let attempt = 1; attempt <= 2; attempt += 1) {
    expect(await buildTransaction(task, [message(7, 'bug')], rules())).toMatchObject({ kind: 'retry', reason: 'unknown' });
    expect(task.unknown).toEqual({ offset: '7', attempts: attempt });
  }
  const plan = commit(await buildTransaction(task, [message(7, 'bug')], rules()));
  expect(plan.deadLetters).toEqual([STREAM_ERROR_CODES.processingFailed]);
  expect(headerText(to(plan, 'in.dlq')[0]!.headers, DLQ_HEADERS.errorMessage)).toBe('a bug');
});

test("under the stop policy the partition stops at the record instead", async () => {
  const task = taskWithStore();
  task.unknown = { offset: '7', attempts: 2 };
  expect(await buildTransaction(task, [message(7, 'bug')], rules({ onUnknownError: 'stop' }))).toMatchObject({ kind: 'retry', count: 0 });
  expect(task.stoppedAt).toEqual({ offset: '7', message: 'a bug' });
});

test('a failing flush isolates its records; a record whose own flush is poison is dead-lettered next time without processing or flush', async () => {
  const task = taskWithStore();
  const processed: string[] = [];
  let flushes = 0;
  const flaky = rules({
    process: (ctx) => void processed.push(ctx.record.offset),
    flush: () => {
      flushes += 1;
      if (processed.includes('21')) throw new PoisonRecordError('test.flush', 'cannot emit');
    },
  });
  expect(await buildTransaction(task, [message(20, 'a'), message(21, 'b')], flaky)).toMatchObject({ kind: 'retry', reason: 'flush' });
  expect(task.isolateUntil).toBe(22n);
  processed.length = 0;
  expect(commit(await buildTransaction(task, [message(20, 'a')], flaky)).count).toBe(1);
  expect(await buildTransaction(task, [message(21, 'b')], flaky)).toMatchObject({ kind: 'retry', reason: 'flush' });
  expect(task.condemned?.get('21')).toEqual({ code: 'test.flush', message: 'cannot emit' });
  processed.length = 0;
  flushes = 0;
  const plan = commit(await buildTransaction(task, [message(21, 'b')], flaky));
  expect(plan.deadLetters).toEqual(['test.flush']);
  expect(processed).toEqual([]);
  expect(flushes).toBe(0);
});

test('expired entries are deleted through the changelog', async () => {
  const task = newTask('in', 0, NOW);
  const store = new PartitionStore<unknown>('counts', 1_000);
  store.apply(new Map([['old', store.newEntry(1, NOW - 5_000)]]));
  task.stores.set('counts', store);
  const plan = commit(await buildTransaction(task, [message(0, 'a')], rules({ stores: [{ name: 'counts', inputTopic: 'in', ttlMs: 1_000 }] })));
  expect(to(plan, changelog).find((r) => r.key === 'old')?.value).toBeNull();
});

describe('event time across a repartition', () => {
  const feeds = [{ name: 'rep', copartitionedWith: 'in', watermarks: true }];
  const partitionCounts = new Map([['rep', 2]]);

  test('a source task marks what it forwards with its partition and progress, and publishes its event time to every partition', async () => {
    const task = taskWithStore();
    task.eventTime = 1_000;
    task.published = 1_000;
    const source = rules({
      feeds,
      partitionCounts,
      process: (ctx) => {
        ctx.observeEventTime(Number(ctx.record.value!.toString()));
        ctx.send({ topic: 'rep', key: 'x', value: ctx.record.value });
      },
    });
    const plan = commit(await buildTransaction(task, [message(0, '2000'), message(1, '1500')], source));
    const forwarded = to(plan, 'rep').filter((r) => headerText(r.headers, WATERMARK_HEADER) === undefined);
    expect(forwarded.map((r) => [headerText(r.headers, SOURCE_HEADER), headerText(r.headers, SOURCE_TIME_HEADER)])).toEqual([
      ['3', '1000'],
      ['3', '2000'],
    ]);
    const marks = to(plan, 'rep').filter((r) => headerText(r.headers, WATERMARK_HEADER) !== undefined);
    expect(marks.map((r) => [r.partition, decodeWatermark(r.value ?? null)])).toEqual([
      [0, { source: 3, time: 2000, idle: false }],
      [1, { source: 3, time: 2000, idle: false }],
    ]);
    expect(plan.published).toBe(2000);
    expect(text(to(plan, changelog).find((r) => r.key === RUNTIME_KEYS.eventTime)?.value)).toBe('2000');
  });

  test('a watermarked task keeps watermark records from the processor and records the merged time', async () => {
    const task = newTask('rep', 0, NOW);
    task.stores.set('windows', new PartitionStore<unknown>('windows', undefined));
    task.merged = initialMergedTime(2);
    const seen: (number | undefined)[] = [];
    const merge = rules({
      stores: [{ name: 'windows', inputTopic: 'rep' }],
      process: (ctx) => void seen.push(ctx.watermark()),
    });
    const mark = (offset: number, source: number, time: number): KafkaMessage => ({ offset: String(offset), key: null, value: encodeWatermark({ source, time, idle: false }), timestamp: String(NOW), attributes: 0, headers: { [WATERMARK_HEADER]: '1' } });
    const plan = commit(await buildTransaction(task, [mark(0, 0, 500), message(1, 'data', { [SOURCE_HEADER]: '0' }), mark(2, 1, 300), message(3, 'data', { [SOURCE_HEADER]: '1' })], merge));
    expect(seen).toEqual([undefined, 300]);
    expect(plan.count).toBe(4);
    expect(plan.merged?.time).toBe(300);
    expect(decodeMergedTime(to(plan, 'app-windows-changelog').find((r) => r.key === RUNTIME_KEYS.watermarks)!.value!).time).toBe(300);
    expect(task.merged.time).toBeNull();
  });
});

test('a transaction ends at the record count or before the record that would pass the byte bound, and never empty', () => {
  // Keys `k<offset>` (2–3 bytes) and values of the given sizes.
  const sized = (...sizes: number[]) => sizes.map((n, i) => ({ key: Buffer.from(`k${i}`), value: Buffer.alloc(n) }));
  const ten = sized(...Array.from({ length: 10 }, () => 98)); // 100 bytes each
  expect(chunkEnd(ten, 0, 4, 1_000_000)).toBe(4);
  expect(chunkEnd(ten, 8, 4, 1_000_000)).toBe(10);
  expect(chunkEnd(ten, 0, 100, 350)).toBe(3);
  expect(chunkEnd(ten, 0, 100, 300)).toBe(3);
  expect(chunkEnd(ten, 2, 100, 299)).toBe(4);
  // A record larger than the bound goes alone; the small ones after it go together.
  const big = sized(5_000, 10, 10);
  expect(chunkEnd(big, 0, 100, 1_000)).toBe(1);
  expect(chunkEnd(big, 1, 100, 1_000)).toBe(3);
  // Tombstones and records without a key count nothing but still count as records.
  const empty = [{ key: null, value: null }, { key: null, value: null }, { key: null, value: null }];
  expect(chunkEnd(empty, 0, 2, 1)).toBe(2);
});
