import { join } from 'node:path';
import {
  down,
  intFrom,
  kill,
  optionsFromEnv,
  readState,
  restart,
  stackPaths,
  up,
  type StackPaths,
  type StackState,
} from '@sluice/local-stack';
import { Kafka, logLevel } from 'kafkajs';

/** A stack other than the default one: where its state file lives, and the state services are started with. */
export interface TestStack {
  paths: StackPaths;
  /** The state services started on this stack take their Kafka, Postgres and registry from. */
  state(): StackState;
}

/** A multi-broker Kafka cluster of its own, started through the stack runner beside the default stack. */
export interface KafkaCluster {
  brokers: string[];
  /** Services started on it (`startTestService(..., { stack })`) use its brokers, and the default stack's Postgres and registry. */
  stack: TestStack;
  kafka(clientId?: string): Kafka;
  /** The stack runner's name of node `nodeId` (1-based). */
  processName(nodeId: number): string;
  /** kill -9 of one broker. */
  kill(nodeId: number): Promise<void>;
  /**
   * Starts a killed broker again, once the other brokers no longer count it live (the controller fenced it), and
   * waits until the cluster has every broker back. Returns when (epoch ms) the new process was launched.
   */
  restart(nodeId: number): Promise<number>;
  /**
   * Stops every broker and removes the cluster's data. Safe to call twice. With SLUICE_KEEP_CLUSTER_AT set
   * (`pnpm repeat` sets it), the data and the brokers' logs are copied there first, for a failed run's evidence.
   */
  close(): Promise<void>;
}

/**
 * Starts a Kafka cluster of `nodes` brokers (KRaft, replication factor 3 and min.insync.replicas 2 for three
 * brokers) with its own state folder under the default stack's, the pipeline's topics provisioned. Its first
 * broker listens on SLUICE_TEST_CLUSTER_PORT (19092), the others two ports apart.
 *
 * `controllers`: KRaft controllers of their own beside the brokers, as a production cluster runs them
 * (default SLUICE_TEST_CLUSTER_CONTROLLERS, else 1); 0 makes every broker a controller too (combined nodes), where
 * killing a broker may kill the active controller: see docs/incidents/2026-11-30-split-transaction.md.
 */
export async function startKafkaCluster(options: { nodes?: number; controllers?: number; port?: number; heapMb?: number } = {}): Promise<KafkaCluster> {
  const main = readState(stackPaths());
  if (!main || main.status !== 'up') throw new Error('the local stack is not up: a cluster borrows its Postgres and registry');
  const defaults = stackPaths();
  const paths = stackPaths({ ...process.env, SLUICE_STATE_DIR: join(defaults.stateDir, 'cluster'), SLUICE_CACHE_DIR: defaults.cacheDir });
  const nodes = options.nodes ?? 3;
  // Checked as the stack runner checks its own variables; one controller unless told otherwise.
  const controllers = options.controllers ?? intFrom(process.env.SLUICE_TEST_CLUSTER_CONTROLLERS, 1, 'SLUICE_TEST_CLUSTER_CONTROLLERS', 0);
  const stackOptions = { ...optionsFromEnv(), kafkaPort: options.port ?? intFrom(process.env.SLUICE_TEST_CLUSTER_PORT, 19092, 'SLUICE_TEST_CLUSTER_PORT'), kafkaNodes: nodes, kafkaControllers: controllers, kafkaHeapMb: options.heapMb ?? 384, only: 'kafka' as const, observability: false };
  const log: string[] = [];
  await up(stackOptions, (line) => log.push(line), paths);
  const clusterState = (): StackState => {
    const state = readState(paths);
    if (!state) throw new Error('the cluster is not running');
    return { ...state, databaseUrl: main.databaseUrl, schemaRegistryUrl: main.schemaRegistryUrl };
  };
  const brokers = clusterState().kafkaBrokers;
  const processName = (nodeId: number) => (nodes === 1 && controllers === 0 ? 'kafka' : `kafka-${nodeId}`);
  let closed: Promise<void> | undefined;
  return {
    brokers,
    stack: { paths, state: clusterState },
    kafka: (clientId = 'sluice-test-cluster') => new Kafka({ clientId, brokers, logLevel: logLevel.NOTHING }),
    processName,
    kill: async (nodeId) => {
      await kill(processName(nodeId), paths);
    },
    restart: async (nodeId) => Date.parse((await restart(processName(nodeId), paths)).startedAt),
    close: () => (closed ??= down(() => undefined, paths, process.env.SLUICE_KEEP_CLUSTER_AT ? { keepDataAt: process.env.SLUICE_KEEP_CLUSTER_AT } : {})),
  };
}
