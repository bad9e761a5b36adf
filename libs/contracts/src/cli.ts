#!/usr/bin/env node
import { env, kafkaClientConfig, kafkaEnvShape, loadConfig } from '@sluice/config';
import { Kafka, logLevel } from 'kafkajs';
import { z } from 'zod';
import { checkAgainstRegistry, checkHistories, type CheckResult } from './check';
import { provisionTopics } from './provision';
import { topicCatalog } from './topics';

const usage = `usage: sluice-contracts <command>

  check [--registry URL]   every schema history is BACKWARD compatible; with a registry
                           (or SCHEMA_REGISTRY_URL), the newest schemas are compatible with it
  provision                create or update every topic of the catalog (KAFKA_BROKERS,
                           TOPIC_PARTITIONS default 6, TOPIC_REPLICATION_FACTOR default 1)`;

const say = (line: string) => process.stdout.write(`${line}\n`);

function printResults(results: CheckResult[]): boolean {
  for (const r of results) {
    say(`${r.problems.length === 0 ? 'ok  ' : 'FAIL'} ${r.contract}: ${r.what}`);
    for (const p of r.problems) say(`       ${p}`);
  }
  return results.every((r) => r.problems.length === 0);
}

async function main(argv: string[]): Promise<number> {
  const [command, ...args] = argv;
  if (command === 'check') {
    const flagAt = args.indexOf('--registry');
    const registryUrl = flagAt >= 0 ? args[flagAt + 1] : process.env.SCHEMA_REGISTRY_URL;
    let ok = printResults(checkHistories());
    if (registryUrl) ok = printResults(await checkAgainstRegistry(registryUrl)) && ok;
    return ok ? 0 : 1;
  }
  if (command === 'provision') {
    const config = loadConfig(
      z.object({
        ...kafkaEnvShape,
        TOPIC_PARTITIONS: env.int(6, { min: 1, max: 10_000 }),
        TOPIC_REPLICATION_FACTOR: env.int(1, { min: 1, max: 10 }),
      }),
    );
    const kafka = new Kafka({ ...kafkaClientConfig(config, 'sluice-contracts'), logLevel: logLevel.WARN });
    const admin = kafka.admin();
    await admin.connect();
    try {
      const report = await provisionTopics(admin, topicCatalog({ partitions: config.TOPIC_PARTITIONS, replicationFactor: config.TOPIC_REPLICATION_FACTOR }));
      say(JSON.stringify(report, null, 2));
      return report.problems.length === 0 ? 0 : 1;
    } finally {
      await admin.disconnect();
    }
  }
  say(usage);
  return command === undefined || command === 'help' ? 0 : 2;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`sluice-contracts: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
