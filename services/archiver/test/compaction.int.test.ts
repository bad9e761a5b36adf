import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { EnrichedEvent } from '@sluice/contracts';
import { eventually, runningStack } from '@sluice/testing';
import { decodeParquet, encodeParquet } from '../src/parquet';
import { LocalStorage } from '../src/storage';
import { archiveFixture, archiveProblems, filesUnder, type ArchiveFixture } from './archive-fixture';

jest.setTimeout(300_000);

const run = promisify(execFile);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const HOUR = 3_600_000;

let sequence = 0;
function event(occurredAt: number): EnrichedEvent {
  const n = ++sequence;
  return { eventId: `c-${n}-\u{1F5C4}`, type: 'view', entityId: `e-${n % 11}`, userId: null, occurredAt, value: n, attributes: {}, name: 'n', category: 'c', enrichedAt: occurredAt, sourcePartition: 0, sourceOffset: n };
}

let fixture: ArchiveFixture;
afterEach(async () => {
  await fixture?.close();
});

function compact(...flags: string[]) {
  return run(process.execPath, [join(__dirname, '..', 'dist', 'cli.js'), 'compact', ...flags], {
    env: {
      ...process.env,
      ARCHIVE_URL: fixture.dir,
      ARCHIVE_INPUT_TOPIC: fixture.topic,
      ARCHIVE_CONSUMER_GROUP: fixture.group,
      KAFKA_BROKERS: runningStack().kafkaBrokers.join(','),
      DATABASE_URL: runningStack().databaseUrl,
    },
  });
}

const parquetFiles = () => filesUnder(fixture.dir).filter((f) => f.endsWith('.parquet'));
const hourOf = (file: string) => /dt=[^/]+\/hour=\d\d/.exec(file)![0];
const partitionOf = (file: string) => /part-(\d+)-/.exec(file)![1];

test('compaction merges the small files of closed hours per partition, exactly once, while the archiver writes; an interrupted one is finished or abandoned', async () => {
  fixture = await archiveFixture(2);
  await fixture.start({ ARCHIVE_ROLL_INTERVAL_MS: '150' });
  const now = Date.now();
  const closed = [now - 5 * HOUR, now - 4 * HOUR, now - 3 * HOUR];
  const sent = new Set<string>();
  const send = async (events: EnrichedEvent[]) => {
    await fixture.send(events);
    for (const e of events) sent.add(e.eventId);
  };
  // Many small rolls into three closed hours and the current one.
  for (let i = 0; i < 12; i++) {
    await send([...closed.map((t) => event(t + i * 1_000)), event(now), event(now)]);
    await sleep(250);
  }
  await eventually('all archived', async () => (await fixture.rows()).length, (n) => n === sent.size, 60_000);
  const before = parquetFiles();
  const closedHours = new Set(closed.map((t) => hourOf(`dt=${new Date(t).toISOString().slice(0, 10)}/hour=${new Date(t).toISOString().slice(11, 13)}`)));
  const smallInClosed = before.filter((f) => closedHours.has(hourOf(f)));
  expect(smallInClosed.length).toBeGreaterThan(closedHours.size * 2);

  const dry = await compact('--dry-run');
  expect(dry.stdout.trim()).toMatch(/^archive-compact \(dry run\): would merge \d+ files into \d+ in closed hours of /);
  expect(parquetFiles()).toEqual(before);

  // The archiver keeps writing while compaction runs: the current hour, and late events for a closed hour.
  let writing = true;
  const late = (async () => {
    while (writing) {
      await send([event(now), event(closed[0]! + 30 * 60_000)]);
      await sleep(100);
    }
  })();
  const { stdout } = await compact();
  writing = false;
  await late;
  const merged = /merged (\d+) files \((\d+) rows\) into (\d+) in closed hours/.exec(stdout);
  expect(merged).not.toBeNull();
  expect(Number(merged![1])).toBeGreaterThanOrEqual(smallInClosed.length - closedHours.size * 2);

  await eventually('all archived', async () => (await fixture.rows()).length, (n) => n === sent.size, 60_000);
  const rows = await fixture.rows();
  expect(new Set(rows.map((r) => r.event_id))).toEqual(sent);
  expect(rows.length).toBe(sent.size);
  expect(archiveProblems(fixture.table, rows, filesUnder(fixture.dir))).toEqual([]);
  // Every small file of a closed hour that existed before is gone, merged: one file per hour and partition from then.
  const after = parquetFiles();
  expect(smallInClosed.filter((f) => after.includes(f))).toEqual([]);
  for (const hour of closedHours) {
    for (const partition of ['0', '1']) {
      const olds = smallInClosed.filter((f) => hourOf(f) === hour && partitionOf(f) === partition);
      if (olds.length < 2) continue;
      const last = olds.map((f) => BigInt(/-(\d+)\.parquet$/.exec(f)![1]!)).reduce((a, b) => (a > b ? a : b));
      // The merged file covers every old small file; files written later (late events) start after it.
      expect(after.filter((f) => hourOf(f) === hour && partitionOf(f) === partition && BigInt(/part-\d+-(\d+)-/.exec(f)![1]!) <= last)).toHaveLength(1);
    }
  }
  expect(filesUnder(fixture.dir).filter((f) => f.startsWith('_sluice/compactions/'))).toEqual([]);

  // An interrupted compaction: the merged file and its journal written, the small files not yet removed.
  const storage = new LocalStorage(fixture.dir);
  await sleep(1_000);
  const current = parquetFiles().filter((f) => !closedHours.has(hourOf(f)) && partitionOf(f) === '0');
  expect(current.length).toBeGreaterThanOrEqual(2);
  const pair = current.slice(0, 2);
  const records = (await Promise.all(pair.map(async (f) => decodeParquet((await storage.get(f))!)))).flat().sort((a, b) => (a.offset < b.offset ? -1 : 1));
  const mergedKey = `${pair[0]!.slice(0, pair[0]!.lastIndexOf('/'))}/part-0-${records[0]!.offset}-${records.at(-1)!.offset}.parquet`;
  await storage.put(`_sluice/compactions/${mergedKey.replace(/\//g, '~')}.json`, Buffer.from(JSON.stringify({ merged: mergedKey, smalls: pair })));
  await storage.put(mergedKey, await encodeParquet(records));
  // Read as the query reads it: the merged file, not the small ones.
  const ids = await fixture.tableIds();
  expect(ids.length).toBe(sent.size);
  expect(new Set(ids)).toEqual(sent);
  // And one whose merged file was never written: the small files stay.
  await storage.put('_sluice/compactions/never-written.json', Buffer.from(JSON.stringify({ merged: 'x/dt=2020-01-01/hour=00/part-0-1-2.parquet', smalls: [current[2] ?? current[0]!] })));
  expect((await fixture.tableIds()).length).toBe(sent.size);
  // The next run (its hour is not closed yet, nothing else to merge) finishes the first and abandons the second.
  const next = await compact();
  expect(next.stdout.trim()).toMatch(/; finished 1 and abandoned 1 interrupted compactions$/);
  expect(parquetFiles().filter((f) => pair.includes(f))).toEqual([]);
  expect(new Set(await fixture.tableIds())).toEqual(sent);
  expect((await fixture.rows()).length).toBe(sent.size);
});
