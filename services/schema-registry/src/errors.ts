/**
 * The Confluent Schema Registry's error codes. The HTTP status is the code's
 * first three digits; the body is `{ "error_code": N, "message": "…" }`.
 */
export const REGISTRY_ERRORS = {
  subjectNotFound: 40401,
  versionNotFound: 40402,
  schemaNotFound: 40403,
  subjectSoftDeleted: 40404,
  subjectNotSoftDeleted: 40405,
  versionSoftDeleted: 40406,
  versionNotSoftDeleted: 40407,
  subjectCompatibilityNotConfigured: 40408,
  subjectModeNotConfigured: 40409,
  incompatibleSchema: 409,
  invalidSchema: 42201,
  invalidVersion: 42202,
  invalidCompatibilityLevel: 42203,
  invalidMode: 42204,
  operationNotPermitted: 42205,
  /** A version other schemas reference cannot be deleted. */
  referenceExists: 42206,
  /** A subject name no store can hold (a NUL, a control character, a lone surrogate). */
  invalidSubject: 42208,
  unprocessable: 422,
  badRequest: 400,
  routeNotFound: 404,
  bodyTooLarge: 413,
  storeError: 50001,
} as const;

export type RegistryErrorCode = (typeof REGISTRY_ERRORS)[keyof typeof REGISTRY_ERRORS];

export class RegistryError extends Error {
  readonly status: number;

  constructor(
    readonly errorCode: RegistryErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'RegistryError';
    this.status = Number(String(errorCode).slice(0, 3));
  }
}

export const notFound = {
  subject: (subject: string) => new RegistryError(REGISTRY_ERRORS.subjectNotFound, `Subject '${subject}' not found.`),
  version: (subject: string, version: string | number) =>
    new RegistryError(REGISTRY_ERRORS.versionNotFound, `Version ${version} not found for subject '${subject}'.`),
  schema: () => new RegistryError(REGISTRY_ERRORS.schemaNotFound, 'Schema not found'),
};
