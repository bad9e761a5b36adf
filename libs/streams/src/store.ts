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

export class PartitionStore<V> {
  /** Insertion order is expiry order as long as every put uses the same TTL (a put moves the key to the end). */
  private readonly entries = new Map<string, Entry<V>>();

  constructor(
    readonly name: string,
    private readonly ttlMs: number | undefined,
  ) {}

  get size(): number {
    return this.entries.size;
  }

  /** Applies one changelog record while restoring. */
  restore(key: string, value: Buffer | null): void {
    if (value === null) this.entries.delete(key);
    else {
      this.entries.delete(key);
      this.entries.set(key, decodeEntry<V>(value));
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

  /** Folds another transaction's changes (one record's) into this one. */
  merge(other: StoreTransaction<V>): void {
    for (const [key, entry] of other.changes) this.changes.set(key, entry);
  }

  changelog(): ChangelogRecord[] {
    return [...this.changes].map(([key, entry]) => ({ key, value: entry === null ? null : encodeEntry(entry) }));
  }
}
