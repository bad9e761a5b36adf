import { readFileSync } from 'node:fs';
import { createTopics, testKafka, uniqueName, withAdmin } from '@sluice/testing';
import { brokerPid, percentiles, writeResults } from './results';

const TRANSACTIONS = 1_000;
const WARM_UP = 100;

/** CPU seconds (user + system) a process has used, from /proc/<pid>/stat. */
function cpuSeconds(pid: number): number {
  // The fields after the command (which may hold spaces) start after its closing parenthesis.
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/**
 * One transactional producer committing small transactions back to back, as every stream task does: one record
 * and the input offset per transaction. Per step (begin, send = AddPartitionsToTxn + Produce, offsets =
 * AddOffsetsToTxn + TxnOffsetCommit, commit = EndTxn) its latency, and the broker's CPU per transaction.
 * A transaction begun right after the previous one's EndTxn finds the coordinator still writing that
 * one's markers (CONCURRENT_TRANSACTIONS); how long the client waits then is what this shows.
 */
export async function transactionsBench(): Promise<string> {
  const kafka = testKafka();
  const broker = brokerPid();
  const topic = uniqueName('bench-transactions');
  await createTopics(kafka, [{ topic, numPartitions: 1 }]);
  const producer = kafka.producer({ transactionalId: uniqueName('bench-transactions'), idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  const steps = { transaction: [] as number[], send: [] as number[], offsets: [] as number[], commit: [] as number[] };
  let brokerCpu = 0;
  try {
    for (let i = 0; i < WARM_UP + TRANSACTIONS; i++) {
      if (i === WARM_UP && broker !== undefined) brokerCpu = -cpuSeconds(broker);
      const t0 = performance.now();
      const transaction = await producer.transaction();
      const t1 = performance.now();
      await transaction.send({ topic, messages: [{ key: 'k', value: `v${i}` }] });
      const t2 = performance.now();
      await transaction.sendOffsets({ consumerGroupId: `${topic}-group`, topics: [{ topic, partitions: [{ partition: 0, offset: String(i + 1) }] }] });
      const t3 = performance.now();
      await transaction.commit();
      const t4 = performance.now();
      if (i < WARM_UP) continue;
      steps.transaction.push(t4 - t0);
      steps.send.push(t2 - t1);
      steps.offsets.push(t3 - t2);
      steps.commit.push(t4 - t3);
    }
    if (broker !== undefined) brokerCpu += cpuSeconds(broker);
  } finally {
    await producer.disconnect();
    await withAdmin(kafka, (admin) => admin.deleteTopics({ topics: [topic] })).catch(() => undefined);
  }
  const figures = (values: number[]) => {
    const { count, p50, p95, p99, max } = percentiles(values.map((v) => Math.round(v * 10) / 10));
    return { count, p50, p95, p99, max, mean: Math.round((values.reduce((a, b) => a + b, 0) / values.length) * 10) / 10 };
  };
  const result = {
    transactions: TRANSACTIONS,
    warmUp: WARM_UP,
    stepsMs: { transaction: figures(steps.transaction), send: figures(steps.send), offsets: figures(steps.offsets), commit: figures(steps.commit) },
    sendsOver100Ms: steps.send.filter((v) => v > 100).length,
    brokerCpuMsPerTransaction: broker === undefined ? null : Math.round((brokerCpu / TRANSACTIONS) * 1e4) / 10,
  };
  return writeResults('transactions', result);
}
