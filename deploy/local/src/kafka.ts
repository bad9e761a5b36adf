import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Kafka, logLevel, type Admin } from 'kafkajs';
import { copyMavenDependencies, pomHash } from './maven';
import { repoRoot } from './paths';
import { waitFor } from './processes';

const run = promisify(execFile);

export const DEFAULT_KAFKA_VERSION = '4.1.1';

/**
 * Copies Apache Kafka's runtime classpath from Maven Central into the cache,
 * once per version and pom: later runs find the marker and skip Maven; a
 * changed pom (say a new tool) resolves again.
 */
export async function ensureKafkaJars(cacheDir: string, version: string): Promise<string> {
  const pom = join(repoRoot, 'deploy', 'local', 'kafka', 'pom.xml');
  const libs = join(cacheDir, 'kafka', version, 'libs');
  const marker = join(cacheDir, 'kafka', version, `.complete-${pomHash(pom)}`);
  await copyMavenDependencies({ pom, dir: libs, marker, what: `Apache Kafka ${version}`, args: [`-Dkafka.version=${version}`, '-DincludeScope=runtime'] });
  return libs;
}

/**
 * One KRaft node: a broker and controller in one process (`combined`), or only one of the two.
 * A node that is no broker has no broker port; one that is no controller has no controller port.
 */
export interface KafkaNode {
  nodeId: number;
  roles: 'combined' | 'broker' | 'controller';
  brokerPort: number;
  controllerPort: number;
  dataDir: string;
}

const ROLES = { combined: 'broker,controller', broker: 'broker', controller: 'controller' } as const;

/**
 * A node's settings. `voters` are the controllers (every node of a combined cluster);
 * `brokers` is how many brokers the cluster has, which sets the replication of its topics.
 */
export function serverProperties(node: KafkaNode, voters: KafkaNode[], brokers = voters.length): string {
  const replication = Math.min(3, brokers);
  const minIsr = Math.max(1, replication - 1);
  const listeners = [
    ...(node.roles === 'controller' ? [] : [`PLAINTEXT://127.0.0.1:${node.brokerPort}`]),
    ...(node.roles === 'broker' ? [] : [`CONTROLLER://127.0.0.1:${node.controllerPort}`]),
  ];
  const lines = {
    'process.roles': ROLES[node.roles],
    'node.id': node.nodeId,
    'controller.quorum.bootstrap.servers': voters.map((v) => `127.0.0.1:${v.controllerPort}`).join(','),
    listeners: listeners.join(','),
    ...(node.roles === 'controller'
      ? {}
      : { 'advertised.listeners': `PLAINTEXT://127.0.0.1:${node.brokerPort}`, 'inter.broker.listener.name': 'PLAINTEXT' }),
    'controller.listener.names': 'CONTROLLER',
    'listener.security.protocol.map': 'PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT',
    'log.dirs': join(node.dataDir, 'logs'),
    'num.partitions': 1,
    'default.replication.factor': replication,
    'min.insync.replicas': minIsr,
    'offsets.topic.replication.factor': replication,
    'offsets.topic.num.partitions': 10,
    'transaction.state.log.replication.factor': replication,
    'transaction.state.log.min.isr': minIsr,
    'transaction.state.log.num.partitions': 10,
    'share.coordinator.state.topic.replication.factor': replication,
    'share.coordinator.state.topic.min.isr': minIsr,
    'group.initial.rebalance.delay.ms': 0,
    'auto.create.topics.enable': false,
    // Short so that tests of zombies and failed members run in seconds, long enough for a loaded 2-core machine.
    'group.min.session.timeout.ms': 3000,
    'transaction.abort.timed.out.transaction.cleanup.interval.ms': 5000,
    'log.cleaner.backoff.ms': 5000,
  };
  return `${Object.entries(lines)
    .map(([k, v]) => `${k}=${v}`)
    .join('\n')}\n`;
}

/** `quick`: C1 only, for processes that live briefly or must start fast; `full`: the JVM's tiered compilation. */
export type KafkaJit = 'quick' | 'full';

export function javaArgs(libs: string, heapMb: number, extra: string[], logConfig = 'log4j2.yaml', jit: KafkaJit = 'quick'): string[] {
  return [
    `-Xms${Math.min(128, heapMb)}m`,
    `-Xmx${heapMb}m`,
    '-XX:+UseSerialGC',
    ...(jit === 'quick' ? ['-XX:TieredStopAtLevel=1'] : []),
    '-Djava.awt.headless=true',
    `-Dlog4j2.configurationFile=${join(repoRoot, 'deploy', 'local', 'kafka', logConfig)}`,
    '-cp',
    `${libs}/*`,
    ...extra,
  ];
}

/**
 * Runs one of Kafka's own command-line tools (a class of kafka-tools, such as
 * `org.apache.kafka.tools.TransactionsCommand`) against a running cluster; its output.
 */
export async function runKafkaTool(cacheDir: string, version: string, mainClass: string, args: string[]): Promise<string> {
  const libs = await ensureKafkaJars(cacheDir, version);
  try {
    const { stdout } = await run('java', javaArgs(libs, 256, [mainClass, ...args], 'tools-log4j2.yaml'), { maxBuffer: 16 * 1024 * 1024 });
    return stdout;
  } catch (err) {
    const { stdout, stderr } = err as { stdout?: string; stderr?: string };
    throw new Error(`${mainClass} ${args.join(' ')} failed:\n${stdout ?? ''}${stderr ?? ''}`, { cause: err });
  }
}

/** Writes a node's properties and formats its storage with Kafka's own storage tool. */
export async function formatNode(libs: string, node: KafkaNode, voters: KafkaNode[], clusterId: string, brokers = voters.length): Promise<string> {
  mkdirSync(node.dataDir, { recursive: true });
  const propertiesPath = join(node.dataDir, 'server.properties');
  writeFileSync(propertiesPath, serverProperties(node, voters, brokers));
  const voterFlags =
    node.roles === 'broker'
      ? []
      : voters.length === 1
        ? ['--standalone']
        : [`--initial-controllers=${voters.map((v) => `${v.nodeId}@127.0.0.1:${v.controllerPort}:${directoryId(clusterId, v.nodeId)}`).join(',')}`];
  try {
    await run('java', javaArgs(libs, 256, ['kafka.tools.StorageTool', 'format', `--cluster-id=${clusterId}`, `--config=${propertiesPath}`, ...voterFlags]));
  } catch (err) {
    const { stdout, stderr } = err as { stdout?: string; stderr?: string };
    throw new Error(`kafka-storage format failed for node ${node.nodeId}:\n${stdout ?? ''}${stderr ?? ''}`, { cause: err });
  }
  return propertiesPath;
}

/** A base64url Kafka Uuid derived from the cluster id and node id, so every node agrees on it. */
function directoryId(clusterId: string, nodeId: number): string {
  const bytes = Buffer.alloc(16);
  Buffer.from(`${clusterId}:${nodeId}`).copy(bytes);
  bytes.writeUInt8(nodeId + 1, 15);
  return bytes.toString('base64url');
}

/**
 * A Kafka cluster id: 16 random bytes, base64url, as the storage tool expects. Like Kafka's own
 * `Uuid.randomUuid()`, never one that starts with '-': command-line parsers read that as a flag.
 */
export function newClusterId(): string {
  for (;;) {
    const id = Buffer.from(randomUUID().replace(/-/g, ''), 'hex').toString('base64url');
    if (!id.startsWith('-')) return id;
  }
}

/** The stack's own client: one attempt per call, the caller's wait loop asks again. */
const stackKafka = (brokers: string[]) => new Kafka({ clientId: 'sluice-stack', brokers, logLevel: logLevel.NOTHING, connectionTimeout: 1000, retry: { retries: 0 } });

/** The brokers the cluster counts live (fenced ones are left out) and its controller, through a fresh admin connection. */
async function describeCluster(kafka: Kafka): Promise<Awaited<ReturnType<Admin['describeCluster']>>> {
  const admin = kafka.admin();
  try {
    await admin.connect();
    return await admin.describeCluster();
  } finally {
    await admin.disconnect();
  }
}

/**
 * Waits until the brokers at `others` no longer list the broker listening on `port` among the live ones: the
 * controller has fenced it (its session expired, or it shut down cleanly). A broker killed and started again before
 * that acts for about a second on the leaderships it still holds in the metadata: Apache Kafka 4.1 loads its
 * transaction log past the high watermark and completes transactions no other replica knows of, splitting their
 * outcome across partitions (docs/incidents/2026-11-30-split-transaction.md). Kafka's own system tests wait the
 * same way before starting a hard-killed broker again.
 */
export async function waitUntilFenced(others: string[], port: number, timeoutMs: number): Promise<void> {
  const kafka = stackKafka(others);
  await waitFor(
    `the controller to fence the broker on port ${port}`,
    async () => {
      const { brokers } = await describeCluster(kafka);
      if (brokers.some((b) => b.port === port)) throw new Error('still listed among the live brokers');
    },
    timeoutMs,
  );
}

/** Resolves once the cluster answers metadata requests with `expectedBrokers` brokers. */
export async function waitForKafka(brokers: string[], expectedBrokers: number, timeoutMs: number, alive?: () => boolean): Promise<void> {
  const kafka = stackKafka(brokers);
  await waitFor(
    `Kafka at ${brokers.join(',')}`,
    async () => {
      const cluster = await describeCluster(kafka);
      if (cluster.brokers.length < expectedBrokers || cluster.controller === null) {
        throw new Error(`${cluster.brokers.length} of ${expectedBrokers} brokers registered`);
      }
    },
    timeoutMs,
    alive,
  );
}
