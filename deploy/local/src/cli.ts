#!/usr/bin/env node
import { stackPaths } from './paths';
import { down, intFrom, kill, logs, optionsFromEnv, restart, status, up, type StackOptions } from './stack';

const usage = `usage: sluice-stack <command> [options]

commands:
  up [--only kafka|infra|all] [--kafka-nodes N] [--kafka-controllers N] [--observability] [--s3]
                                                 start the stack (default: everything that is built);
                                                 --kafka-nodes N brokers; --kafka-controllers N KRaft controllers
                                                 of their own (0, the default: every broker is also a controller);
                                                 --observability adds a Prometheus scraping every service;
                                                 --s3 adds an S3Proxy, and the archiver writes to its bucket
  down                                           stop every process and remove the stack's data
  status                                         each process: name, pid, port, alive, log
  logs <name>                                    print a process's log
  restart <name>                                 stop a process (SIGTERM) and start it again
  kill <name>                                    SIGKILL a process, for failure tests

environment: SLUICE_KAFKA_PORT (9092), SLUICE_KAFKA_NODES (1),
  SLUICE_KAFKA_CONTROLLERS (0), SLUICE_KAFKA_VERSION (4.1.1),
  SLUICE_KAFKA_HEAP_MB (512), SLUICE_KAFKA_JIT (quick: C1 only; full for benchmarks), SLUICE_PG_PORT (54329), DATABASE_URL (embedded Postgres when unset),
  SCHEMA_REGISTRY_PORT (8081), SLUICE_OBSERVABILITY (false), PROMETHEUS_PORT (9090), SLUICE_S3 (false),
  SLUICE_S3_PORT (9000), ARCHIVE_URL (the archiver's; .sluice/archive),
  SLUICE_STATE_DIR (.sluice), SLUICE_CACHE_DIR (.cache)`;

const say = (line: string) => process.stdout.write(`${line}\n`);

function flag(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

async function main(argv: string[]): Promise<number> {
  const [command, ...args] = argv;
  const paths = stackPaths();
  switch (command) {
    case 'up': {
      const options: StackOptions = { ...optionsFromEnv() };
      const only = flag(args, '--only');
      if (only !== undefined) {
        if (only !== 'kafka' && only !== 'infra' && only !== 'all') throw new Error(`--only takes kafka, infra or all, not "${only}"`);
        options.only = only;
      }
      const nodes = flag(args, '--kafka-nodes');
      if (nodes !== undefined) options.kafkaNodes = intFrom(nodes, 1, '--kafka-nodes', 1);
      const controllers = flag(args, '--kafka-controllers');
      if (controllers !== undefined) options.kafkaControllers = intFrom(controllers, 0, '--kafka-controllers', 0);
      if (args.includes('--observability')) options.observability = true;
      if (args.includes('--s3')) options.s3 = true;
      const state = await up(options, say, paths);
      say('');
      say(`Kafka brokers:    ${state.kafkaBrokers.join(',')}`);
      if (state.databaseUrl) say(`Postgres:         ${state.databaseUrl}`);
      for (const p of Object.values(state.processes)) say(`${p.name.padEnd(17)} pid ${p.pid}, port ${p.port}, log ${p.logPath}`);
      const prometheus = state.processes.prometheus;
      if (prometheus) say(`Prometheus UI:    http://127.0.0.1:${prometheus.port}/alerts`);
      if (state.processes.s3proxy) say(`S3 endpoint:      http://127.0.0.1:${state.processes.s3proxy.port} (bucket sluice-archive)`);
      say(`state file:       ${paths.stateFile}`);
      return 0;
    }
    case 'down':
      await down(say, paths);
      return 0;
    case 'status': {
      const { rows } = status(paths);
      if (rows.length === 0) say('the stack is not running');
      for (const r of rows) say(`${r.name.padEnd(17)} ${r.alive ? 'up  ' : 'DOWN'} pid ${r.pid} port ${r.port} log ${r.logPath}`);
      return rows.every((r) => r.alive) ? 0 : 1;
    }
    case 'logs': {
      if (!args[0]) throw new Error('logs needs a process name');
      process.stdout.write(logs(args[0], paths).text);
      return 0;
    }
    case 'restart': {
      if (!args[0]) throw new Error('restart needs a process name');
      const entry = await restart(args[0], paths);
      say(`restarted ${entry.name} (pid ${entry.pid})`);
      return 0;
    }
    case 'kill': {
      if (!args[0]) throw new Error('kill needs a process name');
      const entry = await kill(args[0], paths);
      say(`killed ${entry.name} (pid ${entry.pid})`);
      return 0;
    }
    default:
      say(usage);
      return command === undefined || command === 'help' || command === '--help' ? 0 : 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`sluice-stack: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
