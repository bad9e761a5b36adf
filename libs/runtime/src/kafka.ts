import { kafkaClientConfig, type KafkaEnv } from '@sluice/config';
import { Kafka, logLevel } from 'kafkajs';
import type { Logger } from './logger';

const pinoLevelOf: Record<number, 'error' | 'warn' | 'info' | 'debug'> = {
  [logLevel.ERROR]: 'error',
  [logLevel.WARN]: 'warn',
  [logLevel.INFO]: 'info',
  [logLevel.DEBUG]: 'debug',
};

/** A kafkajs client whose own log lines go through the service's logger. */
export function createKafka(config: KafkaEnv, options: { clientId: string; logger: Logger }): Kafka {
  const kafkaLogger = options.logger.child({ component: 'kafkajs' });
  return new Kafka({
    ...kafkaClientConfig(config, options.clientId),
    logLevel: logLevel.WARN,
    logCreator:
      () =>
      ({ level, log }) => {
        const { message, ...extra } = log;
        kafkaLogger[pinoLevelOf[level] ?? 'info'](extra, message);
      },
  });
}

// kafkajs errors that say the cluster cannot answer now (no coordinator yet, a lock on a busy broker), though kafkajs marks them final.
const TRANSIENT_KAFKAJS_ERRORS = new Set(['KafkaJSGroupCoordinatorNotFound', 'KafkaJSLockTimeout', 'KafkaJSNoBrokerAvailableError']);

/**
 * Whether a kafkajs error means the cluster is unavailable for now (a broker
 * down, a leader moving, a request timing out), so the same call may pass
 * later. Decided from kafkajs' own `retriable` flag and error classes, never
 * from message text; a call whose retries ran out is judged by its last error.
 */
export function isTransientKafkaError(err: unknown): boolean {
  const e = err as { name?: unknown; retriable?: unknown; cause?: unknown } | null | undefined;
  if (typeof e?.name !== 'string' || !e.name.startsWith('KafkaJS')) return false;
  if (e.name === 'KafkaJSNumberOfRetriesExceeded') return isTransientKafkaError(e.cause);
  return TRANSIENT_KAFKAJS_ERRORS.has(e.name) || e.retriable === true;
}
