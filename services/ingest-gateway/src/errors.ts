/** Every error the gateway answers with: a stable code, its HTTP status, what it means. */
export const GATEWAY_ERRORS = {
  INVALID_EVENTS: { status: 400, description: 'The body is not one event or { "events": [...] }, or an event breaks the contract; details lists every problem with its index and path. Nothing was produced.' },
  INVALID_CATALOG_ITEM: { status: 400, description: 'The catalog item breaks the contract; details lists every problem.' },
  REQUEST_BODY_INVALID_JSON: { status: 400, description: 'The body is not valid JSON.' },
  UNAUTHORIZED: { status: 401, description: 'API keys are configured and the request has none, or a wrong one.' },
  ROUTE_NOT_FOUND: { status: 404, description: 'No such route.' },
  REQUEST_BODY_TOO_LARGE: { status: 413, description: 'The body is larger than GATEWAY_MAX_BODY_BYTES.' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, description: 'The body is not application/json.' },
  RATE_LIMITED: { status: 429, description: 'The API key sent more events than its rate allows; Retry-After says when to try again.' },
  OVERLOADED: {
    status: 503,
    description: 'Too many events are waiting for Kafka, or too many request bodies are held (GATEWAY_MAX_INFLIGHT_BODY_BYTES); Retry-After says when to try again.',
  },
  KAFKA_UNAVAILABLE: { status: 503, description: 'Kafka did not acknowledge the events; they may or may not be stored: retry with the same eventIds.' },
  KAFKA_ACK_TIMEOUT: { status: 503, description: 'Kafka did not acknowledge within GATEWAY_ACK_TIMEOUT_MS; retry with the same eventIds.' },
  SHUTTING_DOWN: { status: 503, description: 'The gateway is stopping; retry against another instance.' },
} as const;
