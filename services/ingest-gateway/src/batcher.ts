import { Partitioners, type IHeaders, type Kafka, type Producer } from 'kafkajs';
import type { Logger } from '@sluice/runtime';
import type { GatewayMetrics } from './metrics';

export interface OutgoingMessage {
  key: string;
  /** null: a tombstone. */
  value: Buffer | null;
  headers: IHeaders;
}

export interface Ack {
  partition: number;
  offset: string;
}

/** Stable failure codes of producing; each becomes a 503 with Retry-After. */
export class ProduceError extends Error {
  constructor(
    readonly code: 'OVERLOADED' | 'KAFKA_UNAVAILABLE' | 'KAFKA_ACK_TIMEOUT' | 'SHUTTING_DOWN',
    message: string,
  ) {
    super(message);
    this.name = 'ProduceError';
  }
}

/** The one idempotent producer of the gateway; replaced after a failed send so that its sequence numbers start clean. */
export class ProducerHolder {
  private current: Promise<Producer> | undefined;

  constructor(
    private readonly kafka: Kafka,
    private readonly retry: { retries: number; maxRetryTime: number },
  ) {}

  get(): Promise<Producer> {
    this.current ??= (async () => {
      const producer = this.kafka.producer({
        idempotent: true,
        maxInFlightRequests: 5,
        allowAutoTopicCreation: false,
        createPartitioner: Partitioners.DefaultPartitioner,
        retry: { retries: this.retry.retries, initialRetryTime: 100, maxRetryTime: this.retry.maxRetryTime },
      });
      await producer.connect();
      return producer;
    })().catch((err: unknown) => {
      this.current = undefined;
      throw err;
    });
    return this.current;
  }

  async reset(failed: Promise<Producer>): Promise<void> {
    if (this.current !== failed) return;
    this.current = undefined;
    await failed.then((p) => p.disconnect()).catch(() => undefined);
  }

  async close(): Promise<void> {
    const current = this.current;
    this.current = undefined;
    await current?.then((p) => p.disconnect()).catch(() => undefined);
  }
}

interface Pending {
  messages: (OutgoingMessage & { partition: number })[];
  bytes: number;
  resolve: (acks: Ack[]) => void;
  reject: (err: unknown) => void;
}

export interface BatcherOptions {
  topic: string;
  producer: ProducerHolder;
  /** Current partition count of the topic. */
  partitions: () => number;
  /**
   * 0: a batch goes out as soon as no other is in flight (requests that arrive meanwhile join the next one, so
   * batches grow with the load and an idle gateway adds no delay); more: every batch waits this long for company.
   */
  lingerMs: number;
  maxBatchEvents: number;
  maxInflightEvents: number;
  maxInflightBytes: number;
  metrics: GatewayMetrics;
  logger: Logger;
}

const partitioner = Partitioners.DefaultPartitioner();
const metadataByCount = new Map<number, { partitionId: number; leader: number; replicas: number[]; isr: number[]; offlineReplicas: number[]; partitionErrorCode: number }[]>();

/** The partition Java clients and kafkajs both choose for a key (murmur2). */
export function partitionFor(topic: string, key: string, partitions: number): number {
  let partitionMetadata = metadataByCount.get(partitions);
  if (!partitionMetadata) {
    partitionMetadata = Array.from({ length: partitions }, (_, partitionId) => ({ partitionId, leader: 0, replicas: [0], isr: [0], offlineReplicas: [], partitionErrorCode: 0 }));
    metadataByCount.set(partitions, partitionMetadata);
  }
  return partitioner({ topic, partitionMetadata, message: { key, value: null } });
}

/**
 * Coalesces concurrent requests into producer batches (linger, batch size)
 * and bounds what is in flight: a request that would pass the bounds is
 * refused at once instead of queued, so memory stays bounded whatever
 * clients do. Each message's partition is chosen here, so the offset of every
 * event can be told from its partition batch's base offset.
 */
export class ProduceBatcher {
  private queue: Pending[] = [];
  private queuedEvents = 0;
  private inflightEvents = 0;
  private inflightBytes = 0;
  private timer: NodeJS.Timeout | undefined;
  private immediate: NodeJS.Immediate | undefined;
  private readonly sending = new Set<Promise<void>>();
  private closed = false;

  constructor(private readonly options: BatcherOptions) {}

  get inFlight(): { events: number; bytes: number } {
    return { events: this.inflightEvents, bytes: this.inflightBytes };
  }

  submit(messages: OutgoingMessage[]): Promise<Ack[]> {
    if (this.closed) return Promise.reject(new ProduceError('SHUTTING_DOWN', 'the gateway is shutting down'));
    const bytes = messages.reduce((n, m) => n + (m.value?.length ?? 0) + m.key.length, 0);
    if (this.inflightEvents + messages.length > this.options.maxInflightEvents || this.inflightBytes + bytes > this.options.maxInflightBytes) {
      return Promise.reject(new ProduceError('OVERLOADED', 'too many events are waiting for Kafka; try again shortly'));
    }
    this.inflightEvents += messages.length;
    this.inflightBytes += bytes;
    this.options.metrics.inflightEvents.set(this.inflightEvents);
    const partitions = this.options.partitions();
    const placed = messages.map((m) => ({ ...m, partition: partitionFor(this.options.topic, m.key, partitions) }));
    return new Promise<Ack[]>((resolve, reject) => {
      this.queue.push({ messages: placed, bytes, resolve, reject });
      this.queuedEvents += placed.length;
      if (this.queuedEvents >= this.options.maxBatchEvents) this.flush();
      else if (this.options.lingerMs > 0) this.timer ??= setTimeout(() => this.flush(), this.options.lingerMs);
      // Requests that arrived in the same turn of the event loop go together; while a batch is in flight, the
      // queue waits for it to be acknowledged (see flush).
      else if (this.sending.size === 0) this.immediate ??= setImmediate(() => this.flush());
    });
  }

  private flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    clearImmediate(this.immediate);
    this.immediate = undefined;
    while (this.queue.length > 0) {
      const batch: Pending[] = [];
      let events = 0;
      while (this.queue.length > 0 && (events === 0 || events + this.queue[0]!.messages.length <= this.options.maxBatchEvents)) {
        const next = this.queue.shift()!;
        batch.push(next);
        events += next.messages.length;
      }
      this.queuedEvents -= events;
      const sending = this.send(batch, events).finally(() => {
        this.sending.delete(sending);
        if (this.options.lingerMs === 0 && this.sending.size === 0 && this.queue.length > 0) this.flush();
      });
      this.sending.add(sending);
    }
  }

  private async send(batch: Pending[], events: number): Promise<void> {
    const started = process.hrtime.bigint();
    const producerPromise = this.options.producer.get();
    try {
      const producer = await producerPromise;
      // The placed messages are what kafkajs takes (key, value, headers, partition): no copy of each.
      const metadata = await producer.send({ topic: this.options.topic, acks: -1, messages: batch.flatMap((p) => p.messages) });
      const next = new Map<number, bigint>(metadata.map((r) => [r.partition, BigInt(r.baseOffset ?? '0')]));
      for (const pending of batch) {
        pending.resolve(
          pending.messages.map((m) => {
            const offset = next.get(m.partition) ?? 0n;
            next.set(m.partition, offset + 1n);
            return { partition: m.partition, offset: offset.toString() };
          }),
        );
      }
      this.options.metrics.batchSize.observe(events);
      this.options.metrics.produceLatency.observe(Number(process.hrtime.bigint() - started) / 1e9);
    } catch (err) {
      this.options.logger.warn({ err, events }, 'Kafka did not acknowledge a batch');
      await this.options.producer.reset(producerPromise);
      for (const pending of batch) pending.reject(new ProduceError('KAFKA_UNAVAILABLE', 'Kafka did not acknowledge the events; try again shortly'));
    } finally {
      for (const pending of batch) {
        this.inflightEvents -= pending.messages.length;
        this.inflightBytes -= pending.bytes;
      }
      this.options.metrics.inflightEvents.set(this.inflightEvents);
    }
  }

  /** Refuses new work, sends what is queued and waits for every acknowledgement. */
  async close(): Promise<void> {
    this.closed = true;
    this.flush();
    await Promise.allSettled([...this.sending]);
  }
}
