import { createHash, timingSafeEqual } from 'node:crypto';

const digest = (value: string) => createHash('sha256').update(value).digest();

/**
 * The configured API keys, compared in constant time: digests of equal length,
 * and every key is compared whatever the outcome of the others.
 */
export class ApiKeys {
  private readonly digests: { id: string; digest: Buffer }[];

  constructor(keys: string[]) {
    // A key's id (for logs and rate limits) is a prefix of its digest, never the key.
    this.digests = keys.map((key) => ({ id: digest(key).toString('hex').slice(0, 12), digest: digest(key) }));
  }

  get open(): boolean {
    return this.digests.length === 0;
  }

  /** The id of the matching key, or undefined. */
  match(presented: string | undefined): string | undefined {
    if (presented === undefined) return undefined;
    const candidate = digest(presented);
    let found: string | undefined;
    for (const { id, digest: known } of this.digests) if (timingSafeEqual(candidate, known)) found = id;
    return found;
  }
}

/** The key from `Authorization: Bearer <key>` or `X-API-Key: <key>`. */
export function presentedKey(headers: { authorization?: string | undefined; 'x-api-key'?: string | string[] | undefined }): string | undefined {
  const auth = headers.authorization;
  if (auth && /^Bearer\s+/i.test(auth)) return auth.replace(/^Bearer\s+/i, '').trim();
  const header = headers['x-api-key'];
  return Array.isArray(header) ? header[0] : header;
}
