import { ConfigResourceTypes, type Admin } from 'kafkajs';
import type { TopicSpec } from './topics';

export interface ProvisionReport {
  created: string[];
  /** Topics whose configs differed and were set to the catalog's values. */
  updated: string[];
  unchanged: string[];
  /** What provisioning will not change by itself (fewer partitions than the catalog says). */
  problems: string[];
}

/**
 * Creates missing topics and brings the configs of existing ones to the
 * catalog's values. Safe to run any number of times and from several places at
 * once. It never changes a topic's partition count: adding partitions moves
 * keys to other partitions, which breaks compacted topics and ordering.
 */
export async function provisionTopics(admin: Admin, specs: TopicSpec[]): Promise<ProvisionReport> {
  const report: ProvisionReport = { created: [], updated: [], unchanged: [], problems: [] };
  const existing = new Set(await admin.listTopics());
  const missing = specs.filter((s) => !existing.has(s.name));
  if (missing.length > 0) {
    try {
      await admin.createTopics({
        // kafkajs' own wait gives up when a broker does not know a new topic yet (a cluster spreads metadata over time).
        waitForLeaders: false,
        topics: missing.map((s) => ({
          topic: s.name,
          numPartitions: s.partitions,
          replicationFactor: s.replicationFactor,
          configEntries: Object.entries(s.configs).map(([name, value]) => ({ name, value })),
        })),
      });
    } catch (err) {
      // Another instance may have created some of them at the same moment: what counts is that they exist now.
      if (!alreadyExists(err)) throw err;
    }
    await waitForLeaders(admin, missing);
    report.created.push(...missing.map((s) => s.name));
  }
  const present = specs.filter((s) => existing.has(s.name));
  if (present.length === 0) return report;

  const metadata = await admin.fetchTopicMetadata({ topics: present.map((s) => s.name) });
  const described = await admin.describeConfigs({
    includeSynonyms: false,
    resources: present.map((s) => ({ type: ConfigResourceTypes.TOPIC, name: s.name, configNames: Object.keys(s.configs) })),
  });
  for (const spec of present) {
    const partitions = metadata.topics.find((t) => t.name === spec.name)?.partitions.length ?? 0;
    if (partitions < spec.partitions) {
      report.problems.push(`${spec.name} has ${partitions} partitions, the catalog says ${spec.partitions}; change it by hand if you mean to`);
    }
    const current = described.resources.find((r) => r.resourceName === spec.name)?.configEntries ?? [];
    const differs = Object.entries(spec.configs).some(([name, value]) => current.find((c) => c.configName === name)?.configValue !== value);
    if (!differs) {
      report.unchanged.push(spec.name);
      continue;
    }
    await admin.alterConfigs({
      validateOnly: false,
      resources: [
        { type: ConfigResourceTypes.TOPIC, name: spec.name, configEntries: Object.entries(spec.configs).map(([name, value]) => ({ name, value })) },
      ],
    });
    report.updated.push(spec.name);
  }
  return report;
}

/** Waits until every partition of `specs` has a leader; a broker that does not know a topic yet is asked again. */
async function waitForLeaders(admin: Admin, specs: TopicSpec[], timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let waitingFor = '';
  while (Date.now() < deadline) {
    try {
      const { topics } = await admin.fetchTopicMetadata({ topics: specs.map((s) => s.name) });
      const leaderless = specs.filter((spec) => {
        const partitions = topics.find((t) => t.name === spec.name)?.partitions ?? [];
        return partitions.length < spec.partitions || partitions.some((p) => p.leader < 0);
      });
      if (leaderless.length === 0) return;
      waitingFor = leaderless.map((s) => s.name).join(', ');
    } catch (err) {
      if (!isRetriable(err)) throw err;
      waitingFor = String(err);
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`topics created but without leaders after ${timeoutMs} ms: ${waitingFor}`);
}

/** kafkajs marks protocol errors a client may retry (unknown topic or partition, leader not available, …). */
export function isRetriable(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { retriable?: unknown }).retriable === true;
}

/** TOPIC_ALREADY_EXISTS, by its protocol type: alone, as every error of kafkajs' aggregate, or as the cause of a retry that gave up. */
function alreadyExists(err: unknown): boolean {
  const e = err as { type?: unknown; errors?: unknown; cause?: unknown } | undefined;
  if (e?.type === 'TOPIC_ALREADY_EXISTS') return true;
  if (Array.isArray(e?.errors) && e.errors.length > 0) return e.errors.every(alreadyExists);
  return e?.cause !== undefined && e.cause !== err && alreadyExists(e.cause);
}
