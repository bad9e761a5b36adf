export * from './helpers';
export { startKafkaCluster, type KafkaCluster, type TestStack } from './cluster';
export { changelogKey, checkStageEffects, eventIdOf, openTransactions, withoutWatermarks, type StageEffectsReport } from './effects';
export { ADMIN_TOKEN, cleanStageReport, eventually, startPipeline, type Pipeline } from './pipeline';
export { scaledAlertRules, startTestPrometheus, type PromAlert, type PromSeries, type TestPrometheus } from './prometheus';
export { startOtlpReceiver, type OtlpReceiver, type ReceivedSpan } from './otlp';
export { API_KEYS, startFaultyNetwork, type Fault, type FaultyNetwork } from './faulty-network';
export { assertSameAcceptance, openApiChecker, openApiValidators, type OpenApiChecker, type OpenApiValidators } from './openapi';
