import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { WindowAggregate } from '@sluice/contracts';
import { createTestDatabase, eventually } from '@sluice/testing';
import { Client, Pool, type PoolClient } from 'pg';
import { CHANGES_CHANNEL, ViewStore } from '../src/store';

jest.setTimeout(120_000);

const MIN = 60_000;
const BASE = Date.UTC(2026, 4, 1);

let pool: Pool;
let store: ViewStore;
let listener: Client;
const notified: bigint[] = [];

beforeAll(async () => {
  const url = await createTestDatabase('change_order');
  await promisify(execFile)(process.execPath, [join(__dirname, '..', 'dist', 'migrate-cli.js')], { env: { ...process.env, DATABASE_URL: url } });
  pool = new Pool({ connectionString: url, max: 4 });
  store = new ViewStore(pool);
  listener = new Client({ connectionString: url });
  await listener.connect();
  listener.on('notification', (n) => {
    if (n.channel === CHANGES_CHANNEL && n.payload) notified.push(BigInt((JSON.parse(n.payload) as { seq: string }).seq));
  });
  await listener.query(`listen ${CHANGES_CHANNEL}`);
});

afterAll(async () => {
  await listener.end();
  await pool.end();
});

function windowRecord(key: string, windowStart: number): WindowAggregate {
  return { dimension: 'entity', key, windowStart, windowEnd: windowStart + MIN, count: 1, sum: 1, min: 1, max: 1, isFinal: false, revision: 1, lastEventAt: windowStart };
}

async function begin(): Promise<PoolClient> {
  const client = await pool.connect();
  await client.query('begin');
  return client;
}

test('two projection writers (two partitions, or two replicas) publish their changes in the order of their sequence numbers, so no live stream or catch-up skips one', async () => {
  // Writer A takes its sequence number first and commits late; writer B, on another partition, key and
  // time bucket (nothing of A's to wait for), commits as soon as it can.
  const a = await begin();
  const b = await begin();
  try {
    const [changeA] = await store.apply(a, 0, [{ record: windowRecord('order-a', BASE), partition: 0, offset: '0' }]);
    const bPid = (await b.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]!.pid;
    let bCommitted = false;
    const bDone = store.apply(b, 1, [{ record: windowRecord('order-b', BASE + 3 * 3_600_000), partition: 1, offset: '0' }]).then(async (changes) => {
      await b.query('commit');
      bCommitted = true;
      return changes;
    });
    // B may not commit a later number before A: Postgres shows it waiting for the lock A holds.
    const waitingFor = async () => (await pool.query<{ wait: string | null }>('select wait_event as wait from pg_stat_activity where pid = $1', [bPid])).rows[0]?.wait ?? null;
    await eventually('writer B waits for writer A', waitingFor, (wait) => wait === 'advisory', 30_000);
    expect(bCommitted).toBe(false);
    await a.query('commit');
    const [changeB] = await bDone;
    expect(BigInt(changeB!.seq)).toBeGreaterThan(BigInt(changeA!.seq));

    await eventually('both notifications', async () => notified.length, (n) => n >= 2, 10_000);
    // The order of the notifications is the order of the numbers: a live stream that sends only higher numbers sends both.
    expect(notified).toEqual([BigInt(changeA!.seq), BigInt(changeB!.seq)]);
    // And a client that saw A resumes with B.
    const since = await store.changesSince(BigInt(changeA!.seq), {}, 10);
    expect(since.map((c) => c.window.key)).toEqual(['order-b']);
  } finally {
    a.release();
    b.release();
  }
});
