// Imported first by a service's main so the SDK patches express, pg and kafkajs before they load.
import { startTracing } from './tracing';

startTracing({
  service: process.env.OTEL_SERVICE_NAME ?? process.env.SLUICE_SERVICE_NAME ?? 'sluice',
  otlpEndpoint: process.env.OTEL_EXPORTER_OTLP_ENDPOINT || undefined,
});
