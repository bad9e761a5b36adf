import type { TopQuery } from './query';
import type { WindowRow } from './store';

export interface TopRow {
  key: string;
  value: number;
  windows: number;
}

interface Pending {
  query: TopQuery;
  /** A change to a window of the query's range was committed while it ran: its answer may not hold it. */
  overtaken: boolean;
}

const covers = (q: TopQuery, window: Pick<WindowRow, 'dimension' | 'windowStart'>) => {
  const start = Date.parse(window.windowStart);
  return q.dimension === window.dimension && start >= q.from && start < q.to;
};

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
  private readonly pending = new Set<Pending>();
  /** Questions being computed now: the same question asked meanwhile waits for that answer instead of asking Postgres again. */
  private readonly computing = new Map<string, Promise<TopRow[]>>();

  constructor(
    private readonly maxEntries: number,
    private readonly listening: () => boolean,
  ) {}

  get size(): number {
    return this.answers.size;
  }

  async get(query: TopQuery, compute: () => Promise<TopRow[]>): Promise<{ rows: TopRow[]; cached: boolean }> {
    const id = `${query.dimension}|${query.metric}|${query.from}|${query.to}|${query.limit}`;
    const kept = this.answers.get(id);
    if (kept) {
      // Least recently used last: move it to the end.
      this.answers.delete(id);
      this.answers.set(id, kept);
      return { rows: kept.rows, cached: true };
    }
    const running = this.computing.get(id);
    if (running) return { rows: await running, cached: false };
    const pending: Pending = { query, overtaken: !this.listening() };
    this.pending.add(pending);
    const computed = compute();
    if (this.maxEntries > 0) this.computing.set(id, computed);
    try {
      const rows = await computed;
      if (this.maxEntries > 0 && !pending.overtaken && this.listening()) {
        this.answers.set(id, { query, rows });
        if (this.answers.size > this.maxEntries) this.answers.delete(this.answers.keys().next().value as string);
      }
      return { rows, cached: false };
    } finally {
      this.pending.delete(pending);
      this.computing.delete(id);
    }
  }

  /** A window change was committed: the answers that sum this window no longer hold. */
  changed(window: Pick<WindowRow, 'dimension' | 'windowStart'>): void {
    for (const p of this.pending) if (!p.overtaken && covers(p.query, window)) p.overtaken = true;
    for (const [id, answer] of this.answers) if (covers(answer.query, window)) this.answers.delete(id);
  }

  /** Notifications may have been missed (the connection was lost, or is back): nothing kept holds. */
  reset(): void {
    for (const p of this.pending) p.overtaken = true;
    this.answers.clear();
  }
}
