import { TOPICS } from '@sluice/contracts';
import { env, kafkaEnvShape } from '@sluice/runtime';

export const gatewayEnvShape = {
  ...kafkaEnvShape,
  SCHEMA_REGISTRY_URL: env.url('http://127.0.0.1:8081'),
  GATEWAY_EVENTS_TOPIC: env.string(TOPICS.eventsRaw),
  GATEWAY_CATALOG_TOPIC: env.string(TOPICS.catalogItems),
  GATEWAY_MAX_EVENTS_PER_REQUEST: env.int(1_000, { min: 1, max: 100_000 }),
  GATEWAY_MAX_BODY_BYTES: env.int(1_048_576, { min: 1_024 }),
  GATEWAY_MAX_ATTRIBUTES: env.int(50, { min: 0 }),
  GATEWAY_MAX_ATTRIBUTE_LENGTH: env.int(1_024, { min: 1 }),
  /** Comma-separated keys; none: the gateway is open (and says so at start-up). */
  GATEWAY_API_KEYS: env.list(''),
  /** Events per second per API key (or per client address when open); 0: no limit. */
  GATEWAY_RATE_LIMIT_PER_SEC: env.int(0, { min: 0 }),
  GATEWAY_RATE_LIMIT_BURST: env.int(10_000, { min: 1 }),
  /** How long a batch waits for more requests before it is sent. */
  /** 0: a batch leaves as soon as the previous one is acknowledged (adaptive); more: each batch waits this long. */
  GATEWAY_LINGER_MS: env.int(0, { min: 0, max: 1_000 }),
  GATEWAY_BATCH_MAX_EVENTS: env.int(2_000, { min: 1 }),
  GATEWAY_MAX_INFLIGHT_EVENTS: env.int(50_000, { min: 1 }),
  GATEWAY_MAX_INFLIGHT_BYTES: env.int(64 * 1_048_576, { min: 1_024 }),
  /**
   * Bytes of request bodies held at once, from the request's arrival to its answer (a body's declared length,
   * or GATEWAY_MAX_BODY_BYTES when it declares none); a request past it gets 503 OVERLOADED before its body is
   * read. Parsed, a body takes several times its size in the heap.
   */
  GATEWAY_MAX_INFLIGHT_BODY_BYTES: env.int(32 * 1_048_576, { min: 1_024 }),
  /** A request not acknowledged by Kafka within this gets 503; producer retries happen inside it. */
  GATEWAY_ACK_TIMEOUT_MS: env.int(5_000, { min: 100 }),
  GATEWAY_RETRY_AFTER_SEC: env.int(1, { min: 1 }),
};
