import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { availableServices, ensureKafkaJars, kill, optionsFromEnv, readState, restart, s3ClientEnv, stackPaths, startS3Proxy, startService, stop, type StackState } from '@sluice/local-stack';
import { Kafka, logLevel, type Admin, type ITopicConfig, type Message } from 'kafkajs';
import { followTopic } from '@sluice/streams';
import { Client, Pool } from 'pg';
import type { TestStack } from './cluster';

/** Marks the runtime's watermark records on a repartition topic: a check that reads such a topic skips them. */
export { WATERMARK_HEADER } from '@sluice/streams';

/** A name no other test run uses, so tests can share one broker and one database. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
}

/** The stack that `sluice-stack up` started; tests run against its real processes. */
export function runningStack(): StackState {
  const state = readState(stackPaths());
  if (!state || state.status !== 'up') {
    throw new Error('the local stack is not up: run `pnpm stack up --only infra` (or `./sluice test`, which does it)');
  }
  return state;
}

export function testKafka(clientId = uniqueName('test')): Kafka {
  return new Kafka({ clientId, brokers: runningStack().kafkaBrokers, logLevel: logLevel.NOTHING });
}

/** Runs `use` with a connected admin client and always disconnects it. */
export async function withAdmin<T>(kafka: Kafka, use: (admin: Admin) => Promise<T>): Promise<T> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    return await use(admin);
  } finally {
    await admin.disconnect();
  }
}

/**
 * Creates topics and waits (30 s at most) until every partition has a leader that answers for it: metadata names a
 * leader, and listing the topic's offsets works. Not kafkajs' own `waitForLeaders`: it gives up at once when the
 * broker's metadata does not know a new topic yet (UNKNOWN_TOPIC_OR_PARTITION), and a leader named in metadata can
 * still answer NOT_LEADER_FOR_PARTITION for a moment, both of which a busy broker does just after creating a topic.
 */
export async function createTopics(kafka: Kafka, topics: (Omit<ITopicConfig, 'numPartitions'> & { numPartitions: number })[]): Promise<void> {
  await withAdmin(kafka, async (admin) => {
    await admin.createTopics({ topics, waitForLeaders: false });
    const names = topics.map((t) => t.topic);
    const deadline = Date.now() + 30_000;
    for (;;) {
      try {
        const metadata = await admin.fetchTopicMetadata({ topics: names });
        if (metadata.topics.every((t) => t.partitions.length > 0 && t.partitions.every((p) => p.leader >= 0))) {
          for (const name of names) await admin.fetchTopicOffsets(name);
          return;
        }
      } catch (err) {
        if (!['UNKNOWN_TOPIC_OR_PARTITION', 'NOT_LEADER_FOR_PARTITION', 'LEADER_NOT_AVAILABLE'].includes((err as { type?: string }).type ?? '')) throw err;
      }
      if (Date.now() > deadline) throw new Error(`topics ${names.join(', ')} have no leaders 30 s after their creation`);
      await new Promise((r) => setTimeout(r, 100));
    }
  });
}

export interface ReadRecord {
  partition: number;
  offset: string;
  key: string | null;
  value: Buffer | null;
  headers: Record<string, string>;
  /** The record's timestamp (its producer's create time unless the topic says otherwise), ms as a string. */
  timestamp: string;
}

/**
 * Reads a topic from the beginning until `done` says it has enough (or `timeoutMs` passes), then on to the end
 * the topic has at that moment: its last stable offset, so every record committed by then is in the result,
 * extra ones included. Without `done`, reads to the end the topic has now. `read_committed` unless told
 * otherwise (then it reads at least to the last stable offset). Throws when the end is not reached in
 * `endTimeoutMs`. To see records that are still to come (say, duplicates), wait first for what makes them final:
 * the stage's group past its input, a stalled partition.
 */
export async function readTopic(
  kafka: Kafka,
  topic: string,
  options: {
    done?: (records: ReadRecord[]) => boolean;
    /** How long to wait for `done`. @default 20000 */
    timeoutMs?: number;
    /** How long to wait, after `done`, to reach the end. @default 30000 */
    endTimeoutMs?: number;
    readUncommitted?: boolean;
  } = {},
): Promise<ReadRecord[]> {
  const done = options.done ?? (() => true);
  const records: ReadRecord[] = [];
  let check: () => void = () => undefined;
  // The runtime's follower: it tracks each partition's position (batches of only transaction markers or aborted
  // records move it too) and replaces a consumer that kafkajs gives up on (a broker lost in a failover test).
  const follower = await followTopic(kafka, topic, {
    readUncommitted: options.readUncommitted ?? false,
    onRecord: (partition, message) => records.push(toRecord(partition, message)),
    onProgress: () => check(),
  });
  try {
    await until(() => done(records), options.timeoutMs ?? 20_000, (f) => (check = f));
    const ends = await withAdmin(kafka, (admin) => admin.fetchTopicOffsets(topic));
    const at = (o: { partition: number; low: string }) => follower.position(o.partition) ?? BigInt(o.low);
    const reached = () => ends.every((o) => BigInt(o.high) <= BigInt(o.low) || at(o) >= BigInt(o.high));
    const endTimeoutMs = options.endTimeoutMs ?? 30_000;
    if (!(await until(reached, endTimeoutMs, (f) => (check = f)))) {
      const behind = ends.filter((o) => at(o) < BigInt(o.high)).map((o) => `[${o.partition}] at ${at(o)} of ${o.high}`);
      throw new Error(`${topic}: the reader did not reach the end in ${endTimeoutMs} ms: ${behind.join(', ')}`);
    }
    return [...records];
  } finally {
    await follower.stop();
  }
}

/** Resolves true once `condition` holds (checked whenever `onChange`'s callback is called), false after `timeoutMs`. */
async function until(condition: () => boolean, timeoutMs: number, onChange: (check: () => void) => void): Promise<boolean> {
  if (condition()) return true;
  let timer: NodeJS.Timeout | undefined;
  try {
    return await new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(condition()), timeoutMs);
      onChange(() => {
        if (condition()) resolve(true);
      });
    });
  } finally {
    clearTimeout(timer);
    onChange(() => undefined);
  }
}

function toRecord(partition: number, message: Pick<Message, 'key' | 'value' | 'headers'> & { offset: string; timestamp: string }): ReadRecord {
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(message.headers ?? {})) {
    if (v !== undefined) headers[k] = (Array.isArray(v) ? v[0] : v)?.toString() ?? '';
  }
  return {
    partition,
    offset: message.offset,
    key: message.key ? message.key.toString() : null,
    value: (message.value as Buffer | null) ?? null,
    headers,
    timestamp: message.timestamp,
  };
}

/** A port nobody listens on right now. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

export interface TestService {
  name: string;
  url: string;
  port: number;
  /** SIGTERM, then SIGKILL after the grace; forgets the process. Safe to call twice. */
  stop(graceMs?: number): Promise<string>;
  /** SIGKILL through the stack runner: no chance to clean up. */
  kill(): Promise<void>;
  /** Starts it again as it was started, and waits until it is healthy. */
  restart(): Promise<void>;
  /** The current pid, from the stack's state file. */
  pid(): number;
}

/**
 * Starts an extra instance of a built service through the local stack runner
 * (so it appears in `status` and has a log under .sluice/logs), on a free port,
 * pointed at the running stack (or at `stack`, such as a Kafka cluster of its own), with `env` on top.
 */
export async function startTestService(service: string, options: { env?: Record<string, string>; name?: string; stack?: TestStack } = {}): Promise<TestService> {
  const spec = availableServices().find((s) => s.name === service);
  if (!spec) throw new Error(`service "${service}" is not built (run pnpm build)`);
  const paths = options.stack?.paths ?? stackPaths();
  const state = options.stack?.state() ?? runningStack();
  const port = await freePort();
  const name = options.name ?? uniqueName(service);
  await startService(paths, state, spec, { name, port, ...(options.env ? { env: options.env } : {}) });
  let stopped: Promise<string> | undefined;
  return {
    name,
    port,
    url: `http://127.0.0.1:${port}`,
    stop: (graceMs = 15_000) => (stopped ??= stop(name, paths, graceMs).catch((err: unknown) => String(err))),
    kill: async () => {
      await kill(name, paths);
    },
    restart: async () => {
      await restart(name, paths);
    },
    pid: () => {
      const entry = readState(paths)?.processes[name];
      if (!entry) throw new Error(`no process ${name} in the stack`);
      return entry.pid;
    },
  };
}

/** SIGKILL a process of the running stack (kafka, postgres, …) through the stack runner. */
export async function killStackProcess(name: string): Promise<void> {
  await kill(name, stackPaths());
}

/** Starts a process of the running stack again and waits until it answers. */
export async function restartStackProcess(name: string): Promise<void> {
  await restart(name, stackPaths());
}

/**
 * Kills a process of the running stack (kill -9), runs `during`, then starts the
 * process again whether `during` passed or threw: a failing test never leaves
 * the stack broken under the test files that run after it.
 */
export async function whileStackProcessDown<T>(name: string, during: () => Promise<T>): Promise<T> {
  await killStackProcess(name);
  try {
    return await during();
  } finally {
    await restartStackProcess(name);
  }
}

/** A new, empty database on the stack's Postgres; its URL. Each test suite that owns tables takes one. */
export async function createTestDatabase(prefix: string): Promise<string> {
  const name = uniqueName(prefix).replace(/-/g, '_');
  const admin = new Client({ connectionString: runningStack().databaseUrl });
  await admin.connect();
  try {
    await admin.query(`create database ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(runningStack().databaseUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

// Response bodies are read loosely: tests assert on their shape.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type JsonBody = any;

/** An HTTP call with a JSON body; the answer's status, parsed body (text when not JSON) and headers. */
export async function httpJson(
  url: string,
  method: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: JsonBody; headers: Headers }> {
  const res = await fetch(url, {
    method,
    headers: { 'content-type': 'application/json', ...headers },
    ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
  });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // Not JSON: the caller sees the text.
  }
  return { status: res.status, body: parsed, headers: res.headers };
}

/** SQL against a test database on one connection, opened at the first query; `close` is safe either way. */
export function sqlClient(databaseUrl: string): { sql(text: string, params?: unknown[]): Promise<JsonBody[]>; close(): Promise<void> } {
  // A pool, so that a test which restarts Postgres gets a new connection afterwards; a connection
  // that dies while idle is dropped (the pool's 'error'), not an unhandled error of the test.
  const pool = new Pool({ connectionString: databaseUrl, max: 2 });
  pool.on('error', () => undefined);
  return {
    async sql(text, params = []) {
      return (await pool.query(text, params)).rows;
    },
    async close() {
      await pool.end();
    },
  };
}

export interface ServerSentEvent {
  id?: string;
  event?: string;
  data?: string;
  /** When the chunk that completed it arrived (ms). */
  receivedAt: number;
}

/** The events of a `text/event-stream` response as they arrive, until the stream ends (or its request is aborted). */
export async function* serverSentEvents(res: Response): AsyncGenerator<ServerSentEvent> {
  const reader = res.body!.getReader();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    const receivedAt = Date.now();
    buffer += Buffer.from(value).toString();
    let end: number;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const field = (name: string) => new RegExp(`^${name}: (.*)$`, 'm').exec(block)?.[1];
      const [id, event, data] = [field('id'), field('event'), field('data')];
      yield { ...(id !== undefined ? { id } : {}), ...(event !== undefined ? { event } : {}), ...(data !== undefined ? { data } : {}), receivedAt };
    }
  }
}

export interface TestS3 {
  /** The variables that point the archiver (or the AWS SDK) at it, with ARCHIVE_URL under `prefix`. */
  env(prefix: string): Record<string, string>;
  port: number;
  /** SIGKILL, then start it again on the same port with the same data. */
  kill(): Promise<void>;
  restart(): Promise<void>;
  stop(): Promise<void>;
}

/** An S3Proxy of the test's own (a real S3 API server, filesystem backend) started through the stack runner. */
export async function startTestS3(): Promise<TestS3> {
  const paths = stackPaths();
  const name = uniqueName('s3proxy');
  const port = await freePort();
  await startS3Proxy(paths, runningStack(), { name, port });
  let stopped: Promise<void> | undefined;
  return {
    port,
    env: (prefix) => s3ClientEnv(port, prefix),
    kill: async () => {
      await kill(name, paths);
    },
    restart: async () => {
      await restart(name, paths);
    },
    stop: () => (stopped ??= stop(name, paths, 10_000).then(() => undefined)),
  };
}

/**
 * Runs a single-file Java program (`source`, its public class first) on the Kafka client's classpath (the
 * jars the stack runner resolved from Maven Central), with `input` on stdin; its stdout.
 */
export async function runJavaWithKafka(source: string, input: string): Promise<string> {
  const libs = await ensureKafkaJars(stackPaths().cacheDir, optionsFromEnv().kafkaVersion);
  const dir = mkdtempSync(join(tmpdir(), 'sluice-java-'));
  const file = join(dir, `${/public\s+class\s+(\w+)/.exec(source)?.[1] ?? 'Main'}.java`);
  writeFileSync(file, source);
  const result = spawnSync('java', ['-cp', `${libs}/*`, file], { input, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (result.status !== 0) throw new Error(`java ${file} failed (${result.status}): ${result.stderr}`);
  return result.stdout;
}
