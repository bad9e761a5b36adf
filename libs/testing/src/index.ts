export * from './helpers';
export { startKafkaCluster, type KafkaCluster, type TestStack } from './cluster';
export { checkStageEffects, type StageEffectsReport } from './effects';
export { ADMIN_TOKEN, eventually, startPipeline, type Pipeline } from './pipeline';
