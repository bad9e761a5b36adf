import '@sluice/runtime/tracing-register';
import { join } from 'node:path';
import { Serde } from '@sluice/contracts';
import { ConfigError, createKafka, createPool, runMigrations, runService } from '@sluice/runtime';
import { GroupLagMonitor, PostgresSink } from '@sluice/streams';
import { Partitioners } from 'kafkajs';
import { Counter } from 'prom-client';
import { replayerEnvShape } from './config';
import { adminOpenApi } from './openapi';
import { consoleRoutes } from './console';
import { adminRoutes } from './routes';
import { ReplayerStore } from './store';
import { ReplayWorker } from './worker';

const partitioner = Partitioners.DefaultPartitioner();

void runService({
  name: 'dlq-replayer',
  defaultPort: 8083,
  envShape: replayerEnvShape,
  async start({ config, logger, metrics, http, lifecycle }) {
    if (config.DLQ_ADMIN_ENABLED && !config.DLQ_ADMIN_TOKEN) {
      throw new ConfigError([{ variable: 'DLQ_ADMIN_TOKEN', problem: 'is required while the admin endpoint is enabled (or set DLQ_ADMIN_ENABLED=false)' }]);
    }
    const applied = await runMigrations({ databaseUrl: config.DATABASE_URL, dir: join(__dirname, '..', 'migrations'), table: 'dlq_replayer_migrations', logger });
    logger.info({ applied }, 'migrations applied');
    const pool = createPool({ databaseUrl: config.DATABASE_URL, max: config.DLQ_DB_POOL_SIZE, logger, lifecycle });
    const store = new ReplayerStore(pool);
    const kafka = createKafka(config, { clientId: 'dlq-replayer', logger });

    const indexed = new Counter({ name: 'dlq_indexed_total', help: 'Dead letters added to the index', labelNames: ['topic'], registers: [metrics] });
    const sink = new PostgresSink<number>({
      kafka,
      topics: config.DLQ_TOPICS,
      group: config.DLQ_CONSUMER_GROUP,
      spanName: 'index',
      pool,
      offsetsTable: 'dlq_offsets',
      logger,
      sessionTimeoutMs: config.DLQ_SESSION_TIMEOUT_MS,
      retryMaxMs: config.DLQ_RETRY_MAX_MS,
      apply: (client, batch) => store.index(client, batch.topic, batch.partition, batch.messages),
      committed: (count, batch) => indexed.inc({ topic: batch.topic }, count),
    });
    http.addReadinessCheck('postgres', () => store.ping());
    http.addReadinessCheck('index', async () => {
      if (!sink.healthy) throw new Error('Postgres failed; indexing is paused until it answers');
    });

    // Lag of the stream stages from Kafka's committed offsets: seen even when a stage is stopped or dead.
    const lag = new GroupLagMonitor({ kafka, groups: config.DLQ_LAG_GROUPS, registry: metrics, logger, intervalMs: config.DLQ_LAG_INTERVAL_MS });
    lifecycle.onShutdown('consumer lag', () => lag.close());
    lag.start();

    const worker = new ReplayWorker({ kafka, pool, store, logger, metrics });
    lifecycle.onShutdown('replay worker', () => worker.close());
    lifecycle.onShutdown('dead-letter index', () => sink.close());
    await sink.start();
    await worker.start();

    if (!config.DLQ_ADMIN_ENABLED) {
      logger.warn('the admin endpoint is disabled (DLQ_ADMIN_ENABLED=false): dead letters are indexed, not replayable here');
      return;
    }
    http.app.use(
      adminRoutes({
        store,
        worker,
        serde: new Serde(config.SCHEMA_REGISTRY_URL),
        logger,
        token: config.DLQ_ADMIN_TOKEN!,
        allowedTopics: config.DLQ_REPLAY_ALLOWED_TOPICS,
        maxReplays: config.DLQ_MAX_REPLAYS,
        defaultRatePerSec: config.DLQ_DEFAULT_RATE_PER_SEC,
        partitionsOf: (topic) => worker.partitionsOf(topic),
        // The partition the original producer chose for the key (murmur2), so a replay keeps a key's order.
        partitionFor: (topic, key, partitions, id) =>
          key === null
            ? Number(BigInt(id) % BigInt(partitions))
            : partitioner({ topic, partitionMetadata: Array.from({ length: partitions }, (_, partitionId) => ({ partitionId, leader: 0 })) as never, message: { key, value: null } }),
        openApi: adminOpenApi(config.DLQ_REPLAY_ALLOWED_TOPICS),
        lag: () => lag.snapshot(),
      }),
    );
    // The operator console: static pages that call the admin API above with the operator's token.
    http.app.use(consoleRoutes());
  },
});
