import { spansRecorded } from '@sluice/runtime';
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
 * The kafkajs consumer factory, instrumented only while spans are recorded. The
 * instrumentation starts a consumer span for every record, recorded or not (7 %
 * of the enricher's CPU when none is, measured with `--cpu-prof`); the stream
 * processor continues each record's trace from its headers itself, so without
 * recording nothing is lost by leaving it out.
 */
export function tracedConsumer(kafka: Kafka): Kafka['consumer'] {
  const factory = kafka.consumer as Unwrappable<Kafka['consumer']>;
  return (spansRecorded() ? factory : (factory.__original ?? factory)).bind(kafka);
}
