import { describe, expect, it } from 'vitest';
import { AnomalyDetector, DriftSignal, SortedWindow, anomalyScores } from './anomaly-detector.js';

const STEP_MS = 5 * 60_000;

/** A noisy daily wave sampled every 5 minutes (deterministic noise). */
function wave(rows: number): { values: number[]; timestamps: number[] } {
  let seed = 11;
  const noise = (): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31 - 0.5;
  const values = Array.from({ length: rows }, (_, i) => 50 + 10 * Math.sin((2 * Math.PI * i) / 288) + noise());
  const timestamps = Array.from({ length: rows }, (_, i) => Date.UTC(2024, 0, 1) + i * STEP_MS);
  return { values, timestamps };
}

describe('SortedWindow', () => {
  it('keeps the quantiles of the latest values only', () => {
    const window = new SortedWindow(5);
    for (const v of [9, 1, 8, 2, 7, 3, 6]) window.push(v); // holds 8, 2, 7, 3, 6
    expect(window.size).toBe(5);
    expect(window.quantile(0)).toBe(2);
    expect(window.quantile(0.5)).toBe(6);
    expect(window.quantile(1)).toBe(8);
  });
});

describe('DriftSignal', () => {
  /** Uniform noise in [0, 1) (deterministic), plus `shift` from row `at` on. */
  function noisy(rows: number, at: number, shift: number): number[] {
    let seed = 3;
    return Array.from({ length: rows }, (_, i) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31 + (i >= at ? shift : 0);
    });
  }

  it('says nothing until it holds two means and enough past differences', () => {
    const drift = new DriftSignal(10, 200);
    const zs = noisy(80, 0, 0).map((v) => drift.update(v));
    // The 20th value gives the first difference; a z-score needs 51 differences before it (value 71).
    expect(zs.slice(0, 70).every((z) => z === 0)).toBe(true);
    expect(zs[70]).toBeGreaterThan(0);
  });

  it('rises well above its usual size when the mean shifts', () => {
    const drift = new DriftSignal(10, 200);
    const zs = noisy(600, 500, 1).map((v) => drift.update(v));
    const usual = Math.max(...zs.slice(100, 500));
    expect(Math.max(...zs.slice(505, 520))).toBeGreaterThan(2 * usual);
  });
});

describe('AnomalyDetector', () => {
  it('scores a spike far above the ordinary values around it', () => {
    const { values, timestamps } = wave(3000);
    values[2500] = 200;
    const scores = anomalyScores(values, timestamps);
    const ordinary = Math.max(...scores.slice(1000, 2490));
    expect(scores[2500]).toBeGreaterThan(0.9);
    expect(scores[2500]).toBeGreaterThan(ordinary + 0.2);
    for (const s of scores) expect(s).toBeGreaterThanOrEqual(0);
    for (const s of scores) expect(s).toBeLessThanOrEqual(1);
  });

  it('reports once, then keeps quiet for a while', () => {
    const { values, timestamps } = wave(3000);
    for (let i = 2500; i < 2600; i++) values[i] = 200; // a lasting incident
    const scores = anomalyScores(values, timestamps);
    expect(scores[2500]).toBeGreaterThan(0.9);
    // 50 rows, or 5 % of the 2501 seen (125), whichever is longer.
    expect(Math.max(...scores.slice(2501, 2501 + 125))).toBe(0);
  });

  it('ends the quiet early for a value 3 times as far out as any since the report', () => {
    const { values, timestamps } = wave(3000);
    values[2500] = 80; // a small spike reports and starts the quiet...
    values[2540] = 400; // ...which a much larger one, well within it, still breaks through
    const scores = anomalyScores(values, timestamps);
    expect(scores[2500]).toBeGreaterThan(0.55);
    expect(Math.max(...scores.slice(2501, 2540))).toBe(0);
    expect(scores[2540]).toBeGreaterThan(0.9);
    // Without the break (an unreachable ratio) the large spike stays silent.
    const unbroken = anomalyScores(values, timestamps, { breakRatio: Infinity });
    expect(unbroken[2540]).toBe(0);
  });

  it('gives the scores of a prefix whatever follows (no look-ahead)', () => {
    const { values, timestamps } = wave(2000);
    const full = anomalyScores(values, timestamps);
    const prefix = anomalyScores(values.slice(0, 1200), timestamps.slice(0, 1200));
    expect(Array.from(prefix)).toEqual(Array.from(full.slice(0, 1200)));
  });

  it('stays silent while it learns, and on a flat line', () => {
    const detector = new AnomalyDetector();
    const start = Date.UTC(2024, 0, 1);
    const scores = Array.from({ length: 3000 }, (_, i) => detector.update(42, start + i * STEP_MS));
    expect(Math.max(...scores)).toBe(0);
  });
});
