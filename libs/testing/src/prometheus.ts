import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ALERT_RULES, stackPaths, startPrometheus, stop } from '@sluice/local-stack';
import { freePort, runningStack, uniqueName } from './helpers';

export interface PromSeries {
  metric: Record<string, string>;
  value: [number, string];
}

export interface PromAlert {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  state: 'pending' | 'firing';
  activeAt: string;
  value: string;
}

export interface TestPrometheus {
  url: string;
  /** An instant query; throws with Prometheus' own error when the expression is refused. */
  query(expr: string): Promise<PromSeries[]>;
  /** The alerts pending or firing now. */
  alerts(): Promise<PromAlert[]>;
  stop(): Promise<void>;
}

/**
 * The project's alert rules on a test's time scale: every `for:` becomes `forDuration` and every
 * range of an expression (`[5m]`) becomes `range`. Names, expressions, thresholds, labels and
 * annotations stay as they are, so a test of the copy tests the rules operators get.
 */
export function scaledAlertRules(source: string, scale: { forDuration: string; range: string }): string {
  return source.replace(/^(\s+for:\s*)\S+$/gm, `$1${scale.forDuration}`).replace(/\[\d+[smhd]\]/g, `[${scale.range}]`);
}

/**
 * A Prometheus of the test's own, started by the stack runner beside the stack (Debian's `prometheus`):
 * it scrapes every service of the stack, extra instances a test started included, every `interval`,
 * and evaluates the project's alert rules scaled to the test's time (`scaledAlertRules`).
 */
export async function startTestPrometheus(options: { interval?: string; forDuration?: string; range?: string } = {}): Promise<TestPrometheus> {
  const paths = stackPaths();
  const dir = mkdtempSync(join(tmpdir(), 'sluice-prometheus-'));
  const rulesFile = join(dir, 'alerts.yml');
  writeFileSync(rulesFile, scaledAlertRules(readFileSync(ALERT_RULES, 'utf8'), { forDuration: options.forDuration ?? '5s', range: options.range ?? '20s' }));
  const name = uniqueName('prometheus');
  const port = await freePort();
  await startPrometheus(paths, runningStack(), { name, port, rulesFile, interval: options.interval ?? '1s' });
  const url = `http://127.0.0.1:${port}`;
  const api = async <T>(path: string): Promise<T> => {
    const res = await fetch(`${url}${path}`);
    const body = (await res.json()) as { status: string; data: T; error?: string };
    if (body.status !== 'success') throw new Error(`Prometheus ${path}: ${body.error ?? res.status}`);
    return body.data;
  };
  let stopped: Promise<void> | undefined;
  return {
    url,
    query: async (expr) => (await api<{ result: PromSeries[] }>(`/api/v1/query?query=${encodeURIComponent(expr)}`)).result,
    alerts: async () => (await api<{ alerts: PromAlert[] }>('/api/v1/alerts')).alerts,
    stop: () => (stopped ??= stop(name, paths, 10_000).then(() => undefined)),
  };
}
