export { stackPaths, repoRoot, type StackPaths } from './paths';
export { isAlive, sleep, waitFor } from './processes';
export { archiveDir, availableServices, nodeOptionsOf, serviceCatalog, type ServiceSpec } from './services';
export { currentState, down, intFrom, kill, logs, optionsFromEnv, restart, startPrometheus, startS3Proxy, startService, status, stop, up, type StackOptions } from './stack';
export { ALERT_RULES, prometheusBinary, scrapeTargetsFile, type PrometheusOptions } from './prometheus';
export { readState, type ProcessEntry, type StackState } from './state';
export { DEFAULT_KAFKA_VERSION, ensureKafkaJars, runKafkaTool } from './kafka';
export { LOCAL_S3, s3ClientEnv } from './s3proxy';
