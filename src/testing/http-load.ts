/**
 * A load generator for hyper_edge tests and benchmarks: `concurrency` loops,
 * each sending GET requests one after another (keep-alive) until stopped,
 * recording every failure (a network error or an unexpected status) with
 * its time, and the latencies of the successes.
 */
import { setTimeout as sleep } from 'node:timers/promises';

export interface LoadFailure {
  atMs: number;
  what: string;
}

export interface LoadResult {
  ok: number;
  failures: LoadFailure[];
  /** Latencies of the successful requests, ms, in completion order. */
  latenciesMs: number[];
  durationMs: number;
  /** Bodies seen (first 200 characters), with how many times: which versions or replicas answered. */
  bodies: Map<string, number>;
}

export interface HttpLoad {
  /** Stops the loops and returns what they saw. */
  stop(): Promise<LoadResult>;
  /** Successful requests so far. */
  okCount(): number;
}

export function startHttpLoad(
  url: string,
  options: {
    concurrency?: number;
    timeoutMs?: number;
    expectStatus?: number;
    pauseMs?: number;
    /** Sent with every request (a session cookie). */
    headers?: Record<string, string>;
  } = {},
): HttpLoad {
  const concurrency = options.concurrency ?? 4;
  const timeoutMs = options.timeoutMs ?? 10_000;
  const expectStatus = options.expectStatus ?? 200;
  const started = performance.now();
  const result: LoadResult = { ok: 0, failures: [], latenciesMs: [], durationMs: 0, bodies: new Map() };
  let running = true;

  const loop = async (): Promise<void> => {
    while (running) {
      const t = performance.now();
      try {
        const response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), headers: options.headers });
        const body = await response.text();
        if (response.status !== expectStatus)
          result.failures.push({ atMs: t - started, what: `HTTP ${response.status}: ${body.slice(0, 120)}` });
        else {
          result.ok++;
          result.latenciesMs.push(performance.now() - t);
          const key = body.slice(0, 200).trim();
          result.bodies.set(key, (result.bodies.get(key) ?? 0) + 1);
        }
      } catch (error) {
        const cause = (error as Error).cause;
        result.failures.push({
          atMs: t - started,
          what: `${(error as Error).message}${cause instanceof Error ? `: ${cause.message}` : ''}`,
        });
      }
      if (options.pauseMs !== undefined) await sleep(options.pauseMs);
    }
  };
  const loops = Array.from({ length: concurrency }, () => loop());
  return {
    okCount: () => result.ok,
    async stop() {
      running = false;
      await Promise.all(loops);
      result.durationMs = performance.now() - started;
      return result;
    },
  };
}
