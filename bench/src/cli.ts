#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { aggregatorBench } from './aggregator';
import { enricherBench } from './enricher';
import { gatewayBench } from './gateway';
import { guaranteesBench } from './guarantees';
import { kafkaClientBench } from './kafka-client';
import { kstreamsBench } from './kstreams';
import { latencyBench } from './latency';
import { gatewayProfileBench } from './profile';
import { registryBench } from './registry';
import { scalingBench } from './scaling';
import { transactionsBench } from './transactions';
import { writeReport } from './report';
import { viewBench } from './view';

const scenarios: Record<string, () => Promise<string>> = { registry: registryBench, enricher: enricherBench, gateway: gatewayBench, aggregator: aggregatorBench, view: viewBench, latency: latencyBench, 'gateway-profile': gatewayProfileBench, kstreams: kstreamsBench, scaling: scalingBench, 'kafka-client': kafkaClientBench, guarantees: guaranteesBench, transactions: transactionsBench, report: writeReport };

async function main(name: string | undefined): Promise<number> {
  const run = name ? scenarios[name] : undefined;
  if (!run) {
    process.stdout.write(`usage: pnpm bench <scenario>\nscenarios: ${Object.keys(scenarios).join(', ')}\n`);
    return name ? 2 : 0;
  }
  const path = await run();
  process.stdout.write(`${readFileSync(path, 'utf8')}\nwritten to ${path}\n`);
  return 0;
}

main(process.argv[2]).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`bench: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  },
);
