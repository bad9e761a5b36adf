import '@sluice/runtime/tracing-register';
import { Serde, valueSubjectOf, type EnrichedEvent, type WindowAggregate } from '@sluice/contracts';
import { createKafka, runService } from '@sluice/runtime';
import { decodeOrDeadLetter, DLQ_HEADERS, headerText, runProcessor, StreamProcessor, streamTuning, type StoreTransaction } from '@sluice/streams';
import { Counter, Gauge } from 'prom-client';
import { aggregatorEnvShape } from './config';
import { advanceStreamTime, applyEvent, flushWindows, WINDOW_INDEXES, windowKey, type Dimension, type WindowConfig, type WindowStore } from './windows';

const STORES: Record<Dimension, string> = { entity: 'entity-windows', category: 'category-windows' };

void runService({
  name: 'aggregator',
  defaultPort: 8092,
  envShape: aggregatorEnvShape,
  async start({ config, logger, metrics, http, lifecycle }) {
    const windows: WindowConfig = {
      sizeMs: config.WINDOW_SIZE_MS,
      hopMs: config.WINDOW_HOP_MS > 0 ? Math.min(config.WINDOW_HOP_MS, config.WINDOW_SIZE_MS) : config.WINDOW_SIZE_MS,
      graceMs: config.WINDOW_GRACE_MS,
      retentionMs: config.WINDOW_RETENTION_MS,
    };
    const kafka = createKafka(config, { clientId: config.AGGREGATOR_APPLICATION_ID, logger });
    const serde = new Serde(config.SCHEMA_REGISTRY_URL);
    const events = serde.decoder<EnrichedEvent>('EnrichedEvent');
    const output = await serde.encoder<WindowAggregate>(valueSubjectOf(config.AGGREGATOR_OUTPUT_TOPIC), 'WindowAggregate');

    // Per-category windows must see every event of a category in one place, but events.enriched is
    // partitioned by entity: each event is forwarded, keyed by category, through an internal topic
    // inside the same transaction (as Kafka Streams repartitions), and category windows are kept there.
    // That topic merges every entity partition, so its event time is their minimum (watermarks), never the
    // fastest one's: a partition that falls behind holds category windows open instead of making its events late.
    const repartitionTopic = `${config.AGGREGATOR_APPLICATION_ID}-by-category-repartition`;
    const emitted = new Counter({ name: 'aggregator_emitted_total', help: 'Window results emitted, updates and finals', labelNames: ['dimension', 'kind'], registers: [metrics] });
    const late = new Counter({ name: 'aggregator_late_events_total', help: 'Events for windows already closed or expired, sent to events.late', labelNames: ['dimension', 'reason'], registers: [metrics] });

    const processor = new StreamProcessor({
      application: config.AGGREGATOR_APPLICATION_ID,
      kafka,
      inputTopics: [config.AGGREGATOR_INPUT_TOPIC, repartitionTopic],
      repartitionTopics: [{ name: repartitionTopic, copartitionedWith: config.AGGREGATOR_INPUT_TOPIC, watermarks: true }],
      stores: [
        { name: STORES.entity, inputTopic: config.AGGREGATOR_INPUT_TOPIC, indexes: WINDOW_INDEXES },
        { name: STORES.category, inputTopic: repartitionTopic, indexes: WINDOW_INDEXES },
      ],
      logger,
      metrics,
      idleTimeoutMs: config.WINDOW_IDLE_TIMEOUT_MS,
      ...streamTuning(config),
      async process(ctx) {
        const { record } = ctx;
        const event = await decodeOrDeadLetter(events, record.value);
        const dimension: Dimension = record.topic === repartitionTopic ? 'category' : 'entity';
        const key = dimension === 'entity' ? event.entityId : event.category;
        const store = ctx.store(STORES[dimension]) as WindowStore;
        // Category: judged by the merged time of every entity partition. Entity: by the partition's own events.
        if (dimension === 'category') advanceStreamTime(store, ctx.watermark());
        const outcome = applyEvent(
          store,
          { dimension, key, occurredAt: event.occurredAt, value: event.value, replay: headerText(record.headers, DLQ_HEADERS.replayId) !== undefined },
          windows,
          dimension === 'category' ? ctx.sourceEventTime() : undefined,
        );
        if (dimension === 'entity') {
          advanceStreamTime(store, event.occurredAt);
          ctx.observeEventTime(event.occurredAt);
        }
        if (outcome.late) {
          late.inc({ dimension, reason: outcome.late });
          ctx.send({
            topic: config.AGGREGATOR_LATE_TOPIC,
            key: record.key,
            value: record.value,
            headers: { 'late.reason': outcome.late, 'late.dimension': dimension, 'late.stage': config.AGGREGATOR_APPLICATION_ID },
          });
        }
        if (dimension === 'entity') ctx.send({ topic: repartitionTopic, key: event.category, value: record.value });
      },
      flush(ctx) {
        const dimension: Dimension = ctx.topic === repartitionTopic ? 'category' : 'entity';
        const store = ctx.store(STORES[dimension]) as StoreTransaction<unknown>;
        if (dimension === 'category') advanceStreamTime(store, ctx.watermark());
        for (const result of flushWindows(store as WindowStore, store.changes.keys(), windows)) {
          emitted.inc({ dimension, kind: result.isFinal ? 'final' : 'update' });
          const key = windowKey(result.dimension, result.key, result.windowStart);
          ctx.send({ topic: config.AGGREGATOR_OUTPUT_TOPIC, key, value: output.encode(result), causedBy: { store: STORES[dimension], key } });
        }
      },
    });
    new Gauge({
      name: 'aggregator_state_entries',
      help: 'Windows held in state (open, and closed within retention), by dimension',
      labelNames: ['dimension'],
      registers: [metrics],
      collect() {
        this.set({ dimension: 'entity' }, processor.storeSize(STORES.entity));
        this.set({ dimension: 'category' }, processor.storeSize(STORES.category));
      },
    });
    new Gauge({
      name: 'aggregator_open_windows',
      help: 'Windows not closed yet, by dimension',
      labelNames: ['dimension'],
      registers: [metrics],
      collect() {
        for (const dimension of ['entity', 'category'] as const) this.set({ dimension }, processor.storeIndexSize(STORES[dimension], 'open'));
      },
    });
    new Gauge({
      name: 'aggregator_watermark_lag_ms',
      help: 'How far event time is held back behind the fastest source, by dimension (entity partitions keep their own time: 0)',
      labelNames: ['dimension'],
      registers: [metrics],
      collect() {
        const category = processor.watermarks().filter((w) => w.topic === repartitionTopic);
        this.set({ dimension: 'entity' }, 0);
        this.set({ dimension: 'category' }, Math.max(0, ...category.map((w) => w.lagMs)));
      },
    });
    await runProcessor(processor, { config, http, lifecycle });
  },
});
