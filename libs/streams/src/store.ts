/**
 * A key-value state store of one partition: in memory, backed by a compacted
 * changelog. Writes of a transaction are held in an overlay and reach the
 * store only when the transaction commits, so an aborted transaction leaves no
 * trace. Entries may expire (TTL) so that the store stays bounded.
 */

interface Entry<V> {
  value: V;
  /** Epoch ms after which the entry is gone; undefined: never. */
  expiresAt: number | undefined;
}

/** One change of a store, as it is written to the changelog. */
export interface ChangelogRecord {
  key: string;
  /** null deletes the key (a tombstone). */
  value: Buffer | null;
}

export function encodeEntry<V>(entry: Entry<V>): Buffer {
  return Buffer.from(JSON.stringify({ v: entry.value, e: entry.expiresAt ?? null }));
}

export function decodeEntry<V>(bytes: Buffer): Entry<V> {
  const parsed = JSON.parse(bytes.toString()) as { v: V; e: number | null };
  return { value: parsed.v, expiresAt: parsed.e ?? undefined };
}

/**
 * A secondary index of a store: a number derived from each entry (undefined: not indexed), so that a
 * processor finds the entries due by that number without scanning the store (windows by close time).
 */
export type IndexOf = (key: string, value: unknown) => number | undefined;

/** Keys grouped by index value, the values kept sorted: entries whose value is at most a bound, in order. */
export class SortedIndex {
  private readonly buckets = new Map<number, Set<string>>();
  /** The bucket values, ascending. */
  private readonly order: number[] = [];
  private readonly valueOf = new Map<string, number>();

  get size(): number {
    return this.valueOf.size;
  }

  set(key: string, value: number | undefined): void {
    const previous = this.valueOf.get(key);
    if (previous === value) return;
    if (previous !== undefined) {
      const bucket = this.buckets.get(previous)!;
      bucket.delete(key);
      if (bucket.size === 0) {
        this.buckets.delete(previous);
        this.order.splice(this.position(previous), 1);
      }
      this.valueOf.delete(key);
    }
    if (value === undefined) return;
    let bucket = this.buckets.get(value);
    if (!bucket) {
      bucket = new Set();
      this.buckets.set(value, bucket);
      this.order.splice(this.position(value), 0, value);
    }
    bucket.add(key);
    this.valueOf.set(key, value);
  }

  get(key: string): number | undefined {
    return this.valueOf.get(key);
  }

  /** Keys whose value is at most `bound`, lowest first. */
  *upTo(bound: number): IterableIterator<string> {
    const due: number[] = [];
    for (const value of this.order) {
      if (value > bound) break;
      due.push(value);
    }
    // Copies: the caller may change the store (and so this index) while it goes through them.
    for (const value of due) {
      const bucket = this.buckets.get(value);
      if (bucket) yield* [...bucket];
    }
  }

  /** Where `value` is or would be in `order` (binary search). */
  private position(value: number): number {
    let low = 0;
    let high = this.order.length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if (this.order[mid]! < value) low = mid + 1;
      else high = mid;
    }
    return low;
  }
}

export class PartitionStore<V> {
  /** Insertion order is expiry order as long as every put uses the same TTL (a put moves the key to the end). */
  private readonly entries = new Map<string, Entry<V>>();
  private readonly indexes = new Map<string, { of: IndexOf; index: SortedIndex }>();

  constructor(
    readonly name: string,
    private readonly ttlMs: number | undefined,
    indexes: Record<string, IndexOf> = {},
  ) {
    for (const [indexName, of] of Object.entries(indexes)) this.indexes.set(indexName, { of, index: new SortedIndex() });
  }

  get size(): number {
    return this.entries.size;
  }

  /** Entries in the index `name`. */
  indexSize(name: string): number {
    return this.index(name).size;
  }

  /** The index `name`: committed entries only. */
  index(name: string): SortedIndex {
    const found = this.indexes.get(name);
    if (!found) throw new Error(`store "${this.name}" has no index "${name}"`);
    return found.index;
  }

  /** The value an index gives an entry (a transaction's own entries are indexed as they would be once committed). */
  indexValue(name: string, key: string, value: V): number | undefined {
    const found = this.indexes.get(name);
    if (!found) throw new Error(`store "${this.name}" has no index "${name}"`);
    return found.of(key, value);
  }

  private reindex(key: string, entry: Entry<V> | undefined): void {
    for (const { of, index } of this.indexes.values()) index.set(key, entry === undefined ? undefined : of(key, entry.value));
  }

  /** Applies one changelog record while restoring. */
  restore(key: string, value: Buffer | null): void {
    this.entries.delete(key);
    if (value === null) this.reindex(key, undefined);
    else {
      const entry = decodeEntry<V>(value);
      this.entries.set(key, entry);
      this.reindex(key, entry);
    }
  }

  read(key: string, now: number): V | undefined {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    return entry.expiresAt !== undefined && entry.expiresAt <= now ? undefined : entry.value;
  }

  newEntry(value: V, now: number): Entry<V> {
    return { value, expiresAt: this.ttlMs === undefined ? undefined : now + this.ttlMs };
  }

  /** Makes committed changes visible. */
  apply(changes: Map<string, Entry<V> | null>): void {
    for (const [key, entry] of changes) {
      this.entries.delete(key);
      if (entry !== null) this.entries.set(key, entry);
      this.reindex(key, entry ?? undefined);
    }
  }

  /** Expired keys, oldest first, at most `limit`: the runtime deletes them through the changelog. */
  expired(now: number, limit: number): string[] {
    const keys: string[] = [];
    for (const [key, entry] of this.entries) {
      if (keys.length >= limit) break;
      if (entry.expiresAt === undefined || entry.expiresAt > now) {
        // Entries with a TTL expire in insertion order; the first live one ends the scan.
        if (this.ttlMs !== undefined) break;
        continue;
      }
      keys.push(key);
    }
    return keys;
  }

  keys(): IterableIterator<string> {
    return this.entries.keys();
  }

  *values(): IterableIterator<V> {
    for (const entry of this.entries.values()) yield entry.value;
  }
}

/**
 * The view a processor has of a store during a transaction: reads see the
 * transaction's own writes first.
 */
export class StoreTransaction<V> {
  readonly changes = new Map<string, Entry<V> | null>();

  constructor(
    private readonly store: PartitionStore<V>,
    private readonly now: () => number,
    /** The transaction this one is nested in (one record inside a batch): its writes are visible here. */
    private readonly parent?: StoreTransaction<V>,
  ) {}

  /** A nested view for one record: merged into this one if the record succeeds, dropped if not. */
  nested(): StoreTransaction<V> {
    return new StoreTransaction(this.store, this.now, this);
  }

  get(key: string): V | undefined {
    if (this.changes.has(key)) {
      const entry = this.changes.get(key);
      return entry === null || entry === undefined ? undefined : entry.value;
    }
    return this.parent ? this.parent.get(key) : this.store.read(key, this.now());
  }

  has(key: string): boolean {
    return this.get(key) !== undefined;
  }

  put(key: string, value: V): void {
    this.changes.set(key, this.store.newEntry(value, this.now()));
  }

  delete(key: string): void {
    this.changes.set(key, null);
  }

  /** Keys of the committed store and of this transaction, for processors that scan their state. */
  *keys(): IterableIterator<string> {
    const below = this.parent ? this.parent.keys() : this.store.keys();
    for (const key of below) if (!this.changes.has(key) && this.get(key) !== undefined) yield key;
    for (const [key, entry] of this.changes) if (entry !== null) yield key;
  }

  /**
   * Keys whose value in the index `name` is at most `bound`, as this transaction sees the store: the
   * committed index without the keys this transaction changed, then the changed keys that qualify.
   * Costs what is due, not what is in the store.
   */
  *indexedUpTo(name: string, bound: number): IterableIterator<string> {
    for (const key of this.store.index(name).upTo(bound)) if (!this.changedHere(key) && this.get(key) !== undefined) yield key;
    for (const key of this.changedKeys()) {
      const value = this.get(key);
      if (value === undefined) continue;
      const indexed = this.store.indexValue(name, key, value);
      if (indexed !== undefined && indexed <= bound) yield key;
    }
  }

  private changedHere(key: string): boolean {
    return this.changes.has(key) || (this.parent?.changedHere(key) ?? false);
  }

  /** Every key written in this transaction or the ones it is nested in, once. */
  private changedKeys(): Set<string> {
    const keys = this.parent ? this.parent.changedKeys() : new Set<string>();
    for (const key of this.changes.keys()) keys.add(key);
    return keys;
  }

  /** Folds another transaction's changes (one record's) into this one. */
  merge(other: StoreTransaction<V>): void {
    for (const [key, entry] of other.changes) this.changes.set(key, entry);
  }

  changelog(): ChangelogRecord[] {
    return [...this.changes].map(([key, entry]) => ({ key, value: entry === null ? null : encodeEntry(entry) }));
  }
}
