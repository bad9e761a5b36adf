import { execFileSync } from 'node:child_process';
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { StackPaths } from './paths';
import { repoRoot } from './paths';
import type { StackState } from './state';

/** The alert rules every Prometheus of the project loads: compose, Kubernetes and the local stack. */
export const ALERT_RULES = join(repoRoot, 'deploy', 'observability', 'alerts.yml');

/** The file Prometheus reads its targets from; the stack runner rewrites it whenever a service starts or stops. */
export function scrapeTargetsFile(paths: StackPaths): string {
  return join(paths.dataDir, 'prometheus', 'targets.json');
}

/**
 * Every process of the stack that serves /metrics (the Sluice services, extra instances a test
 * started included), labelled by its name in the stack, as Prometheus' file discovery reads them.
 */
export function writeScrapeTargets(paths: StackPaths, state: StackState): void {
  const file = scrapeTargetsFile(paths);
  const targets = Object.values(state.processes)
    .filter((p) => p.metrics)
    .map((p) => ({ targets: [`127.0.0.1:${p.port}`], labels: { instance: p.name } }));
  mkdirSync(join(paths.dataDir, 'prometheus'), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(targets, null, 2)}\n`);
  renameSync(tmp, file);
}

/** The `prometheus` binary (Debian's package `prometheus`), or undefined when it is not installed. */
export function prometheusBinary(): string | undefined {
  try {
    return execFileSync('sh', ['-c', 'command -v prometheus'], { encoding: 'utf8' }).trim() || undefined;
  } catch {
    return undefined;
  }
}

export interface PrometheusOptions {
  /** Its name in the stack, and its folder under the stack's data. @default prometheus */
  name?: string;
  /** @default 9090 (PROMETHEUS_PORT) */
  port: number;
  /** @default deploy/observability/alerts.yml */
  rulesFile?: string;
  /** Scrape and rule evaluation interval. @default 5s */
  interval?: string;
}

/** The configuration file of a local Prometheus: the project's rules, the stack's services by file discovery. */
export function writePrometheusConfig(paths: StackPaths, name: string, options: PrometheusOptions): string {
  const interval = options.interval ?? '5s';
  const config = {
    global: { scrape_interval: interval, evaluation_interval: interval },
    rule_files: [options.rulesFile ?? ALERT_RULES],
    scrape_configs: [
      {
        job_name: 'sluice',
        metrics_path: '/metrics',
        file_sd_configs: [{ files: [scrapeTargetsFile(paths)], refresh_interval: '5s' }],
      },
    ],
  };
  const dir = join(paths.dataDir, name);
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'prometheus.yml');
  // JSON is YAML: Prometheus reads it as it is.
  writeFileSync(file, `${JSON.stringify(config, null, 2)}\n`);
  return file;
}

export function prometheusArgs(paths: StackPaths, name: string, port: number, configFile: string): string[] {
  return [
    `--config.file=${configFile}`,
    `--storage.tsdb.path=${join(paths.dataDir, name, 'tsdb')}`,
    `--storage.tsdb.retention.time=1d`,
    `--web.listen-address=127.0.0.1:${port}`,
    // The console templates of the Debian package live elsewhere; the UI and API need none.
    `--web.page-title=Sluice (local)`,
  ];
}
