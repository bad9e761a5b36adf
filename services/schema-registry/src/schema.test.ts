import { RegistryError } from './errors';
import { parseWithReferences, readSubmission, resolveReferences, type ReferenceLoader } from './schema';

const type = (name: string, fields: unknown[] = []) => ({ type: 'record', name, fields });

/** Subjects of versions in memory: [json, references]. */
function loader(subjects: Record<string, [unknown, { name: string; subject: string; version: number }[]][]>): ReferenceLoader {
  return async (subject, version) => {
    const versions = subjects[subject] ?? [];
    const index = version === -1 ? versions.length - 1 : version - 1;
    const found = versions[index];
    return found ? { version: index + 1, json: found[0], references: found[1] } : undefined;
  };
}

test('references resolve recursively, dependencies first, each once; -1 becomes the latest version', async () => {
  const load = loader({
    a: [[type('A'), []]],
    b: [[type('B', [{ name: 'a', type: 'A' }]), [{ name: 'A', subject: 'a', version: 1 }]]],
    c: [[type('C', [{ name: 'a', type: 'A' }, { name: 'b', type: 'B' }]), [{ name: 'A', subject: 'a', version: 1 }, { name: 'B', subject: 'b', version: -1 }]]],
  });
  const { references, schemas } = await resolveReferences([{ name: 'C', subject: 'c', version: -1 }, { name: 'B', subject: 'b', version: 1 }], load);
  expect(references).toEqual([{ name: 'C', subject: 'c', version: 1 }, { name: 'B', subject: 'b', version: 1 }]);
  expect(schemas.map((s) => (s as { name: string }).name)).toEqual(['A', 'B', 'C']);
  const parsed = parseWithReferences(readSubmission({ schema: JSON.stringify(type('D', [{ name: 'c', type: 'C' }])) }), schemas);
  expect(parsed.node).toMatchObject({ kind: 'record', fullName: 'D' });
});

test('a cycle of references is refused with 42201, naming where', async () => {
  const load = loader({
    x: [[type('X'), [{ name: 'Y', subject: 'y', version: 1 }]]],
    y: [[type('Y'), [{ name: 'X', subject: 'x', version: 1 }]]],
  });
  const err = await resolveReferences([{ name: 'X', subject: 'x', version: 1 }], load).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(RegistryError);
  expect(err).toMatchObject({ errorCode: 42201, message: expect.stringMatching(/cycle through subject "x" version 1/) });
});

test('identical text with other references is another schema', () => {
  const text = JSON.stringify(type('P', [{ name: 'q', type: 'Q' }]));
  const q = [type('Q')];
  const one = parseWithReferences({ ...readSubmission({ schema: text }), references: [{ name: 'Q', subject: 'q1', version: 1 }] }, q);
  const two = parseWithReferences({ ...readSubmission({ schema: text }), references: [{ name: 'Q', subject: 'q2', version: 1 }] }, q);
  expect(one.fingerprint).not.toBe(two.fingerprint);
});

test('a type may be named after an Object.prototype member; a reference to an undefined one is refused with 42201', () => {
  // They were taken for names already defined ("duplicate type name") and, as references, threw (a 500).
  for (const name of ['constructor', '__proto__', 'toString', 'hasOwnProperty']) {
    const parsed = parseWithReferences(readSubmission({ schema: JSON.stringify(type(name, [{ name: 'a', type: 'int' }, { name: 'b', type: ['null', name] }])) }), []);
    expect(parsed.node).toMatchObject({ kind: 'record', fullName: name });
    let err: unknown;
    try {
      parseWithReferences(readSubmission({ schema: JSON.stringify(type('R', [{ name: 'a', type: name }])) }), []);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(RegistryError);
    expect(err).toMatchObject({ errorCode: 42201, message: expect.stringContaining(name) });
  }
});
