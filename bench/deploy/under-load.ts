/**
 * A load generator running while something else happens, and the figures of
 * what it saw: requests, failures, requests/s, latency percentiles, and the
 * CPU of the machine and of the benchmark process meanwhile.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { LoadFailure, LoadResult } from '../../src/testing/http-load.js';
import { machineCpuTimes, percentileOfSorted } from '../support/report.js';
import { startLoadWorker } from './load-worker.js';

export interface LoadFigures {
  ok: number;
  failures: LoadFailure[];
  durationMs: number;
  requestsPerS: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** The whole machine's busy CPU during the load (% of all cores). */
  machineBusyPercent: number;
  /** This process (load generator thread + the master in the main thread) CPU, % of one core. */
  benchCpuPercent: number;
}

/** What one load saw, raw, with the CPU used meanwhile (to pool several loads into one figure). */
export interface LoadSample {
  result: LoadResult;
  machineBusyMs: number;
  machineTotalMs: number;
  benchCpuMs: number;
  elapsedMs: number;
}

/** The figures of one or more samples pooled (requests and latencies together, CPU over the summed time). */
export function loadFigures(samples: LoadSample[]): LoadFigures {
  const latencies = samples.flatMap((x) => x.result.latenciesMs).sort((a, b) => a - b);
  const ok = samples.reduce((n, x) => n + x.result.ok, 0);
  const durationMs = samples.reduce((n, x) => n + x.result.durationMs, 0);
  const sum = (f: (x: LoadSample) => number): number => samples.reduce((n, x) => n + f(x), 0);
  return {
    ok,
    failures: samples.flatMap((x) => x.result.failures),
    durationMs,
    requestsPerS: ok / (durationMs / 1000),
    p50Ms: percentileOfSorted(latencies, 0.5),
    p99Ms: percentileOfSorted(latencies, 0.99),
    maxMs: latencies.at(-1) ?? Number.NaN,
    machineBusyPercent:
      (sum((x) => x.machineBusyMs) /
        Math.max(
          1,
          sum((x) => x.machineTotalMs),
        )) *
      100,
    benchCpuPercent:
      (sum((x) => x.benchCpuMs) /
        Math.max(
          1,
          sum((x) => x.elapsedMs),
        )) *
      100,
  };
}

/**
 * Runs `during` while `concurrency` loops ask `url` (on a worker thread), from `leadMs` before to
 * `leadMs` after; `warmUpMs` of load first, not counted.
 */
export async function underLoad<T>(
  url: string,
  options: { concurrency: number; leadMs: number; warmUpMs?: number },
  during: () => Promise<T>,
): Promise<{ value: T; sample: LoadSample }> {
  const load = await startLoadWorker(url, {
    concurrency: options.concurrency,
    timeoutMs: 10_000,
    warmUpMs: options.warmUpMs ?? 0,
  });
  const machine0 = machineCpuTimes();
  const self0 = process.cpuUsage();
  const t0 = performance.now();
  let value: T;
  try {
    await sleep(options.leadMs);
    value = await during();
    await sleep(options.leadMs);
  } catch (error) {
    await load.stop();
    throw error;
  }
  const result = await load.stop();
  const machine1 = machineCpuTimes();
  const self = process.cpuUsage(self0);
  return {
    value,
    sample: {
      result,
      machineBusyMs: machine1.busy - machine0.busy,
      machineTotalMs: machine1.total - machine0.total,
      benchCpuMs: (self.user + self.system) / 1000,
      elapsedMs: performance.now() - t0,
    },
  };
}
