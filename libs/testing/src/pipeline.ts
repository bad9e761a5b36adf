import { provisionTopics, Serde, topicCatalog, type ActivityEvent, type EnrichedEvent } from '@sluice/contracts';
import type { Kafka } from 'kafkajs';
import type { TestStack } from './cluster';
import { changelogKey, checkStageEffects, eventIdOf, withoutWatermarks, type StageEffectsReport } from './effects';
import { createTestDatabase, httpJson, runningStack, startTestService, testKafka, uniqueName, withAdmin, type JsonBody as Json, type TestService } from './helpers';

/** The dead-letter admin token of a pipeline started here. */
export const ADMIN_TOKEN = 'e2e-admin-token';

export interface Pipeline {
  gateway: TestService;
  enricher: TestService;
  aggregator: TestService;
  view: TestService;
  replayer: TestService;
  /** The archiver, when the pipeline was started with `archiveUrl`. */
  archiver?: TestService;
  /** Topic names of this pipeline: `topic('events.raw')`. */
  topic(name: string): string;
  /** The consumer groups (application ids) of the stream stages. */
  groups: { enricher: string; aggregator: string; view: string };
  /** Starts one more instance of a stream stage, in the same consumer group, with the same settings. */
  scale(stage: 'enricher' | 'aggregator'): Promise<TestService>;
  http(service: TestService, method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<{ status: number; body: Json }>;
  /**
   * The exactly-once invariant of both stream stages, from Kafka alone (`checkStageEffects`), by
   * eventId: the enricher (input events.raw; outputs events.enriched and events.raw.dlq; state its
   * seen-events changelog) and the aggregator's entity stage (input events.enriched; outputs the
   * by-category repartition topic, watermarks left out, and events.enriched.dlq). Its window state and
   * category stage have no per-event effect to look for: the view's windows check those.
   */
  checkStages(): Promise<{ enricher: StageEffectsReport; aggregator: StageEffectsReport }>;
  close(): Promise<void>;
}

/**
 * The whole pipeline, every service a real process, on topics, consumer groups
 * and a database of its own, so that it runs beside other tests on one stack
 * (or on `stack`, a Kafka cluster of its own, whose client is `kafka`).
 */
export async function startPipeline(options: {
  windowRetentionMs: number;
  partitions?: number;
  stack?: TestStack;
  kafka?: Kafka;
  /** @default 1 */
  replicationFactor?: number;
  /** Variables for every service, over the defaults (the stages' own included). */
  env?: Record<string, string>;
  /** Also an archiver of events.enriched, writing here (a directory or s3:// URL). */
  archiveUrl?: string;
}): Promise<Pipeline> {
  const kafka = options.kafka ?? testKafka();
  const prefix = `${uniqueName('e2e')}.`;
  await withAdmin(kafka, (admin) =>
    provisionTopics(admin, topicCatalog({ prefix, partitions: options.partitions ?? 3, replicationFactor: options.replicationFactor ?? 1 })),
  );
  const t = (name: string) => `${prefix}${name}`;
  const databaseUrl = await createTestDatabase('e2e');
  const common = { LOG_LEVEL: 'info', STREAM_SESSION_TIMEOUT_MS: '6000' };
  const id = uniqueName('e2e');
  const services: TestService[] = [];
  const start = async (name: string, env: Record<string, string>) => {
    const s = await startTestService(name, { env: { ...common, ...env, ...options.env }, ...(options.stack ? { stack: options.stack } : {}) });
    services.push(s);
    return s;
  };
  const gateway = await start('ingest-gateway', { GATEWAY_EVENTS_TOPIC: t('events.raw'), GATEWAY_CATALOG_TOPIC: t('catalog.items') });
  const stageEnv = {
    enricher: {
      ENRICHER_APPLICATION_ID: `${id}-enricher`,
      ENRICHER_INPUT_TOPIC: t('events.raw'),
      ENRICHER_CATALOG_TOPIC: t('catalog.items'),
      ENRICHER_OUTPUT_TOPIC: t('events.enriched'),
      ENRICHER_CATALOG_WAIT_MS: '500',
    },
    aggregator: {
      AGGREGATOR_APPLICATION_ID: `${id}-aggregator`,
      AGGREGATOR_INPUT_TOPIC: t('events.enriched'),
      AGGREGATOR_OUTPUT_TOPIC: t('aggregates'),
      AGGREGATOR_LATE_TOPIC: t('events.late'),
      WINDOW_SIZE_MS: '60000',
      WINDOW_GRACE_MS: '10000',
      WINDOW_RETENTION_MS: String(options.windowRetentionMs),
    },
  };
  const enricher = await start('enricher', stageEnv.enricher);
  const aggregator = await start('aggregator', stageEnv.aggregator);
  const view = await start('view-api', { DATABASE_URL: databaseUrl, VIEW_INPUT_TOPIC: t('aggregates'), VIEW_CONSUMER_GROUP: `${id}-view`, VIEW_SESSION_TIMEOUT_MS: '6000' });
  const replayer = await start('dlq-replayer', {
    DATABASE_URL: databaseUrl,
    DLQ_TOPICS: [t('events.raw.dlq'), t('events.enriched.dlq'), t('aggregates.dlq')].join(','),
    DLQ_CONSUMER_GROUP: `${id}-dlq`,
    DLQ_REPLAY_ALLOWED_TOPICS: t('events.raw'),
    DLQ_ADMIN_TOKEN: ADMIN_TOKEN,
    DLQ_SESSION_TIMEOUT_MS: '6000',
    // The lag of this pipeline's stages, read from Kafka (kafka_consumergroup_lag).
    DLQ_LAG_GROUPS: `${id}-enricher,${id}-aggregator,${id}-view,${id}-dlq`,
    DLQ_LAG_INTERVAL_MS: '2000',
  });
  const archiver = options.archiveUrl
    ? await start('archiver', { ARCHIVE_URL: options.archiveUrl, ARCHIVE_INPUT_TOPIC: t('events.enriched'), ARCHIVE_CONSUMER_GROUP: `${id}-archiver`, ARCHIVE_ROLL_INTERVAL_MS: '500', ARCHIVE_SESSION_TIMEOUT_MS: '6000' })
    : undefined;
  const groups = { enricher: `${id}-enricher`, aggregator: `${id}-aggregator`, view: `${id}-view` };
  const { schemaRegistryUrl, kafkaBrokers: brokers } = options.stack?.state() ?? runningStack();
  const serde = new Serde(schemaRegistryUrl);
  const activity = serde.decoder<ActivityEvent>('ActivityEvent');
  const enriched = serde.decoder<EnrichedEvent>('EnrichedEvent');
  return {
    gateway,
    enricher,
    aggregator,
    view,
    replayer,
    ...(archiver ? { archiver } : {}),
    topic: t,
    groups,
    scale: (stage) => start(stage, stageEnv[stage]),
    async http(service, method, path, body, headers = {}) {
      const { status, body: parsed } = await httpJson(`${service.url}${path}`, method, body, headers);
      return { status, body: parsed };
    },
    async checkStages() {
      const enricherReport = await checkStageEffects({
        kafka,
        brokers,
        group: groups.enricher,
        input: { topic: t('events.raw'), identify: eventIdOf(activity) },
        outputs: [
          { topic: t('events.enriched'), identify: eventIdOf(enriched) },
          { topic: t('events.raw.dlq'), identify: eventIdOf(activity), stateless: true },
        ],
        state: [{ topic: `${groups.enricher}-seen-events-changelog`, identify: changelogKey }],
      });
      const aggregatorReport = await checkStageEffects({
        kafka,
        brokers,
        group: groups.aggregator,
        input: { topic: t('events.enriched'), identify: eventIdOf(enriched) },
        outputs: [
          { topic: `${groups.aggregator}-by-category-repartition`, identify: withoutWatermarks(eventIdOf(enriched)) },
          { topic: t('events.enriched.dlq'), identify: eventIdOf(enriched) },
        ],
      });
      return { enricher: enricherReport, aggregator: aggregatorReport };
    },
    async close() {
      await Promise.all(services.map((s) => s.stop()));
    },
  };
}

/** A stage report with nothing wrong and `processed` inputs: what `checkStages` must return after a failure test. */
export function cleanStageReport(processed: number): StageEffectsReport {
  return { processed, pending: 0, missing: [], doubled: [], orphaned: [], missingState: [], openTransactions: [] };
}

/** Polls `probe` until `done` holds for its result. */
export async function eventually<T>(what: string, probe: () => Promise<T>, done: (value: T) => boolean, timeoutMs = 90_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T | undefined;
  while (Date.now() < deadline) {
    last = await probe();
    if (done(last)) return last;
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`${what}: not reached in ${timeoutMs} ms; last: ${JSON.stringify(last)}`);
}
