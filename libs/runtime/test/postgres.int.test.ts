import { withClient, withTransaction } from '@sluice/runtime';
import { runningStack } from '@sluice/testing';
import { Client, Pool } from 'pg';

test("a query runs against the stack's Postgres", async () => {
  const client = new Client({ connectionString: runningStack().databaseUrl });
  await client.connect();
  try {
    const result = await client.query<{ answer: number; version: string }>('select 6 * 7 as answer, version() as version');
    expect(result.rows[0]?.answer).toBe(42);
    expect(result.rows[0]?.version).toMatch(/^PostgreSQL \d+/);
  } finally {
    await client.end();
  }
});

test('a borrowed connection that Postgres drops fails only the work holding it: the process lives on and the pool replaces the connection', async () => {
  const pool = new Pool({ connectionString: runningStack().databaseUrl, max: 2 });
  const admin = new Client({ connectionString: runningStack().databaseUrl });
  await admin.connect();
  try {
    const outcome = withClient(pool, async (client) => {
      const { rows } = await client.query<{ pid: number }>('select pg_backend_pid() as pid');
      // Dropped while borrowed and between queries: pg emits 'error' on the client, with no query to carry it.
      await admin.query('select pg_terminate_backend($1)', [rows[0]!.pid]);
      await new Promise((r) => setTimeout(r, 300));
      return client.query('select 1');
    });
    await expect(outcome).rejects.toThrow();
    expect(pool.totalCount).toBe(0);
    const again = await withTransaction(pool, async (client) => (await client.query<{ one: number }>('select 1 as one')).rows[0]?.one);
    expect(again).toBe(1);
  } finally {
    await admin.end();
    await pool.end();
  }
});
