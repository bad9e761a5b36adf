import { compatibilityProblems, isCompatibilityLevel, parseAvro, type AvroNode, type CompatibilityLevel, type VersionedSchema } from '@sluice/contracts';
import { notFound, REGISTRY_ERRORS, RegistryError } from './errors';
import { parseWithReferences, readSubmission, resolveReferences, type ParsedSchema, type ReferenceLoader, type SchemaReference } from './schema';
import { GLOBAL, type PgStore, type SchemaRow, type VersionRow, type WriteTx } from './store';

export const MODES = ['READWRITE', 'READONLY'] as const;
export type Mode = (typeof MODES)[number];

export interface SubjectVersion {
  subject: string;
  version: number;
  id: number;
  schema: string;
  schemaType?: string;
  references?: SchemaReference[];
}

/** What resolving references reads: a subject's versions and schemas by id (the pool's, or a write transaction's). */
type Reader = Pick<WriteTx, 'versions' | 'schemaById'>;

/** A version in a path: a number from 1, or `latest` / `-1`. */
export type VersionSelector = number | 'latest';

export function parseVersion(raw: string): VersionSelector {
  if (raw === 'latest' || raw === '-1') return 'latest';
  const n = Number(raw);
  if (/^\d+$/.test(raw) && Number.isSafeInteger(n) && n >= 1 && n <= 2 ** 31 - 1) return n;
  throw new RegistryError(
    REGISTRY_ERRORS.invalidVersion,
    `The specified version '${raw}' is not a valid version id. Allowed values are between [1, 2^31-1] and the string "latest"`,
  );
}

/** The versions a level compares a new schema with: none, the latest, or all (deleted ones never). */
function versionsToCheck(level: CompatibilityLevel, rows: VersionRow[]): VersionRow[] {
  const live = rows.filter((r) => !r.deleted);
  if (level === 'NONE') return [];
  return level.endsWith('_TRANSITIVE') ? live : live.slice(-1);
}

/**
 * The rules of a Confluent-compatible registry over a Postgres store.
 * Schemas by id never change, so they are cached for good; a subject's
 * versions are cached until any replica writes to that subject.
 */
export class Registry {
  private readonly schemaCache = new Map<number, SchemaRow & { node: AvroNode }>();
  private readonly versionCache = new Map<string, Promise<VersionRow[]>>();

  constructor(
    private readonly store: PgStore,
    private readonly defaultCompatibility: CompatibilityLevel,
  ) {
    store.onCommitted = (subjects) => subjects.forEach((s) => this.invalidate(s));
  }

  /** Called when a replica changed `subject`; `undefined` drops every cached subject. */
  invalidate(subject: string | undefined): void {
    if (subject === undefined) this.versionCache.clear();
    else this.versionCache.delete(subject);
  }

  private versions(subject: string): Promise<VersionRow[]> {
    let cached = this.versionCache.get(subject);
    if (!cached) {
      cached = this.store.versions(subject);
      this.versionCache.set(subject, cached);
      cached.catch(() => this.versionCache.delete(subject));
    }
    return cached;
  }

  private readonly reader: Reader = { versions: (subject) => this.versions(subject), schemaById: (id) => this.store.schemaById(id) };

  /**
   * Loads what a reference points at. Any version, soft-deleted ones too (a schema that references one
   * stays readable); -1: the latest live version.
   */
  private loader(reader: Reader): ReferenceLoader {
    return async (subject, version) => {
      const rows = await reader.versions(subject);
      const row = version === -1 ? rows.filter((r) => !r.deleted).at(-1) : rows.find((r) => r.version === version);
      const schema = row ? await reader.schemaById(row.schemaId) : undefined;
      return row && schema ? { version: row.version, json: JSON.parse(schema.schema) as unknown, references: schema.references } : undefined;
    };
  }

  /** A submission checked as Avro with its references resolved (recursively); every mistake is a 42x. */
  private async parse(body: unknown, reader: Reader = this.reader): Promise<ParsedSchema> {
    const submission = readSubmission(body);
    const { references, schemas } = await resolveReferences(submission.references, this.loader(reader));
    return parseWithReferences({ ...submission, references }, schemas);
  }

  private async schema(id: number, reader: Reader = this.reader): Promise<SchemaRow & { node: AvroNode }> {
    const cached = this.schemaCache.get(id);
    if (cached) return cached;
    const row = await reader.schemaById(id);
    if (!row) throw notFound.schema();
    let node: AvroNode;
    if (row.references.length === 0) node = parseAvro(JSON.parse(row.schema) as never);
    else {
      const { schemas } = await resolveReferences(row.references, this.loader(reader));
      node = parseWithReferences({ text: row.schema, json: JSON.parse(row.schema) as unknown, references: row.references }, schemas).node;
    }
    const entry = { ...row, node };
    this.schemaCache.set(id, entry);
    return entry;
  }

  private async describe(row: VersionRow): Promise<SubjectVersion> {
    const schema = await this.schema(row.schemaId);
    return {
      subject: row.subject,
      version: row.version,
      id: row.schemaId,
      schema: schema.schema,
      ...(schema.schemaType !== 'AVRO' ? { schemaType: schema.schemaType } : {}),
      ...(schema.references.length > 0 ? { references: schema.references } : {}),
    };
  }

  private async liveNodes(rows: VersionRow[], tx?: WriteTx): Promise<VersionedSchema[]> {
    const nodes: VersionedSchema[] = [];
    // One at a time: inside a transaction they share its single connection.
    for (const row of rows.filter((r) => !r.deleted)) {
      nodes.push({ version: row.version, node: (await this.schema(row.schemaId, tx)).node });
    }
    return nodes;
  }

  async compatibilityOf(subject: string): Promise<CompatibilityLevel> {
    const level = (await this.store.setting('config', subject)) ?? (await this.store.setting('config', GLOBAL)) ?? this.defaultCompatibility;
    return isCompatibilityLevel(level) ? level : this.defaultCompatibility;
  }

  private async assertWritable(subject: string): Promise<void> {
    const mode = (await this.store.setting('mode', subject)) ?? (await this.store.setting('mode', GLOBAL)) ?? 'READWRITE';
    if (mode === 'READONLY') {
      throw new RegistryError(REGISTRY_ERRORS.operationNotPermitted, `Subject ${subject} is in read-only mode`);
    }
  }

  async subjects(includeDeleted: boolean): Promise<string[]> {
    return this.store.subjects(includeDeleted);
  }

  async versionNumbers(subject: string, includeDeleted: boolean): Promise<number[]> {
    const rows = (await this.versions(subject)).filter((r) => includeDeleted || !r.deleted);
    if (rows.length === 0) throw notFound.subject(subject);
    return rows.map((r) => r.version);
  }

  async getVersion(subject: string, selector: VersionSelector, includeDeleted: boolean): Promise<SubjectVersion> {
    const rows = (await this.versions(subject)).filter((r) => includeDeleted || !r.deleted);
    if (rows.length === 0) throw notFound.subject(subject);
    const row = selector === 'latest' ? rows[rows.length - 1] : rows.find((r) => r.version === selector);
    if (!row) throw notFound.version(subject, selector);
    return this.describe(row);
  }

  async register(subject: string, body: unknown): Promise<{ id: number }> {
    readSubmission(body);
    await this.assertWritable(subject);
    const level = await this.compatibilityOf(subject);
    return this.store.write(async (tx) => {
      // References resolve inside the transaction: what they point at cannot be deleted meanwhile.
      const parsed = await this.parse(body, tx);
      const rows = await tx.versions(subject);
      const live = rows.filter((r) => !r.deleted);
      const sameId = await tx.schemaIdByFingerprint(parsed.fingerprint);
      const existing = sameId === undefined ? undefined : live.find((r) => r.schemaId === sameId);
      if (existing) return { id: existing.schemaId };
      const problems = compatibilityProblems(level, parsed.node, await this.liveNodes(versionsToCheck(level, rows), tx));
      if (problems.length > 0) {
        throw new RegistryError(
          REGISTRY_ERRORS.incompatibleSchema,
          `Schema being registered is incompatible with an earlier schema for subject "${subject}", details: ${problems.join('; ')}`,
        );
      }
      const id = sameId ?? (await tx.insertSchema(parsed.fingerprint, 'AVRO', parsed.text, parsed.references));
      const version = rows.reduce((max, r) => Math.max(max, r.version), 0) + 1;
      await tx.insertVersion(subject, version, id);
      tx.changed(subject);
      return { id };
    });
  }

  async lookup(subject: string, body: unknown, includeDeleted: boolean): Promise<SubjectVersion> {
    const parsed = await this.parse(body);
    const rows = (await this.versions(subject)).filter((r) => includeDeleted || !r.deleted);
    if (rows.length === 0) throw notFound.subject(subject);
    // The same schema: the same text (white space aside) and the same references.
    for (const row of [...rows].reverse()) {
      const schema = await this.schema(row.schemaId);
      if (JSON.stringify(JSON.parse(schema.schema)) === JSON.stringify(parsed.json) && JSON.stringify(schema.references) === JSON.stringify(parsed.references)) {
        return this.describe(row);
      }
    }
    throw notFound.schema();
  }

  async deleteSubject(subject: string, permanent: boolean): Promise<number[]> {
    await this.assertWritable(subject);
    return this.store.write(async (tx) => {
      const rows = await tx.versions(subject);
      if (rows.length === 0) throw notFound.subject(subject);
      const versions = rows.map((r) => r.version);
      if (permanent) {
        if (rows.some((r) => !r.deleted)) {
          throw new RegistryError(
            REGISTRY_ERRORS.subjectNotSoftDeleted,
            `Subject '${subject}' was not deleted first before being permanently deleted`,
          );
        }
        for (const version of versions) await this.assertNotReferenced(tx, subject, version, true);
        await tx.deleteVersions(subject, versions);
        await tx.setSetting('config', subject, undefined);
        await tx.setSetting('mode', subject, undefined);
      } else {
        const live = rows.filter((r) => !r.deleted).map((r) => r.version);
        for (const version of live) await this.assertNotReferenced(tx, subject, version, false);
        if (live.length === 0) {
          throw new RegistryError(REGISTRY_ERRORS.subjectSoftDeleted, `Subject '${subject}' was soft deleted. Set permanent=true to delete permanently`);
        }
        await tx.markDeleted(subject, live);
        tx.changed(subject);
        return live;
      }
      tx.changed(subject);
      return versions;
    });
  }

  async deleteVersion(subject: string, selector: VersionSelector, permanent: boolean): Promise<number> {
    await this.assertWritable(subject);
    return this.store.write(async (tx) => {
      const rows = await tx.versions(subject);
      if (rows.length === 0) throw notFound.subject(subject);
      const candidates = selector === 'latest' ? rows.filter((r) => permanent || !r.deleted) : rows;
      const row = selector === 'latest' ? candidates[candidates.length - 1] : rows.find((r) => r.version === selector);
      if (!row) throw notFound.version(subject, selector);
      await this.assertNotReferenced(tx, subject, row.version, permanent);
      if (permanent) {
        if (!row.deleted) {
          throw new RegistryError(
            REGISTRY_ERRORS.versionNotSoftDeleted,
            `Subject '${subject}' Version ${row.version} was not deleted first before being permanently deleted`,
          );
        }
        await tx.deleteVersions(subject, [row.version]);
      } else {
        if (row.deleted) {
          throw new RegistryError(
            REGISTRY_ERRORS.versionSoftDeleted,
            `Subject '${subject}' Version ${row.version} was soft deleted. Set permanent=true to delete permanently`,
          );
        }
        await tx.markDeleted(subject, [row.version]);
      }
      tx.changed(subject);
      return row.version;
    });
  }

  /**
   * A version other schemas reference stays: soft deletion is refused while a live version of a
   * referencing schema exists, permanent deletion while any version of one does (42206).
   */
  private async assertNotReferenced(tx: WriteTx, subject: string, version: number, permanent: boolean): Promise<void> {
    const referrers = await tx.referencedBy(subject, version, !permanent);
    if (referrers.length > 0) {
      throw new RegistryError(
        REGISTRY_ERRORS.referenceExists,
        `One or more references exist to the schema {subject=${subject}, version=${version}}: schema ids ${referrers.join(', ')}; delete the versions that use them first.`,
      );
    }
  }

  /** Ids of the schemas (used by a live version) that reference this version. */
  async referencedBy(subject: string, selector: VersionSelector): Promise<number[]> {
    const rows = await this.versions(subject);
    if (rows.length === 0) throw notFound.subject(subject);
    const live = rows.filter((r) => !r.deleted);
    const row = selector === 'latest' ? live.at(-1) : rows.find((r) => r.version === selector);
    if (!row) throw notFound.version(subject, selector);
    return this.store.referencedBy(subject, row.version, true);
  }

  async schemaById(id: number): Promise<{ schema: string; schemaType?: string; references?: SchemaReference[] }> {
    const schema = await this.schema(id);
    return {
      schema: schema.schema,
      ...(schema.schemaType !== 'AVRO' ? { schemaType: schema.schemaType } : {}),
      ...(schema.references.length > 0 ? { references: schema.references } : {}),
    };
  }

  async subjectVersionsOfSchema(id: number, includeDeleted: boolean): Promise<{ subject: string; version: number }[]> {
    await this.schema(id);
    return this.store.versionsOfSchema(id, includeDeleted);
  }

  /** Checks a schema against one version, or for `latest` against what the subject's level requires. */
  async checkCompatibility(subject: string, selector: VersionSelector, body: unknown): Promise<{ compatible: boolean; messages: string[] }> {
    const parsed = await this.parse(body);
    const live = (await this.versions(subject)).filter((r) => !r.deleted);
    if (live.length === 0) throw selector === 'latest' ? notFound.subject(subject) : notFound.version(subject, selector);
    const level = await this.compatibilityOf(subject);
    let against: VersionRow[];
    if (selector === 'latest') {
      against = versionsToCheck(level, live);
    } else {
      const row = live.find((r) => r.version === selector);
      if (!row) throw notFound.version(subject, selector);
      against = [row];
    }
    const messages = compatibilityProblems(level, parsed.node, await this.liveNodes(against));
    return { compatible: messages.length === 0, messages };
  }

  async getConfig(subject: string | undefined, defaultToGlobal: boolean): Promise<CompatibilityLevel> {
    if (subject === undefined) return this.compatibilityOf(GLOBAL);
    const level = await this.store.setting('config', subject);
    if (level !== undefined && isCompatibilityLevel(level)) return level;
    if (defaultToGlobal) return this.compatibilityOf(GLOBAL);
    throw new RegistryError(
      REGISTRY_ERRORS.subjectCompatibilityNotConfigured,
      `Subject '${subject}' does not have subject-level compatibility configured`,
    );
  }

  async setConfig(subject: string | undefined, body: unknown): Promise<CompatibilityLevel> {
    const level = (body as { compatibility?: unknown } | null)?.compatibility;
    if (!isCompatibilityLevel(level)) {
      throw new RegistryError(REGISTRY_ERRORS.invalidCompatibilityLevel, `Invalid compatibility level. Valid values are none, backward, forward, full, backward_transitive, forward_transitive, and full_transitive`);
    }
    await this.store.write(async (tx) => tx.setSetting('config', subject ?? GLOBAL, level));
    return level;
  }

  async deleteConfig(subject: string): Promise<CompatibilityLevel> {
    const previous = await this.getConfig(subject, false);
    await this.store.write(async (tx) => tx.setSetting('config', subject, undefined));
    return previous;
  }

  async getMode(subject: string | undefined, defaultToGlobal: boolean): Promise<Mode> {
    const own = await this.store.setting('mode', subject ?? GLOBAL);
    if (own !== undefined) return own as Mode;
    if (subject === undefined || defaultToGlobal) return ((await this.store.setting('mode', GLOBAL)) as Mode | undefined) ?? 'READWRITE';
    throw new RegistryError(REGISTRY_ERRORS.subjectModeNotConfigured, `Subject '${subject}' does not have subject-level mode configured`);
  }

  async setMode(subject: string | undefined, body: unknown): Promise<Mode> {
    const mode = (body as { mode?: unknown } | null)?.mode;
    if (typeof mode !== 'string' || !(MODES as readonly string[]).includes(mode)) {
      throw new RegistryError(REGISTRY_ERRORS.invalidMode, `Invalid mode. Valid values are READWRITE and READONLY.`);
    }
    await this.store.write(async (tx) => tx.setSetting('mode', subject ?? GLOBAL, mode));
    return mode as Mode;
  }

  async deleteMode(subject: string): Promise<Mode> {
    const previous = await this.getMode(subject, false);
    await this.store.write(async (tx) => tx.setSetting('mode', subject, undefined));
    return previous;
  }
}
