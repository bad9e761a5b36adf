import { SchemaRegistry, SchemaType } from '@kafkajs/confluent-schema-registry';
import avro from 'avsc';
import { CONTRACT_ERROR_CODES as CODES, ContractError, DecodeError } from './errors';
import { latestSchema, type ContractName } from './schemas';

const MAGIC_BYTE = 0;
const HEADER_LENGTH = 5;

/** Reads the Confluent wire-format header: magic byte 0, then the schema id as a 32-bit big-endian integer. */
export function readWireHeader(bytes: Buffer | null | undefined): { schemaId: number; payload: Buffer } {
  if (!bytes || bytes.length < HEADER_LENGTH || bytes[0] !== MAGIC_BYTE) {
    throw new DecodeError(
      CODES.badMagicByte,
      bytes && bytes.length >= 1 ? `value starts with byte ${bytes[0]}, not the magic byte 0` : 'value is shorter than the 5-byte wire header',
      false,
    );
  }
  return { schemaId: bytes.readInt32BE(1), payload: bytes.subarray(HEADER_LENGTH) };
}

export function writeWireFormat(schemaId: number, payload: Buffer): Buffer {
  const header = Buffer.alloc(HEADER_LENGTH);
  header.writeUInt8(MAGIC_BYTE, 0);
  header.writeInt32BE(schemaId, 1);
  return Buffer.concat([header, payload]);
}

/** Where encodeWireFormat writes before copying out; grows to the largest record encoded. */
let scratch = Buffer.allocUnsafe(16 * 1024);

/**
 * `value` as `type` in the wire format, in one buffer from Node's pool: the header and the Avro bytes are
 * written into a scratch buffer, then copied out once. (`type.toBuffer` and a header of its own are two
 * buffers that each get an ArrayBuffer of their own, then a third to join them: per record, on the
 * gateway's path.)
 */
export function encodeWireFormat(schemaId: number, type: avro.Type, value: unknown): Buffer {
  for (;;) {
    scratch.writeUInt8(MAGIC_BYTE, 0);
    scratch.writeInt32BE(schemaId, 1);
    const end = type.encode(value, scratch, HEADER_LENGTH);
    // Negative: the scratch buffer was short by that many bytes.
    if (end >= 0) return Buffer.from(scratch.subarray(0, end));
    scratch = Buffer.allocUnsafe(Math.max(2 * scratch.length, scratch.length - end));
  }
}

/** Problems of a value against a contract, each with its path, or none. */
export function contractViolations(type: avro.Type, value: unknown): string[] {
  const problems: string[] = [];
  type.isValid(value, {
    errorHook: (path, got) => problems.push(`${path.join('.') || '(value)'}: ${JSON.stringify(got) ?? 'undefined'} does not fit`),
  });
  return problems;
}

export interface Encoder<T> {
  readonly schemaId: number;
  readonly subject: string;
  encode(value: T): Buffer;
}

export interface Decoder<T> {
  /** Decodes a value written with any schema the registry knows that the contract can read. */
  decode(bytes: Buffer | null | undefined): Promise<T>;
}

function isNotFound(err: unknown): boolean {
  return typeof err === 'object' && err !== null && 'status' in err && (err as { status: unknown }).status === 404;
}

/**
 * Avro in the Confluent wire format through any Confluent-compatible registry.
 * Schemas are registered at start-up (`encoder`), fail fast with the
 * registry's own message; decoding resolves the writer's schema to the
 * reader's, so older and newer versions of a contract both decode.
 */
export class Serde {
  private readonly registry: SchemaRegistry;
  private readonly writerTypes = new Map<number, Promise<avro.Type>>();
  private readonly resolvers = new Map<string, avro.Resolver>();
  private readonly readerTypes = new Map<ContractName, avro.Type>();

  constructor(registryUrl: string) {
    this.registry = new SchemaRegistry({ host: registryUrl.replace(/\/$/, '') });
  }

  readerType(contract: ContractName): avro.Type {
    let type = this.readerTypes.get(contract);
    if (!type) {
      type = avro.Type.forSchema(latestSchema(contract).json as avro.Schema);
      this.readerTypes.set(contract, type);
    }
    return type;
  }

  /** Registers the newest version of `contract` under `subject` and returns an encoder for it. */
  async encoder<T>(subject: string, contract: ContractName): Promise<Encoder<T>> {
    const type = this.readerType(contract);
    let schemaId: number;
    try {
      const registered = await this.registry.register(
        { type: SchemaType.AVRO, schema: latestSchema(contract).text },
        { subject, compatibility: 'BACKWARD' as never },
      );
      schemaId = registered.id;
    } catch (err) {
      const retry = !(typeof err === 'object' && err !== null && 'status' in err && Number((err as { status: number }).status) < 500);
      throw new ContractError(
        retry ? CODES.registryUnavailable : CODES.registrationRefused,
        `could not register ${contract} under ${subject}: ${err instanceof Error ? err.message : String(err)}`,
        retry,
        undefined,
        { cause: err },
      );
    }
    return {
      schemaId,
      subject,
      encode: (value: T) => {
        const problems = contractViolations(type, value);
        if (problems.length > 0) {
          throw new ContractError(CODES.contractViolation, `value does not match ${contract}: ${problems.join('; ')}`, false, problems);
        }
        return encodeWireFormat(schemaId, type, value);
      },
    };
  }

  decoder<T>(contract: ContractName): Decoder<T> {
    const reader = this.readerType(contract);
    return {
      decode: async (bytes) => {
        const { schemaId, payload } = readWireHeader(bytes);
        const writer = await this.writerType(schemaId);
        const resolver = this.resolverFor(contract, reader, schemaId, writer);
        try {
          return reader.fromBuffer(payload, resolver) as T;
        } catch (err) {
          throw new DecodeError(CODES.malformed, `bytes do not decode with schema ${schemaId}: ${(err as Error).message}`, false);
        }
      },
    };
  }

  /** Decodes with the writer's own schema, whatever the contract: for showing a record to a person. */
  async decodeAny(bytes: Buffer | null | undefined): Promise<{ schemaId: number; value: unknown }> {
    const { schemaId, payload } = readWireHeader(bytes);
    const writer = await this.writerType(schemaId);
    try {
      return { schemaId, value: writer.fromBuffer(payload) };
    } catch (err) {
      throw new DecodeError(CODES.malformed, `bytes do not decode with schema ${schemaId}: ${(err as Error).message}`, false);
    }
  }

  private writerType(schemaId: number): Promise<avro.Type> {
    let writer = this.writerTypes.get(schemaId);
    if (!writer) {
      writer = this.registry.getSchema(schemaId).then(
        (schema) => avro.Type.forSchema((schema as avro.Type).schema() as avro.Schema),
        (err: unknown) => {
          this.writerTypes.delete(schemaId);
          if (isNotFound(err)) throw new DecodeError(CODES.unknownSchemaId, `the registry has no schema with id ${schemaId}`, false);
          throw new DecodeError(CODES.registryUnavailable, `could not fetch schema ${schemaId}: ${String(err)}`, true);
        },
      );
      this.writerTypes.set(schemaId, writer);
    }
    return writer;
  }

  private resolverFor(contract: ContractName, reader: avro.Type, schemaId: number, writer: avro.Type): avro.Resolver {
    const key = `${contract}:${schemaId}`;
    let resolver = this.resolvers.get(key);
    if (!resolver) {
      try {
        resolver = reader.createResolver(writer);
      } catch (err) {
        throw new DecodeError(CODES.incompatibleSchema, `schema ${schemaId} cannot be read as ${contract}: ${(err as Error).message}`, false);
      }
      this.resolvers.set(key, resolver);
    }
    return resolver;
  }
}
