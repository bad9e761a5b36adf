/** The Kafka error codes inside a @platformatic/kafka error (its errors nest: retries, then responses), once each. */
export function codesOf(err: unknown): string {
  const codes = new Set<string>();
  const walk = (e: unknown) => {
    const { apiId, errors } = (e ?? {}) as { apiId?: string; errors?: unknown[] };
    if (apiId) codes.add(apiId);
    for (const inner of errors ?? []) walk(inner);
  };
  walk(err);
  return codes.size > 0 ? [...codes].join('/') : String((err as { code?: string }).code ?? err);
}
