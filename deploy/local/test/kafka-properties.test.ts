import { javaArgs, serverProperties, type KafkaNode } from '../src/kafka';
import { optionsFromEnv } from '../src/stack';

function parse(text: string): Record<string, string> {
  return Object.fromEntries(text.trim().split('\n').map((line) => line.split(/=(.*)/s).slice(0, 2) as [string, string]));
}

const node = (nodeId: number, roles: KafkaNode['roles'], brokerPort: number, controllerPort: number): KafkaNode => ({
  nodeId,
  roles,
  brokerPort,
  controllerPort,
  dataDir: `/data/${nodeId}`,
});

describe('KRaft node settings', () => {
  test('a combined node listens as broker and controller; its voters are every node', () => {
    const nodes = [node(1, 'combined', 9092, 9093), node(2, 'combined', 9094, 9095), node(3, 'combined', 9096, 9097)];
    const p = parse(serverProperties(nodes[1]!, nodes));
    expect(p['process.roles']).toBe('broker,controller');
    expect(p.listeners).toBe('PLAINTEXT://127.0.0.1:9094,CONTROLLER://127.0.0.1:9095');
    expect(p['controller.quorum.bootstrap.servers']).toBe('127.0.0.1:9093,127.0.0.1:9095,127.0.0.1:9097');
    expect(p['default.replication.factor']).toBe('3');
    expect(p['min.insync.replicas']).toBe('2');
  });

  test('with controllers of their own, a broker has no controller listener and a controller no broker listener', () => {
    const controller = node(101, 'controller', 0, 9099);
    const brokers = [node(1, 'broker', 9092, 9093), node(2, 'broker', 9094, 9095), node(3, 'broker', 9096, 9097)];
    const b = parse(serverProperties(brokers[0]!, [controller], brokers.length));
    expect(b['process.roles']).toBe('broker');
    expect(b.listeners).toBe('PLAINTEXT://127.0.0.1:9092');
    expect(b['advertised.listeners']).toBe('PLAINTEXT://127.0.0.1:9092');
    expect(b['controller.quorum.bootstrap.servers']).toBe('127.0.0.1:9099');
    const c = parse(serverProperties(controller, [controller], brokers.length));
    expect(c['process.roles']).toBe('controller');
    expect(c.listeners).toBe('CONTROLLER://127.0.0.1:9099');
    expect(c['advertised.listeners']).toBeUndefined();
    expect(c['inter.broker.listener.name']).toBeUndefined();
    // The controller creates the topics: its defaults follow the number of brokers, not of controllers.
    expect(c['default.replication.factor']).toBe('3');
    expect(c['min.insync.replicas']).toBe('2');
  });
});

describe('the Kafka nodes\' JIT (SLUICE_KAFKA_JIT)', () => {
  test('quick by default: C1 only; full: the JVM\'s own tiered compilation', () => {
    expect(optionsFromEnv({}).kafkaJit).toBe('quick');
    expect(javaArgs('/libs', 512, ['kafka.Kafka'], 'log4j2.yaml', optionsFromEnv({}).kafkaJit)).toContain('-XX:TieredStopAtLevel=1');
    expect(optionsFromEnv({ SLUICE_KAFKA_JIT: 'full' }).kafkaJit).toBe('full');
    const full = javaArgs('/libs', 512, ['kafka.Kafka'], 'log4j2.yaml', 'full');
    expect(full.some((arg) => arg.startsWith('-XX:TieredStopAtLevel'))).toBe(false);
    expect(full).toContain('-Xmx512m');
  });

  test('another value is refused at start-up, naming the variable', () => {
    expect(() => optionsFromEnv({ SLUICE_KAFKA_JIT: 'c2' })).toThrow('SLUICE_KAFKA_JIT must be quick or full, got "c2"');
  });
});
