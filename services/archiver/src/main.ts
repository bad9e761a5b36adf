import '@sluice/runtime/tracing-register';
import { Serde, type EnrichedEvent } from '@sluice/contracts';
import { createKafka, runService } from '@sluice/runtime';
import { Archiver } from './archiver';
import { archiverEnvShape } from './config';
import { openStorage } from './storage';

void runService({
  name: 'archiver',
  defaultPort: 8094,
  envShape: archiverEnvShape,
  async start({ config, logger, metrics, http, lifecycle }) {
    const storage = openStorage(config.ARCHIVE_URL, { forcePathStyle: config.ARCHIVE_S3_FORCE_PATH_STYLE, region: config.AWS_REGION });
    await storage.ping();
    logger.info({ archive: storage.location }, 'archiving to');
    const archiver = new Archiver({
      kafka: createKafka(config, { clientId: 'archiver', logger }),
      storage,
      topic: config.ARCHIVE_INPUT_TOPIC,
      group: config.ARCHIVE_CONSUMER_GROUP,
      decoder: new Serde(config.SCHEMA_REGISTRY_URL).decoder<EnrichedEvent>('EnrichedEvent'),
      logger,
      metrics,
      maxFileBytes: config.ARCHIVE_MAX_FILE_MB * 1024 * 1024,
      maxBufferBytes: config.ARCHIVE_MAX_BUFFER_MB * 1024 * 1024,
      rollIntervalMs: config.ARCHIVE_ROLL_INTERVAL_MS,
      sessionTimeoutMs: config.ARCHIVE_SESSION_TIMEOUT_MS,
      retryMaxMs: config.ARCHIVE_RETRY_MAX_MS,
    });
    http.addReadinessCheck('archive', async () => {
      const problem = archiver.problem;
      if (problem) throw new Error(problem);
    });
    lifecycle.onShutdown('archiver', () => archiver.close());
    await archiver.start();
  },
});
