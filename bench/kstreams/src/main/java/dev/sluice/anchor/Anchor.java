package dev.sluice.anchor;

import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.time.Duration;
import java.util.HashMap;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import org.apache.avro.Schema;
import org.apache.avro.generic.GenericData;
import org.apache.avro.generic.GenericRecord;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.common.serialization.Serde;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.KStream;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.kstream.TimeWindows;
import org.apache.kafka.streams.kstream.Windowed;
import org.apache.kafka.streams.processor.TimestampExtractor;
import org.apache.kafka.streams.processor.api.FixedKeyProcessor;
import org.apache.kafka.streams.processor.api.FixedKeyProcessorContext;
import org.apache.kafka.streams.processor.api.FixedKeyRecord;
import org.apache.kafka.streams.processor.api.Processor;
import org.apache.kafka.streams.processor.api.ProcessorContext;
import org.apache.kafka.streams.processor.api.Record;
import org.apache.kafka.streams.state.KeyValueStore;
import org.apache.kafka.streams.state.Stores;

/**
 * Sluice's two stream stages written as a Kafka Streams application, the anchor of the stream
 * benchmarks (bench/src/kstreams.ts): same topics, same Avro records in the Confluent wire format,
 * same semantics where the benchmark's data exercises them.
 *
 * <p>Configuration from the environment: ANCHOR_STAGE (enricher | aggregator), ANCHOR_APPLICATION_ID,
 * KAFKA_BROKERS, SCHEMA_REGISTRY_URL, ANCHOR_GUARANTEE (exactly_once_v2 | at_least_once),
 * ANCHOR_THREADS, and the topics: ANCHOR_INPUT_TOPIC, ANCHOR_OUTPUT_TOPIC, ANCHOR_CATALOG_TOPIC,
 * ANCHOR_DLQ_TOPIC (enricher), WINDOW_SIZE_MS and WINDOW_GRACE_MS (aggregator).
 */
public final class Anchor {
  private static String env(String name, String fallback) {
    String value = System.getenv(name);
    if (value == null || value.isEmpty()) {
      if (fallback == null) throw new IllegalArgumentException(name + " is required");
      return fallback;
    }
    return value;
  }

  public static void main(String[] args) throws Exception {
    String stage = env("ANCHOR_STAGE", null);
    RegistryAvro avro = new RegistryAvro(env("SCHEMA_REGISTRY_URL", "http://127.0.0.1:8081"));
    Properties props = new Properties();
    props.put(StreamsConfig.APPLICATION_ID_CONFIG, env("ANCHOR_APPLICATION_ID", null));
    props.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, env("KAFKA_BROKERS", "127.0.0.1:9092"));
    props.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, env("ANCHOR_GUARANTEE", StreamsConfig.EXACTLY_ONCE_V2));
    props.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, Integer.parseInt(env("ANCHOR_THREADS", "1")));
    // Sluice commits every 100 ms at most (STREAM_COMMIT_INTERVAL_MS), as Kafka Streams does under exactly-once.
    props.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, 100);
    props.put(StreamsConfig.REPLICATION_FACTOR_CONFIG, Integer.parseInt(env("ANCHOR_REPLICATION_FACTOR", "1")));
    props.put(StreamsConfig.STATE_DIR_CONFIG, Files.createTempDirectory("kstreams-anchor").toString());
    props.put(StreamsConfig.DEFAULT_TIMESTAMP_EXTRACTOR_CLASS_CONFIG, OccurredAt.class);

    StreamsBuilder builder = new StreamsBuilder();
    if (stage.equals("enricher")) enricher(builder, avro);
    else if (stage.equals("aggregator")) aggregator(builder, avro);
    else throw new IllegalArgumentException("ANCHOR_STAGE must be enricher or aggregator, not " + stage);

    KafkaStreams streams = new KafkaStreams(builder.build(), props);
    CountDownLatch stopped = new CountDownLatch(1);
    streams.setUncaughtExceptionHandler(e -> {
      System.err.println("anchor: stream thread failed: " + e);
      e.printStackTrace();
      return org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse.SHUTDOWN_CLIENT;
    });
    streams.setStateListener((now, before) -> {
      System.out.println("anchor: state " + before + " -> " + now);
      if (now == KafkaStreams.State.NOT_RUNNING || now == KafkaStreams.State.ERROR) stopped.countDown();
    });
    Runtime.getRuntime().addShutdownHook(new Thread(() -> {
      streams.close(Duration.ofSeconds(30));
      stopped.countDown();
    }));
    streams.start();
    stopped.await();
  }

  /** Event time is the event's occurredAt, as Sluice's aggregator uses it. */
  public static final class OccurredAt implements TimestampExtractor {
    @Override
    public long extract(ConsumerRecord<Object, Object> record, long partitionTime) {
      if (record.value() instanceof GenericRecord r && r.get("occurredAt") instanceof Long t) return t;
      return record.timestamp();
    }
  }

  // --- the enricher -------------------------------------------------------------------------------

  /**
   * events.raw joined with the catalog (a global table), de-duplicated by eventId with a state store
   * (in memory with a changelog, as Sluice's stores are), written to events.enriched; an event whose
   * entity has no catalog entry goes to the dead-letter topic (Sluice first waits for the entry a while;
   * the benchmark's catalog has every entity).
   */
  static void enricher(StreamsBuilder builder, RegistryAvro avro) {
    String input = env("ANCHOR_INPUT_TOPIC", null);
    String output = env("ANCHOR_OUTPUT_TOPIC", null);
    String catalogTopic = env("ANCHOR_CATALOG_TOPIC", null);
    String dlq = env("ANCHOR_DLQ_TOPIC", input + ".dlq");
    Schema enrichedSchema = avro.schemaOf(output + "-value");
    Serde<GenericRecord> in = avro.serde(null);
    Serde<GenericRecord> out = avro.serde(output + "-value");

    builder.addGlobalStore(
        Stores.keyValueStoreBuilder(Stores.inMemoryKeyValueStore("catalog"), Serdes.String(), in).withLoggingDisabled(),
        catalogTopic,
        Consumed.with(Serdes.String(), in),
        () -> new Processor<String, GenericRecord, Void, Void>() {
          private KeyValueStore<String, GenericRecord> store;

          @Override
          public void init(ProcessorContext<Void, Void> context) {
            store = context.getStateStore("catalog");
          }

          @Override
          public void process(Record<String, GenericRecord> record) {
            if (record.value() == null) store.delete(record.key());
            else store.put(record.key(), record.value());
          }
        });
    builder.addStateStore(Stores.keyValueStoreBuilder(Stores.inMemoryKeyValueStore("seen-events"), Serdes.String(), Serdes.Long()));

    KStream<String, GenericRecord> raw = builder.stream(input, Consumed.with(Serdes.String(), in));
    KStream<String, GenericRecord> decided = raw.processValues(() -> new FixedKeyProcessor<String, GenericRecord, GenericRecord>() {
      private FixedKeyProcessorContext<String, GenericRecord> context;
      private KeyValueStore<String, Long> seen;
      private KeyValueStore<String, GenericRecord> catalog;

      @Override
      public void init(FixedKeyProcessorContext<String, GenericRecord> context) {
        this.context = context;
        seen = context.getStateStore("seen-events");
        catalog = context.getStateStore("catalog");
      }

      @Override
      public void process(FixedKeyRecord<String, GenericRecord> record) {
        GenericRecord event = record.value();
        String eventId = event.get("eventId").toString();
        if (seen.get(eventId) != null) return;
        GenericRecord item = catalog.get(event.get("entityId").toString());
        if (item == null) {
          // The raw event itself, marked: the branch below sends it to the dead-letter topic.
          context.forward(record.withValue(null));
          return;
        }
        seen.put(eventId, 1L);
        GenericRecord enriched = new GenericData.Record(enrichedSchema);
        for (String field : new String[] {"eventId", "type", "entityId", "userId", "occurredAt", "value", "attributes"}) enriched.put(field, event.get(field));
        enriched.put("name", item.get("name"));
        enriched.put("category", item.get("category"));
        enriched.put("enrichedAt", System.currentTimeMillis());
        enriched.put("sourcePartition", context.recordMetadata().map(m -> m.partition()).orElse(-1));
        enriched.put("sourceOffset", context.recordMetadata().map(m -> m.offset()).orElse(-1L));
        context.forward(record.withValue(enriched));
      }
    }, "seen-events");
    decided.filter((k, v) -> v != null).to(output, Produced.with(Serdes.String(), out));
    // Dead letters: the key only (the benchmark counts them; it expects none).
    decided.filter((k, v) -> v == null).mapValues(v -> (byte[]) null).to(dlq, Produced.with(Serdes.String(), Serdes.ByteArray()));
  }

  // --- the aggregator -----------------------------------------------------------------------------

  /** What a window holds: count, sum, min, max, last event time. */
  record Totals(long count, double sum, double min, double max, long lastEventAt) {
    static final Totals EMPTY = new Totals(0, 0, Double.POSITIVE_INFINITY, Double.NEGATIVE_INFINITY, Long.MIN_VALUE);

    Totals add(double value, long at) {
      return new Totals(count + 1, sum + value, Math.min(min, value), Math.max(max, value), Math.max(lastEventAt, at));
    }
  }

  static final Serde<Totals> TOTALS = Serdes.serdeFrom(
      (topic, t) -> t == null ? null : ByteBuffer.allocate(40).putLong(t.count).putDouble(t.sum).putDouble(t.min).putDouble(t.max).putLong(t.lastEventAt).array(),
      (topic, bytes) -> {
        if (bytes == null) return null;
        ByteBuffer b = ByteBuffer.wrap(bytes);
        return new Totals(b.getLong(), b.getDouble(), b.getDouble(), b.getDouble(), b.getLong());
      });

  /**
   * events.enriched into tumbling event-time windows per entity, and per category through a
   * repartition topic, with grace; each window's totals are written to aggregates as they change
   * (Kafka Streams' record cache emits once per commit, as Sluice emits once per transaction), keyed
   * as Sluice keys them (dimension|key|windowStart). Kafka Streams has no final flag without
   * suppression: every record has isFinal false and revision 0; the benchmark compares totals.
   */
  static void aggregator(StreamsBuilder builder, RegistryAvro avro) {
    String input = env("ANCHOR_INPUT_TOPIC", null);
    String output = env("ANCHOR_OUTPUT_TOPIC", null);
    long size = Long.parseLong(env("WINDOW_SIZE_MS", "60000"));
    long grace = Long.parseLong(env("WINDOW_GRACE_MS", "10000"));
    Schema aggregateSchema = avro.schemaOf(output + "-value");
    Schema dimension = aggregateSchema.getField("dimension").schema();
    Serde<GenericRecord> in = avro.serde(null);
    Serde<GenericRecord> out = avro.serde(output + "-value");
    TimeWindows windows = TimeWindows.ofSizeAndGrace(Duration.ofMillis(size), Duration.ofMillis(grace));

    KStream<String, GenericRecord> events = builder.stream(input, Consumed.with(Serdes.String(), in));
    Map<String, KStream<String, GenericRecord>> byDimension = new HashMap<>();
    byDimension.put("entity", events);
    byDimension.put("category", events.selectKey((k, v) -> v.get("category").toString()));
    for (Map.Entry<String, KStream<String, GenericRecord>> e : byDimension.entrySet()) {
      String dim = e.getKey();
      e.getValue()
          .groupByKey(Grouped.<String, GenericRecord>with(Serdes.String(), in).withName("by-" + dim))
          .windowedBy(windows)
          .aggregate(
              () -> Totals.EMPTY,
              (key, event, totals) -> totals.add((Double) event.get("value"), (Long) event.get("occurredAt")),
              Materialized.<String, Totals>as(Stores.inMemoryWindowStore(dim + "-windows", Duration.ofMillis(size + grace), Duration.ofMillis(size), false))
                  .withKeySerde(Serdes.String())
                  .withValueSerde(TOTALS))
          .toStream()
          .map((Windowed<String> window, Totals t) -> {
            GenericRecord r = new GenericData.Record(aggregateSchema);
            r.put("dimension", new GenericData.EnumSymbol(dimension, dim));
            r.put("key", window.key());
            r.put("windowStart", window.window().start());
            r.put("windowEnd", window.window().end());
            r.put("count", t.count());
            r.put("sum", t.sum());
            r.put("min", t.min());
            r.put("max", t.max());
            r.put("isFinal", false);
            r.put("revision", 0L);
            r.put("lastEventAt", t.lastEventAt());
            return KeyValue.pair(dim + "|" + window.key() + "|" + window.window().start(), r);
          })
          .to(output, Produced.with(Serdes.String(), out));
    }
  }
}
