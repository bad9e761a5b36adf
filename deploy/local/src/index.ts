export { stackPaths, repoRoot, type StackPaths } from './paths';
export { isAlive, sleep, waitFor } from './processes';
export { availableServices, serviceCatalog, type ServiceSpec } from './services';
export { currentState, down, kill, logs, optionsFromEnv, restart, startService, status, stop, up, type StackOptions } from './stack';
export { readState, type ProcessEntry, type StackState } from './state';
export { DEFAULT_KAFKA_VERSION, runKafkaTool } from './kafka';
