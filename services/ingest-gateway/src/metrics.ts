import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

export interface GatewayMetrics {
  eventsAccepted: Counter<never>;
  eventsRejected: Counter<'reason'>;
  batchSize: Histogram<never>;
  produceLatency: Histogram<never>;
  inflightEvents: Gauge<never>;
  inflightBodyBytes: Gauge<never>;
}

export function gatewayMetrics(registry: Registry): GatewayMetrics {
  return {
    eventsAccepted: new Counter({ name: 'gateway_events_accepted_total', help: 'Events acknowledged by Kafka and answered 202', registers: [registry] }),
    eventsRejected: new Counter({ name: 'gateway_events_rejected_total', help: 'Events refused, by reason', labelNames: ['reason'], registers: [registry] }),
    batchSize: new Histogram({
      name: 'gateway_batch_size',
      help: 'Events per producer batch',
      buckets: [1, 5, 10, 50, 100, 250, 500, 1000, 2500, 5000],
      registers: [registry],
    }),
    produceLatency: new Histogram({
      name: 'gateway_produce_latency_seconds',
      help: 'Time from sending a batch to Kafka to its acknowledgement (acks=all)',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [registry],
    }),
    inflightEvents: new Gauge({ name: 'gateway_inflight_events', help: 'Events sent or queued and not yet acknowledged', registers: [registry] }),
    inflightBodyBytes: new Gauge({ name: 'gateway_inflight_body_bytes', help: 'Bytes of request bodies held, from arrival to answer (GATEWAY_MAX_INFLIGHT_BODY_BYTES)', registers: [registry] }),
  };
}
