import { decodeEntry, encodeEntry, PartitionStore, StoreTransaction } from './store';

let now = 1_000;
const clock = () => now;

beforeEach(() => {
  now = 1_000;
});

test('writes of a transaction are visible inside it and reach the store only when applied', () => {
  const store = new PartitionStore<number>('s', undefined);
  const txn = new StoreTransaction(store, clock);
  txn.put('a', 1);
  expect(txn.get('a')).toBe(1);
  expect(store.read('a', now)).toBeUndefined();
  store.apply(txn.changes);
  expect(store.read('a', now)).toBe(1);
});

test('a dropped transaction leaves the store as it was', () => {
  const store = new PartitionStore<number>('s', undefined);
  store.apply(new Map([['a', { value: 1, expiresAt: undefined }]]));
  const txn = new StoreTransaction(store, clock);
  txn.put('a', 2);
  txn.delete('a');
  expect(txn.get('a')).toBeUndefined();
  expect(store.read('a', now)).toBe(1);
});

test('a nested transaction sees its parent and is merged only on success', () => {
  const store = new PartitionStore<number>('s', undefined);
  const batch = new StoreTransaction(store, clock);
  batch.put('a', 1);
  const failed = batch.nested();
  expect(failed.get('a')).toBe(1);
  failed.put('b', 2);
  const succeeded = batch.nested();
  succeeded.put('c', 3);
  batch.merge(succeeded);
  expect(batch.get('b')).toBeUndefined();
  expect(batch.get('c')).toBe(3);
  expect([...batch.keys()].sort()).toEqual(['a', 'c']);
});

test('entries expire after their TTL and are listed oldest first for deletion', () => {
  const store = new PartitionStore<number>('dedup', 100);
  const txn = new StoreTransaction(store, clock);
  txn.put('old', 1);
  now = 1_050;
  const later = new StoreTransaction(store, clock);
  later.put('new', 2);
  store.apply(txn.changes);
  store.apply(later.changes);
  now = 1_120;
  expect(store.read('old', now)).toBeUndefined();
  expect(store.read('new', now)).toBe(2);
  expect(store.expired(now, 10)).toEqual(['old']);
  now = 1_200;
  expect(store.expired(now, 1)).toEqual(['old']);
});

test('the changelog holds each change once: values encoded, deletes as tombstones; restore replays it', () => {
  const store = new PartitionStore<{ n: number }>('s', undefined);
  const txn = new StoreTransaction(store, clock);
  txn.put('a', { n: 1 });
  txn.put('a', { n: 2 });
  txn.put('b', { n: 3 });
  txn.delete('b');
  const changelog = txn.changelog();
  expect(changelog.map((c) => c.key)).toEqual(['a', 'b']);
  expect(changelog[1]!.value).toBeNull();
  expect(decodeEntry(changelog[0]!.value!)).toEqual({ value: { n: 2 }, expiresAt: undefined });
  const restored = new PartitionStore<{ n: number }>('s', undefined);
  for (const c of changelog) restored.restore(c.key, c.value);
  expect(restored.read('a', now)).toEqual({ n: 2 });
  expect(restored.size).toBe(1);
  expect(decodeEntry(encodeEntry({ value: 5, expiresAt: 9 }))).toEqual({ value: 5, expiresAt: 9 });
});
