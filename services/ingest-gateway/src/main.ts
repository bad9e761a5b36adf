import '@sluice/runtime/tracing-register';
import { Serde, valueSubjectOf, type ActivityEvent, type CatalogItem } from '@sluice/contracts';
import { createKafka, runService } from '@sluice/runtime';
import { ApiKeys } from './api-keys';
import { ProduceBatcher, ProducerHolder } from './batcher';
import { gatewayEnvShape } from './config';
import { gatewayMetrics } from './metrics';
import { openApiDocument } from './openapi';
import { RateLimiter } from './rate-limit';
import { gatewayRoutes } from './routes';
import { DEFAULT_LIMITS, type Limits } from './validation';

void runService({
  name: 'ingest-gateway',
  defaultPort: 8080,
  envShape: gatewayEnvShape,
  async start({ config, logger, metrics, http, lifecycle }) {
    const kafka = createKafka(config, { clientId: 'ingest-gateway', logger });
    const serde = new Serde(config.SCHEMA_REGISTRY_URL);
    const eventEncoder = await serde.encoder<ActivityEvent>(valueSubjectOf(config.GATEWAY_EVENTS_TOPIC), 'ActivityEvent');
    const catalogEncoder = await serde.encoder<CatalogItem>(valueSubjectOf(config.GATEWAY_CATALOG_TOPIC), 'CatalogItem');

    // Partition counts decide where each key goes; they are read at start and refreshed now and then.
    const admin = kafka.admin();
    await admin.connect();
    lifecycle.onShutdown('kafka admin', () => admin.disconnect());
    const partitions = new Map<string, number>();
    const refreshPartitions = async () => {
      const metadata = await admin.fetchTopicMetadata({ topics: [config.GATEWAY_EVENTS_TOPIC, config.GATEWAY_CATALOG_TOPIC] });
      for (const t of metadata.topics) partitions.set(t.name, t.partitions.length);
    };
    await refreshPartitions();
    const refresher = setInterval(() => void refreshPartitions().catch((err: unknown) => logger.warn({ err }, 'could not refresh partition counts')), 30_000);
    refresher.unref();
    lifecycle.onShutdown('partition refresher', () => clearInterval(refresher));

    const gatewayMetricSet = gatewayMetrics(metrics);
    const producer = new ProducerHolder(kafka, { retries: 3, maxRetryTime: Math.max(100, Math.floor(config.GATEWAY_ACK_TIMEOUT_MS / 3)) });
    await producer.get();
    lifecycle.onShutdown('producer', () => producer.close());
    const batcher = (topic: string) =>
      new ProduceBatcher({
        topic,
        producer,
        partitions: () => partitions.get(topic) ?? 1,
        lingerMs: config.GATEWAY_LINGER_MS,
        maxBatchEvents: config.GATEWAY_BATCH_MAX_EVENTS,
        maxInflightEvents: config.GATEWAY_MAX_INFLIGHT_EVENTS,
        maxInflightBytes: config.GATEWAY_MAX_INFLIGHT_BYTES,
        metrics: gatewayMetricSet,
        logger,
      });
    const eventsBatcher = batcher(config.GATEWAY_EVENTS_TOPIC);
    const catalogBatcher = batcher(config.GATEWAY_CATALOG_TOPIC);
    // Closed after the HTTP server (registered later, closed earlier): in-flight requests still get their acknowledgement.
    lifecycle.onShutdown('event batcher', () => eventsBatcher.close());
    lifecycle.onShutdown('catalog batcher', () => catalogBatcher.close());

    const apiKeys = new ApiKeys(config.GATEWAY_API_KEYS);
    if (apiKeys.open) logger.warn('no GATEWAY_API_KEYS configured: the gateway accepts requests from anyone');
    http.addReadinessCheck('kafka', async () => {
      await producer.get();
      await admin.describeCluster();
    });
    // One set of limits for validation and for the OpenAPI document that states them.
    const limits: Limits = {
      maxEvents: config.GATEWAY_MAX_EVENTS_PER_REQUEST,
      maxAttributes: config.GATEWAY_MAX_ATTRIBUTES,
      maxAttributeLength: config.GATEWAY_MAX_ATTRIBUTE_LENGTH,
      maxIdLength: DEFAULT_LIMITS.maxIdLength,
    };
    http.app.use(
      gatewayRoutes({
        events: { batcher: eventsBatcher, encoder: eventEncoder },
        catalog: { batcher: catalogBatcher, encoder: catalogEncoder },
        apiKeys,
        rateLimiter: new RateLimiter(config.GATEWAY_RATE_LIMIT_PER_SEC, config.GATEWAY_RATE_LIMIT_BURST),
        limits,
        maxBodyBytes: config.GATEWAY_MAX_BODY_BYTES,
        maxInflightBodyBytes: config.GATEWAY_MAX_INFLIGHT_BODY_BYTES,
        ackTimeoutMs: config.GATEWAY_ACK_TIMEOUT_MS,
        retryAfterSec: config.GATEWAY_RETRY_AFTER_SEC,
        metrics: gatewayMetricSet,
        openApi: openApiDocument({ limits }),
      }),
    );
  },
});
