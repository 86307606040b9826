import { describe, expect, it } from 'vitest';
import {
  AnomalyDetector,
  DEFAULT_DETECTOR_OPTIONS,
  DriftSignal,
  SortedWindow,
  anomalyScores,
} from './anomaly-detector.js';
import { ArtSignal } from './detector-art.js';
import { FuzzyArt } from './detector-art-network.js';
import { EntropySignal } from './detector-entropy.js';

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

describe('EntropySignal', () => {
  /** Uniform noise in [0, 1) (deterministic). */
  function uniform(rows: number, seed = 5): number[] {
    return Array.from({ length: rows }, () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  }

  it('stays small on a steady distribution and rises when the values gather elsewhere', () => {
    const signal = new EntropySignal(48, 20);
    const reference = new SortedWindow(1000);
    const values = uniform(1500);
    // From row 1200 on, every value lies in the top tenth of the usual range.
    for (let i = 1200; i < 1500; i++) values[i] = 0.9 + values[i]! * 0.1;
    const statistics = values.map((v) => {
      const d = signal.update(v, reference);
      reference.push(v);
      return d;
    });
    // The statistic is about 1 for a steady series (its largest over 900 values here is about 3).
    const calm = Math.max(...statistics.slice(300, 1200));
    expect(calm).toBeLessThan(5);
    expect(statistics[1250]).toBeGreaterThan(4 * calm);
  });

  it('says nothing until it holds a reference window that the current one does not overlap', () => {
    const signal = new EntropySignal(10, 5);
    const reference = new SortedWindow(100);
    const out = uniform(40).map((v) => {
      const d = signal.update(v, reference);
      reference.push(v);
      return d;
    });
    expect(out.slice(0, 20).every((d) => d === 0)).toBe(true);
    expect(out.slice(20).some((d) => d > 0)).toBe(true);
  });
});

describe('FuzzyArt', () => {
  const vector = (...v: number[]) => Float64Array.from(v);

  it('finds a vector novel until it has a category, and forgets the least recently used one when full', () => {
    const art = new FuzzyArt(2, 1, 2);
    art.lower = art.upper = 0.9;
    expect(art.present(vector(0.1, 0.1)).novel).toBe(false); // the very first has nothing to be novel against
    expect(art.present(vector(0.9, 0.9)).novel).toBe(true);
    expect(art.present(vector(0.9, 0.9))).toMatchObject({ novel: false, match: 1 });
    expect(art.present(vector(0.5, 0.5)).novel).toBe(true); // replaces (0.1, 0.1), the least recently used
    expect(art.present(vector(0.1, 0.1)).novel).toBe(true);
  });
});

describe('ArtSignal', () => {
  /** A square wave (period 64 rows) between 0 and 10. */
  const square = (rows: number): number[] => Array.from({ length: rows }, (_, i) => (i % 64 < 32 ? 0 : 10));

  it('says nothing while it learns and on a pattern it knows, and reports a shape it has not seen', () => {
    const values = square(4000);
    for (let i = 3000; i < 3040; i++) values[i] = 5; // stuck half way
    const signal = new ArtSignal();
    const out = values.map((v) => signal.update(v));
    expect(out.slice(0, 2900).every((c) => c === 0)).toBe(true);
    expect(Math.max(...out.slice(3000, 3060))).toBeGreaterThan(0.5);
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

  it('reports a wave that starts to swing four times as fast, though every value stays in range', () => {
    const { values, timestamps } = wave(4000);
    for (let i = 3000; i < 4000; i++) values[i] = 50 + 10 * Math.sin((2 * Math.PI * i) / 72);
    const scores = anomalyScores(values, timestamps);
    expect(Math.max(...scores.slice(1500, 3000))).toBeLessThan(0.5);
    expect(Math.max(...scores.slice(3000, 3200))).toBeGreaterThan(0.55);
  });

  it('reports a level shift that stays within the usual range of a wave', () => {
    const { values, timestamps } = wave(4000);
    for (let i = 3000; i < 4000; i++) values[i] = 50 + (values[i]! - 50) * 0.2 + 8; // calmer, and higher
    const scores = anomalyScores(values, timestamps);
    expect(Math.max(...scores.slice(1500, 3000))).toBeLessThan(0.5);
    expect(Math.max(...scores.slice(3000, 3200))).toBeGreaterThan(0.55);
  });

  it('reports noise that suddenly goes calm (rule 1c), which no other rule sees', () => {
    let seed = 7;
    const values = Array.from({ length: 4000 }, (_, i) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      const u = seed / 2 ** 31 - 0.5;
      return 50 + (i >= 3000 ? 0.1 * u : u);
    });
    const timestamps = values.map((_, i) => Date.UTC(2024, 0, 1) + i * STEP_MS);
    const { reportRatio } = DEFAULT_DETECTOR_OPTIONS;
    const report = reportRatio / (reportRatio + 1);
    const scores = anomalyScores(values, timestamps);
    expect(Math.max(...scores.slice(1500, 3000))).toBeLessThan(report);
    expect(Math.max(...scores.slice(3000, 3200))).toBeGreaterThanOrEqual(report);
    const without = anomalyScores(values, timestamps, { entropyWeight: 0 });
    expect(Math.max(...without.slice(3000, 3200))).toBeLessThan(report);
  });

  it('reports a square wave that briefly swings four times as fast more strongly with rules 6 and 6b', () => {
    const values = Array.from({ length: 4000 }, (_, i) => (i % 64 < 32 ? 0 : 10));
    for (let i = 3000; i < 3064; i++) values[i] = i % 16 < 8 ? 0 : 10;
    const timestamps = values.map((_, i) => Date.UTC(2024, 0, 1) + i * STEP_MS);
    const peak = (scores: Float64Array) => Math.max(...scores.slice(2990, 3100));
    expect(peak(anomalyScores(values, timestamps))).toBeGreaterThan(0.65);
    expect(
      peak(anomalyScores(values, timestamps, { noveltyConfidence: Infinity, longNoveltyConfidence: Infinity })),
    ).toBeLessThan(0.6);
    // Rule 6b alone (64 rows of context, its own bar of 0.85) reports it too, if less strongly.
    const { reportRatio } = DEFAULT_DETECTOR_OPTIONS;
    const longOnly = peak(anomalyScores(values, timestamps, { noveltyConfidence: Infinity }));
    expect(longOnly).toBeGreaterThanOrEqual(reportRatio / (reportRatio + 1));
    expect(longOnly).toBeLessThan(0.65);
  });

  it('damps a spike that came at the same time of day on each of the last three days', () => {
    const { values, timestamps } = wave(4000);
    for (const day of [9, 10, 11, 12]) values[day * 288 + 100] = 200; // a daily job, four days running
    values[12 * 288 + 200] = 200; // the same spike at another time of day
    const scores = anomalyScores(values, timestamps, { weakRatio: Infinity });
    expect(scores[12 * 288 + 100]).toBeLessThan(0.5);
    expect(scores[12 * 288 + 200]).toBeGreaterThan(0.9);
    // Without rule 5 the fourth daily spike is reported as well.
    const plain = anomalyScores(values, timestamps, { weakRatio: Infinity, echoDays: 0 });
    expect(plain[12 * 288 + 100]).toBeGreaterThan(0.9);
  });

  it('keeps ordinary values below the weak reports, and weak reports below the strong ones', () => {
    const { values, timestamps } = wave(4000);
    const scores = anomalyScores(values, timestamps);
    const weakScore = 0.9 / 1.9;
    const strongScore = DEFAULT_DETECTOR_OPTIONS.reportRatio / (DEFAULT_DETECTOR_OPTIONS.reportRatio + 1);
    const weak = Array.from(scores).filter((s) => s >= weakScore && s < strongScore);
    const rest = Array.from(scores).filter((s) => s < weakScore);
    expect(Math.max(...rest)).toBeLessThanOrEqual(0.4);
    // A weak report silences the weak ones after it for 10 % of the values seen.
    expect(weak.length).toBeLessThan(4000 / 300);
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
