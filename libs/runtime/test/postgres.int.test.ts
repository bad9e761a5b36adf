import { runningStack } from '@sluice/testing';
import { Client } from 'pg';

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
