import { Pool, type PoolClient } from 'pg';
import type { Lifecycle } from './lifecycle';
import type { Logger } from './logger';

/**
 * The service's Postgres pool, closed at shutdown. A connection that fails while
 * idle is logged and replaced; one that fails while borrowed is `withClient`'s.
 */
export function createPool(options: { databaseUrl: string; max: number; logger: Logger; lifecycle: Lifecycle }): Pool {
  const pool = new Pool({ connectionString: options.databaseUrl, max: options.max });
  pool.on('error', (err) => options.logger.warn({ err }, 'idle Postgres connection failed'));
  options.lifecycle.onShutdown('postgres pool', () => pool.end());
  return pool;
}

/**
 * Runs `work` on a connection borrowed from the pool. The pool listens for a
 * connection's failure only while it is idle; a borrowed connection that dies
 * (Postgres restarted, say) would emit an 'error' nobody handles and stop the
 * process. Here the failure reaches `work` through its queries, and the broken
 * connection is destroyed instead of going back to the pool.
 */
export async function withClient<T>(pool: Pool, work: (client: PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let broken: Error | undefined;
  const onError = (err: Error): void => {
    broken ??= err;
  };
  client.on('error', onError);
  try {
    return await work(client);
  } finally {
    client.removeListener('error', onError);
    client.release(broken);
  }
}

/** Runs `work` in one Postgres transaction on a pooled connection: commit, or roll back and rethrow. */
export function withTransaction<T>(pool: Pool, work: (client: PoolClient) => Promise<T>): Promise<T> {
  return withClient(pool, async (client) => {
    await client.query('begin');
    try {
      const result = await work(client);
      await client.query('commit');
      return result;
    } catch (err) {
      await client.query('rollback').catch(() => undefined);
      throw err;
    }
  });
}

/**
 * What a Postgres error says about what to do, from its codes alone (never its message):
 * - `unavailable`: the database cannot answer now (connection refused or lost, SQLSTATE class 08
 *   connection exception, 53 insufficient resources, 57P01–57P03 shutting down or not yet up) or the
 *   transaction lost a race (40001 serialization failure, 40P01 deadlock): try again later;
 * - `data`: this data can never be stored (class 22 data exception, such as a NUL in text,
 *   22P05; class 23 integrity constraint violation);
 * - `unknown`: anything else; a caller isolates the record and decides by whether it fails again
 *   while the database answers.
 */
export type PostgresErrorKind = 'unavailable' | 'data' | 'unknown';

const UNAVAILABLE_SQLSTATES = new Set(['57P01', '57P02', '57P03', '40001', '40P01']);
/** Node's codes for a socket that could not connect or was cut. */
const CONNECTION_ERRNOS = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNABORTED']);

/** The SQLSTATE of a Postgres error, when the server sent one. */
export function sqlState(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
}

export function postgresErrorKind(err: unknown): PostgresErrorKind {
  const state = sqlState(err);
  if (state !== undefined) {
    const cls = state.slice(0, 2);
    if (cls === '08' || cls === '53' || UNAVAILABLE_SQLSTATES.has(state)) return 'unavailable';
    if (cls === '22' || cls === '23') return 'data';
    return 'unknown';
  }
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && CONNECTION_ERRNOS.has(code)) return 'unavailable';
  return 'unknown';
}
