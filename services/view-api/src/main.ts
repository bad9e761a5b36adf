import '@sluice/runtime/tracing-register';
import { Serde, type WindowAggregate } from '@sluice/contracts';
import { createKafka, createPool, PgListener, runService } from '@sluice/runtime';
import { viewEnvShape } from './config';
import { LiveUpdates, parseChange } from './live';
import { migrate } from './migrate';
import { openApiDocument } from './openapi';
import { Projection } from './projection';
import { viewRoutes } from './routes';
import { CHANGES_CHANNEL, ViewStore } from './store';
import { TopCache } from './top-cache';

void runService({
  name: 'view-api',
  defaultPort: 8082,
  envShape: viewEnvShape,
  async start({ config, logger, metrics, http, lifecycle }) {
    if (config.VIEW_MIGRATE_ON_START) {
      const applied = await migrate(config.DATABASE_URL, logger);
      logger.info({ applied }, 'migrations applied');
    }
    const pool = createPool({ databaseUrl: config.DATABASE_URL, max: config.VIEW_DB_POOL_SIZE, logger, lifecycle });
    const store = new ViewStore(pool);

    const live = new LiveUpdates(config.VIEW_SSE_HEARTBEAT_MS);
    http.beforeClose(() => live.close());
    // The cache asks the listener whether it hears every change; the listener feeds it.
    const topCache = new TopCache(config.VIEW_TOP_CACHE_ENTRIES, () => listener.listening);
    const listener = new PgListener({
      databaseUrl: config.DATABASE_URL,
      channel: CHANGES_CHANNEL,
      onMessage: (payload) => {
        const change = parseChange(payload);
        if (!change) return;
        topCache.changed(change.window);
        live.publish(change);
      },
      // Stream subscribers resume with Last-Event-ID; the kept top answers may have missed a change.
      onReset: () => topCache.reset(),
      onError: (err) => logger.warn({ err }, 'lost the change notifications; live streams wait until they are back'),
    });
    await listener.start();
    lifecycle.onShutdown('change listener', () => listener.close());

    http.addReadinessCheck('postgres', () => store.ping());
    if (config.VIEW_PROJECTION_ENABLED) {
      const kafka = createKafka(config, { clientId: 'view-api', logger });
      const projection = new Projection({
        kafka,
        topic: config.VIEW_INPUT_TOPIC,
        group: config.VIEW_CONSUMER_GROUP,
        pool,
        store,
        decoder: new Serde(config.SCHEMA_REGISTRY_URL).decoder<WindowAggregate>('WindowAggregate'),
        logger,
        metrics,
        retryMaxMs: config.VIEW_RETRY_MAX_MS,
        sessionTimeoutMs: config.VIEW_SESSION_TIMEOUT_MS,
      });
      http.addReadinessCheck('projection', async () => {
        if (!projection.healthy) throw new Error('Postgres failed; the projection is paused until it answers');
      });
      lifecycle.onShutdown('projection', () => projection.close());
      await projection.start();
    }
    http.app.use(viewRoutes({ store, live, topCache, metrics, maxLimit: config.VIEW_MAX_LIMIT, openApi: openApiDocument(config.VIEW_MAX_LIMIT) }));
  },
});
