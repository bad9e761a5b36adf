import { DecodeError, type Decoder, type WindowAggregate } from '@sluice/contracts';
import type { Logger } from '@sluice/runtime';
import { PostgresSink } from '@sluice/streams';
import type { Kafka } from 'kafkajs';
import type { Pool } from 'pg';
import { Counter, Histogram, type Registry } from 'prom-client';
import type { Change, Positioned, ViewStore } from './store';

export interface ProjectionOptions {
  kafka: Kafka;
  topic: string;
  group: string;
  pool: Pool;
  store: ViewStore;
  decoder: Decoder<WindowAggregate>;
  logger: Logger;
  metrics: Registry;
  retryMaxMs: number;
  sessionTimeoutMs: number;
}

/**
 * The aggregates topic into the window table, through the shared exactly-once
 * Postgres sink. Records that do not decode, and records Postgres refuses, go
 * to `<topic>.dlq` before the transaction that moves the offset past them
 * commits (at least once: the dead-letter index keeps one entry per original
 * record and stage).
 */
export class Projection {
  private readonly sink: PostgresSink<Change[]>;

  constructor(private readonly options: ProjectionOptions) {
    const applied = new Counter({ name: 'view_projected_rows_total', help: 'Window rows written to Postgres', registers: [options.metrics] });
    const latency = new Histogram({
      name: 'view_event_latency_seconds',
      help: 'From the last event of a window (event time) to its change being committed in Postgres',
      buckets: [0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600],
      registers: [options.metrics],
    });
    this.sink = new PostgresSink<Change[]>({
      kafka: options.kafka,
      topics: [options.topic],
      group: options.group,
      spanName: 'project',
      pool: options.pool,
      offsetsTable: 'projection_offsets',
      logger: options.logger,
      sessionTimeoutMs: options.sessionTimeoutMs,
      retryMaxMs: options.retryMaxMs,
      stage: options.group,
      metrics: options.metrics,
      combine: (results) => results.flat(),
      apply: async (client, { partition, messages, deadLetter }) => {
        const records: Positioned[] = [];
        for (const message of messages) {
          if (message.value === null) continue;
          try {
            records.push({ record: await options.decoder.decode(message.value), partition, offset: message.offset });
          } catch (err) {
            if (!(err instanceof DecodeError) || err.canRetry) throw err;
            deadLetter(message, err.code, err.message);
          }
        }
        return options.store.apply(client, partition, records);
      },
      committed: (changes) => {
        applied.inc(changes.length);
        const now = Date.now();
        for (const change of changes) latency.observe(Math.max(0, now - Date.parse(change.window.lastEventAt)) / 1000);
      },
    });
  }

  get healthy(): boolean {
    return this.sink.healthy;
  }

  async start(): Promise<void> {
    await this.sink.start();
  }

  close(): Promise<void> {
    return this.sink.close();
  }
}
