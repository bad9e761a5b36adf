/**
 * Rollup grains of the view: totals per key over UTC-aligned buckets, kept by
 * the projection beside the windows (table `window_rollups`). Pure: no I/O.
 */
export const ROLLUP_GRAINS_SECONDS = [86_400, 3_600, 600] as const;

/** A piece of a time range, read from the windows themselves (`grainSeconds` undefined) or from one rollup grain. */
export interface Segment {
  grainSeconds?: number;
  from: number;
  to: number;
}

const floorTo = (ms: number, step: number) => ms - (((ms % step) + step) % step);
const ceilTo = (ms: number, step: number) => floorTo(ms + step - 1, step);

/** The start of the bucket of `grainSeconds` that holds `ms` (UTC, aligned on the epoch). */
export function bucketStart(ms: number, grainSeconds: number): number {
  return floorTo(ms, grainSeconds * 1000);
}

/**
 * Splits [from, to) (milliseconds) into the fewest rows to read: whole buckets
 * of the coarsest grain that fits, then finer grains at the edges, then the
 * windows themselves for what no bucket covers. A window belongs to the range
 * by its start, and to a bucket by its start too, so the segments count every
 * window of the range exactly once.
 */
export function splitRange(from: number, to: number, grainsSeconds: readonly number[] = ROLLUP_GRAINS_SECONDS): Segment[] {
  if (from >= to) return [];
  const [grain, ...finer] = grainsSeconds;
  if (grain === undefined) return [{ from, to }];
  const step = grain * 1000;
  const a = ceilTo(from, step);
  const b = floorTo(to, step);
  if (a >= b) return splitRange(from, to, finer);
  return [...splitRange(from, a, finer), { grainSeconds: grain, from: a, to: b }, ...splitRange(b, to, finer)];
}
