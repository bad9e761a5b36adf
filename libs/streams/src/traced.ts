import type { Kafka } from 'kafkajs';

type Unwrappable<F> = F & { __original?: F };

/**
 * The kafkajs producer factory without the OpenTelemetry wrapper. The kafkajs
 * instrumentation writes the context of a new "transaction" span into every
 * record sent in a transaction, which would cut each record off from the trace
 * of the input it came from; outputs here carry their input's context instead
 * (the history headers).
 */
export function uninstrumentedProducer(kafka: Kafka): Kafka['producer'] {
  const factory = kafka.producer as Unwrappable<Kafka['producer']>;
  return (factory.__original ?? factory).bind(kafka);
}

/**
 * The kafkajs consumer factory without the OpenTelemetry wrapper. With eachBatch, the instrumentation
 * starts a new trace for every batch and only links each record to the trace it came from, and it makes
 * a span per record whether spans are recorded or not (7 % of the enricher's CPU when none is, measured
 * with `--cpu-prof`). The stream processor and the Postgres sink make each record's span themselves, as
 * the child of the span that produced it (`withRecordSpan`, `startRecordSpans` in @sluice/runtime).
 */
export function uninstrumentedConsumer(kafka: Kafka): Kafka['consumer'] {
  const factory = kafka.consumer as Unwrappable<Kafka['consumer']>;
  return (factory.__original ?? factory).bind(kafka);
}
