import { TOPICS } from '@sluice/contracts';
import { env, kafkaEnvShape } from '@sluice/runtime';
import { streamEnvShape } from '@sluice/streams';

export const enricherEnvShape = {
  ...kafkaEnvShape,
  SCHEMA_REGISTRY_URL: env.url('http://127.0.0.1:8081'),
  /** Consumer group, transactional-id prefix and changelog prefix: instances of one enricher share it. */
  ENRICHER_APPLICATION_ID: env.string('enricher'),
  ENRICHER_INPUT_TOPIC: env.string(TOPICS.eventsRaw),
  ENRICHER_CATALOG_TOPIC: env.string(TOPICS.catalogItems),
  ENRICHER_OUTPUT_TOPIC: env.string(TOPICS.eventsEnriched),
  /** How long an eventId is remembered: a retry within it is dropped. */
  ENRICHER_DEDUP_HORIZON_MS: env.int(24 * 60 * 60 * 1000, { min: 1000 }),
  /** How long an event waits for its catalog entry before it is dead-lettered as catalog.missing. */
  ENRICHER_CATALOG_WAIT_MS: env.int(10_000, { min: 0 }),
  ...streamEnvShape,
  /** exactly-once (the product), or at-least-once, only to measure what transactions cost. */
  STREAM_PROCESSING_GUARANTEE: env.enum(['exactly-once', 'at-least-once'], 'exactly-once'),
};
