import { ConfigResourceTypes } from 'kafkajs';
import { provisionTopics, topicCatalog } from '@sluice/contracts';
import { testKafka, uniqueName, withAdmin } from '@sluice/testing';

jest.setTimeout(60_000);

test('provisioning creates every topic of the catalog, then finds nothing to do', async () => {
  const kafka = testKafka();
  const catalog = topicCatalog({ prefix: `${uniqueName('prov')}.`, partitions: 2 });
  await withAdmin(kafka, async (admin) => {
    const first = await provisionTopics(admin, catalog);
    expect(first.created.sort()).toEqual(catalog.map((t) => t.name).sort());
    const second = await provisionTopics(admin, catalog);
    expect(second).toEqual({ created: [], updated: [], unchanged: catalog.map((t) => t.name), problems: [] });

    const compacted = catalog.find((t) => t.name.endsWith('.aggregates'))!;
    const configs = await admin.describeConfigs({ includeSynonyms: false, resources: [{ type: ConfigResourceTypes.TOPIC, name: compacted.name, configNames: ['cleanup.policy'] }] });
    expect(configs.resources[0]?.configEntries[0]?.configValue).toBe('compact');
    const metadata = await admin.fetchTopicMetadata({ topics: [compacted.name] });
    expect(metadata.topics[0]?.partitions).toHaveLength(2);
  });
});

test('a topic whose config drifted is set back; one with fewer partitions is reported, not changed', async () => {
  const kafka = testKafka();
  const [spec] = topicCatalog({ prefix: `${uniqueName('drift')}.`, partitions: 3 }).filter((t) => t.name.endsWith('.events.raw'));
  await withAdmin(kafka, async (admin) => {
    await admin.createTopics({ topics: [{ topic: spec!.name, numPartitions: 1, configEntries: [{ name: 'retention.ms', value: '1000' }] }] });
    const report = await provisionTopics(admin, [spec!]);
    expect(report.updated).toEqual([spec!.name]);
    expect(report.problems).toEqual([expect.stringContaining('has 1 partitions, the catalog says 3')]);
    const configs = await admin.describeConfigs({ includeSynonyms: false, resources: [{ type: ConfigResourceTypes.TOPIC, name: spec!.name, configNames: ['retention.ms'] }] });
    expect(configs.resources[0]?.configEntries[0]?.configValue).toBe(spec!.configs['retention.ms']);
  });
});

test('two provisionings of one catalog at once (two instances starting together) both succeed and create every topic once', async () => {
  const kafka = testKafka();
  const catalog = topicCatalog({ prefix: `${uniqueName('prov')}.`, partitions: 2 });
  const reports = await Promise.all([1, 2].map(() => withAdmin(kafka, (admin) => provisionTopics(admin, catalog))));
  for (const report of reports) expect(report.problems).toEqual([]);
  const names = catalog.map((t) => t.name).sort();
  expect(await withAdmin(kafka, async (admin) => (await admin.listTopics()).filter((t) => names.includes(t)).sort())).toEqual(names);
});
