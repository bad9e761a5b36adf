import { Client, Pool } from 'pg';

/** What a maintenance task did (or, in a dry run, would do): one line for logs and cron mail. */
export interface MaintenanceOutcome {
  summary: string;
  /** Counts by what they count, for the JSON line. */
  counts: Record<string, number>;
}

export interface MaintenanceTask {
  /** Its name: the lock's key and the first word of the summary line. */
  name: string;
  databaseUrl: string;
  dryRun: boolean;
  run(pool: Pool, dryRun: boolean): Promise<MaintenanceOutcome>;
}

export type MaintenanceResult = (MaintenanceOutcome & { ran: true }) | { ran: false; summary: string };

/**
 * Runs a scheduled task under a Postgres advisory lock of its own, so that two runs at once (a CronJob
 * that overlaps a manual run) never do the work twice: the second finds the lock taken and does nothing.
 * The lock is held by a dedicated session and goes with it if the process dies.
 */
export async function runMaintenance(task: MaintenanceTask): Promise<MaintenanceResult> {
  const lock = new Client({ connectionString: task.databaseUrl });
  await lock.connect();
  const pool = new Pool({ connectionString: task.databaseUrl, max: 2 });
  try {
    const { rows } = await lock.query<{ locked: boolean }>('select pg_try_advisory_lock(hashtext($1)) as locked', [`sluice.maintenance.${task.name}`]);
    if (!rows[0]?.locked) return { ran: false, summary: `${task.name}: another run holds the lock; nothing done` };
    const outcome = await task.run(pool, task.dryRun);
    return { ran: true, ...outcome, summary: `${task.name}${task.dryRun ? ' (dry run)' : ''}: ${outcome.summary}` };
  } finally {
    await pool.end();
    await lock.end();
  }
}

/**
 * The command line of a maintenance task: `<task> [--dry-run]`, the summary on stdout (and a JSON line
 * with the counts on stderr), exit 0 when done or skipped, 1 on failure, 2 on bad usage.
 */
export function maintenanceMain(usage: string, tasks: Record<string, (dryRun: boolean) => MaintenanceTask>, argv = process.argv.slice(2)): void {
  const [name, ...flags] = argv;
  const unknown = flags.filter((f) => f !== '--dry-run');
  const make = name === undefined ? undefined : tasks[name];
  if (!make || unknown.length > 0) {
    process.stderr.write(`${usage}\n`);
    process.exit(2);
  }
  let task: MaintenanceTask;
  try {
    task = make(flags.includes('--dry-run'));
  } catch (err) {
    process.stderr.write(`${name}: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(2);
  }
  runMaintenance(task).then(
    (result) => {
      process.stdout.write(`${result.summary}\n`);
      process.stderr.write(`${JSON.stringify({ task: task.name, dryRun: task.dryRun, ran: result.ran, ...(result.ran ? { counts: result.counts } : {}) })}\n`);
      process.exit(0);
    },
    (err: unknown) => {
      process.stderr.write(`${task.name}: failed: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(1);
    },
  );
}
