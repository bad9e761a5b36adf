import type { Logger } from '@sluice/runtime';
import type { Admin, Kafka } from 'kafkajs';
import { Counter, Gauge, type Registry } from 'prom-client';

export interface PartitionLag {
  group: string;
  topic: string;
  partition: number;
  /** The group's committed offset, or null when it has committed none for the partition. */
  committed: string | null;
  /** The partition's end, as a read_committed reader sees it (the last stable offset). */
  end: string;
  lag: number;
}

export interface GroupLagOptions {
  kafka: Kafka;
  /** Consumer groups to watch. */
  groups: readonly string[];
  registry: Registry;
  logger: Logger;
  /** @default 10000 */
  intervalMs?: number;
}

/**
 * Consumer lag of other processes' groups, from Kafka alone (committed offsets against the ends of
 * their partitions), refreshed on an interval. A consumer reports its own lag too, but one that is
 * stopped, hung or dead reports nothing: this view still sees its lag grow.
 */
export class GroupLagMonitor {
  private readonly lagGauge: Gauge<'group' | 'topic' | 'partition'>;
  private readonly refreshed: Gauge;
  private readonly failures: Counter<'group'>;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private latest: PartitionLag[] = [];

  constructor(private readonly options: GroupLagOptions) {
    const registers = [options.registry];
    this.lagGauge = new Gauge({ name: 'kafka_consumergroup_lag', help: 'Records between a group’s committed offset and the end of the partition, read from Kafka', labelNames: ['group', 'topic', 'partition'], registers });
    this.refreshed = new Gauge({ name: 'kafka_consumergroup_lag_refreshed_seconds', help: 'Unix time of the last complete read of the watched groups’ lag', registers });
    this.failures = new Counter({ name: 'kafka_consumergroup_lag_failures_total', help: 'Reads of a group’s lag that failed (logged; tried again at the next interval)', labelNames: ['group'], registers });
    for (const group of options.groups) this.failures.inc({ group }, 0);
  }

  /** The lag of every partition the watched groups have committed on, as last read. */
  snapshot(): readonly PartitionLag[] {
    return this.latest;
  }

  start(): void {
    const interval = this.options.intervalMs ?? 10_000;
    const tick = () => {
      this.running ??= this.refresh().finally(() => (this.running = undefined));
    };
    tick();
    this.timer = setInterval(tick, interval);
    this.timer.unref();
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }

  /** Reads every watched group once; a group that cannot be read keeps its last figures and is counted and logged. */
  async refresh(): Promise<void> {
    const admin = this.options.kafka.admin();
    await admin.connect();
    try {
      const read: PartitionLag[] = [];
      const kept = new Set<string>();
      // A topic's ends are read once per refresh, however many of the groups consume it.
      const ends = new Map<string, Promise<Map<number, { low: string; high: string }>>>();
      const endsOf = (topic: string) => {
        let found = ends.get(topic);
        if (!found) {
          found = admin.fetchTopicOffsets(topic).then((offsets) => new Map(offsets.map((o) => [o.partition, o])));
          ends.set(topic, found);
        }
        return found;
      };
      for (const group of this.options.groups) {
        try {
          read.push(...(await this.groupLag(admin, group, endsOf)));
        } catch (err) {
          this.failures.inc({ group });
          this.options.logger.warn({ err, group }, 'could not read the consumer group’s lag; trying again at the next interval');
          kept.add(group);
        }
      }
      const previous = this.latest.filter((l) => kept.has(l.group));
      this.latest = [...read, ...previous];
      this.lagGauge.reset();
      for (const l of this.latest) this.lagGauge.set({ group: l.group, topic: l.topic, partition: String(l.partition) }, l.lag);
      if (kept.size === 0) this.refreshed.set(Date.now() / 1000);
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
  }

  private async groupLag(admin: Admin, group: string, endsOf: (topic: string) => Promise<Map<number, { low: string; high: string }>>): Promise<PartitionLag[]> {
    const committed = await admin.fetchOffsets({ groupId: group });
    const out: PartitionLag[] = [];
    for (const { topic, partitions } of committed) {
      if (partitions.every((p) => p.offset === '-1')) continue;
      const ends = await endsOf(topic);
      for (const { partition, offset } of partitions) {
        const end = ends.get(partition);
        if (!end) continue;
        const from = offset === '-1' ? BigInt(end.low) : BigInt(offset);
        const lag = BigInt(end.high) - from;
        out.push({ group, topic, partition, committed: offset === '-1' ? null : offset, end: end.high, lag: Number(lag > 0n ? lag : 0n) });
      }
    }
    return out;
  }
}
