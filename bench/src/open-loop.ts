import http from 'node:http';
import { percentiles } from './results';

export interface OpenLoopResult {
  targetRate: number;
  requests: number;
  /** Requests answered per second, from the first measured request's due time to the last answer. */
  requestsPerSecond: number;
  p50Ms: number;
  p95Ms: number;
  p99Ms: number;
  maxMs: number;
  non2xx: number;
  errors: number;
}

/**
 * GET `url` at `rate` requests/s, evenly spaced, for `seconds` after `warmupSeconds` not measured, over up to
 * `connections` keep-alive connections. Each request is timed from when it was due, not from when a connection
 * was free, so a server that falls behind is charged for the wait (no coordinated omission).
 *
 * Why not autocannon's `overallRate`: it lets each connection send back to back until it has made its share of
 * the second, then waits for the next second, so the load arrives in bursts of `connections` requests in flight;
 * and its correction for coordinated omission assumes one request per millisecond per connection. Its percentiles
 * at a fixed rate are those of the bursts, not of the rate.
 */
export async function openLoop(url: string, rate: number, seconds: number, options: { connections?: number; warmupSeconds?: number } = {}): Promise<OpenLoopResult> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: options.connections ?? 8 });
  const target = new URL(url);
  const warmup = Math.round(rate * (options.warmupSeconds ?? 1));
  const total = warmup + Math.round(rate * seconds);
  const latencies: number[] = [];
  let non2xx = 0;
  let errors = 0;
  let measuredFrom = 0;
  let end = 0;
  try {
    await new Promise<void>((resolve) => {
      let settled = 0;
      const settle = () => {
        if (++settled === total) {
          end = performance.now();
          resolve();
        }
      };
      const send = (n: number, due: number) => {
        const req = http.request({ agent, host: target.hostname, port: target.port, path: `${target.pathname}${target.search}`, method: 'GET' }, (res) => {
          res.resume();
          res.on('end', () => {
            if (n >= warmup) {
              latencies.push(performance.now() - due);
              if (res.statusCode === undefined || res.statusCode < 200 || res.statusCode >= 300) non2xx += 1;
            }
            settle();
          });
        });
        if (n === warmup) measuredFrom = due;
        req.on('error', () => {
          if (n >= warmup) errors += 1;
          settle();
        });
        req.end();
      };
      const start = performance.now() + 5;
      let next = 0;
      // A timer's turn is at least a millisecond: every request that has come due is sent on it, timed from its due time.
      const tick = () => {
        const now = performance.now();
        for (; next < total && start + (next * 1000) / rate <= now; next += 1) send(next, start + (next * 1000) / rate);
        if (next < total) setTimeout(tick, 1);
      };
      setTimeout(tick, 5);
    });
  } finally {
    agent.destroy();
  }
  const { p50, p95, p99, max } = percentiles(latencies);
  const ms = (v: number) => +v.toFixed(2);
  return { targetRate: rate, requests: latencies.length, requestsPerSecond: Math.round(latencies.length / ((end - measuredFrom) / 1000)), p50Ms: ms(p50), p95Ms: ms(p95), p99Ms: ms(p99), maxMs: ms(max), non2xx, errors };
}
