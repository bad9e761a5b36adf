/** Sums the samples of a metric in a Prometheus text scrape. */
export async function scrape(url: string, metric: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith(`${metric}{`) || line.startsWith(`${metric} `)) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

/** Waits until `metric` reaches `target`; returns when it first moved and when it got there (ms). */
export async function timeUntil(url: string, metric: string, target: number, timeoutMs = 600_000): Promise<{ firstMs: number; doneMs: number }> {
  const deadline = Date.now() + timeoutMs;
  let firstMs: number | undefined;
  while (Date.now() < deadline) {
    const value = await scrape(url, metric).catch(() => 0);
    if (value > 0 && firstMs === undefined) firstMs = Date.now();
    if (value >= target) return { firstMs: firstMs ?? Date.now(), doneMs: Date.now() };
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${metric} did not reach ${target} within ${timeoutMs} ms`);
}
