import { runJavaWithKafka } from '@sluice/testing';
import fc from 'fast-check';
import { partitionFor } from '../src/batcher';

jest.setTimeout(120_000);

// The partition Apache Kafka's own Java producer picks for a key (BuiltInPartitioner.partitionForKey:
// murmur2 of the key's bytes, made positive, modulo the partition count), for each key read as base64.
const JAVA = `
import java.io.*;
import java.nio.charset.StandardCharsets;
import java.util.Base64;
import org.apache.kafka.clients.producer.internals.BuiltInPartitioner;

public class JavaPartitions {
  public static void main(String[] args) throws IOException {
    int[] counts = {1, 2, 3, 6, 7, 24, 96, 1000};
    BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.US_ASCII));
    StringBuilder out = new StringBuilder();
    for (String line; (line = in.readLine()) != null; ) {
      byte[] key = Base64.getDecoder().decode(line);
      for (int i = 0; i < counts.length; i++) out.append(i == 0 ? "" : " ").append(BuiltInPartitioner.partitionForKey(key, counts[i]));
      out.append('\\n');
    }
    System.out.print(out);
  }
}
`;
const COUNTS = [1, 2, 3, 6, 7, 24, 96, 1000];

test('a key lands on the partition the Java client picks for it, for any Unicode key and partition count', async () => {
  // Full Unicode (NUL, every plane), long keys, and keys whose murmur2 is negative or the minimum int.
  const keys = [
    '',
    'a',
    'entity-42',
    '\u0000',
    '\u{10FFFF}',
    'x'.repeat(1_000),
    ...fc.sample(fc.string({ unit: 'binary', maxLength: 64 }), { numRuns: 400, seed: 19 }),
    ...fc.sample(fc.string({ unit: 'grapheme', maxLength: 8 }), { numRuns: 100, seed: 23 }),
  ];
  const java = (await runJavaWithKafka(JAVA, keys.map((k) => Buffer.from(k, 'utf8').toString('base64')).join('\n') + '\n')).trim().split('\n');
  expect(java).toHaveLength(keys.length);
  const ours = keys.map((key) => COUNTS.map((n) => partitionFor('events.raw', key, n)).join(' '));
  const differing = keys.map((key, i) => ({ key, java: java[i], ours: ours[i] })).filter((r) => r.java !== r.ours);
  expect(differing).toEqual([]);
  // The comparison means something only if the partitions spread.
  expect(new Set(java.map((line) => line.split(' ')[6])).size).toBeGreaterThan(50);
});
