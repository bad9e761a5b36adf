/**
 * Stable error codes of the shared runtime. A code never changes meaning;
 * `canRetry` tells callers whether trying again may succeed.
 */
export const RUNTIME_ERROR_CODES = [
  'RUNTIME_CONFIG_INVALID',
  'RUNTIME_SHUTDOWN_TIMEOUT',
  'RUNTIME_DEPENDENCY_UNAVAILABLE',
] as const;

export type RuntimeErrorCode = (typeof RUNTIME_ERROR_CODES)[number];

export class RuntimeError extends Error {
  readonly code: RuntimeErrorCode;
  readonly canRetry: boolean;

  constructor(code: RuntimeErrorCode, message: string, options: { canRetry?: boolean; cause?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.name = 'RuntimeError';
    this.code = code;
    this.canRetry = options.canRetry ?? false;
  }
}

export interface ConfigIssue {
  variable: string;
  problem: string;
}

export class ConfigError extends RuntimeError {
  readonly issues: readonly ConfigIssue[];

  constructor(issues: readonly ConfigIssue[]) {
    super(
      'RUNTIME_CONFIG_INVALID',
      `invalid configuration:\n${issues.map((i) => `  ${i.variable}: ${i.problem}`).join('\n')}`,
    );
    this.name = 'ConfigError';
    this.issues = issues;
  }
}
