/**
 * Stable error codes of the contracts library. Codes of records that can never
 * be read (`canRetry: false`) send the record to its dead-letter topic; the
 * others are worth another try.
 */
export const CONTRACT_ERROR_CODES = {
  /** The value does not start with the Confluent wire format's magic byte 0 and a schema id. */
  badMagicByte: 'serde.bad_magic_byte',
  /** The registry does not know the schema id in the record. */
  unknownSchemaId: 'serde.unknown_schema_id',
  /** The bytes do not decode with the schema they name. */
  malformed: 'serde.malformed',
  /** The writer's schema cannot be read with the reader's. */
  incompatibleSchema: 'serde.incompatible_schema',
  /** A value to encode does not match its contract. */
  contractViolation: 'contract.violation',
  /** The registry could not be reached or answered with a server error. */
  registryUnavailable: 'registry.unavailable',
  /** The registry refused a schema at registration (incompatible or invalid). */
  registrationRefused: 'registry.registration_refused',
} as const;

export type ContractErrorCode = (typeof CONTRACT_ERROR_CODES)[keyof typeof CONTRACT_ERROR_CODES];

export class ContractError extends Error {
  constructor(
    readonly code: ContractErrorCode,
    message: string,
    readonly canRetry: boolean,
    readonly details?: unknown,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'ContractError';
  }
}

/** A record that cannot be decoded; never worth a retry except when the registry was unreachable. */
export class DecodeError extends ContractError {
  override readonly name = 'DecodeError';
}
