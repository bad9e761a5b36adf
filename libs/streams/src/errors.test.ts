import { KafkaJSNonRetriableError, KafkaJSNumberOfRetriesExceeded } from 'kafkajs';
import { classifyFailure, errorCode, PoisonRecordError, RetryableError } from './errors';
import { deadLetterHeaders, historyHeaders } from './headers';

test('a poison record is dead-lettered, a retryable failure retried', () => {
  expect(classifyFailure(new PoisonRecordError('serde.malformed', 'x'))).toBe('dead-letter');
  expect(classifyFailure({ canRetry: false, code: 'contract.violation' })).toBe('dead-letter');
  expect(classifyFailure(new RetryableError('stream.not_yet_available', 'x'))).toBe('retry');
  expect(classifyFailure(Object.assign(new Error('broker gone'), { name: 'KafkaJSConnectionError' }))).toBe('retry');
});

test('an error of no known kind (a bug in a processor) is unknown: bounded retries, then a dead letter', () => {
  expect(classifyFailure(new TypeError("Cannot read properties of undefined (reading 'x')"))).toBe('unknown');
  expect(classifyFailure(new Error('ECONNREFUSED'))).toBe('unknown');
  expect(classifyFailure('a string')).toBe('unknown');
});

test('a fenced or stuck producer is recognised by its protocol error type or the error class kafkajs throws, never by its text', () => {
  expect(classifyFailure({ type: 'INVALID_PRODUCER_EPOCH', message: 'old epoch' })).toBe('fenced');
  expect(classifyFailure({ type: 'PRODUCER_FENCED' })).toBe('fenced');
  expect(classifyFailure({ type: 'CONCURRENT_TRANSACTIONS' })).toBe('fenced');
  // What kafkajs' transaction state machine throws when a call comes in a state that no longer allows it.
  expect(classifyFailure(new KafkaJSNonRetriableError('Transaction state exception: Invalid transition ABORTING --> COMMITTING'))).toBe('fenced');
  // Retries spent on a broker that stays away: the transaction's outcome is unknown, not a fencing.
  expect(classifyFailure(new KafkaJSNumberOfRetriesExceeded(new Error('Connection error'), { retryCount: 5, retryTime: 100 }))).toBe('retry');
  // The words alone decide nothing.
  expect(classifyFailure(new Error('producer fenced: Transaction state exception'))).toBe('unknown');
});

test('the error code of a failure becomes its dead-letter code', () => {
  expect(errorCode(new PoisonRecordError('catalog.missing', 'x'))).toBe('catalog.missing');
  expect(errorCode(new Error('x'))).toBe('stream.poison');
});

test('history headers travel; dead-letter headers keep the original ones and add the cause', () => {
  const input = { traceparent: Buffer.from('00-abc-def-01'), 'dlq.replay.id': 'r1', 'dlq.replay.count': '2', 'x-other': 'no' };
  expect(historyHeaders(input)).toEqual({ traceparent: '00-abc-def-01', 'dlq.replay.id': 'r1', 'dlq.replay.count': '2' });
  const headers = deadLetterHeaders(input, {
    topic: 'events.raw',
    partition: 3,
    offset: '17',
    timestamp: '1700000000000',
    stage: 'enricher',
    code: 'catalog.missing',
    message: 'm'.repeat(5000),
    failedAt: new Date(0),
  });
  expect(headers).toMatchObject({
    'x-other': 'no',
    'dlq.original.topic': 'events.raw',
    'dlq.original.partition': '3',
    'dlq.original.offset': '17',
    'dlq.stage': 'enricher',
    'dlq.error.code': 'catalog.missing',
    'dlq.failed.at': '1970-01-01T00:00:00.000Z',
  });
  expect(String(headers['dlq.error.message'])).toHaveLength(1000);
});
