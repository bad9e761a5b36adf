import { z } from 'zod';
import { ConfigError } from './errors';

/**
 * A service's configuration is a zod object whose keys are environment
 * variable names. Values are strings in the environment; the schema coerces
 * and validates them, and supplies the default that works for the local stack.
 */
export type EnvSchema = z.ZodObject<Record<string, z.ZodType>>;

export type Env = Readonly<Record<string, string | undefined>>;

/** Parses `env` with `schema`; every bad or missing variable is named in one ConfigError. */
export function loadConfig<S extends EnvSchema>(schema: S, env: Env = process.env): z.infer<S> {
  const picked: Record<string, string> = {};
  for (const name of Object.keys(schema.shape)) {
    const value = env[name];
    // An empty variable means "not set", as shells and compose files write it.
    if (value !== undefined && value !== '') picked[name] = value;
  }
  const result = schema.safeParse(picked);
  if (result.success) return result.data;
  throw new ConfigError(
    result.error.issues.map((issue) => ({
      variable: String(issue.path[0] ?? '(config)'),
      problem: issue.message,
    })),
  );
}

/** Builders for the shapes that environment variables take. */
export const env = {
  string: (defaultValue?: string) =>
    defaultValue === undefined ? z.string().min(1) : z.string().min(1).default(defaultValue),

  optionalString: () => z.string().min(1).optional(),

  int: (defaultValue: number, bounds: { min?: number; max?: number } = {}) => {
    // Out of range says the range, not only "a whole number".
    const range =
      bounds.min !== undefined && bounds.max !== undefined
        ? `must be a whole number from ${bounds.min} to ${bounds.max}`
        : bounds.min !== undefined
          ? `must be a whole number of at least ${bounds.min}`
          : bounds.max !== undefined
            ? `must be a whole number of at most ${bounds.max}`
            : 'must be a whole number';
    return z.coerce
      .number({ error: 'must be a whole number' })
      .int('must be a whole number')
      .min(bounds.min ?? Number.MIN_SAFE_INTEGER, range)
      .max(bounds.max ?? Number.MAX_SAFE_INTEGER, range)
      .default(defaultValue);
  },

  port: (defaultValue: number) =>
    z.coerce
      .number({ error: 'must be a port number' })
      .int('must be a port number')
      .min(0, 'must be a port number from 0 to 65535')
      .max(65535, 'must be a port number from 0 to 65535')
      .default(defaultValue),

  bool: (defaultValue: boolean) =>
    z
      .enum(['true', 'false', '1', '0', 'yes', 'no'], { error: 'must be true or false' })
      .transform((v) => v === 'true' || v === '1' || v === 'yes')
      .default(defaultValue),

  list: (defaultValue: string) =>
    z
      .string()
      .default(defaultValue)
      .transform((v) =>
        v
          .split(',')
          .map((s) => s.trim())
          .filter((s) => s.length > 0),
      ),

  enum: <const T extends readonly [string, ...string[]]>(values: T, defaultValue: T[number]) =>
    z.enum(values, { error: `must be one of ${values.join(', ')}` }).default(defaultValue as never),

  url: (defaultValue?: string) =>
    defaultValue === undefined
      ? z.url({ error: 'must be a URL' })
      : z.url({ error: 'must be a URL' }).default(defaultValue),
};
