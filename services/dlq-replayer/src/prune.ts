import type { MaintenanceOutcome } from '@sluice/runtime';
import type { Pool } from 'pg';

const DAY_MS = 86_400_000;
const BATCH = 5_000;

/**
 * Entries of the dead-letter index that are done with (replayed or discarded) and failed more than
 * `retentionDays` ago, with their finished replay items. Pending entries, and entries a replay is still
 * sending, are never deleted. The replays themselves and the audit log stay.
 */
export async function pruneDeadLetters(pool: Pool, options: { retentionDays: number; now: number; dryRun: boolean }): Promise<MaintenanceOutcome> {
  const cutoffIso = new Date(options.now - options.retentionDays * DAY_MS).toISOString();
  const due = `status in ('replayed', 'discarded') and failed_at < $1
    and not exists (select 1 from replay_items i where i.dead_letter_id = d.id and i.status in ('pending', 'producing'))`;
  if (options.dryRun) {
    const { rows } = await pool.query<{ n: string }>(`select count(*) as n from dead_letters d where ${due}`, [cutoffIso]);
    const entries = Number(rows[0]!.n);
    return { summary: `would delete ${entries} replayed or discarded entries that failed before ${cutoffIso}`, counts: { entries } };
  }
  let entries = 0;
  let items = 0;
  for (;;) {
    const client = await pool.connect();
    let deleted: number;
    try {
      await client.query('begin');
      // Locked as they are chosen: a replay that starts meanwhile cannot pick one of them up half-deleted.
      const ids = (await client.query<{ id: string }>(`select id from dead_letters d where ${due} order by id limit ${BATCH} for update skip locked`, [cutoffIso])).rows.map((r) => r.id);
      if (ids.length > 0) {
        items += (await client.query('delete from replay_items where dead_letter_id = any($1::bigint[])', [ids])).rowCount ?? 0;
        entries += (await client.query('delete from dead_letters where id = any($1::bigint[])', [ids])).rowCount ?? 0;
      }
      await client.query('commit');
      deleted = ids.length;
    } catch (err) {
      await client.query('rollback').catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
    if (deleted < BATCH) break;
  }
  return { summary: `deleted ${entries} replayed or discarded entries that failed before ${cutoffIso} (and ${items} finished replay items)`, counts: { entries, items } };
}
