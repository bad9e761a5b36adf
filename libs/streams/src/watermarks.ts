/**
 * Event time of a merged stream (a repartition topic fed by every partition of
 * an upstream topic), as pure functions. No I/O.
 *
 * Every upstream task publishes its progress (a watermark: the highest event
 * time it has seen) to every partition of the repartition topic, in the same
 * transaction as the records it forwards, and announces itself idle when it is
 * caught up and has received nothing for a while. A downstream task keeps one
 * entry per source; its event time is the minimum over the sources that are
 * not idle, and never moves back. A source that has not reported yet holds
 * time back like a slow one: it may still deliver old data.
 */

/** Marks a watermark record on a repartition topic; its value is a JSON `Watermark`. */
export const WATERMARK_HEADER = 'sluice.watermark';
/** On every data record an upstream task forwards: its own partition, so the downstream task knows the source. */
export const SOURCE_HEADER = 'sluice.source.partition';
/** On every data record an upstream task forwards: its event time before that record (how its own partition judged it). */
export const SOURCE_TIME_HEADER = 'sluice.source.time';

export interface Watermark {
  source: number;
  /** The source's highest event time; null when it has seen none. */
  time: number | null;
  idle: boolean;
}

export interface SourceProgress {
  time: number | null;
  idle: boolean;
}

export interface MergedTime {
  /** Event time of the merged stream; null until every active source has reported. */
  time: number | null;
  sources: SourceProgress[];
}

export function initialMergedTime(sources: number): MergedTime {
  return { time: null, sources: Array.from({ length: sources }, () => ({ time: null, idle: false })) };
}

/** The state sized for `sources` upstream partitions (a topic may have gained partitions); new ones hold time back. */
export function withSources(state: MergedTime, sources: number): MergedTime {
  if (state.sources.length >= sources) return state;
  return { ...state, sources: [...state.sources, ...initialMergedTime(sources - state.sources.length).sources] };
}

function advance(state: MergedTime): MergedTime {
  const active = state.sources.filter((s) => !s.idle);
  let candidate: number | null;
  if (active.length === 0) {
    // Every source is caught up and silent: nothing is on its way, so time may go as far as any source has seen.
    const times = state.sources.map((s) => s.time).filter((t): t is number => t !== null);
    candidate = times.length > 0 ? Math.max(...times) : null;
  } else if (active.some((s) => s.time === null)) {
    candidate = null;
  } else {
    candidate = Math.min(...active.map((s) => s.time as number));
  }
  const time = candidate === null ? state.time : state.time === null ? candidate : Math.max(state.time, candidate);
  return { ...state, time };
}

/** A watermark from a source: its time only moves forward; its idleness is what it says now. */
export function applyWatermark(state: MergedTime, mark: Watermark): MergedTime {
  const sized = withSources(state, mark.source + 1);
  const sources = sized.sources.slice();
  const previous = sources[mark.source]!;
  const time = mark.time === null ? previous.time : previous.time === null ? mark.time : Math.max(previous.time, mark.time);
  sources[mark.source] = { time, idle: mark.idle };
  return advance({ ...sized, sources });
}

/** A data record from a source: the source delivers again, so it is active (and holds time back) from now on. */
export function applySourceRecord(state: MergedTime, source: number): MergedTime {
  const sized = withSources(state, source + 1);
  if (!sized.sources[source]!.idle) return sized;
  const sources = sized.sources.slice();
  sources[source] = { ...sources[source]!, idle: false };
  return advance({ ...sized, sources });
}

/** How far the merged time is behind the fastest source, and the active source that holds it there (unreported first, then slowest). */
export function heldBack(state: MergedTime): { lagMs: number; heldBy: number | undefined; idleSources: number } {
  const idleSources = state.sources.filter((s) => s.idle).length;
  const known = state.sources.map((s) => s.time).filter((t): t is number => t !== null);
  if (known.length === 0) return { lagMs: 0, heldBy: undefined, idleSources };
  const fastest = Math.max(...known);
  const lagMs = fastest - (state.time ?? Math.min(...known));
  if (lagMs <= 0) return { lagMs: 0, heldBy: undefined, idleSources };
  let heldBy: number | undefined;
  state.sources.forEach((s, i) => {
    if (s.idle) return;
    const current = heldBy === undefined ? undefined : state.sources[heldBy]!.time;
    if (heldBy === undefined || (s.time === null && current !== null) || (s.time !== null && current !== null && current !== undefined && s.time < current)) heldBy = i;
  });
  return { lagMs, heldBy, idleSources };
}

export function encodeWatermark(mark: Watermark): Buffer {
  return Buffer.from(JSON.stringify(mark));
}

/** The watermark a record carries, or undefined when the bytes are not one (never from this runtime). */
export function decodeWatermark(value: Buffer | null): Watermark | undefined {
  if (!value) return undefined;
  try {
    const parsed = JSON.parse(value.toString()) as Partial<Watermark>;
    if (typeof parsed.source !== 'number' || !Number.isInteger(parsed.source) || parsed.source < 0) return undefined;
    if (parsed.time !== null && typeof parsed.time !== 'number') return undefined;
    return { source: parsed.source, time: parsed.time, idle: parsed.idle === true };
  } catch {
    return undefined;
  }
}

export function encodeMergedTime(state: MergedTime): Buffer {
  return Buffer.from(JSON.stringify(state));
}

export function decodeMergedTime(value: Buffer): MergedTime {
  return JSON.parse(value.toString()) as MergedTime;
}
