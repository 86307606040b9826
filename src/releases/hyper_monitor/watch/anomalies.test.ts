import { describe, expect, it } from 'vitest';
import { ANOMALY_HOLD_STEPS, ANOMALY_SERIES, AnomalyWatch, type AnomalySeries } from './anomalies.js';
import type { RangeSeries } from './rules.js';

const MiB = 1024 * 1024;
const STEP_S = 15;
const T0 = 1_800_000_000;
const spec = (name: string): AnomalySeries => ANOMALY_SERIES.find((s) => s.name === name)!;
const primary = { node: 'n1', partition: 'p2', tree: 'crm-db', instance: 'member-1' };

/** A deterministic Gaussian noise source (Park–Miller and Box–Muller). */
function noise(seed: number): () => number {
  let state = seed;
  const uniform = () => (state = (state * 16807) % 2147483647) / 2147483647;
  return () => Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
}

/**
 * Runs `watch` as the watch program does: every step, the last `window` points of the series so far. Returns the
 * alerts of each step.
 */
function replay(
  watch: AnomalyWatch,
  s: AnomalySeries,
  labels: Record<string, string>,
  values: readonly number[],
  window = 240,
) {
  const points: [number, string][] = values.map((v, k) => [T0 + k * STEP_S, String(v)]);
  return values.map((_, k) => {
    const series: RangeSeries = { metric: labels, values: points.slice(Math.max(0, k + 1 - window), k + 1) };
    return watch.judge(s, [series], { nowMs: (T0 + k * STEP_S) * 1000, stepS: STEP_S, forgetS: 3600 });
  });
}

describe('anomalies as alerts', () => {
  it("a standby's replay lag jumping far above its usual: one warning, held for a while, then resolved", () => {
    const gauss = noise(7);
    const labels = { ...primary, standby: 'member-3' };
    // 600 calm steps (a few hundred KiB behind), then the standby stops replaying: 200 MiB behind, and more.
    const lag = Array.from({ length: 700 }, (_, k) =>
      k < 600 ? Math.abs(300 * 1024 * (1 + 0.3 * gauss())) : 200 * MiB + (k - 600) * MiB,
    );
    const steps = replay(new AnomalyWatch(), spec('standby-replay-lag'), labels, lag);
    expect(steps.slice(0, 600).flat()).toEqual([]);
    const first = steps.findIndex((a) => a.length > 0);
    expect(first).toBeGreaterThanOrEqual(600);
    expect(first).toBeLessThan(605);
    const [alert] = steps[first]!;
    expect(alert).toMatchObject({
      key: 'anomaly:standby-replay-lag:node=n1,partition=p2,standby=member-3',
      rule: 'anomaly',
      severity: 'warning',
      resource: { node: 'n1', partition: 'p2' },
      eta_ms: null,
    });
    expect(alert!.summary).toMatch(
      /^unusual replay lag for standby member-3 on n1 partition p2 \(crm-db\/member-1\): 2\d\d MiB, where half the last values were below 0\.\d MiB and 95 % below 0\.\d MiB$/,
    );
    expect(alert!.evidence['score']).toBeGreaterThanOrEqual(0.545);
    // Held ANOMALY_HOLD_STEPS steps after the last report, then resolved while the lag stays (the new normal).
    const openSteps = steps.slice(first).filter((a) => a.length > 0).length;
    expect(openSteps).toBeGreaterThanOrEqual(ANOMALY_HOLD_STEPS);
    expect(steps.at(-1)).toEqual([]);
  });

  it("a replica's latency climbing from tens of milliseconds to seconds: a warning naming the app and the replica", () => {
    const gauss = noise(5);
    const replica = { node: 'n2', partition: 'p1', tree: 'crm', instance: 'replica-2' };
    const latency = Array.from({ length: 500 }, (_, k) => (k < 450 ? 0.02 * (1 + 0.2 * Math.abs(gauss())) : 2.4));
    const steps = replay(new AnomalyWatch(), spec('edge-latency'), replica, latency);
    expect(steps.slice(0, 450).flat()).toEqual([]);
    const alert = steps.slice(450).flat()[0];
    expect(alert?.key).toBe('anomaly:edge-latency:node=n2,partition=p1');
    expect(alert?.summary).toMatch(
      /^unusual 95th percentile latency on n2 partition p1 \(crm\/replica-2\): 2\.4 s, where half the last values were below 2\d ms/,
    );
  });

  it('an unusual value below the floor, or not twice the usual high, is no alert', () => {
    const gauss = noise(11);
    // A lag jumping from ~100 KiB to 4 MiB: unusual, but under one WAL segment.
    const small = Array.from({ length: 700 }, (_, k) => (k < 600 ? 100 * 1024 * (1 + 0.2 * gauss()) : 4 * MiB));
    expect(replay(new AnomalyWatch(), spec('standby-replay-lag'), primary, small).flat()).toEqual([]);
    // WAL written at 2 MiB/s give or take 10 %, for 3 000 steps: the detector alone reports such noise now and
    // then; none of it doubles the usual high.
    const calm = Array.from({ length: 3000 }, () => 2 * MiB * (1 + 0.1 * gauss()));
    expect(replay(new AnomalyWatch(), spec('wal-rate'), primary, calm).flat()).toEqual([]);
  });

  it('feeds each point once, however often the same window is read back, and forgets a series gone', () => {
    const gauss = noise(3);
    const values = Array.from({ length: 400 }, (_, k) => (k < 380 ? 0.1 + 0.01 * gauss() : 0.9));
    const points: [number, string][] = values.map((v, k) => [T0 + k * STEP_S, String(v)]);
    const watch = new AnomalyWatch();
    const at = (k: number) => ({ nowMs: (T0 + k * STEP_S) * 1000, stepS: STEP_S, forgetS: 600 });
    const [once] = watch.judge(spec('connections'), [{ metric: primary, values: points }], at(399));
    expect(once?.summary).toMatch(/^unusual share of connections in use on n1 partition p2 .*: 90 %, /);
    // The same window again: the same alert, from the same point (not fed twice, so not judged against itself).
    const [again] = watch.judge(spec('connections'), [{ metric: primary, values: points }], at(400));
    expect(again?.evidence).toEqual(once?.evidence);
    // Gone for longer than forgetS: forgotten; seen again, it starts afresh (a fresh detector learns first).
    expect(watch.judge(spec('connections'), [], at(500))).toEqual([]);
    expect(watch.judge(spec('connections'), [{ metric: primary, values: points.slice(-20) }], at(400))).toEqual([]);
  });
});
