import { COMPACTED_TOPIC_CONFIGS, type TopicSpec } from '@sluice/contracts';

/** The compacted changelog of one state store of one application (stream runtime naming, as Kafka Streams names them). */
export const changelogTopicOf = (application: string, store: string): string => `${application}-${store}-changelog`;

/** The spec of a state store's changelog: compacted, partitioned like its input. */
export function changelogTopicSpec(application: string, store: string, partitions: number, replicationFactor = 1): TopicSpec {
  return { name: changelogTopicOf(application, store), partitions, replicationFactor, configs: { ...COMPACTED_TOPIC_CONFIGS } };
}
