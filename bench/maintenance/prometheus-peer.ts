/**
 * The peer of the online benches: a PromQL alerting rule as people write it, evaluated each second over a past
 * range by the platform monitor's own Prometheus (`query_range`), on the same data the monitor judged.
 */
import { queryRange } from '../../src/shared/prometheus-api.js';
import type { HyperDbPlatform } from '../../src/testing/hyperdb-platform.js';
import { monitorAccess } from '../../src/testing/maintenance-scenarios.js';

/** When (ms) each series of the PromQL `query` started firing within [from, to], evaluated each second by the monitor's Prometheus. */
export async function firingStarts(
  platform: HyperDbPlatform,
  query: string,
  fromMs: number,
  toMs: number,
): Promise<number[]> {
  const series = await queryRange(await monitorAccess(platform), query, {
    startS: Math.floor(fromMs / 1000),
    endS: Math.ceil(toMs / 1000),
    stepS: 1,
  });
  // Per series (a member that would have been alerted): when it started firing. A series already firing at the
  // range's start counts from its first restart after a silence; one that never stopped gives no time (it was
  // firing before, so it tells nothing of this range).
  const startS = Math.floor(fromMs / 1000);
  const times: number[] = [];
  for (const s of series) {
    const seconds = s.values.map(([t]) => t);
    if (seconds[0]! > startS + 1) {
      times.push(seconds[0]! * 1000);
      continue;
    }
    const restart = seconds.findIndex((t, i) => i > 0 && t - seconds[i - 1]! > 1.5);
    if (restart >= 0) times.push(seconds[restart]! * 1000);
  }
  return times;
}
