import type { EnrichedEvent } from '@sluice/contracts';
import { eventually, readTopic, withAdmin } from '@sluice/testing';
import { archiveFixture, archiveProblems, filesUnder, type ArchiveFixture, type ArchivedRow } from './archive-fixture';

jest.setTimeout(300_000);

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Any Unicode scalar value, NUL and the astral planes included (no lone surrogates: Avro strings are UTF-8). */
function unicode(length: number): string {
  let text = '';
  for (let i = 0; i < length; i++) {
    let code = Math.floor(Math.random() * 0x110000);
    if (code >= 0xd800 && code <= 0xdfff) code = Math.floor(Math.random() * 0xd800);
    text += String.fromCodePoint(code);
  }
  return text;
}

const HOUR = 3_600_000;
const base = Date.UTC(2026, 10, 30, 6);
let sequence = 0;
function enriched(): EnrichedEvent {
  const n = ++sequence;
  return {
    eventId: `ev-${n}-${unicode(3)}`,
    type: unicode(4),
    entityId: `entity-${n % 17}`,
    userId: n % 3 === 0 ? null : unicode(5),
    // Spread over six hours and out of order: one roll becomes several files.
    occurredAt: base + Math.floor(Math.random() * 6 * HOUR),
    value: Math.random() * 1000 - 500,
    attributes: n % 2 === 0 ? {} : { [unicode(2)]: unicode(6), plain: 'x\u0000y' },
    // A leading U+FEFF is data too (decoders drop it by default: the DuckDB client is patched for it).
    name: n % 5 === 0 ? `\uFEFF${unicode(7)}` : unicode(8),
    category: `cat-${n % 4}`,
    enrichedAt: base + 7 * HOUR + n,
    sourcePartition: n % 6,
    sourceOffset: n,
  };
}

function expectSameAsSent(rows: ArchivedRow[], sent: Map<string, EnrichedEvent>): void {
  for (const row of rows) {
    const e = sent.get(row.event_id)!;
    expect({
      type: row.type,
      entityId: row.entity_id,
      userId: row.user_id,
      occurredAt: Number(row.occurred_ms),
      value: row.value,
      attributes: Object.fromEntries((row.attributes as { key: string; value: string }[]).map((kv) => [kv.key, kv.value])),
      name: row.name,
      category: row.category,
      enrichedAt: Number(row.enriched_ms),
      sourcePartition: row.source_partition,
      sourceOffset: Number(row.source_offset),
    }).toEqual({ type: e.type, entityId: e.entityId, userId: e.userId, occurredAt: e.occurredAt, value: e.value, attributes: e.attributes, name: e.name, category: e.category, enrichedAt: e.enrichedAt, sourcePartition: e.sourcePartition, sourceOffset: e.sourceOffset });
  }
}

/** A metric's value as /metrics prints it (services label every series with their name). */
async function metric(url: string, name: string): Promise<string | undefined> {
  const text = await (await fetch(`${url}/metrics`)).text();
  return new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text)?.[1];
}

let fixture: ArchiveFixture;
afterEach(async () => {
  await fixture?.close();
});

test('kill -9 at random moments under load: every committed event is archived exactly once, aborted ones never, no file half-written or misnamed', async () => {
  fixture = await archiveFixture(3);
  const service = await fixture.start({ ARCHIVE_MAX_FILE_MB: '1' });
  const sent = new Map<string, EnrichedEvent>();
  const aborted = new Set<string>();
  let producing = true;
  let transactions = 0;
  const production = (async () => {
    while (producing) {
      const events = Array.from({ length: 40 }, enriched);
      // One transaction in five is aborted: read_committed must keep its records out of the archive.
      const abort = ++transactions % 5 === 0;
      await fixture.send(events, { abort });
      for (const e of events) {
        if (abort) aborted.add(e.eventId);
        else sent.set(e.eventId, e);
      }
      if (transactions % 25 === 0) await fixture.sendRaw('garbage', Buffer.from([0xff, 0x00, 0xfe, transactions & 0xff]));
      await sleep(40);
    }
  })();
  const kills: number[] = [];
  for (let i = 0; i < 6; i++) {
    const wait = 500 + Math.floor(Math.random() * 2_500);
    await sleep(wait);
    await service.kill();
    kills.push(wait);
    await sleep(Math.floor(Math.random() * 500));
    await service.restart();
  }
  await sleep(2_000);
  producing = false;
  await production;
  const garbage = Math.floor(transactions / 25);
  console.log(`archiver kills after ${kills.join(', ')} ms; ${sent.size} events committed, ${aborted.size} aborted, ${garbage} garbage records`);

  const rows = await eventually('every committed event archived', async () => (await fixture.rows()).length, (n) => n >= sent.size, 120_000);
  await sleep(1_500);
  const final = await fixture.rows();
  const ids = final.map((r) => r.event_id);
  expect(ids.length).toBe(new Set(ids).size);
  expect(new Set(ids)).toEqual(new Set(sent.keys()));
  expect(ids.filter((id) => aborted.has(id))).toEqual([]);
  expect(rows).toBe(sent.size);
  expectSameAsSent(final, sent);
  const files = filesUnder(fixture.dir);
  expect(archiveProblems(fixture.table, final, files)).toEqual([]);
  // A killed writer's temporaries are removed when its partitions are opened again.
  expect(files.filter((f) => f.startsWith('_sluice/tmp/'))).toEqual([]);
  // The garbage went to the dead-letter topic with its reason; the partitions flowed past it.
  const dead = await readTopic(fixture.kafka, `${fixture.topic}.dlq`, { done: (r) => new Set(r.map((d) => `${d.partition}:${d.headers['dlq.original.offset']}`)).size >= garbage, timeoutMs: 30_000 });
  expect(new Set(dead.map((d) => `${d.partition}:${d.headers['dlq.original.offset']}`)).size).toBe(garbage);
  for (const d of dead) expect(d.headers).toMatchObject({ 'dlq.stage': fixture.group, 'dlq.error.code': expect.stringMatching(/^serde\./) });
  // The group's offsets are past every archived record.
  const committed = await fixture.committed();
  for (const row of final) expect(committed.get(row.kafka_partition)! > BigInt(row.kafka_offset)).toBe(true);
});

test('SIGTERM writes the open roll and commits it before leaving; a restart reads nothing again', async () => {
  fixture = await archiveFixture(2);
  // A roll would wait ten minutes: only the shutdown writes it.
  const service = await fixture.start({ ARCHIVE_ROLL_INTERVAL_MS: '600000' });
  const events = Array.from({ length: 200 }, enriched);
  await fixture.send(events);
  await eventually(
    'the archiver has read every event',
    async () => metric(service.url, 'archiver_buffered_records'),
    (n) => n === '200',
    60_000,
  );
  expect(await fixture.rows()).toEqual([]);
  expect(await service.stop()).toBe('terminated');
  const rows = await fixture.rows();
  expect(rows.map((r) => r.event_id).sort()).toEqual(events.map((e) => e.eventId).sort());
  const committed = await fixture.committed();
  for (const row of rows) expect(committed.get(row.kafka_partition)! > BigInt(row.kafka_offset)).toBe(true);
  // Started again, it finds nothing to write: no file is written twice.
  const before = filesUnder(fixture.dir).filter((f) => f.endsWith('.parquet'));
  const again = await fixture.start({ ARCHIVE_ROLL_INTERVAL_MS: '300' });
  await sleep(3_000);
  expect(filesUnder(fixture.dir).filter((f) => f.endsWith('.parquet'))).toEqual(before);
  expect(await metric(again.url, 'archiver_rows_total')).toBe('0');
});

test('the open rolls of all partitions stay within ARCHIVE_MAX_BUFFER_MB: past it, rolls are written early', async () => {
  fixture = await archiveFixture(3);
  // Neither time (ten minutes) nor file size (64 MB) would roll: only the 1 MB budget does.
  const service = await fixture.start({ ARCHIVE_ROLL_INTERVAL_MS: '600000', ARCHIVE_MAX_FILE_MB: '64', ARCHIVE_MAX_BUFFER_MB: '1' });
  // About 3.5 MB of records (roughly 150 bytes each): three and a half budgets.
  const events = Array.from({ length: 24_000 }, enriched);
  for (let i = 0; i < events.length; i += 1_000) await fixture.send(events.slice(i, i + 1_000));
  const archived = await eventually('most events archived by the budget alone', async () => (await fixture.rows()).length, (n) => n >= events.length / 2, 60_000);
  expect(archived).toBeLessThan(events.length);
  // What is still buffered fits in the budget: at most about 1 MB of records of this size, not the rest.
  const [buffered] = await eventually(
    'every event read (archived or buffered)',
    async () => [Number(await metric(service.url, 'archiver_buffered_records')), (await fixture.rows()).length],
    ([b, a]) => b! + a! === events.length,
    30_000,
  ).catch(async (err) => {
    const rows = await fixture.rows();
    const per = [0, 1, 2].map((p) => rows.filter((r) => r.kafka_partition === p).length);
    const ends = await withAdmin(fixture.kafka, (admin) => admin.fetchTopicOffsets(fixture.topic));
    console.log('DEBUG', JSON.stringify({ per, committed: [...(await fixture.committed())].map(([p, o]) => [p, String(o)]), ends, metrics: (await (await fetch(`${service.url}/metrics`)).text()).split('\n').filter((l) => l.startsWith('archiver_') && !l.includes('bucket')) }));
    throw err;
  });
  expect(buffered).toBeGreaterThan(0);
  expect(buffered).toBeLessThan(9_000);
  // And the rest is written at shutdown, exactly once.
  expect(await service.stop()).toBe('terminated');
  const rows = await fixture.rows();
  expect(rows.map((r) => r.event_id).sort()).toEqual(events.map((e) => e.eventId).sort());
});
