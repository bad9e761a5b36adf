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
