import '@sluice/runtime/tracing-register';
import { dlqTopicOf, Serde, valueSubjectOf, type ActivityEvent, type CatalogItem, type EnrichedEvent } from '@sluice/contracts';
import { createKafka, runService } from '@sluice/runtime';
import { deadLetterHeaders, decodeOrDeadLetter, errorCode, GlobalTable, headerText, PoisonRecordError, RetryableError, STREAM_ERROR_CODES, runProcessor, StreamProcessor, streamTuning } from '@sluice/streams';
import { Counter, Gauge } from 'prom-client';
import { enricherEnvShape } from './config';
import { decide } from './enrich';

const DEDUP_STORE = 'seen-events';

void runService({
  name: 'enricher',
  defaultPort: 8091,
  envShape: enricherEnvShape,
  async start({ config, logger, metrics, http, lifecycle }) {
    const kafka = createKafka(config, { clientId: config.ENRICHER_APPLICATION_ID, logger });
    const serde = new Serde(config.SCHEMA_REGISTRY_URL);
    const events = serde.decoder<ActivityEvent>('ActivityEvent');
    const catalogItems = serde.decoder<CatalogItem>('CatalogItem');
    const output = await serde.encoder<EnrichedEvent>(valueSubjectOf(config.ENRICHER_OUTPUT_TOPIC), 'EnrichedEvent');

    const duplicates = new Counter({ name: 'enricher_duplicates_total', help: 'Events dropped because their eventId was emitted before', registers: [metrics] });
    const badCatalogRecords = new Counter({ name: 'enricher_bad_catalog_records_total', help: 'Catalog records that can never decode, sent to the dead-letter topic', registers: [metrics] });

    // A catalog record that can never decode goes to catalog.items.dlq (every instance sends it, at least
    // once: the dead-letter index keeps one entry per record and stage); a registry outage is waited out.
    const deadLetters = kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
    await deadLetters.connect();
    let closed = false;
    lifecycle.onShutdown('catalog dead letters', async () => {
      closed = true;
      await deadLetters.disconnect();
    });
    const catalog = new GlobalTable<CatalogItem>(
      kafka,
      config.ENRICHER_CATALOG_TOPIC,
      (value) => catalogItems.decode(value),
      async (err, partition, message) => {
        badCatalogRecords.inc();
        const code = errorCode(err);
        logger.error({ err, partition, offset: message.offset, code }, 'a catalog record does not decode: dead letter');
        const cause = { topic: config.ENRICHER_CATALOG_TOPIC, partition, offset: message.offset, timestamp: message.timestamp, stage: config.ENRICHER_APPLICATION_ID, code };
        for (let attempt = 1; !closed; attempt++) {
          try {
            await deadLetters.send({
              topic: dlqTopicOf(config.ENRICHER_CATALOG_TOPIC),
              acks: -1,
              messages: [{ key: message.key, value: message.value, headers: deadLetterHeaders(message.headers, { ...cause, message: err instanceof Error ? err.message : String(err), failedAt: new Date() }) }],
            });
            return;
          } catch (sendErr) {
            logger.warn({ err: sendErr, attempt }, 'sending a catalog dead letter failed; trying again');
            await new Promise((r) => setTimeout(r, Math.min(5_000, 100 * 2 ** Math.min(attempt, 6))));
          }
        }
      },
      (err, attempt, partition, offset) => logger.warn({ err, attempt, partition, offset }, 'a catalog record cannot be decoded now (registry?); trying again'),
    );
    new Gauge({ name: 'enricher_catalog_entries', help: 'Entries in the catalog table', registers: [metrics], collect() { this.set(catalog.size); } });
    let catalogLoaded = false;
    http.addReadinessCheck('catalog table', async () => {
      if (!catalogLoaded) throw new Error('the catalog table is still loading');
    });
    lifecycle.onShutdown('catalog table', () => catalog.stop());
    await catalog.start();
    catalogLoaded = true;
    logger.info({ entries: catalog.size }, 'catalog table loaded');

    // When an event of each entity first found its catalog entry missing; in memory, so a restart waits anew.
    const missingSince = new Map<string, number>();

    const processor = new StreamProcessor({
      application: config.ENRICHER_APPLICATION_ID,
      kafka,
      inputTopics: [config.ENRICHER_INPUT_TOPIC],
      stores: [{ name: DEDUP_STORE, inputTopic: config.ENRICHER_INPUT_TOPIC, ttlMs: config.ENRICHER_DEDUP_HORIZON_MS }],
      logger,
      metrics,
      ...streamTuning(config),
      exactlyOnce: config.STREAM_PROCESSING_GUARANTEE === 'exactly-once',
      async process(ctx) {
        const { record } = ctx;
        const event = await decodeOrDeadLetter(events, record.value);
        const seen = ctx.store<number>(DEDUP_STORE);
        // A replayed record gives its entity's catalog entry the whole wait again: the operator fixed
        // the catalog just before replaying, and the fix may still be on its way to this table.
        const replayId = headerText(record.headers, 'dlq.replay.id');
        const waitKey = replayId === undefined ? event.entityId : `${event.entityId}\u0000${replayId}`;
        const decision = decide({
          event,
          catalogItem: catalog.get(event.entityId),
          alreadySeen: seen.has(event.eventId),
          waitingSince: missingSince.get(waitKey),
          now: ctx.now(),
          catalogWaitMs: config.ENRICHER_CATALOG_WAIT_MS,
          source: { partition: record.partition, offset: record.offset },
        });
        switch (decision.kind) {
          case 'duplicate':
            duplicates.inc();
            return;
          case 'wait':
            if (!missingSince.has(waitKey)) {
              // Bounded: the oldest entry goes first (Map keeps insertion order).
              if (missingSince.size >= 100_000) missingSince.delete(missingSince.keys().next().value!);
              missingSince.set(waitKey, ctx.now());
            }
            throw new RetryableError(STREAM_ERROR_CODES.notYetAvailable, `waiting for the catalog entry of ${event.entityId}`);
          case 'dead-letter':
            // Not recorded as seen: once the catalog is fixed, its replay passes.
            throw new PoisonRecordError(decision.code, decision.message);
          case 'emit':
            missingSince.delete(waitKey);
            seen.put(event.eventId, 1);
            ctx.send({ topic: config.ENRICHER_OUTPUT_TOPIC, key: event.entityId, value: output.encode(decision.enriched) });
            return;
        }
      },
    });
    await runProcessor(processor, { config, http, lifecycle });
  },
});
