import { Serde } from '@sluice/contracts';
import { runningStack, testKafka } from '@sluice/testing';
import { compareAggregators, compareEnrichers } from './kstreams';
import { median, writeResults } from './results';

/**
 * What exactly-once costs against at-least-once, per stage, measured often enough to be read: each round runs
 * both guarantees one after the other on the same records (200,000 events, 6 partitions; the order alternates
 * from round to round, so that a machine growing slower or faster during the run favours neither), and the ratio
 * is taken of the medians. A single short run gave ratios from 0.63 to 0.92 on this machine. Every output is
 * checked as in `kstreams` (at least once writes each record once too when nothing fails).
 */
export async function guaranteesBench(): Promise<string> {
  const rounds = Number(process.env.BENCH_GUARANTEES_ROUNDS ?? 3);
  if (!Number.isSafeInteger(rounds) || rounds < 1 || rounds > 20) throw new Error('BENCH_GUARANTEES_ROUNDS must be a whole number from 1 to 20');
  const kafka = testKafka();
  const serde = new Serde(runningStack().schemaRegistryUrl);
  const figures = { enricher: { exactlyOnce: [] as number[], atLeastOnce: [] as number[] }, aggregator: { exactlyOnce: [] as number[], atLeastOnce: [] as number[] } };
  for (let round = 0; round < rounds; round++) {
    const order: ('sluice' | 'sluice-at-least-once')[] = round % 2 === 0 ? ['sluice', 'sluice-at-least-once'] : ['sluice-at-least-once', 'sluice'];
    const enricher = await compareEnrichers(kafka, serde, order);
    figures.enricher.exactlyOnce.push(enricher.sluice!.eventsPerSecond);
    figures.enricher.atLeastOnce.push(enricher.sluiceAtLeastOnce!.eventsPerSecond);
    const aggregator = await compareAggregators(kafka, serde, order);
    figures.aggregator.exactlyOnce.push(aggregator.sluice!.eventsPerSecond);
    figures.aggregator.atLeastOnce.push(aggregator.sluiceAtLeastOnce!.eventsPerSecond);
    process.stderr.write(`round ${round + 1}/${rounds}: ${JSON.stringify(figures)}\n`);
  }
  const stage = (f: { exactlyOnce: number[]; atLeastOnce: number[] }) => ({
    eventsPerSecond: f,
    medianExactlyOnce: median(f.exactlyOnce),
    medianAtLeastOnce: median(f.atLeastOnce),
    ratioOfMedians: Number((median(f.exactlyOnce) / median(f.atLeastOnce)).toFixed(3)),
    ratioPerRound: f.exactlyOnce.map((eo, i) => Number((eo / f.atLeastOnce[i]!).toFixed(3))),
  });
  return writeResults('guarantees', {
    rounds,
    events: 200_000,
    partitions: 6,
    note: 'aggregator events/s through both stages; each round runs both guarantees, in alternating order',
    STREAM_CONCURRENCY: process.env.STREAM_CONCURRENCY ?? 'default',
    STREAM_MAX_BATCH_SIZE: process.env.STREAM_MAX_BATCH_SIZE ?? 'default',
    enricher: stage(figures.enricher),
    aggregator: stage(figures.aggregator),
  });
}
