import { compatibilityProblems as problemsOf, parseAvro, readIncompatibilities, type AvroNode, type CompatibilityLevel } from './avro-compatibility';

const compatibilityProblems = (level: CompatibilityLevel, candidate: AvroNode, existing: AvroNode[]) =>
  problemsOf(level, candidate, existing.map((node, i) => ({ version: i + 1, node })));

type Json = Parameters<typeof parseAvro>[0];
const canRead = (reader: Json, writer: Json) => readIncompatibilities(parseAvro(reader), parseAvro(writer)).length === 0;
const record = (fields: Json[], name = 'R'): Json => ({ type: 'record', name, fields });

describe('primitive promotions', () => {
  const allowed: [string, string][] = [
    ['int', 'long'],
    ['int', 'float'],
    ['int', 'double'],
    ['long', 'float'],
    ['long', 'double'],
    ['float', 'double'],
    ['string', 'bytes'],
    ['bytes', 'string'],
  ];
  const types = ['null', 'boolean', 'int', 'long', 'float', 'double', 'bytes', 'string'];
  for (const writer of types) {
    for (const reader of types) {
      const expected = writer === reader || allowed.some(([w, r]) => w === writer && r === reader);
      test(`a ${reader} reader ${expected ? 'reads' : 'cannot read'} a ${writer} writer`, () => {
        expect(canRead(reader, writer)).toBe(expected);
      });
    }
  }
});

describe('records', () => {
  test('a new field with a default is readable from old data; without a default it is not', () => {
    const v1 = record([{ name: 'a', type: 'string' }]);
    expect(canRead(record([{ name: 'a', type: 'string' }, { name: 'b', type: 'int', default: 0 }]), v1)).toBe(true);
    expect(canRead(record([{ name: 'a', type: 'string' }, { name: 'b', type: 'int' }]), v1)).toBe(false);
  });

  test('a field the reader dropped is ignored', () => {
    expect(canRead(record([{ name: 'a', type: 'string' }]), record([{ name: 'a', type: 'string' }, { name: 'b', type: 'int' }]))).toBe(true);
  });

  test('a renamed field matches through its alias', () => {
    const writer = record([{ name: 'old', type: 'string' }]);
    expect(canRead(record([{ name: 'new', aliases: ['old'], type: 'string' }]), writer)).toBe(true);
    expect(canRead(record([{ name: 'new', type: 'string' }]), writer)).toBe(false);
  });

  test('a renamed record matches through its alias', () => {
    expect(canRead({ type: 'record', name: 'New', namespace: 'x', aliases: ['x.Old'], fields: [] }, { type: 'record', name: 'Old', namespace: 'x', fields: [] })).toBe(true);
    expect(canRead({ type: 'record', name: 'New', fields: [] }, { type: 'record', name: 'Old', fields: [] })).toBe(false);
  });

  test('a change deep inside a nested record is found, with its path', () => {
    const nested = (t: string) => record([{ name: 'inner', type: record([{ name: 'first_name', type: t }], 'Inner') }]);
    const problems = readIncompatibilities(parseAvro(nested('int')), parseAvro(nested('string')));
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain('/inner/first_name');
  });

  test('recursive records are compared without looping', () => {
    const list = (extra: Json[]): Json => ({
      type: 'record',
      name: 'Node',
      fields: [{ name: 'value', type: 'int' }, { name: 'next', type: ['null', 'Node'], default: null }, ...extra],
    });
    expect(canRead(list([{ name: 'label', type: 'string', default: '' }]), list([]))).toBe(true);
    expect(canRead(list([{ name: 'label', type: 'string' }]), list([]))).toBe(false);
  });
});

describe('enums', () => {
  const e = (symbols: string[], extra: Record<string, Json> = {}): Json => ({ type: 'enum', name: 'E', symbols, ...extra });
  test('a reader with more symbols reads a writer with fewer', () => {
    expect(canRead(e(['A', 'B', 'C']), e(['A', 'B']))).toBe(true);
  });
  test('a reader missing a symbol cannot read, unless it has a default', () => {
    expect(canRead(e(['A']), e(['A', 'B']))).toBe(false);
    expect(canRead(e(['A', 'U'], { default: 'U' }), e(['A', 'B']))).toBe(true);
  });
});

describe('unions', () => {
  test('union to union: every writer branch needs a reader branch', () => {
    expect(canRead(['null', 'string', 'int'], ['string', 'int'])).toBe(true);
    expect(canRead(['null', 'string'], ['string', 'int'])).toBe(false);
  });
  test('a union reader reads a plain writer if one branch can', () => {
    expect(canRead(['null', 'long'], 'int')).toBe(true);
    expect(canRead(['null', 'string'], 'int')).toBe(false);
  });
  test('a plain reader reads a union writer only if it reads every branch', () => {
    expect(canRead('double', ['int', 'long'])).toBe(true);
    expect(canRead('string', ['null', 'string'])).toBe(false);
  });
});

test('arrays, maps and fixed compare their contents', () => {
  expect(canRead({ type: 'array', items: 'long' }, { type: 'array', items: 'int' })).toBe(true);
  expect(canRead({ type: 'map', values: 'int' }, { type: 'map', values: 'long' })).toBe(false);
  expect(canRead({ type: 'fixed', name: 'F', size: 4 }, { type: 'fixed', name: 'F', size: 8 })).toBe(false);
  expect(canRead({ type: 'array', items: 'int' }, { type: 'map', values: 'int' })).toBe(false);
});

describe('compatibility levels', () => {
  const v1 = parseAvro(record([{ name: 'a', type: 'string' }]));
  const v2 = parseAvro(record([{ name: 'a', type: 'string' }, { name: 'b', type: 'int', default: 1 }]));
  const v3NoDefault = parseAvro(record([{ name: 'a', type: 'string' }, { name: 'b', type: 'int' }]));
  const dropA = parseAvro(record([{ name: 'b', type: 'int', default: 1 }]));

  test('NONE accepts anything', () => {
    expect(compatibilityProblems('NONE', parseAvro('int'), [v1])).toEqual([]);
  });
  test('BACKWARD checks only the latest version; BACKWARD_TRANSITIVE checks them all', () => {
    // v3 reads v2 (b exists there) but not v1 (b missing and no default).
    expect(compatibilityProblems('BACKWARD', v3NoDefault, [v1, v2])).toEqual([]);
    expect(compatibilityProblems('BACKWARD_TRANSITIVE', v3NoDefault, [v1, v2])).not.toEqual([]);
  });
  test('FORWARD: the old schema reads data of the new one', () => {
    expect(compatibilityProblems('FORWARD', v2, [v1])).toEqual([]);
    expect(compatibilityProblems('FORWARD', dropA, [v1])).not.toEqual([]);
  });
  test('FULL needs both directions', () => {
    expect(compatibilityProblems('FULL', v2, [v1])).toEqual([]);
    expect(compatibilityProblems('FULL', v3NoDefault, [v1])).not.toEqual([]);
  });
  test('FULL_TRANSITIVE checks both directions against every version', () => {
    const bString = parseAvro(record([{ name: 'a', type: 'string' }, { name: 'b', type: 'string', default: '' }]));
    expect(compatibilityProblems('FULL', bString, [v2, v1])).toEqual([]);
    expect(compatibilityProblems('FULL_TRANSITIVE', bString, [v2, v1])).not.toEqual([]);
  });
  test('with nothing registered every schema is compatible', () => {
    expect(compatibilityProblems('FULL_TRANSITIVE', v1, [])).toEqual([]);
  });
});
