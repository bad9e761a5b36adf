import { TOPICS } from '@sluice/contracts';
import { env, kafkaEnvShape } from '@sluice/runtime';
import { streamEnvShape } from '@sluice/streams';

export const aggregatorEnvShape = {
  ...kafkaEnvShape,
  SCHEMA_REGISTRY_URL: env.url('http://127.0.0.1:8081'),
  /** Consumer group, transactional-id, changelog and repartition-topic prefix. */
  AGGREGATOR_APPLICATION_ID: env.string('aggregator'),
  AGGREGATOR_INPUT_TOPIC: env.string(TOPICS.eventsEnriched),
  AGGREGATOR_OUTPUT_TOPIC: env.string(TOPICS.aggregates),
  AGGREGATOR_LATE_TOPIC: env.string(TOPICS.eventsLate),
  WINDOW_SIZE_MS: env.int(60_000, { min: 1 }),
  /** Distance between window starts; unset: tumbling windows (hop = size). */
  WINDOW_HOP_MS: env.int(0, { min: 0 }),
  WINDOW_GRACE_MS: env.int(10_000, { min: 0 }),
  /** How long a closed window stays in state (by stream time) so replayed dead letters can correct it. */
  WINDOW_RETENTION_MS: env.int(24 * 60 * 60 * 1000, { min: 0 }),
  /**
   * An entity partition that is caught up and has received nothing for this long stops holding category
   * windows back (it is idle) until it delivers again. Longer than the upstream stalls to absorb exactly
   * (the enricher's catalog wait, a restart): a source idle too early makes its delayed events late.
   */
  WINDOW_IDLE_TIMEOUT_MS: env.int(60_000, { min: 100 }),
  ...streamEnvShape,
};
