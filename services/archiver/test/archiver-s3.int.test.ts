import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { EnrichedEvent } from '@sluice/contracts';
import { eventually, startTestS3, uniqueName, type TestS3 } from '@sluice/testing';
import { mirrorArchive } from '../src/query';
import { S3Storage } from '../src/storage';
import { archiveFixture, archiveProblems, filesUnder, type ArchiveFixture } from './archive-fixture';

jest.setTimeout(300_000);

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const run = promisify(execFile);

let sequence = 0;
function event(hour: number): EnrichedEvent {
  const n = ++sequence;
  return {
    eventId: `s3-${n}-\u{1F600}\u0000${String.fromCodePoint(0x10ffff)}`,
    type: 'view',
    entityId: `e-${n % 7}`,
    userId: null,
    occurredAt: Date.UTC(2026, 10, 29, hour, n % 60),
    value: n,
    attributes: { 'ключ': 'значение' },
    name: 'Item',
    category: `c-${n % 3}`,
    enrichedAt: Date.UTC(2026, 10, 29, 23),
    sourcePartition: 0,
    sourceOffset: n,
  };
}

let fixture: ArchiveFixture;
let s3: TestS3;
afterEach(async () => {
  await fixture?.close();
  await s3?.stop();
});

test('to S3 (S3Proxy): the store going down pauses the archive visibly, an archiver kill loses nothing, and the batch query reads it exactly once', async () => {
  s3 = await startTestS3();
  fixture = await archiveFixture(2);
  const prefix = `${uniqueName('t')}/`;
  const env = s3.env(prefix);
  const service = await fixture.start({ ...env, ARCHIVE_MAX_FILE_MB: '1' });
  const sent = new Map<string, EnrichedEvent>();
  let producing = true;
  let round = 0;
  const production = (async () => {
    while (producing) {
      const events = Array.from({ length: 30 }, () => event(round++ % 5));
      await fixture.send(events);
      for (const e of events) sent.set(e.eventId, e);
      await sleep(50);
    }
  })();
  await sleep(2_000);
  // The store is gone: rolls fail, are retried with backoff, and /readyz says why.
  await s3.kill();
  const notReady = await eventually(
    'readiness reports the archive failing',
    async () => {
      const res = await fetch(`${service.url}/readyz`);
      return { status: res.status, body: await res.text() };
    },
    (r) => r.status === 503,
    60_000,
  );
  expect(notReady.body).toMatch(/writing to the archive \(s3:\/\/sluice-archive\/[^)]*\) failed \d+ times in a row/);
  await sleep(1_000);
  await s3.restart();
  await eventually('ready again once S3 answers', async () => (await fetch(`${service.url}/readyz`)).status, (s) => s === 200, 60_000);
  await sleep(1_500);
  await service.kill();
  await service.restart();
  await sleep(2_000);
  producing = false;
  await production;

  Object.assign(process.env, { AWS_ENDPOINT_URL_S3: env.AWS_ENDPOINT_URL_S3, AWS_ACCESS_KEY_ID: env.AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY: env.AWS_SECRET_ACCESS_KEY });
  const storage = new S3Storage('sluice-archive', prefix, { forcePathStyle: true, region: 'us-east-1' });
  const mirror = mkdtempSync(join(tmpdir(), 'sluice-s3-mirror-'));
  const archived = await eventually(
    'every event in the bucket',
    async () => {
      await mirrorArchive(storage, mirror);
      return (await fixture.rows(mirror)).length;
    },
    (n) => n >= sent.size,
    120_000,
  );
  expect(archived).toBe(sent.size);
  const rows = await fixture.rows(mirror);
  expect(new Set(rows.map((r) => r.event_id))).toEqual(new Set(sent.keys()));
  expect(archiveProblems(fixture.table, rows, filesUnder(mirror))).toEqual([]);
  // Every file the bucket shows is a complete Parquet file (DuckDB read them all above) named by its offsets.
  const objects = await storage.list('');
  expect(objects.filter((o) => !o.key.startsWith('_sluice/rolls/') && !o.key.endsWith('.parquet'))).toEqual([]);
  storage.close();

  // The command-line query over the same bucket.
  const { stdout } = await run(process.execPath, [join(__dirname, '..', 'dist', 'cli.js'), 'query', `select count(*) as n, count(distinct event_id) as ids, min(hour) as first_hour from ${fixture.table}`, '--json'], {
    env: { ...process.env, ...env, ARCHIVE_CACHE_DIR: mkdtempSync(join(tmpdir(), 'sluice-archive-cache-')) },
  });
  expect(JSON.parse(stdout)).toEqual([{ n: String(sent.size), ids: String(sent.size), first_hour: 0 }]);
});
