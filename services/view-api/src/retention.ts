import type { MaintenanceOutcome } from '@sluice/runtime';
import type { Pool } from 'pg';

const DAY_MS = 86_400_000;

/** The first instant kept: `days` before `now`, rounded down to a UTC day, so every rollup bucket is kept or deleted whole. */
export function retentionCutoff(now: number, days: number): number {
  return Math.floor((now - days * DAY_MS) / DAY_MS) * DAY_MS;
}

/**
 * Deletes the windows that start before the cutoff and the rollup rows of the same days, one UTC day per
 * transaction. Each transaction locks both tables against writes (the projection waits for one day's
 * delete), so a window and the rollups that sum it always go together.
 */
export async function viewRetention(pool: Pool, options: { retentionDays: number; now: number; dryRun: boolean }): Promise<MaintenanceOutcome> {
  const cutoff = retentionCutoff(options.now, options.retentionDays);
  const cutoffIso = new Date(cutoff).toISOString();
  if (options.dryRun) {
    const { rows } = await pool.query<{ windows: string; rollups: string }>(
      `select (select count(*) from window_aggregates where window_start < $1) as windows,
              (select count(*) from window_rollups where bucket_start < $1) as rollups`,
      [cutoffIso],
    );
    const windows = Number(rows[0]!.windows);
    const rollups = Number(rows[0]!.rollups);
    return { summary: `would delete ${windows} windows and ${rollups} rollup rows that start before ${cutoffIso}`, counts: { windows, rollups } };
  }
  let windows = 0;
  let rollups = 0;
  const oldest = await pool.query<{ start: Date | null }>('select least((select min(window_start) from window_aggregates), (select min(bucket_start) from window_rollups)) as start');
  const first = oldest.rows[0]?.start?.getTime();
  if (first !== undefined) {
    for (let day = Math.floor(first / DAY_MS) * DAY_MS; day < cutoff; day += DAY_MS) {
      const client = await pool.connect();
      try {
        await client.query('begin');
        // In the order the projection takes them (rollups, then windows): the two never wait on each other in a circle.
        await client.query('lock table window_rollups, window_aggregates in share row exclusive mode');
        const range = [new Date(day).toISOString(), new Date(Math.min(day + DAY_MS, cutoff)).toISOString()];
        windows += (await client.query('delete from window_aggregates where window_start >= $1 and window_start < $2', range)).rowCount ?? 0;
        rollups += (await client.query('delete from window_rollups where bucket_start >= $1 and bucket_start < $2', range)).rowCount ?? 0;
        await client.query('commit');
      } catch (err) {
        await client.query('rollback').catch(() => undefined);
        throw err;
      } finally {
        client.release();
      }
    }
  }
  return { summary: `deleted ${windows} windows and ${rollups} rollup rows that started before ${cutoffIso}`, counts: { windows, rollups } };
}
