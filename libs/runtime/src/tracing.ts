import { context, propagation, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Attributes, type Context, type Span, type TextMapGetter, type TextMapSetter } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { ExpressInstrumentation } from '@opentelemetry/instrumentation-express';
import { HttpInstrumentation } from '@opentelemetry/instrumentation-http';
import { KafkaJsInstrumentation } from '@opentelemetry/instrumentation-kafkajs';
import { PgInstrumentation } from '@opentelemetry/instrumentation-pg';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { NodeSDK } from '@opentelemetry/sdk-node';
import { AlwaysOffSampler, NoopSpanProcessor, ParentBasedSampler } from '@opentelemetry/sdk-trace-base';

export interface TracingOptions {
  service: string;
  /** OTLP/HTTP endpoint; without it spans are created and propagated but not exported. */
  otlpEndpoint?: string | undefined;
}

export interface Tracing {
  readonly exporting: boolean;
  shutdown(): Promise<void>;
}

let started: Tracing | undefined;
/** Whether the started SDK records spans (see spansRecorded). */
let recording = false;

/**
 * Starts the OpenTelemetry SDK once per process. It must run before express,
 * pg and kafkajs are loaded so that their instrumentation can patch them;
 * `tracing-register` does that from a service's first import.
 */
export function startTracing(options: TracingOptions): Tracing {
  if (started) return started;
  // Metrics go through prom-client and logs through pino; the SDK exports traces only,
  // and nothing at all without an endpoint (its default would retry localhost:4318 for seconds at shutdown).
  process.env.OTEL_METRICS_EXPORTER ??= 'none';
  process.env.OTEL_LOGS_EXPORTER ??= 'none';
  const traceExporter = options.otlpEndpoint
    ? new OTLPTraceExporter({ url: `${options.otlpEndpoint.replace(/\/$/, '')}/v1/traces` })
    : undefined;
  recording = traceExporter !== undefined || process.env.OTEL_TRACES_SAMPLER !== undefined;
  const sdk = new NodeSDK({
    resource: resourceFromAttributes({ 'service.name': options.service }),
    textMapPropagator: new W3CTraceContextPropagator(),
    // HTTP and kafkajs carry the trace context in and out. Express's and pg's instrumentation only make child
    // spans (a middleware, a query): without spans recorded they are left out, as what they allocate per request
    // (a non-recording span per middleware and per query) lived long enough to double the view-api's young-generation
    // pauses under load.
    instrumentations: [new HttpInstrumentation(), new KafkaJsInstrumentation(), ...(recording ? [new ExpressInstrumentation(), new PgInstrumentation()] : [])],
    // Without an exporter spans are still recorded, so trace ids reach logs and Kafka headers.
    // Without an exporter, spans would be recorded only to be dropped (a span per request and, in kafkajs's
    // instrumentation, per produced message: 15 % of the gateway's CPU at 1,000 events per request). They are
    // not recorded then, unless OTEL_TRACES_SAMPLER says otherwise; the trace context still travels.
    ...(traceExporter
      ? { traceExporter }
      : { spanProcessors: [new NoopSpanProcessor()], ...(process.env.OTEL_TRACES_SAMPLER ? {} : { sampler: new ParentBasedSampler({ root: new AlwaysOffSampler() }) }) }),
  });
  sdk.start();
  let shutdownOnce: Promise<void> | undefined;
  started = {
    exporting: traceExporter !== undefined,
    shutdown: () => (shutdownOnce ??= sdk.shutdown()),
  };
  return started;
}

/**
 * Whether this process records spans: it exports them, or OTEL_TRACES_SAMPLER asks for them. When not,
 * what creates spans only for the instrumentation's sake can be left out; the trace context still travels.
 */
export function spansRecorded(): boolean {
  return started !== undefined && recording;
}

/** Kafka message headers as kafkajs hands them over. */
export type KafkaHeaders = Record<string, Buffer | string | (Buffer | string)[] | undefined>;

const headerSetter: TextMapSetter<KafkaHeaders> = {
  set(carrier, key, value) {
    carrier[key] = value;
  },
};

const headerGetter: TextMapGetter<KafkaHeaders> = {
  keys: (carrier) => Object.keys(carrier),
  get(carrier, key) {
    const value = carrier[key];
    if (value === undefined) return undefined;
    const first = Array.isArray(value) ? value[0] : value;
    return first === undefined ? undefined : first.toString();
  },
};

/** Writes the W3C trace context of `ctx` (default: the active one) into Kafka headers. */
export function injectTraceHeaders(headers: KafkaHeaders, ctx: Context = context.active()): KafkaHeaders {
  propagation.inject(ctx, headers, headerSetter);
  return headers;
}

/** Reads a W3C trace context from Kafka headers, to continue the trace of the record. */
export function extractTraceContext(headers: KafkaHeaders | undefined, parent: Context = context.active()): Context {
  return headers ? propagation.extract(parent, headers, headerGetter) : parent;
}

const recordTracer = () => trace.getTracer('sluice');

/** The messaging attributes of a record's span. */
export function recordAttributes(topic: string, partition: number, offset: string): Attributes {
  return { 'messaging.system': 'kafka', 'messaging.destination.name': topic, 'messaging.destination.partition.id': String(partition), 'messaging.kafka.offset': offset };
}

function failSpan(span: Span, err: unknown): void {
  span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.message : String(err) });
}

/**
 * Runs `fn` as the processing of one Kafka record: with spans recorded, inside a CONSUMER span named
 * `name` whose parent is the span that produced the record (its W3C headers), so that a trace goes on
 * from hop to hop; otherwise in the record's context alone, with no span made (and `attributes` not
 * called: this is every record's path). An error ends the span with its status and goes on to the caller.
 */
export async function withRecordSpan<T>(name: string, headers: KafkaHeaders | undefined, attributes: () => Attributes, fn: () => Promise<T>): Promise<T> {
  const parent = extractTraceContext(headers, ROOT_CONTEXT);
  if (!spansRecorded()) return await context.with(parent, fn);
  const span = recordTracer().startSpan(name, { kind: SpanKind.CONSUMER, attributes: attributes() }, parent);
  try {
    return await context.with(trace.setSpan(parent, span), fn);
  } catch (err) {
    span.recordException(err instanceof Error ? err : String(err));
    failSpan(span, err);
    throw err;
  } finally {
    span.end();
  }
}

/**
 * CONSUMER spans for records handled together (one database transaction for a batch), each the child
 * of the span that produced its record; all end when `end` is called. With spans not recorded, none
 * is made, `describe` is not called, and `end` does nothing.
 */
export function startRecordSpans<R>(name: string, records: readonly R[], describe: (record: R) => { headers: KafkaHeaders | undefined; attributes: Attributes }): { end(error?: unknown): void } {
  if (!spansRecorded()) return { end: () => undefined };
  const spans: Span[] = records.map((record) => {
    const { headers, attributes } = describe(record);
    return recordTracer().startSpan(name, { kind: SpanKind.CONSUMER, attributes }, extractTraceContext(headers, ROOT_CONTEXT));
  });
  return {
    end(error) {
      for (const span of spans) {
        if (error !== undefined) failSpan(span, error);
        span.end();
      }
    },
  };
}
