import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, rm, link, stat, unlink } from 'node:fs/promises';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DeleteObjectCommand, GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client, S3ServiceException } from '@aws-sdk/client-s3';

/** An object of the archive: its key (relative, `/`-separated) and size. */
export interface StoredObject {
  key: string;
  size: number;
  modifiedAt: Date;
}

/**
 * Where the archive lives: a local directory or an S3-compatible bucket. Every write is atomic: an object
 * is either absent or complete, never half-written, for readers and after a crash.
 */
export interface ArchiveStorage {
  /** Where it is, for logs and messages. */
  readonly location: string;
  /** Writes `key` whole, replacing it if it exists. */
  put(key: string, body: Uint8Array): Promise<void>;
  /** Writes `key` only if it does not exist yet; false when it existed. */
  create(key: string, body: Uint8Array): Promise<boolean>;
  /** The object's bytes, or undefined when it does not exist. */
  get(key: string): Promise<Uint8Array | undefined>;
  /** Whether the object exists, without reading it. */
  exists(key: string): Promise<boolean>;
  /** Objects whose key starts with `prefix`, in key order. */
  list(prefix: string): Promise<StoredObject[]>;
  remove(key: string): Promise<void>;
  /** Throws when the storage cannot be reached. */
  ping(): Promise<void>;
  /**
   * Removes what a writer killed in the middle of a write left behind, for the temporaries named with
   * `scope` (a partition). Objects are never half-visible, so only local temporaries exist.
   */
  cleanTemporaries(scope: string): Promise<number>;
}

const TMP_DIR = '_sluice/tmp';

/**
 * A directory. A file is written under `_sluice/tmp/<scope>/`, flushed to disk, then renamed into place
 * (atomic on one file system) and its directory flushed: after `kill -9` or a power cut a file is either
 * complete or not there. `create` links the temporary into place, which fails if the name exists.
 */
export class LocalStorage implements ArchiveStorage {
  constructor(readonly root: string) {}

  get location(): string {
    return this.root;
  }

  async put(key: string, body: Uint8Array): Promise<void> {
    const tmp = await this.writeTemporary(key, body);
    const target = this.path(key);
    await mkdir(dirname(target), { recursive: true });
    await rename(tmp, target);
    await syncDirectory(dirname(target));
  }

  async create(key: string, body: Uint8Array): Promise<boolean> {
    const tmp = await this.writeTemporary(key, body);
    const target = this.path(key);
    await mkdir(dirname(target), { recursive: true });
    try {
      await link(tmp, target);
      await syncDirectory(dirname(target));
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw err;
    } finally {
      await unlink(tmp).catch(() => undefined);
    }
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    try {
      return await readFile(this.path(key));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  async exists(key: string): Promise<boolean> {
    try {
      await stat(this.path(key));
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw err;
    }
  }

  async list(prefix: string): Promise<StoredObject[]> {
    // The deepest directory the prefix names, then every file under it that matches.
    const base = prefix.includes('/') ? prefix.slice(0, prefix.lastIndexOf('/')) : '';
    const found: StoredObject[] = [];
    const walk = async (dir: string): Promise<void> => {
      let entries;
      try {
        entries = await readdir(dir, { withFileTypes: true });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
        throw err;
      }
      for (const entry of entries) {
        const full = join(dir, entry.name);
        const key = relative(this.root, full).split(sep).join('/');
        if (entry.isDirectory()) {
          if (key === TMP_DIR) continue;
          if (prefix.startsWith(`${key}/`) || key.startsWith(prefix) || prefix === '') await walk(full);
        } else if (entry.isFile() && key.startsWith(prefix)) {
          const info = await stat(full);
          found.push({ key, size: info.size, modifiedAt: info.mtime });
        }
      }
    };
    await walk(join(this.root, base));
    return found.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  async remove(key: string): Promise<void> {
    await rm(this.path(key), { force: true });
  }

  async ping(): Promise<void> {
    await mkdir(this.root, { recursive: true });
  }

  async cleanTemporaries(scope: string): Promise<number> {
    const dir = join(this.root, TMP_DIR, scope);
    let names: string[];
    try {
      names = await readdir(dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
      throw err;
    }
    await Promise.all(names.map((name) => rm(join(dir, name), { force: true })));
    return names.length;
  }

  private path(key: string): string {
    if (key.split('/').some((part) => part === '..' || part === '')) throw new Error(`invalid archive key "${key}"`);
    return join(this.root, ...key.split('/'));
  }

  /** The temporary's scope is the first path segment after the table (the partition's files) or `misc`. */
  private async writeTemporary(key: string, body: Uint8Array): Promise<string> {
    const scope = temporaryScope(key);
    const dir = join(this.root, TMP_DIR, scope);
    await mkdir(dir, { recursive: true });
    const name = `${key.split('/').pop()}.${process.pid}-${randomBytes(6).toString('hex')}.tmp`;
    const tmp = join(dir, name);
    const handle = await open(tmp, 'w');
    try {
      await handle.writeFile(body);
      await handle.sync();
    } finally {
      await handle.close();
    }
    return tmp;
  }
}

/** A JSON object of the archive (a roll manifest, a compaction journal), or undefined when it does not exist. */
export async function readJson<T>(storage: ArchiveStorage, key: string): Promise<T | undefined> {
  const bytes = await storage.get(key);
  return bytes ? (JSON.parse(Buffer.from(bytes).toString('utf8')) as T) : undefined;
}

/** `part-3-…` and roll manifests of partition 3 share the scope `p3`; anything else is `misc`. */
export function temporaryScope(key: string): string {
  const file = key.split('/').pop() ?? '';
  const part = /^part-(\d+)-/.exec(file);
  if (part) return `p${part[1]}`;
  const manifest = /(?:^|\/)rolls\/[^/]+\/(\d+)\//.exec(key);
  if (manifest) return `p${manifest[1]}`;
  return 'misc';
}

async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * A bucket of an S3-compatible store, through the AWS SDK. PutObject makes an object visible only when
 * it is complete; `create` uses a conditional write (`If-None-Match: *`). Endpoint, region and credentials
 * come from the usual AWS variables (AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL, AWS_REGION,
 * AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY).
 */
export class S3Storage implements ArchiveStorage {
  private readonly client: S3Client;

  constructor(
    readonly bucket: string,
    readonly prefix: string,
    options: { forcePathStyle: boolean; region: string; maxAttempts?: number },
  ) {
    this.client = new S3Client({ forcePathStyle: options.forcePathStyle, region: options.region, maxAttempts: options.maxAttempts ?? 3 });
  }

  get location(): string {
    return `s3://${this.bucket}/${this.prefix}`;
  }

  async put(key: string, body: Uint8Array): Promise<void> {
    await this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: this.key(key), Body: body }));
  }

  async create(key: string, body: Uint8Array): Promise<boolean> {
    try {
      await this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: this.key(key), Body: body, IfNoneMatch: '*' }));
      return true;
    } catch (err) {
      if (err instanceof S3ServiceException && err.$metadata.httpStatusCode === 412) return false;
      throw err;
    }
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    try {
      const res = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.key(key) }));
      return await res.Body!.transformToByteArray();
    } catch (err) {
      if (err instanceof S3ServiceException && err.$metadata.httpStatusCode === 404) return undefined;
      throw err;
    }
  }

  async exists(key: string): Promise<boolean> {
    try {
      await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.key(key) }));
      return true;
    } catch (err) {
      if (err instanceof S3ServiceException && err.$metadata.httpStatusCode === 404) return false;
      throw err;
    }
  }

  async list(prefix: string): Promise<StoredObject[]> {
    const found: StoredObject[] = [];
    let token: string | undefined;
    do {
      const res = await this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: this.key(prefix), ContinuationToken: token }));
      for (const item of res.Contents ?? []) {
        found.push({ key: item.Key!.slice(this.prefix.length), size: item.Size ?? 0, modifiedAt: item.LastModified ?? new Date(0) });
      }
      token = res.IsTruncated ? res.NextContinuationToken : undefined;
    } while (token);
    return found.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  async remove(key: string): Promise<void> {
    await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.key(key) }));
  }

  async ping(): Promise<void> {
    await this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: this.prefix, MaxKeys: 1 }));
  }

  cleanTemporaries(): Promise<number> {
    return Promise.resolve(0);
  }

  close(): void {
    this.client.destroy();
  }

  private key(key: string): string {
    return `${this.prefix}${key}`;
  }
}

/**
 * The storage an ARCHIVE_URL names: `s3://bucket/prefix`, `file:///path`, or a plain path (relative to
 * the working directory).
 */
export function openStorage(url: string, options: { forcePathStyle: boolean; region: string }): ArchiveStorage {
  if (url.startsWith('s3://')) {
    const rest = url.slice('s3://'.length);
    const slash = rest.indexOf('/');
    const bucket = slash < 0 ? rest : rest.slice(0, slash);
    let prefix = slash < 0 ? '' : rest.slice(slash + 1);
    if (prefix !== '' && !prefix.endsWith('/')) prefix += '/';
    if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) throw new Error(`"${bucket}" is not an S3 bucket name`);
    return new S3Storage(bucket, prefix, options);
  }
  if (url.startsWith('file://')) return new LocalStorage(fileURLToPath(url));
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(url)) throw new Error(`unsupported archive URL scheme in "${url}" (use s3://, file:// or a path)`);
  return new LocalStorage(resolve(url));
}
