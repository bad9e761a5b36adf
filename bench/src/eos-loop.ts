import { Serde, type ActivityEvent, type CatalogItem, type EnrichedEvent } from '@sluice/contracts';
import { readTopic, testKafka } from '@sluice/testing';
import { codesOf } from './error-codes';

/**
 * The enricher's exactly-once consume-transform-produce loop written once more, on `@platformatic/kafka` with
 * KIP-447: one transactional producer per instance, and the input offsets committed in each transaction with the
 * consumer's group metadata (generation and member id), so a zombie is fenced by the group, not by a producer per
 * partition. Run as its own process by `pnpm bench kafka-client` (its throughput and its correctness checks), never by
 * the services: it exists to decide about the Kafka client (docs/decisions/kafka-client.md).
 *
 * The same work per event as the enricher: decode the Avro event, join it with the catalog (read whole at start,
 * as a global table), skip an eventId already seen, write the enriched event and the de-duplication entry (a
 * changelog record keyed by eventId) in the transaction that commits the input offset. Not built, because the
 * decision does not need them: restoring the de-duplication store from its changelog, dead letters.
 *
 * Faults the checks inject, by environment: LOOP_ABORT_AT=n sends the n-th transaction's records, aborts it and
 * exits 3; LOOP_STOP_AT=n stops the process (SIGSTOP, as a long GC pause would) inside the n-th transaction, after
 * its records and offsets are sent and before its commit.
 */

const env = (name: string, fallback?: string): string => {
  const value = process.env[name] ?? fallback;
  if (value === undefined) throw new Error(`${name} is required`);
  return value;
};
const intEnv = (name: string, fallback: number): number => {
  const value = Number(env(name, String(fallback)));
  if (!Number.isSafeInteger(value) || value < 0) throw new Error(`${name} must be a whole number ≥ 0`);
  return value;
};

type Platformatic = typeof import('@platformatic/kafka', { with: { 'resolution-mode': 'import' } });
type Message = import('@platformatic/kafka', { with: { 'resolution-mode': 'import' } }).Message<Buffer, Buffer, Buffer, Buffer>;
/** The group metadata @platformatic/kafka stamps on each record when it fetches it. */
const generationOf = (m: Message) => (m.metadata.consumer as { generationId?: number } | undefined)?.generationId;

async function main(): Promise<void> {
  const { Consumer, Producer, findErrorBy } = (await import('@platformatic/kafka')) as Platformatic;
  const application = env('LOOP_APPLICATION_ID');
  const instance = env('LOOP_INSTANCE', '0');
  const brokers = env('LOOP_BROKERS').split(',');
  const topics = { input: env('LOOP_INPUT_TOPIC'), catalog: env('LOOP_CATALOG_TOPIC'), output: env('LOOP_OUTPUT_TOPIC'), changelog: env('LOOP_CHANGELOG_TOPIC') };
  /** The client's request timeout, which @platformatic/kafka also sends as the transaction timeout. */
  const timeout = intEnv('LOOP_TIMEOUT_MS', 5_000);
  const sessionTimeout = intEnv('LOOP_SESSION_TIMEOUT_MS', 6_000);
  const maxBatch = intEnv('LOOP_MAX_BATCH', 5_000);
  const abortAt = intEnv('LOOP_ABORT_AT', 0);
  const stopAt = intEnv('LOOP_STOP_AT', 0);
  const log = (line: string) => process.stderr.write(`loop[${instance}]: ${line}\n`);

  const serde = new Serde(env('LOOP_REGISTRY_URL'));
  const decodeEvent = serde.decoder<ActivityEvent>('ActivityEvent');
  const decodeItem = serde.decoder<CatalogItem>('CatalogItem');
  const encodeEnriched = await serde.encoder<EnrichedEvent>(`${topics.output}-value`, 'EnrichedEvent');
  const catalog = new Map<string, CatalogItem>();
  for (const record of await readTopic(testKafka(`${application}-catalog`), topics.catalog)) {
    const item = await decodeItem.decode(record.value);
    catalog.set(item.entityId, item);
  }
  const seen = new Set<string>();

  // producerId -1 / epoch -1: what a new producer must send in InitProducerId. Without them @platformatic/kafka 2.12.1
  // sends 0 / 0, which the coordinator of a transactional id used before answers with PRODUCER_FENCED: the loop could
  // not restart (the kafka-client scenario's restart check shows it).
  const producer = new Producer({ clientId: `${application}-${instance}`, bootstrapBrokers: brokers, idempotent: true, transactionalId: `${application}-${instance}`, acks: -1, timeout, producerId: -1n, producerEpoch: -1 });
  const consumer = new Consumer({ clientId: `${application}-${instance}`, groupId: application, bootstrapBrokers: brokers, autocommit: false, sessionTimeout, heartbeatInterval: 1_000, rebalanceTimeout: sessionTimeout, timeout, maxWaitTime: 500 });
  const stream = await consumer.consume({ topics: [topics.input], mode: 'committed', fallbackMode: 'earliest', autocommit: false });

  let stopping = false;
  const buffered: Message[] = [];
  let wake: () => void = () => undefined;
  stream.on('data', (message: Message) => {
    buffered.push(message);
    if (buffered.length >= maxBatch * 2) stream.pause();
    wake();
  });
  stream.on('error', (err: Error) => {
    log(`stream failed: ${err.message}`);
    process.exit(1);
  });
  const shutdown = () => {
    stopping = true;
    wake();
  };
  process.once('SIGTERM', shutdown);
  process.once('SIGINT', shutdown);
  log('started');

  let transactions = 0;
  while (!stopping) {
    if (buffered.length === 0) {
      await new Promise<void>((resolve) => (wake = resolve));
      continue;
    }
    // Records fetched before the last rebalance are dropped: after it, the stream fetches again from the group's
    // committed offsets, and an offset of the old generation would be refused anyway (ILLEGAL_GENERATION).
    const generation = consumer.generationId;
    const batch = buffered.splice(0, maxBatch).filter((m) => generationOf(m) === generation);
    if (stream.isPaused() && buffered.length < maxBatch) stream.resume();
    if (batch.length === 0) continue;
    transactions++;

    const messages: { topic: string; key: Buffer; value: Buffer | undefined }[] = [];
    const last = new Map<number, Message>();
    const emitted: string[] = [];
    for (const m of batch) {
      last.set(m.partition, m);
      const event = await decodeEvent.decode(m.value);
      const item = catalog.get(event.entityId);
      if (seen.has(event.eventId) || !item) continue;
      emitted.push(event.eventId);
      const enriched: EnrichedEvent = { ...event, name: item.name, category: item.category, enrichedAt: Date.now(), sourcePartition: m.partition, sourceOffset: Number(m.offset) };
      messages.push({ topic: topics.output, key: Buffer.from(event.entityId), value: encodeEnriched.encode(enriched) });
      messages.push({ topic: topics.changelog, key: Buffer.from(event.eventId), value: Buffer.from('1') });
    }
    const transaction = await producer.beginTransaction();
    try {
      if (messages.length > 0) await transaction.send({ messages });
      await transaction.addConsumer(consumer);
      for (const m of last.values()) await transaction.addOffset(m);
      if (transactions === abortAt) {
        await transaction.abort();
        log(`transaction ${transactions} aborted on purpose (LOOP_ABORT_AT); exiting`);
        process.exit(3);
      }
      if (transactions === stopAt) {
        log(`transaction ${transactions}: records and offsets sent; stopping before the commit (LOOP_STOP_AT)`);
        process.kill(process.pid, 'SIGSTOP');
        log(`transaction ${transactions}: continued; committing`);
      }
      await transaction.commit();
    } catch (err) {
      await transaction.abort().catch((abortError: unknown) => log(`abort failed too: ${String(abortError)}`));
      // The group moved on (a rebalance, this member expired): nothing of this transaction is committed, and the
      // stream fetches again from the committed offsets once it has rejoined.
      if (findErrorBy(err as Error, 'needsRejoin', true)) {
        log(`transaction ${transactions} refused by the group (${(err as Error).message}); aborted`);
        continue;
      }
      throw err;
    }
    if (consumer.generationId !== generation) {
      // A rebalance during the transaction: the stream may have read the group's offsets before this commit made
      // them (@platformatic/kafka asks without requireStable) and would fetch committed records again. It has no
      // seek: start over from the committed offsets (the process is restarted).
      log(`a rebalance happened during committed transaction ${transactions}; exiting to restart from the committed offsets`);
      process.exit(4);
    }
    for (const id of emitted) seen.add(id);
  }
  await stream.close();
  await consumer.close(true);
  await producer.close();
  log('stopped');
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`loop: ${err instanceof Error ? err.stack : String(err)}\ncodes: ${codesOf(err)}\n`);
    process.exit(1);
  },
);
