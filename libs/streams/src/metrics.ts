import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

export interface StreamMetrics {
  recordsIn: Counter<'topic'>;
  recordsOut: Counter<'topic'>;
  deadLetters: Counter<'code'>;
  commitLatency: Histogram<never>;
  aborts: Counter<'reason'>;
  restoreDuration: Histogram<'store'>;
  consumerLag: Gauge<'topic' | 'partition'>;
  assignedPartitions: Gauge<never>;
  watermarkLag: Gauge<'topic' | 'partition'>;
  watermarkHeldBy: Gauge<'topic' | 'partition'>;
  idleSources: Gauge<'topic' | 'partition'>;
  retries: Counter<'reason'>;
  splitOutcomes: Counter<'topic'>;
  stalledSeconds: Gauge<'topic' | 'partition'>;
}

const byRegistry = new WeakMap<Registry, StreamMetrics>();

/** The stream metrics of a registry, created once: several processors in one service share them. */
export function streamMetrics(registry: Registry): StreamMetrics {
  const existing = byRegistry.get(registry);
  if (existing) return existing;
  const metrics: StreamMetrics = {
    recordsIn: new Counter({ name: 'stream_records_in_total', help: 'Input records processed and committed', labelNames: ['topic'], registers: [registry] }),
    recordsOut: new Counter({ name: 'stream_records_out_total', help: 'Records produced in committed transactions', labelNames: ['topic'], registers: [registry] }),
    deadLetters: new Counter({ name: 'stream_dead_letters_total', help: 'Records sent to a dead-letter topic, by error code', labelNames: ['code'], registers: [registry] }),
    commitLatency: new Histogram({
      name: 'stream_commit_latency_seconds',
      help: 'Time to send outputs, changelog and offsets and commit one transaction',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [registry],
    }),
    aborts: new Counter({ name: 'stream_transaction_aborts_total', help: 'Aborted transactions, by reason', labelNames: ['reason'], registers: [registry] }),
    restoreDuration: new Histogram({
      name: 'stream_restore_duration_seconds',
      help: 'Time to rebuild state stores from their changelogs after an assignment',
      labelNames: ['store'],
      buckets: [0.1, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers: [registry],
    }),
    consumerLag: new Gauge({ name: 'stream_consumer_lag', help: 'Records behind the end of each assigned input partition', labelNames: ['topic', 'partition'], registers: [registry] }),
    assignedPartitions: new Gauge({ name: 'stream_assigned_partitions', help: 'Input partitions this instance owns', registers: [registry] }),
    watermarkLag: new Gauge({
      name: 'stream_watermark_lag_ms',
      help: 'How far the event time of a merged (repartition) partition is held back behind its fastest source',
      labelNames: ['topic', 'partition'],
      registers: [registry],
    }),
    watermarkHeldBy: new Gauge({
      name: 'stream_watermark_held_by',
      help: 'The source partition holding the event time of a merged partition back (-1: none)',
      labelNames: ['topic', 'partition'],
      registers: [registry],
    }),
    retries: new Counter({
      name: 'stream_retries_total',
      help: 'Records or transactions tried again, by reason (transient, unknown, flush, reset, fenced)',
      labelNames: ['reason'],
      registers: [registry],
    }),
    stalledSeconds: new Gauge({
      name: 'stream_partition_stalled_seconds',
      help: 'How long an assigned partition has failed to commit while it has records to process (0: flowing)',
      labelNames: ['topic', 'partition'],
      registers: [registry],
    }),
    splitOutcomes: new Counter({
      name: 'stream_split_transactions_total',
      help: "Tasks that found their input offset committed ahead of their changelog's progress: a transaction whose outcome the brokers split (a broker fault, not the runtime's)",
      labelNames: ['topic'],
      registers: [registry],
    }),
    idleSources: new Gauge({ name: 'stream_watermark_idle_sources', help: 'Sources of a merged partition announced idle', labelNames: ['topic', 'partition'], registers: [registry] }),
  };
  // Counters of a closed set of reasons start at zero, so that a rate over them is 0, not "no data".
  for (const reason of ['begin', 'reset', 'fenced']) metrics.aborts.inc({ reason }, 0);
  for (const reason of ['transient', 'unknown', 'flush', 'reset', 'fenced']) metrics.retries.inc({ reason }, 0);
  byRegistry.set(registry, metrics);
  return metrics;
}
