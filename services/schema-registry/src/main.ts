import '@sluice/runtime/tracing-register';
import { createPool, PgListener, runService } from '@sluice/runtime';
import { registryEnvShape } from './config';
import { Registry } from './registry';
import { registryRoutes } from './routes';
import { CHANGES_CHANNEL, PgStore } from './store';

void runService({
  name: 'schema-registry',
  defaultPort: 8081,
  envShape: registryEnvShape,
  async start({ config, http, lifecycle, logger }) {
    const pool = createPool({ databaseUrl: config.DATABASE_URL, max: config.REGISTRY_DB_POOL_SIZE, logger, lifecycle });
    const store = new PgStore(pool, config.REGISTRY_DB_SCHEMA);
    await store.migrate();
    const registry = new Registry(store, config.REGISTRY_DEFAULT_COMPATIBILITY);
    const listener = new PgListener({
      databaseUrl: config.DATABASE_URL,
      channel: CHANGES_CHANNEL,
      onMessage: (subject) => registry.invalidate(subject),
      onReset: () => registry.invalidate(undefined),
      onError: (err) => logger.warn({ err }, 'lost the change notifications; caches dropped until they are back'),
    });
    await listener.start();
    lifecycle.onShutdown('change listener', () => listener.close());
    http.addReadinessCheck('postgres', () => store.ping());
    http.addReadinessCheck('change notifications', async () => {
      if (!listener.listening) throw new Error('not listening for changes of other replicas');
    });
    http.app.use(registryRoutes(registry, { maxBodyBytes: config.REGISTRY_MAX_BODY_BYTES }));
  },
});
