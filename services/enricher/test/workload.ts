import type { ActivityEvent } from '@sluice/contracts';
import { activity, type EnricherFixture } from './pipeline';

/**
 * Sends events in the background until stopped: 20 entities, and about one
 * event in eight re-sent with the same eventId (a client retry).
 */
export function steadyLoad(pipeline: EnricherFixture, options: { batch: number; everyMs: number; entities?: number }) {
  const sent = new Map<string, ActivityEvent>();
  let running = true;
  let failure: unknown;
  const entities = Array.from({ length: options.entities ?? 20 }, (_, i) => `sku-${i}`);
  const loop = (async () => {
    let n = 0;
    while (running) {
      const events: ActivityEvent[] = [];
      for (let i = 0; i < options.batch; i++) {
        const previous = [...sent.values()];
        if (previous.length > 0 && (n + i) % 8 === 0) events.push(previous[Math.floor(Math.random() * previous.length)]!);
        else events.push(activity(entities[(n + i) % entities.length]!));
      }
      n += options.batch;
      try {
        await pipeline.sendEvents(events);
        for (const e of events) sent.set(e.eventId, e);
      } catch (err) {
        failure = err;
        return;
      }
      await new Promise((r) => setTimeout(r, options.everyMs));
    }
  })();
  return {
    /** Distinct eventIds acknowledged by Kafka so far. */
    sent,
    async stop(): Promise<void> {
      running = false;
      await loop;
      if (failure) throw failure;
    },
  };
}

/** Every distinct eventId exactly once: the duplicates and the missing, for a readable failure. */
export function exactlyOnce(sentIds: Iterable<string>, outputIds: string[]): { missing: string[]; duplicated: string[]; unexpected: string[]; total: number } {
  const expected = new Set(sentIds);
  const counts = new Map<string, number>();
  for (const id of outputIds) counts.set(id, (counts.get(id) ?? 0) + 1);
  return {
    missing: [...expected].filter((id) => !counts.has(id)),
    duplicated: [...counts].filter(([, c]) => c > 1).map(([id]) => id),
    unexpected: [...counts.keys()].filter((id) => !expected.has(id)),
    total: outputIds.length,
  };
}
