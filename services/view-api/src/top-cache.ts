import type { TopQuery } from './query';
import type { WindowRow } from './store';

export interface TopRow {
  key: string;
  value: number;
  windows: number;
}

interface Computing {
  query: TopQuery;
  rows: Promise<TopRow[]>;
  /** A change to a window of the query's range was committed while it ran: its answer may not hold it. */
  overtaken: boolean;
}

const covers = (q: TopQuery, dimension: string, windowStart: number) => q.dimension === dimension && windowStart >= q.from && windowStart < q.to;

/**
 * Answers of `GET /v1/top` kept by one replica, for the dashboards that ask the
 * same question every few seconds. An answer stays only while nothing it sums
 * has changed: every window change committed by any replica arrives here as a
 * Postgres notification and drops the answers whose range holds the window,
 * and an answer computed while such a change arrived is not kept. While the
 * notification connection is down nothing is kept (changes could be missed).
 * So an answer served from here is one the database gave for a state no older
 * than the notifications received, as a query running at that moment could.
 */
export class TopCache {
  private readonly answers = new Map<string, { query: TopQuery; rows: TopRow[] }>();
  /** Questions being computed now: the same question asked meanwhile waits for that answer instead of asking Postgres again. */
  private readonly computing = new Map<string, Computing>();

  constructor(
    private readonly maxEntries: number,
    private readonly listening: () => boolean,
  ) {}

  get size(): number {
    return this.answers.size;
  }

  async get(query: TopQuery, compute: () => Promise<TopRow[]>): Promise<{ rows: TopRow[]; cached: boolean }> {
    if (this.maxEntries === 0) return { rows: await compute(), cached: false };
    const id = `${query.dimension}|${query.metric}|${query.from}|${query.to}|${query.limit}`;
    const kept = this.answers.get(id);
    if (kept) {
      // Least recently used last: move it to the end.
      this.answers.delete(id);
      this.answers.set(id, kept);
      return { rows: kept.rows, cached: true };
    }
    const running = this.computing.get(id);
    if (running) return { rows: await running.rows, cached: false };
    const computing: Computing = { query, rows: compute(), overtaken: !this.listening() };
    this.computing.set(id, computing);
    try {
      const rows = await computing.rows;
      if (!computing.overtaken && this.listening()) {
        this.answers.set(id, { query, rows });
        if (this.answers.size > this.maxEntries) this.answers.delete(this.answers.keys().next().value as string);
      }
      return { rows, cached: false };
    } finally {
      this.computing.delete(id);
    }
  }

  /** A window change was committed: the answers that sum this window no longer hold. */
  changed(window: Pick<WindowRow, 'dimension' | 'windowStart'>): void {
    const start = Date.parse(window.windowStart);
    for (const c of this.computing.values()) if (covers(c.query, window.dimension, start)) c.overtaken = true;
    for (const [id, answer] of this.answers) if (covers(answer.query, window.dimension, start)) this.answers.delete(id);
  }

  /** Notifications may have been missed (the connection was lost, or is back): nothing kept holds. */
  reset(): void {
    for (const c of this.computing.values()) c.overtaken = true;
    this.answers.clear();
  }
}
