export {
  compatibilityProblems,
  COMPATIBILITY_LEVELS,
  isCompatibilityLevel,
  parseAvro,
  readIncompatibilities,
  type AvroNode,
  type CompatibilityLevel,
  type VersionedSchema,
} from './avro-compatibility';
export { checkAgainstRegistry, checkHistories, type CheckResult } from './check';
export { generateTypes } from './codegen';
export { CONTRACT_ERROR_CODES, ContractError, DecodeError, type ContractErrorCode } from './errors';
export * from './generated/types';
export { isRetriable, provisionTopics, type ProvisionReport } from './provision';
export { CONTRACT_NAMES, latestSchema, schemaHistory, schemasDir, type ContractName, type SchemaVersion } from './schemas';
export { contractViolations, encodeWireFormat, readWireHeader, Serde, writeWireFormat, type Decoder, type Encoder } from './serde';
export { COMPACTED_TOPIC_CONFIGS, dlqTopicOf, TOPICS, topicCatalog, valueSubjectOf, type CatalogOptions, type TopicSpec } from './topics';
