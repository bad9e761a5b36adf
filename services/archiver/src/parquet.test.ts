import type { EnrichedEvent } from '@sluice/contracts';
import fc from 'fast-check';
import { decodeParquet, encodeParquet, hourPartition, parseFileName, planFiles, tableOf, type ArchivedRecord } from './parquet';

// Full Unicode (every plane), control characters and NUL included.
const text = fc.oneof(fc.string({ unit: 'binary', maxLength: 40 }), fc.string({ unit: 'binary', maxLength: 40 }).map((s) => `\uFEFF${s}`));
const epochMs = fc.integer({ min: Date.UTC(1970, 0, 1), max: Date.UTC(2100, 0, 1) });

const event: fc.Arbitrary<EnrichedEvent> = fc.record({
  eventId: text,
  type: text,
  entityId: text,
  userId: fc.option(text, { nil: null }),
  occurredAt: epochMs,
  value: fc.double({ noNaN: true }),
  attributes: fc.dictionary(text, text, { maxKeys: 4 }),
  name: text,
  category: text,
  enrichedAt: epochMs,
  sourcePartition: fc.nat(1_000),
  sourceOffset: fc.nat(),
});

const records = fc.array(event, { maxLength: 30 }).map((events) => events.map((e, i): ArchivedRecord => ({ event: e, partition: 3, offset: BigInt(100 + i * 2) })));

type Row = Record<string, unknown>;
async function readBack(bytes: Uint8Array): Promise<Row[]> {
  const { parquetReadObjects } = await import('hyparquet');
  const keepBom = new TextDecoder('utf-8', { ignoreBOM: true });
  const file = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  return (await parquetReadObjects({ file, parsers: { stringFromBytes: (b: Uint8Array) => b && keepBom.decode(b) } })) as Row[];
}

describe('archive files', () => {
  it('are cut per event-time hour in UTC, named from their first and last offsets, rows in offset order', () => {
    const at = (iso: string, offset: number): ArchivedRecord => ({ event: { occurredAt: Date.parse(iso) } as EnrichedEvent, partition: 2, offset: BigInt(offset) });
    const files = planFiles('events_enriched', 2, [at('2026-03-01T10:59:59.999Z', 7), at('2026-03-01T11:00:00.000Z', 8), at('2026-03-01T10:00:00.000Z', 12), at('2026-02-28T23:30:00Z', 15)]);
    expect(files.map((f) => [f.key, f.rows.map((r) => Number(r.offset))])).toEqual([
      ['events_enriched/dt=2026-02-28/hour=23/part-2-15-15.parquet', [15]],
      ['events_enriched/dt=2026-03-01/hour=10/part-2-7-12.parquet', [7, 12]],
      ['events_enriched/dt=2026-03-01/hour=11/part-2-8-8.parquet', [8]],
    ]);
    expect(parseFileName('part-2-7-12.parquet')).toEqual({ partition: 2, first: 7n, last: 12n });
    expect(parseFileName('part-2-7-12.parquet.1234-ab.tmp')).toBeUndefined();
    expect(tableOf('events.enriched')).toBe('events_enriched');
  });

  it('have no hour for times outside the years 0 to 9999', () => {
    expect(hourPartition(Date.UTC(10_000, 0, 1))).toBeUndefined();
    expect(hourPartition(8.64e15 + 1)).toBeUndefined();
    expect(hourPartition(Number.NaN)).toBeUndefined();
    expect(hourPartition(0)).toBe('dt=1970-01-01/hour=00');
  });

  it('keep a string that starts with U+FEFF as it is (decoders drop a leading byte order mark by default)', async () => {
    const e: EnrichedEvent = { eventId: '\uFEFFid', type: '\uFEFF', entityId: 'e', userId: '\uFEFF\uFEFFu', occurredAt: 0, value: 1, attributes: { '\uFEFFk': '\uFEFFv' }, name: '\uFEFFn', category: 'c', enrichedAt: 0, sourcePartition: 0, sourceOffset: 0 };
    expect(await decodeParquet(await encodeParquet([{ event: e, partition: 0, offset: 0n }]))).toEqual([{ event: e, partition: 0, offset: 0n }]);
  });

  it('keep attribute keys that name Object.prototype members (`__proto__` was lost on decode)', async () => {
    // JSON.parse makes `__proto__` an own property, as the gateway's body parser and the Avro decoder do.
    const attributes = JSON.parse('{"__proto__":"p","constructor":"c","toString":"t","hasOwnProperty":""}') as Record<string, string>;
    const e: EnrichedEvent = { eventId: 'id', type: 't', entityId: 'e', userId: null, occurredAt: 0, value: 1, attributes, name: 'n', category: 'c', enrichedAt: 0, sourcePartition: 0, sourceOffset: 0 };
    const [back] = await decodeParquet(await encodeParquet([{ event: e, partition: 0, offset: 0n }]));
    expect(Object.entries(back!.event.attributes).sort()).toEqual([['__proto__', 'p'], ['constructor', 'c'], ['hasOwnProperty', ''], ['toString', 't']]);
    expect(Object.getPrototypeOf(back!.event.attributes)).toBe(Object.prototype);
  });

  it('hold every field as it was, in any Unicode, and the same rows always give the same bytes', async () => {
    await fc.assert(
      fc.asyncProperty(records, async (rows) => {
        const bytes = await encodeParquet(rows);
        expect(Buffer.from(await encodeParquet(rows)).equals(Buffer.from(bytes))).toBe(true);
        // Read back as records (what compaction does), the same records.
        expect(await decodeParquet(bytes)).toEqual(rows.map((r) => ({ ...r, event: { ...r.event, attributes: Object.fromEntries(Object.keys(r.event.attributes).sort().map((k) => [k, r.event.attributes[k]])) } })));
        const back = await readBack(bytes);
        expect(back).toHaveLength(rows.length);
        back.forEach((row, i) => {
          const { event: e, partition, offset } = rows[i]!;
          expect(row).toEqual({
            event_id: e.eventId,
            type: e.type,
            entity_id: e.entityId,
            user_id: e.userId,
            occurred_at: new Date(e.occurredAt),
            value: e.value,
            attributes: Object.fromEntries(Object.keys(e.attributes).sort().map((k) => [k, e.attributes[k]])),
            name: e.name,
            category: e.category,
            enriched_at: new Date(e.enrichedAt),
            source_partition: e.sourcePartition,
            source_offset: BigInt(e.sourceOffset),
            kafka_partition: partition,
            kafka_offset: offset,
          });
        });
      }),
      { numRuns: 60 },
    );
  });
});
