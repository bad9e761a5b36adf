import type { WindowAggregate } from '@sluice/contracts';

/**
 * Event-time windows: the aggregator's whole business rule, as pure functions
 * over a key-value view of the window state. No I/O.
 *
 * Stream time of an entity partition is the highest event time seen in it; of a
 * category partition (fed by every entity partition through the repartition
 * topic), the merged event time of its sources (their minimum: see
 * libs/streams watermarks). Either way it only moves forward (`advanceStreamTime`).
 * A window closes when stream time reaches its end plus the grace period; its result is
 * emitted as it changes (at most once per transaction) and once more, final,
 * when it closes. An event for a closed window is late. A replayed dead letter
 * is not late while its window is still retained: it corrects the window, which
 * is emitted again as a final with a higher revision.
 */

export type Dimension = WindowAggregate['dimension'];

/** A window in state: the result fields, and whether its final was emitted (then it takes no ordinary events). */
export type WindowState = Omit<WindowAggregate, 'isFinal'> & { closed: boolean };

/** The result record, exactly the WindowAggregate contract. */
export type WindowResult = WindowAggregate;

export interface WindowConfig {
  sizeMs: number;
  /** Distance between window starts; equal to sizeMs for tumbling windows. */
  hopMs: number;
  graceMs: number;
  /** How long a closed window stays in state after it closed (for corrections), by stream time. */
  retentionMs: number;
}

/** What the engine needs of a store: reads and writes of this transaction, and the windows due by end time. */
export interface WindowStore {
  get(key: string): unknown;
  put(key: string, value: unknown): void;
  delete(key: string): void;
  /** Keys whose value in `index` (see WINDOW_INDEXES) is at most `bound`. */
  indexedUpTo(index: keyof typeof WINDOW_INDEXES, bound: number): Iterable<string>;
}

const isWindow = (value: unknown): value is WindowState => typeof value === 'object' && value !== null && 'windowEnd' in value;

/**
 * The indexes a window store keeps, so that a flush touches only the windows that are due:
 * `open` holds the windows whose final is not out yet, by end; `all` every window, by end (for expiry).
 */
export const WINDOW_INDEXES = {
  open: (_key: string, value: unknown) => (isWindow(value) && !value.closed ? value.windowEnd : undefined),
  all: (_key: string, value: unknown) => (isWindow(value) ? value.windowEnd : undefined),
};

export interface WindowEvent {
  dimension: Dimension;
  key: string;
  occurredAt: number;
  value: number;
  /** Carries dlq.replay.id: delayed by a failure, not by the client. */
  replay: boolean;
}

export type LateReason = 'window.closed' | 'window.expired';

const STREAM_TIME = '\u0000stream-time';

export const windowKey = (dimension: Dimension, key: string, windowStart: number) => `${dimension}|${key}|${windowStart}`;

/** The windows an event time falls in, oldest first: one for tumbling windows, size/hop for hopping ones. */
export function windowsOf(occurredAt: number, config: WindowConfig): { start: number; end: number }[] {
  const windows: { start: number; end: number }[] = [];
  const lastStart = Math.floor(occurredAt / config.hopMs) * config.hopMs;
  for (let start = lastStart; start > occurredAt - config.sizeMs; start -= config.hopMs) windows.unshift({ start, end: start + config.sizeMs });
  return windows;
}

export function streamTimeOf(store: Pick<WindowStore, 'get'>): number | undefined {
  return store.get(STREAM_TIME) as number | undefined;
}

/** Moves the store's stream time forward to `time` (never back). */
export function advanceStreamTime(store: Pick<WindowStore, 'get' | 'put'>, time: number | undefined): void {
  if (time === undefined) return;
  const current = streamTimeOf(store);
  if (current === undefined || time > current) store.put(STREAM_TIME, time);
}

const closesAt = (window: { windowEnd: number }, config: WindowConfig) => window.windowEnd + config.graceMs;
const expiresAt = (window: { windowEnd: number }, config: WindowConfig) => window.windowEnd + config.graceMs + config.retentionMs;

/**
 * Applies one event to its windows, judged by the store's stream time (the
 * caller advances it: by the event itself for an entity partition, by the
 * merged time for a category partition), or by `judgedAt` when that is later:
 * the time its source partition had reached, so that an event late in its
 * entity partition is late in its category too. Returns why it was late if it changed no
 * window (the caller sends it to events.late); an event late for some of its
 * hopping windows and not for others updates the others.
 */
export function applyEvent(store: WindowStore, event: WindowEvent, config: WindowConfig, judgedAt?: number): { late?: LateReason; updated: number } {
  const own = streamTimeOf(store);
  const streamTime = judgedAt === undefined ? own : own === undefined ? judgedAt : Math.max(own, judgedAt);
  let updated = 0;
  let late: LateReason | undefined;
  for (const { start, end } of windowsOf(event.occurredAt, config)) {
    const key = windowKey(event.dimension, event.key, start);
    const existing = store.get(key) as WindowState | undefined;
    const closedByTime = streamTime !== undefined && streamTime >= closesAt({ windowEnd: end }, config);
    if (closedByTime || existing?.closed) {
      if (!event.replay) {
        late = 'window.closed';
        continue;
      }
      // Retention is by stream time: a window closed without ever receiving an event is still correctable within it.
      const retained = streamTime === undefined || streamTime < expiresAt({ windowEnd: end }, config);
      if (!retained) {
        late = 'window.expired';
        continue;
      }
    }
    const base: WindowState = existing ?? {
      dimension: event.dimension,
      key: event.key,
      windowStart: start,
      windowEnd: end,
      count: 0,
      sum: 0,
      min: event.value,
      max: event.value,
      lastEventAt: event.occurredAt,
      revision: 0,
      closed: false,
    };
    store.put(key, {
      ...base,
      count: base.count + 1,
      sum: base.sum + event.value,
      min: Math.min(base.min, event.value),
      max: Math.max(base.max, event.value),
      lastEventAt: Math.max(base.lastEventAt, event.occurredAt),
    });
    updated += 1;
  }
  return updated > 0 ? { updated } : { updated, late: late ?? 'window.closed' };
}

function result(state: WindowState, isFinal: boolean, revision: number): WindowResult {
  return {
    dimension: state.dimension,
    key: state.key,
    windowStart: state.windowStart,
    windowEnd: state.windowEnd,
    count: state.count,
    sum: state.sum,
    min: state.min,
    max: state.max,
    isFinal,
    revision,
    lastEventAt: state.lastEventAt,
  };
}

/**
 * Ends a transaction: one record for every window that changed in it (an
 * update while open, a final — or a corrected final — once closed), a final for
 * every open window that stream time has closed, and the removal of windows
 * past their retention. `changed` are the store keys written in the transaction.
 */
export function flushWindows(store: WindowStore, changed: Iterable<string>, config: WindowConfig): WindowResult[] {
  const streamTime = streamTimeOf(store);
  const out: WindowResult[] = [];
  const emitted = new Set<string>();
  const emit = (key: string, state: WindowState, isFinal: boolean) => {
    const revision = state.revision + 1;
    store.put(key, { ...state, revision, closed: state.closed || isFinal });
    out.push(result(state, isFinal, revision));
    emitted.add(key);
  };
  for (const key of [...changed]) {
    const state = store.get(key);
    if (!isWindow(state)) continue;
    const isFinal = state.closed || (streamTime !== undefined && streamTime >= closesAt(state, config));
    emit(key, state, isFinal);
  }
  if (streamTime === undefined) return out;
  // Only the windows that are due: the cost does not grow with the windows held in state.
  for (const key of [...store.indexedUpTo('open', streamTime - config.graceMs)]) {
    const state = store.get(key);
    if (!emitted.has(key) && isWindow(state) && !state.closed) emit(key, state, true);
  }
  // A window's final always goes out before it leaves state, even when time jumps past its retention.
  for (const key of [...store.indexedUpTo('all', streamTime - config.graceMs - config.retentionMs)]) {
    const state = store.get(key);
    if (!emitted.has(key) && isWindow(state) && state.closed && streamTime >= expiresAt(state, config)) store.delete(key);
  }
  return out;
}
