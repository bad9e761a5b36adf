import { Serde, type EnrichedEvent, type WindowAggregate } from '@sluice/contracts';
import { readTopic, runningStack, serverSentEvents, startPipeline, testKafka, type Pipeline } from '@sluice/testing';
import { scrape } from './metrics';
import { percentiles, serviceNodeOptions, serviceNodeOptionsUsed, summarize, writeResults } from './results';

const EVENTS_PER_SECOND = 2_000;
const DURATION_SEC = 60;
/** The same load before the measured minute, not measured: five Node processes and the broker compile their hot paths then. */
const WARM_UP_SEC = 10;
const EVENTS_PER_REQUEST = 20;
const ENTITIES = 200;
const MIN = 60_000;

interface SentEvent {
  eventId: string;
  entityId: string;
  windowStart: number;
  ackedAt: number;
}

function push<T>(map: Map<string, T[]>, id: string, value: T): void {
  const list = map.get(id);
  if (list) list.push(value);
  else map.set(id, [value]);
}

/** Server-sent window events of the view: for each, when it arrived, its window and count. */
function subscribe(url: string, onWindow: (key: string, windowStart: number, count: number, at: number) => void): { close(): void } {
  const controller = new AbortController();
  void (async () => {
    const res = await fetch(url, { signal: controller.signal });
    for await (const e of serverSentEvents(res)) {
      if (e.event !== 'window' || !e.data) continue;
      const w = JSON.parse(e.data) as { key: string; windowStart: string; count: number };
      onWindow(w.key, Date.parse(w.windowStart), w.count, e.receivedAt);
    }
  })().catch((err: unknown) => {
    if (!controller.signal.aborted) process.stderr.write(`latency: the stream failed: ${String(err)}\n`);
  });
  return { close: () => controller.abort() };
}

/**
 * For each window, its events in the order the aggregator counted them (their
 * offsets in events.enriched: one entity, one partition), and the times at which
 * counts were seen; an event is in a window's state from the first time its
 * count reaches the event's rank.
 */
function attribute(ranked: Map<string, string[]>, seen: Map<string, { count: number; at: number }[]>): Map<string, number> {
  const firstSeen = new Map<string, number>();
  for (const [window, eventIds] of ranked) {
    const times = [...(seen.get(window) ?? [])].sort((a, b) => a.at - b.at);
    let next = 0;
    for (const { count, at } of times) {
      for (; next < Math.min(count, eventIds.length); next++) firstSeen.set(eventIds[next]!, at);
    }
  }
  return firstSeen;
}

/**
 * End-to-end latency, all five services: 2,000 events/s for 60 s through the
 * gateway (requests of 20 events, event time = now; after 10 s of the same load
 * not measured), and for each event of the 60 s the
 * time from its 202 to the first window change on GET /v1/stream that counts
 * it; then where that time goes, from the records' own timestamps.
 */
export async function latencyBench(): Promise<string> {
  const kafka = testKafka();
  const p: Pipeline = await startPipeline({ windowRetentionMs: 3_600_000, partitions: 6, env: { LOG_LEVEL: 'warn', ...serviceNodeOptions() } });
  const serde = new Serde(runningStack().schemaRegistryUrl);
  try {
    const entities = Array.from({ length: ENTITIES }, (_, i) => `lat-e${i}`);
    for (const [i, entityId] of entities.entries()) {
      const res = await p.http(p.gateway, 'PUT', `/v1/catalog/${entityId}`, { name: entityId, category: `lat-c${i % 10}` });
      if (res.status !== 200) throw new Error(`catalog entry refused: ${res.status}`);
    }
    // Give the enricher time to read the catalog before the clock starts.
    await new Promise((r) => setTimeout(r, 3_000));

    const seen = new Map<string, { count: number; at: number }[]>();
    const stream = subscribe(`${p.view.url}/v1/stream?dimension=entity`, (key, windowStart, count, at) => {
      push(seen, `${key}|${windowStart}`, { count, at });
    });
    await new Promise((r) => setTimeout(r, 500));

    /** Every event accepted, warm-up included (a window's count includes them), and those measured. */
    const accepted = new Map<string, SentEvent>();
    const sent = new Map<string, SentEvent>();
    const rss: { second: number; gatewayMb: number; viewMb: number; enricherMb: number; aggregatorMb: number }[] = [];
    let refused = 0;
    let failed = 0;
    let seq = 0;
    const warmUpStarted = Date.now();
    const sampler = setInterval(() => {
      void Promise.all([p.gateway, p.view, p.enricher, p.aggregator].map((s) => scrape(s.url, 'process_resident_memory_bytes').catch(() => Number.NaN))).then(([g, v, e, a]) =>
        rss.push({ second: Math.round((Date.now() - warmUpStarted) / 1000) - WARM_UP_SEC, gatewayMb: Math.round(g! / 2 ** 20), viewMb: Math.round(v! / 2 ** 20), enricherMb: Math.round(e! / 2 ** 20), aggregatorMb: Math.round(a! / 2 ** 20) }),
      );
    }, 5_000);
    const inFlight = new Set<Promise<void>>();
    const intervalMs = 1000 / (EVENTS_PER_SECOND / EVENTS_PER_REQUEST);
    /** `seconds` of load from `from`; the events of the measured part are kept in `sent`. */
    const drive = async (from: number, seconds: number, measured: boolean) => {
      const requests = (EVENTS_PER_SECOND * seconds) / EVENTS_PER_REQUEST;
      for (let r = 0; r < requests; r++) {
        // Paced by the clock, not by the answers: a slow pipeline does not slow the load down.
        const wait = from + r * intervalMs - Date.now();
        if (wait > 0) await new Promise((res) => setTimeout(res, wait));
        const now = Date.now();
        const events = Array.from({ length: EVENTS_PER_REQUEST }, () => {
          const entityId = entities[seq % ENTITIES]!;
          return { eventId: `lat-${++seq}`, type: 'view', entityId, occurredAt: new Date(now).toISOString(), value: seq % 13 };
        });
        const request = fetch(`${p.gateway.url}/v1/events`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ events }) }).then(
          async (res) => {
            const ackedAt = Date.now();
            await res.arrayBuffer();
            if (res.status !== 202) {
              if (measured) refused += events.length;
              return;
            }
            for (const e of events) {
              const event = { eventId: e.eventId, entityId: e.entityId, windowStart: Math.floor(now / MIN) * MIN, ackedAt };
              accepted.set(e.eventId, event);
              if (measured) sent.set(e.eventId, event);
            }
          },
          () => {
            if (measured) failed += events.length;
          },
        );
        inFlight.add(request);
        void request.finally(() => inFlight.delete(request));
      }
    };
    await drive(warmUpStarted, WARM_UP_SEC, false);
    const started = Date.now();
    await drive(started, DURATION_SEC, true);
    await Promise.all(inFlight);
    const loadSeconds = (Date.now() - started) / 1000;
    clearInterval(sampler);

    // The offsets of events.enriched give the order in which the aggregator counted each window's events.
    const enrichedDecoder = serde.decoder<EnrichedEvent>('EnrichedEvent');
    const enrichedRecords = await readTopic(kafka, p.topic('events.enriched'), { done: (rs) => rs.length >= accepted.size, timeoutMs: 120_000 });
    const rawRecords = await readTopic(kafka, p.topic('events.raw'), { done: (rs) => rs.length >= accepted.size, timeoutMs: 60_000 });
    const rawDecoder = serde.decoder<{ eventId: string }>('ActivityEvent');
    const rawAt = new Map<string, number>();
    for (const r of rawRecords) rawAt.set((await rawDecoder.decode(r.value!)).eventId, Number(r.timestamp));
    const enrichedAt = new Map<string, number>();
    const ranked = new Map<string, string[]>();
    for (const r of [...enrichedRecords].sort((a, b) => a.partition - b.partition || Number(BigInt(a.offset) - BigInt(b.offset)))) {
      const e = await enrichedDecoder.decode(r.value!);
      const s = accepted.get(e.eventId);
      if (!s) continue;
      enrichedAt.set(e.eventId, Number(r.timestamp));
      push(ranked, `${s.entityId}|${s.windowStart}`, e.eventId);
    }
    // Wait until the stream has shown every event (or give up after a minute and say how many it did not).
    const deadline = Date.now() + 60_000;
    let shown = attribute(ranked, seen);
    while (shown.size < accepted.size && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 1_000));
      shown = attribute(ranked, seen);
    }
    stream.close();

    // When each window count was written to the aggregates topic (the aggregator's produce time).
    const aggregateDecoder = serde.decoder<WindowAggregate>('WindowAggregate');
    // (Read for a fixed time: how many records the topic holds is not known in advance.)
    const aggregateRecords = await readTopic(kafka, p.topic('aggregates'), {});
    const produced = new Map<string, { count: number; at: number }[]>();
    for (const r of aggregateRecords) {
      const a = await aggregateDecoder.decode(r.value!);
      if (a.dimension !== 'entity') continue;
      push(produced, `${a.key}|${a.windowStart}`, { count: a.count, at: Number(r.timestamp) });
    }
    const aggregated = attribute(ranked, produced);

    const endToEnd: number[] = [];
    const stages = { gatewayAck: [] as number[], enricher: [] as number[], aggregator: [] as number[], viewAndStream: [] as number[] };
    let shownBeforeAck = 0;
    // Per 5 s of the load (by the 202's time): shows a warm-up or a backlog that the whole-run percentiles hide.
    const byPeriod = new Map<string, number[]>();
    for (const s of sent.values()) {
      const at = shown.get(s.eventId);
      if (at === undefined) continue;
      if (at < s.ackedAt) shownBeforeAck++;
      endToEnd.push(Math.max(0, at - s.ackedAt));
      push(byPeriod, String(Math.floor((s.ackedAt - started) / 5_000) * 5), Math.max(0, at - s.ackedAt));
      const raw = rawAt.get(s.eventId);
      const enriched = enrichedAt.get(s.eventId);
      const aggregate = aggregated.get(s.eventId);
      if (raw === undefined || enriched === undefined || aggregate === undefined) continue;
      stages.gatewayAck.push(s.ackedAt - raw);
      stages.enricher.push(enriched - raw);
      stages.aggregator.push(aggregate - enriched);
      stages.viewAndStream.push(at - aggregate);
    }
    const buckets = [25, 50, 100, 150, 200, 250, 300, 400, 500, 750, 1_000, 2_000, 5_000];
    return writeResults('latency', {
      load: {
        targetEventsPerSecond: EVENTS_PER_SECOND,
        warmUpSeconds: WARM_UP_SEC,
        seconds: DURATION_SEC,
        eventsPerRequest: EVENTS_PER_REQUEST,
        entities: ENTITIES,
        accepted: sent.size,
        acceptedPerSecond: Math.round(sent.size / loadSeconds),
        refused,
        failed,
      },
      endToEndMs: { ...summarize(endToEnd, buckets), goalP99: 300, notShown: [...sent.keys()].filter((id) => !shown.has(id)).length, shownBeforeTheClientHadIts202: shownBeforeAck },
      endToEndBy5sMs: [...byPeriod].map(([second, values]) => ({ fromSecond: Number(second), ...percentiles(values) })).sort((a, b) => a.fromSecond - b.fromSecond),
      // From the records' own timestamps (each producer's create time): a stage's figure ends when its output was
      // produced, so the wait for its transaction to commit is in the next stage's figure.
      stagesMs: {
        gatewayAck: percentiles(stages.gatewayAck),
        enricher: percentiles(stages.enricher),
        aggregator: percentiles(stages.aggregator),
        viewAndStream: percentiles(stages.viewAndStream),
      },
      settings: {
        STREAM_COMMIT_INTERVAL_MS: process.env.STREAM_COMMIT_INTERVAL_MS ?? '100 (default)',
        STREAM_CONCURRENCY: process.env.STREAM_CONCURRENCY ?? 'default',
        serviceNodeOptions: serviceNodeOptionsUsed(),
      },
      rssMb: rss,
    });
  } finally {
    await p.close();
  }
}
