import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from './paths';
import { s3ClientEnv } from './s3proxy';
import type { StackPaths } from './paths';
import type { StackState } from './state';

/** A Sluice service the stack can run: its compiled entry point, port, and the variables that point it at the stack. */
export interface ServiceSpec {
  name: string;
  port: number;
  /** Needed by the tests of every other part (the registry), not only by the pipeline. */
  infra: boolean;
  script: string;
  /**
   * Node.js options of the service, before any the caller gives (NODE_OPTIONS of the environment, or of a
   * test's overrides): a later V8 flag wins, so a caller can still change them.
   */
  nodeOptions: string[];
  env(state: StackState, paths: StackPaths): Record<string, string>;
}

/**
 * The services that answer HTTP requests run with V8's young generation at 2 × 8 MB and an old generation of
 * at most 256 MB. Left to V8, both follow the memory the process sees (2 × 64 MB young on a 24 GiB machine, an
 * old generation allowed to grow to several times what is live): pinned, the gateway's and the view-api's
 * resident memory under load stays near 130 MB wherever they run, at a cost in the gateway's peak ingest
 * (README, "Memory"). Compose and the Kubernetes manifests set the same.
 */
export const REQUEST_SERVING_NODE_OPTIONS = ['--max-semi-space-size=8', '--max-old-space-size=256'];

/** NODE_OPTIONS made of `first`, then `then` (a later V8 flag wins). */
export function nodeOptionsOf(first: string[], then: string | undefined): string {
  return [...first, ...(then ? [then] : [])].join(' ');
}

const common = (state: StackState): Record<string, string> => ({
  KAFKA_BROKERS: state.kafkaBrokers.join(','),
  DATABASE_URL: state.databaseUrl,
  SCHEMA_REGISTRY_URL: state.schemaRegistryUrl,
  // Changelog and repartition topics replicated like the catalog's topics, so that losing a broker loses no state.
  STREAM_REPLICATION_FACTOR: String(Math.min(3, state.kafkaBrokers.length)),
});

function service(
  name: string,
  port: number,
  infra: boolean,
  extraEnv: (state: StackState, paths: StackPaths) => Record<string, string> = () => ({}),
  nodeOptions: string[] = [],
): ServiceSpec {
  return {
    name,
    port,
    infra,
    script: join(repoRoot, 'services', name, 'dist', 'main.js'),
    nodeOptions,
    // The service's name on its traces (the images set it too).
    env: (state, paths) => ({ ...common(state), HTTP_PORT: String(port), SLUICE_SERVICE_NAME: name, ...extraEnv(state, paths) }),
  };
}

/** Every service in start order; the stack runs those that have been built. */
export const serviceCatalog: ServiceSpec[] = [
  service('schema-registry', 8081, true),
  service('ingest-gateway', 8080, false, undefined, REQUEST_SERVING_NODE_OPTIONS),
  service('enricher', 8091, false),
  service('aggregator', 8092, false),
  service('view-api', 8082, false, undefined, REQUEST_SERVING_NODE_OPTIONS),
  service('dlq-replayer', 8083, false, () => ({ DLQ_ADMIN_TOKEN: process.env.DLQ_ADMIN_TOKEN ?? 'local-admin-token' })),
  // Rolls every 10 s locally, so the demo's archive can be queried at once; the service's default is a minute.
  service('archiver', 8094, false, (state, paths) => ({
    // With the stack's S3Proxy (up --s3) the archive is its bucket; otherwise a directory of the stack.
    ...(state.processes.s3proxy ? s3ClientEnv(state.processes.s3proxy.port) : { ARCHIVE_URL: process.env.ARCHIVE_URL ?? archiveDir(paths) }),
    ARCHIVE_ROLL_INTERVAL_MS: process.env.ARCHIVE_ROLL_INTERVAL_MS ?? '10000',
  })),
];

/** The local stack's archive: it belongs to the stack's Kafka (its file names are that Kafka's offsets), so `up` starts it afresh too. */
export function archiveDir(paths: StackPaths): string {
  return join(paths.stateDir, 'archive');
}

export function availableServices(): ServiceSpec[] {
  return serviceCatalog.filter((s) => existsSync(s.script));
}

export { service as defineService };
