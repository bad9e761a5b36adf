import { withTransaction } from '@sluice/runtime';
import type { Pool } from 'pg';
import type { SchemaReference } from './schema';

export interface VersionRow {
  subject: string;
  version: number;
  schemaId: number;
  deleted: boolean;
}

export interface SchemaRow {
  id: number;
  schemaType: string;
  schema: string;
  references: SchemaReference[];
}

/** Every write holds this transaction-level lock, so replicas never hand out one id or version twice. */
const WRITE_LOCK = 0x5c4e3a;
export const CHANGES_CHANNEL = 'schema_registry_changes';
/** The subject (or config/mode scope) used for the global level. */
export const GLOBAL = '';

/** Statements of one write transaction. */
export interface WriteTx {
  versions(subject: string): Promise<VersionRow[]>;
  /** Reads through the transaction's own connection: the pool may be exhausted by writers waiting for the lock. */
  schemaById(id: number): Promise<SchemaRow | undefined>;
  schemaIdByFingerprint(fingerprint: string): Promise<number | undefined>;
  insertSchema(fingerprint: string, schemaType: string, schema: string, references: SchemaReference[]): Promise<number>;
  /** Ids of the schemas that reference `subject` version `version` and are used by a version (live only: `liveOnly`). */
  referencedBy(subject: string, version: number, liveOnly: boolean): Promise<number[]>;
  insertVersion(subject: string, version: number, schemaId: number): Promise<void>;
  markDeleted(subject: string, versions: number[]): Promise<void>;
  deleteVersions(subject: string, versions: number[]): Promise<void>;
  setSetting(kind: 'config' | 'mode', scope: string, value: string | undefined): Promise<void>;
  /** Tells every replica that cached data about `subject` is stale. */
  changed(subject: string): void;
}

/**
 * The registry's Postgres storage. Tables live in their own Postgres schema,
 * so several registries (tests) can share one database.
 */
export class PgStore {
  private readonly t: { schemas: string; versions: string; settings: string };
  /** Told, after a write commits, which subjects it changed (this replica's caches; others hear it by NOTIFY). */
  onCommitted: (subjects: string[]) => void = () => undefined;

  constructor(
    private readonly pool: Pool,
    private readonly dbSchema: string,
  ) {
    if (!/^[a-z_][a-z0-9_]*$/.test(dbSchema)) throw new Error(`invalid database schema name "${dbSchema}"`);
    this.t = { schemas: `${dbSchema}.schemas`, versions: `${dbSchema}.subject_versions`, settings: `${dbSchema}.settings` };
  }

  /** Creates the tables if they are missing; safe when several replicas start at once. */
  async migrate(): Promise<void> {
    await withTransaction(this.pool, async (client) => {
      await client.query('select pg_advisory_xact_lock($1)', [WRITE_LOCK]);
      await client.query(`create schema if not exists ${this.dbSchema}`);
      await client.query(`create table if not exists ${this.t.schemas} (
        id integer primary key,
        fingerprint text not null unique,
        schema_type text not null,
        schema text not null,
        created_at timestamptz not null default now())`);
      // Schema references ([{ name, subject, version }]): part of a schema's identity.
      await client.query(`alter table ${this.t.schemas} add column if not exists refs jsonb not null default '[]'::jsonb`);
      await client.query(`create table if not exists ${this.t.versions} (
        subject text not null,
        version integer not null,
        schema_id integer not null references ${this.t.schemas}(id),
        deleted boolean not null default false,
        created_at timestamptz not null default now(),
        primary key (subject, version))`);
      await client.query(`create index if not exists subject_versions_schema_id on ${this.t.versions} (schema_id)`);
      await client.query(`create table if not exists ${this.t.settings} (
        kind text not null,
        scope text not null,
        value text not null,
        primary key (kind, scope))`);
    });
  }

  async ping(): Promise<void> {
    await this.pool.query('select 1');
  }

  async schemaById(id: number, client: Pick<Pool, 'query'> = this.pool): Promise<SchemaRow | undefined> {
    const res = await client.query<{ id: number; schema_type: string; schema: string; refs: SchemaReference[] }>(
      `select id, schema_type, schema, refs from ${this.t.schemas} where id = $1`,
      [id],
    );
    const row = res.rows[0];
    return row ? { id: row.id, schemaType: row.schema_type, schema: row.schema, references: row.refs } : undefined;
  }

  async referencedBy(subject: string, version: number, liveOnly: boolean, client: Pick<Pool, 'query'> = this.pool): Promise<number[]> {
    const res = await client.query<{ id: number }>(
      `select s.id from ${this.t.schemas} s
       where s.refs @> $1::jsonb
         and exists (select 1 from ${this.t.versions} v where v.schema_id = s.id ${liveOnly ? 'and not v.deleted' : ''})
       order by s.id`,
      [JSON.stringify([{ subject, version }])],
    );
    return res.rows.map((r) => r.id);
  }

  async versions(subject: string, client: Pick<Pool, 'query'> = this.pool): Promise<VersionRow[]> {
    const res = await client.query<{ version: number; schema_id: number; deleted: boolean }>(
      `select version, schema_id, deleted from ${this.t.versions} where subject = $1 order by version`,
      [subject],
    );
    return res.rows.map((r) => ({ subject, version: r.version, schemaId: r.schema_id, deleted: r.deleted }));
  }

  async subjects(includeDeleted: boolean): Promise<string[]> {
    const res = await this.pool.query<{ subject: string }>(
      `select distinct subject from ${this.t.versions} ${includeDeleted ? '' : 'where not deleted'} order by subject`,
    );
    return res.rows.map((r) => r.subject);
  }

  async versionsOfSchema(id: number, includeDeleted: boolean): Promise<{ subject: string; version: number }[]> {
    const res = await this.pool.query<{ subject: string; version: number }>(
      `select subject, version from ${this.t.versions} where schema_id = $1 ${includeDeleted ? '' : 'and not deleted'} order by subject, version`,
      [id],
    );
    return res.rows;
  }

  async setting(kind: 'config' | 'mode', scope: string): Promise<string | undefined> {
    const res = await this.pool.query<{ value: string }>(`select value from ${this.t.settings} where kind = $1 and scope = $2`, [kind, scope]);
    return res.rows[0]?.value;
  }

  /** Runs `work` in one transaction holding the write lock; notifies the other replicas after commit. */
  async write<T>(work: (tx: WriteTx) => Promise<T>): Promise<T> {
    const changed = new Set<string>();
    const result = await withTransaction(this.pool, async (client) => {
      await client.query('select pg_advisory_xact_lock($1)', [WRITE_LOCK]);
      const tx: WriteTx = {
        versions: (subject) => this.versions(subject, client),
        schemaById: (id) => this.schemaById(id, client),
        referencedBy: (subject, version, liveOnly) => this.referencedBy(subject, version, liveOnly, client),
        schemaIdByFingerprint: async (fingerprint) => {
          const res = await client.query<{ id: number }>(`select id from ${this.t.schemas} where fingerprint = $1`, [fingerprint]);
          return res.rows[0]?.id;
        },
        insertSchema: async (fingerprint, schemaType, schema, references) => {
          const res = await client.query<{ id: number }>(
            `insert into ${this.t.schemas} (id, fingerprint, schema_type, schema, refs)
             select coalesce(max(id), 0) + 1, $1, $2, $3, $4::jsonb from ${this.t.schemas} returning id`,
            [fingerprint, schemaType, schema, JSON.stringify(references)],
          );
          return res.rows[0]!.id;
        },
        insertVersion: async (subject, version, schemaId) => {
          await client.query(`insert into ${this.t.versions} (subject, version, schema_id) values ($1, $2, $3)`, [subject, version, schemaId]);
        },
        markDeleted: async (subject, versions) => {
          await client.query(`update ${this.t.versions} set deleted = true where subject = $1 and version = any($2)`, [subject, versions]);
        },
        deleteVersions: async (subject, versions) => {
          await client.query(`delete from ${this.t.versions} where subject = $1 and version = any($2)`, [subject, versions]);
        },
        setSetting: async (kind, scope, value) => {
          if (value === undefined) {
            await client.query(`delete from ${this.t.settings} where kind = $1 and scope = $2`, [kind, scope]);
          } else {
            await client.query(
              `insert into ${this.t.settings} (kind, scope, value) values ($1, $2, $3)
               on conflict (kind, scope) do update set value = excluded.value`,
              [kind, scope, value],
            );
          }
        },
        changed: (subject) => void changed.add(subject),
      };
      const value = await work(tx);
      for (const subject of changed) await client.query('select pg_notify($1, $2)', [CHANGES_CHANNEL, subject]);
      return value;
    });
    this.onCommitted([...changed]);
    return result;
  }

}
