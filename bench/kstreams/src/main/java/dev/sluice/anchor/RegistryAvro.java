package dev.sluice.anchor;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import org.apache.avro.Schema;
import org.apache.avro.generic.GenericDatumReader;
import org.apache.avro.generic.GenericDatumWriter;
import org.apache.avro.generic.GenericRecord;
import org.apache.avro.io.BinaryEncoder;
import org.apache.avro.io.DecoderFactory;
import org.apache.avro.io.EncoderFactory;
import org.apache.kafka.common.serialization.Deserializer;
import org.apache.kafka.common.serialization.Serde;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.serialization.Serializer;

/**
 * Avro records in the Confluent wire format (magic byte 0, 4-byte schema id, Avro binary), with the
 * schemas read from Sluice's registry: writers' schemas by id, the output's schema as its subject's
 * latest version. Generic records, as Sluice's own serde decodes them.
 */
final class RegistryAvro {
  private final String url;
  private final HttpClient http = HttpClient.newHttpClient();
  private final ObjectMapper json = new ObjectMapper();
  private final Map<Integer, Schema> byId = new ConcurrentHashMap<>();
  private final Map<Integer, GenericDatumReader<GenericRecord>> readers = new ConcurrentHashMap<>();

  RegistryAvro(String url) {
    this.url = url.replaceAll("/+$", "");
  }

  private JsonNode get(String path) {
    try {
      HttpResponse<String> res = http.send(HttpRequest.newBuilder(URI.create(url + path)).GET().build(), HttpResponse.BodyHandlers.ofString());
      if (res.statusCode() != 200) throw new IllegalStateException("registry " + path + ": " + res.statusCode() + " " + res.body());
      return json.readTree(res.body());
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException(e);
    }
  }

  /** Schemas read from the registry, back to their ids (the very objects: a decoded record carries its writer's). */
  private final Map<Schema, Integer> ids = java.util.Collections.synchronizedMap(new java.util.IdentityHashMap<>());

  Schema schema(int id) {
    return byId.computeIfAbsent(id, i -> {
      Schema schema = new Schema.Parser().parse(get("/schemas/ids/" + i).get("schema").asText());
      ids.put(schema, i);
      return schema;
    });
  }

  /** The id and schema of a subject's latest version. */
  Map.Entry<Integer, Schema> latest(String subject) {
    JsonNode node = get("/subjects/" + URLEncoder.encode(subject, StandardCharsets.UTF_8) + "/versions/latest");
    int id = node.get("id").asInt();
    return Map.entry(id, schema(id));
  }

  Deserializer<GenericRecord> deserializer() {
    return (topic, bytes) -> {
      if (bytes == null) return null;
      ByteBuffer buffer = ByteBuffer.wrap(bytes);
      if (buffer.get() != 0) throw new IllegalArgumentException("not the Confluent wire format (magic byte)");
      int id = buffer.getInt();
      GenericDatumReader<GenericRecord> reader = readers.computeIfAbsent(id, i -> new GenericDatumReader<>(schema(i)));
      try {
        return reader.read(null, DecoderFactory.get().binaryDecoder(bytes, 5, bytes.length - 5, null));
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    };
  }

  /** Writes with the subject's latest schema (the record must have been built with it). */
  Serializer<GenericRecord> serializer(String subject) {
    Map.Entry<Integer, Schema> latest = latest(subject);
    return serializer(record -> latest.getKey());
  }

  /** Writes a record that was read from the wire (a state store's copy) with its own schema and id. */
  Serializer<GenericRecord> serializerOfDecoded() {
    return serializer(record -> {
      Integer id = ids.get(record.getSchema());
      if (id == null) throw new IllegalStateException("a record whose schema did not come from the registry");
      return id;
    });
  }

  private Serializer<GenericRecord> serializer(java.util.function.ToIntFunction<GenericRecord> idOf) {
    Map<Schema, GenericDatumWriter<GenericRecord>> writers = new ConcurrentHashMap<>();
    return new Serializer<>() {
      // Serializers are shared by the stream threads: one encoder per thread.
      private final ThreadLocal<BinaryEncoder> reuse = new ThreadLocal<>();

      @Override
      public byte[] serialize(String topic, GenericRecord record) {
        if (record == null) return null;
        ByteArrayOutputStream out = new ByteArrayOutputStream(256);
        out.write(0);
        out.writeBytes(ByteBuffer.allocate(4).putInt(idOf.applyAsInt(record)).array());
        try {
          BinaryEncoder encoder = EncoderFactory.get().binaryEncoder(out, reuse.get());
          reuse.set(encoder);
          writers.computeIfAbsent(record.getSchema(), GenericDatumWriter::new).write(record, encoder);
          encoder.flush();
        } catch (IOException e) {
          throw new UncheckedIOException(e);
        }
        return out.toByteArray();
      }
    };
  }

  Schema schemaOf(String subject) {
    return latest(subject).getValue();
  }

  /** Records of `subject` (an output), or, without one, records read from the wire and written back as they came. */
  Serde<GenericRecord> serde(String subject) {
    return Serdes.serdeFrom(subject == null ? serializerOfDecoded() : serializer(subject), deserializer());
  }
}
