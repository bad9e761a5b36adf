import type { Response } from 'express';
import type { Change } from './store';
import type { StreamQuery } from './query';

interface Subscriber {
  filter: StreamQuery;
  /** Highest change sequence this subscriber was sent; older changes are not sent again. */
  lastSeq: bigint;
  /** Until the catch-up query is done, live changes wait here. */
  buffer: Change[] | undefined;
  res: Response;
}

export function matches(filter: StreamQuery, change: Change): boolean {
  return (!filter.dimension || filter.dimension === change.window.dimension) && (filter.key === undefined || filter.key === change.window.key);
}

/** A notification payload from Postgres as a change; undefined for anything else (anyone may NOTIFY the channel). */
export function parseChange(payload: string | undefined): Change | undefined {
  if (!payload) return undefined;
  let change: Change;
  try {
    change = JSON.parse(payload) as Change;
  } catch {
    return undefined;
  }
  if (typeof change !== 'object' || change === null || typeof change.seq !== 'string' || typeof change.window !== 'object' || change.window === null) return undefined;
  return change;
}

/**
 * Server-sent events of window changes. Changes arrive through Postgres
 * notifications, so a subscriber on any replica sees the changes that every
 * replica projects. Each event's id is the change sequence: a client that
 * reconnects with Last-Event-ID gets what changed since, then the live stream.
 */
export class LiveUpdates {
  private readonly subscribers = new Set<Subscriber>();
  private heartbeat: NodeJS.Timeout | undefined;

  constructor(heartbeatMs: number) {
    this.heartbeat = setInterval(() => {
      for (const s of this.subscribers) s.res.write(': heartbeat\n\n');
    }, heartbeatMs);
    this.heartbeat.unref();
  }

  get size(): number {
    return this.subscribers.size;
  }

  /** A change, as a notification from Postgres brought it (see parseChange). */
  publish(change: Change): void {
    for (const s of this.subscribers) {
      if (!matches(s.filter, change)) continue;
      if (s.buffer) s.buffer.push(change);
      else this.send(s, change);
    }
  }

  private send(s: Subscriber, change: Change): void {
    const seq = BigInt(change.seq);
    if (seq <= s.lastSeq) return;
    s.lastSeq = seq;
    s.res.write(`id: ${change.seq}\nevent: window\ndata: ${JSON.stringify(change.window)}\n\n`);
  }

  /**
   * Opens a stream: subscribes first (buffering), then sends what `catchUp`
   * finds since `lastEventId`, then the buffer, so nothing falls in between.
   */
  async open(res: Response, filter: StreamQuery, lastEventId: bigint | undefined, catchUp: (since: bigint) => Promise<Change[]>): Promise<void> {
    res.status(200);
    res.setHeader('content-type', 'text/event-stream; charset=utf-8');
    res.setHeader('cache-control', 'no-cache');
    res.setHeader('x-accel-buffering', 'no');
    res.flushHeaders();
    res.write('retry: 1000\n\n');
    const subscriber: Subscriber = { filter, lastSeq: lastEventId ?? -1n, buffer: lastEventId !== undefined ? [] : undefined, res };
    this.subscribers.add(subscriber);
    res.on('close', () => this.subscribers.delete(subscriber));
    if (lastEventId === undefined) return;
    try {
      let since = lastEventId;
      for (;;) {
        const missed = await catchUp(since);
        for (const change of missed) this.send(subscriber, change);
        if (missed.length === 0) break;
        since = BigInt(missed[missed.length - 1]!.seq);
      }
    } finally {
      const buffered = subscriber.buffer ?? [];
      subscriber.buffer = undefined;
      for (const change of buffered) this.send(subscriber, change);
    }
  }

  /** Ends every stream, so that the HTTP server can close. */
  close(): void {
    clearInterval(this.heartbeat);
    for (const s of this.subscribers) s.res.end();
    this.subscribers.clear();
  }
}
