import { provisionTopics } from '@sluice/contracts';
import type { Kafka } from 'kafkajs';
import { changelogTopicSpec } from './changelog';
import type { RepartitionTopic, StoreDefinition } from './types';

/**
 * Creates (or verifies) the changelog of every store and the repartition topics, sized like their input topics.
 * Returns the partition count of every input and internal topic involved.
 */
export async function ensureInternalTopics(
  kafka: Kafka,
  application: string,
  stores: StoreDefinition[],
  repartitions: RepartitionTopic[],
  replicationFactor: number,
): Promise<Map<string, number>> {
  const partitionCounts = new Map<string, number>();
  if (stores.length === 0 && repartitions.length === 0) return partitionCounts;
  const admin = kafka.admin();
  await admin.connect();
  try {
    // A repartition topic (which a store may follow) is sized like its input topic, and may not exist yet.
    const sizedLike = (topic: string) => repartitions.find((r) => r.name === topic)?.copartitionedWith ?? topic;
    const sources = [...new Set([...stores.map((s) => s.inputTopic), ...repartitions.map((r) => r.name)].map(sizedLike))];
    const metadata = await admin.fetchTopicMetadata({ topics: sources });
    const partitionsOf = (topic: string) => metadata.topics.find((t) => t.name === sizedLike(topic))?.partitions.length ?? 1;
    for (const topic of [...stores.map((s) => s.inputTopic), ...repartitions.map((r) => r.name), ...repartitions.map((r) => r.copartitionedWith)]) {
      partitionCounts.set(topic, partitionsOf(topic));
    }
    const specs = [
      ...stores.map((store) => changelogTopicSpec(application, store.name, partitionsOf(store.inputTopic), replicationFactor)),
      ...repartitions.map((topic) => ({
        name: topic.name,
        partitions: partitionsOf(topic.name),
        replicationFactor,
        configs: { 'cleanup.policy': 'delete', 'retention.ms': String(topic.retentionMs ?? 7 * 24 * 3_600_000) },
      })),
    ];
    const report = await provisionTopics(admin, specs);
    if (report.problems.length > 0) throw new Error(`internal topics: ${report.problems.join('; ')}`);
  } finally {
    await admin.disconnect();
  }
  return partitionCounts;
}
