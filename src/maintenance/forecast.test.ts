import { describe, expect, it } from 'vitest';
import { Z80, Z95, fitHoltWinters, forecast, type Sample } from './forecast.js';
import { resampleOnGrid, timeToThreshold } from './time-to-threshold.js';

const STEP_MS = 5 * 60_000;
const DAY_STEPS = 288;
const DAY_MS = 86_400_000;
const HOUR_MS = 3_600_000;

/** mulberry32: a tiny seeded generator, uniform in [0, 1). */
function mulberry32(seed: number): () => number {
  let state = seed | 0;
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Standard normal draws (Box-Muller) from a seeded generator. */
function normal(seed: number): () => number {
  const uniform = mulberry32(seed);
  return () => Math.sqrt(-2 * Math.log(1 - uniform())) * Math.cos(2 * Math.PI * uniform());
}

/** `steps` samples 5 minutes apart of `shape(i)` plus normal noise of standard deviation `noise`. */
function series(steps: number, shape: (i: number) => number, noise: number, seed = 1): Sample[] {
  const draw = normal(seed);
  return Array.from({ length: steps }, (_, i) => ({ tMs: i * STEP_MS, value: shape(i) + noise * draw() }));
}

/** When the noise-free shape first reaches the threshold after step `from`, in ms after it (to 1/100 of a step). */
function trueCrossingMs(shape: (i: number) => number, from: number, threshold: number, rising: boolean): number {
  for (let x = from; ; x += 0.01) {
    if (rising ? shape(x) >= threshold : shape(x) <= threshold) return (x - from) * STEP_MS;
  }
}

/** Where a least-squares straight line through all the samples reaches the threshold, in ms after the last sample. */
function straightLineEtaMs(samples: readonly Sample[], threshold: number): number {
  const n = samples.length;
  const meanT = samples.reduce((s, p) => s + p.tMs, 0) / n;
  const meanY = samples.reduce((s, p) => s + p.value, 0) / n;
  let covariance = 0;
  let varianceT = 0;
  for (const p of samples) {
    covariance += (p.tMs - meanT) * (p.value - meanY);
    varianceT += (p.tMs - meanT) ** 2;
  }
  const slope = covariance / varianceT;
  const lastT = samples[n - 1]!.tMs;
  return (threshold - (meanY + slope * (lastT - meanT))) / slope;
}

const within = (value: number | null, low: number | null, high: number | null): boolean =>
  value !== null && low !== null && high !== null && low <= value && value <= high;

describe('fitHoltWinters', () => {
  it('recovers the trend and the daily cycle of a week of 5-minute values', () => {
    const shape = (i: number): number => 100 + 0.05 * i + 20 * Math.sin((2 * Math.PI * i) / DAY_STEPS);
    const model = fitHoltWinters(
      series(7 * DAY_STEPS, shape, 1).map((s) => s.value),
      { period: DAY_STEPS },
    );
    expect(model.model).toBe('holt-winters');
    expect(model.seasonal).toHaveLength(DAY_STEPS);
    expect(model.trend).toBeGreaterThan(0.045);
    expect(model.trend).toBeLessThan(0.055);
    expect(Math.max(...model.seasonal)).toBeGreaterThan(18);
    expect(Math.max(...model.seasonal)).toBeLessThan(22);
    // The next step is phase 2016 mod 288 = 0 (the sine's 0): its seasonal term is near 0, the quarter-day one near 20.
    expect(Math.abs(model.seasonal[0]!)).toBeLessThan(2);
    expect(model.seasonal[72]).toBeGreaterThan(18);
    expect(model.residualStd).toBeGreaterThan(0.9);
    expect(model.residualStd).toBeLessThan(1.3);
  });

  it("falls back to Holt's linear trend with fewer than two full periods, and says so", () => {
    const values = series(Math.round(1.5 * DAY_STEPS), (i) => 10 + 0.1 * i, 0.5).map((s) => s.value);
    const holt = fitHoltWinters(values, { period: DAY_STEPS });
    expect(holt.model).toBe('holt');
    expect(holt.period).toBe(1);
    expect(holt.seasonal).toEqual([0]);
    expect(holt.gamma).toBe(0);
    expect(holt.notes.join('\n')).toMatch(/fewer than two full periods/);
    expect(holt.trend).toBeCloseTo(0.1, 2);
    const twoPeriods = series(2 * DAY_STEPS, (i) => 10 + 0.1 * i, 0.5).map((s) => s.value);
    expect(fitHoltWinters(twoPeriods, { period: DAY_STEPS }).model).toBe('holt-winters');
  });

  it('keeps the weights it is given and chooses the others', () => {
    const values = series(3 * DAY_STEPS, (i) => 5 + 0.01 * i, 0.2).map((s) => s.value);
    const model = fitHoltWinters(values, { period: DAY_STEPS, alpha: 0.3, gamma: 0.05, phi: 0.98 });
    expect(model.alpha).toBe(0.3);
    expect(model.gamma).toBe(0.05);
    expect(model.phi).toBe(0.98);
    expect(model.beta).toBeGreaterThan(0);
    expect(model.notes.join('\n')).toMatch(/damped trend/);
    expect(() => fitHoltWinters(values, { period: DAY_STEPS, alpha: 1.5 })).toThrow(/alpha must be within 0..1/);
    expect(() => fitHoltWinters([1, NaN, Infinity], { period: 1 })).toThrow(/at least 2 finite values, got 1/);
  });

  it('steps through missing values on its own forecast', () => {
    const values = series(3 * DAY_STEPS, (i) => 100 - 0.02 * i, 0.3).map((s) => s.value);
    for (let i = 300; i < 400; i++) values[i] = i % 2 === 0 ? NaN : -Infinity;
    const model = fitHoltWinters(values, { period: DAY_STEPS });
    expect(model.residualCount).toBe(3 * DAY_STEPS - 100);
    expect(Number.isFinite(model.level)).toBe(true);
    expect(model.trend).toBeCloseTo(-0.02, 3);
  });

  it('fits a constant series exactly, with a band of no width', () => {
    const model = fitHoltWinters(new Array<number>(3 * DAY_STEPS).fill(42), { period: DAY_STEPS });
    expect(model.residualStd).toBe(0);
    const ahead = forecast(model, 500);
    for (const p of ahead) {
      expect(p.value).toBeCloseTo(42, 9);
      expect(p.upper95).toBe(p.lower95);
    }
  });
});

describe('forecast', () => {
  const shape = (i: number): number => 100 + 0.05 * i + 20 * Math.sin((2 * Math.PI * i) / DAY_STEPS);

  it('widens the band with the horizon, the 95 % band holding the 80 % band', () => {
    const model = fitHoltWinters(
      series(7 * DAY_STEPS, shape, 1).map((s) => s.value),
      { period: DAY_STEPS },
    );
    const ahead = forecast(model, 3 * DAY_STEPS);
    expect(ahead).toHaveLength(3 * DAY_STEPS);
    expect(ahead[0]!.std).toBe(model.residualStd);
    for (let h = 1; h < ahead.length; h++) expect(ahead[h]!.std).toBeGreaterThan(ahead[h - 1]!.std);
    for (const p of ahead) {
      expect(p.lower95).toBeLessThan(p.lower80);
      expect(p.lower80).toBeLessThan(p.value);
      expect(p.value).toBeLessThan(p.upper80);
      expect(p.upper80).toBeLessThan(p.upper95);
      expect(p.upper95 - p.value).toBeCloseTo(Z95 * p.std, 9);
      expect(p.upper80 - p.value).toBeCloseTo(Z80 * p.std, 9);
    }
    expect(forecast(model, 0)).toEqual([]);
    expect(() => forecast(model, 1.5)).toThrow(/integer/);
  });

  it('follows v_h = σ²(1 + Σ c_j²), c_j = α + αβj + γ[j mod m = 0]', () => {
    const values = series(3 * 24, (i) => 10 + i + 3 * Math.sin((2 * Math.PI * i) / 24), 1).map((s) => s.value);
    const model = fitHoltWinters(values, { period: 24, alpha: 0.3, beta: 0.2, gamma: 0.1 });
    const ahead = forecast(model, 26);
    const sigma = model.residualStd;
    let sum = 0;
    for (let j = 1; j < 26; j++) {
      const c = 0.3 + 0.3 * 0.2 * j + (j % 24 === 0 ? 0.1 : 0);
      sum += c * c;
      expect(ahead[j]!.std).toBeCloseTo(sigma * Math.sqrt(1 + sum), 9);
    }
  });

  it('holds most of the values that follow in its bands', () => {
    const all = series(9 * DAY_STEPS, shape, 1, 7).map((s) => s.value);
    const model = fitHoltWinters(all.slice(0, 7 * DAY_STEPS), { period: DAY_STEPS });
    const ahead = forecast(model, 2 * DAY_STEPS);
    let in80 = 0;
    let in95 = 0;
    ahead.forEach((p, h) => {
      const actual = all[7 * DAY_STEPS + h]!;
      if (p.lower80 <= actual && actual <= p.upper80) in80++;
      if (p.lower95 <= actual && actual <= p.upper95) in95++;
    });
    expect(in95 / ahead.length).toBeGreaterThan(0.9);
    expect(in80 / ahead.length).toBeGreaterThan(0.7);
    expect(in80).toBeLessThan(in95);
  });
});

describe('resampleOnGrid', () => {
  it('averages each step, interpolates short gaps, leaves long ones missing, and ends at the last sample', () => {
    const samples: Sample[] = [
      { tMs: 1_000, value: 1 },
      { tMs: 1_000 + 4 * 60_000, value: 3 }, // within half a step of the second step: averaged with the next
      { tMs: 1_000 + 6 * 60_000, value: 5 },
      // steps 2 and 3 empty: interpolated between 4 and 10
      { tMs: 1_000 + 20 * 60_000, value: 10 },
      // steps 5 to 9 empty: too long, left missing
      { tMs: 1_000 + 50 * 60_000, value: 20 },
    ];
    const grid = resampleOnGrid(samples, STEP_MS);
    expect(grid.startMs).toBe(1_000);
    expect(grid.startMs + (grid.values.length - 1) * grid.stepMs).toBe(1_000 + 50 * 60_000);
    expect(grid.values.slice(0, 5)).toEqual([1, 4, 6, 8, 10]);
    expect(grid.values.slice(5, 10).every(Number.isNaN)).toBe(true);
    expect(grid.values[10]).toBe(20);
    expect(grid.interpolatedSteps).toBe(2);
    expect(grid.missingSteps).toBe(5);
    expect(grid.longestGapMs).toBe(30 * 60_000);
  });
});

describe('timeToThreshold', () => {
  it('finds when a noisy linear ramp reaches its ceiling, within 3 %, inside the band', () => {
    const shape = (i: number): number => 50 + 0.01 * i; // e.g. GB used
    const samples = series(3 * DAY_STEPS, shape, 0.2, 2);
    const threshold = shape(3 * DAY_STEPS - 1 + 2 * DAY_STEPS); // full two days after the last sample
    const truth = 2 * DAY_MS;
    const result = timeToThreshold(samples, threshold, { horizonMs: 7 * DAY_MS });
    expect(result.direction).toBe('rising');
    expect(result.model).toBe('holt-winters');
    expect(result.stepMs).toBe(STEP_MS);
    expect(Math.abs(result.etaMs! - truth) / truth).toBeLessThan(0.03);
    expect(within(truth, result.earliestMs, result.latestMs)).toBe(true);
    expect(result.earliestMs!).toBeLessThan(result.etaMs!);
    expect(result.etaMs!).toBeLessThan(result.latestMs!);
  });

  describe('a ramp under a strong daily cycle (7 days of 5-minute values)', () => {
    // The cycle's swing (±20) is larger than a day's growth (14.4): the threshold is first reached at a daily peak.
    const shape = (i: number): number => 100 + 0.05 * i + 20 * Math.sin((2 * Math.PI * i) / DAY_STEPS);
    const samples = series(7 * DAY_STEPS, shape, 1, 3);
    const last = 7 * DAY_STEPS - 1;
    // Just below the peak 3 days ahead (peaks at 72 + 288k), so the peak one day earlier falls 10 short.
    const peak = 72 + 9 * DAY_STEPS;
    const threshold = shape(peak) - 0.3 * 0.05 * DAY_STEPS;
    const truth = trueCrossingMs(shape, last, threshold, true);
    const previousPeakMs = (peak - DAY_STEPS - last) * STEP_MS;
    const result = timeToThreshold(samples, threshold, { horizonMs: 7 * DAY_MS });

    it('comes closer to the truth than a least-squares straight line', () => {
      expect(result.model).toBe('holt-winters');
      const lineEta = straightLineEtaMs(samples, threshold);
      expect(Math.abs(result.etaMs! - truth)).toBeLessThan(Math.abs(lineEta - truth) / 5);
      expect(Math.abs(result.etaMs! - truth)).toBeLessThan(HOUR_MS);
      expect(within(truth, result.earliestMs, result.latestMs)).toBe(true);
    });

    it('does not put the crossing at a daily peak that falls short', () => {
      expect(shape(peak - DAY_STEPS)).toBeLessThan(threshold - 9); // the setting: the earlier peak is well short
      expect(result.earliestMs!).toBeGreaterThan(previousPeakMs + 6 * HOUR_MS);
      // Without the cycle (Holt's trend alone) the last hours' climb reads as the trend: a false, early alarm.
      const holt = timeToThreshold(samples, threshold, { horizonMs: 7 * DAY_MS, periodMs: 0 });
      expect(holt.model).toBe('holt');
      expect(holt.etaMs!).toBeLessThan(truth / 2);
    });
  });

  it('sees no crossing in a flat noisy series', () => {
    const samples = series(7 * DAY_STEPS, () => 50, 1, 4);
    const result = timeToThreshold(samples, 60, { horizonMs: 7 * DAY_MS });
    expect(result.model).toBe('holt-winters');
    expect(result.etaMs).toBeNull();
    expect(result.latestMs).toBeNull();
    // A cycle fitted to pure noise is shrunk away rather than frozen into the forecast.
    expect(result.notes.join('\n')).toMatch(/a weak cycle/);
    expect(Math.max(...result.fit!.seasonal.map(Math.abs))).toBeLessThan(0.1);
  });

  it('finds when a falling series reaches its floor (free bytes reaching 0)', () => {
    // 38.5 GB free, losing 6 GB a day, with a daily swing of ±2 GB (e.g. temporary files). The dip 2 days after the
    // last sample goes 1 GB below 0, the one before it stays 5 GB above: the crossing is not a near miss.
    const shape = (i: number): number => 38.5 - (6 / DAY_STEPS) * i - 2 * Math.sin((2 * Math.PI * i) / DAY_STEPS);
    const samples = series(4 * DAY_STEPS, shape, 0.3, 5);
    const last = 4 * DAY_STEPS - 1;
    const truth = trueCrossingMs(shape, last, 0, false);
    const result = timeToThreshold(samples, 0, { horizonMs: 14 * DAY_MS });
    expect(result.direction).toBe('falling');
    expect(result.model).toBe('holt-winters');
    expect(Math.abs(result.etaMs! - truth) / truth).toBeLessThan(0.03);
    expect(within(truth, result.earliestMs, result.latestMs)).toBe(true);
    // Rising to a ceiling instead, with the same numbers, would never get there.
    expect(timeToThreshold(samples, 60, { horizonMs: 14 * DAY_MS }).etaMs).toBeNull();
  });

  it("falls back to Holt's linear trend with fewer than two days, and says so", () => {
    const shape = (i: number): number => 10 + 0.02 * i;
    const samples = series(Math.round(1.5 * DAY_STEPS), shape, 0.1, 6);
    const threshold = shape(1.5 * DAY_STEPS - 1 + DAY_STEPS);
    const result = timeToThreshold(samples, threshold, { horizonMs: 7 * DAY_MS });
    expect(result.model).toBe('holt');
    expect(result.notes.join('\n')).toMatch(/fewer than two full periods/);
    expect(Math.abs(result.etaMs! - DAY_MS) / DAY_MS).toBeLessThan(0.05);
  });

  it('resamples irregular samples with a 6-hour gap and still finds a sensible date', () => {
    const shape = (tMs: number): number => 200 + (10 * tMs) / DAY_MS + 5 * Math.sin((2 * Math.PI * tMs) / DAY_MS);
    const jitter = mulberry32(8);
    const noise = normal(9);
    const samples: Sample[] = [];
    for (let tMs = 0; tMs < 5 * DAY_MS; tMs += (2 + 6 * jitter()) * 60_000) {
      if (tMs > 3 * DAY_MS && tMs < 3 * DAY_MS + 6 * HOUR_MS) continue; // an outage
      samples.push({ tMs, value: shape(tMs) + 0.5 * noise() });
    }
    const lastMs = samples[samples.length - 1]!.tMs;
    const threshold = 270;
    let truth = 0;
    while (shape(lastMs + truth) < threshold) truth += 1_000;
    const result = timeToThreshold(samples.reverse(), threshold, { horizonMs: 14 * DAY_MS });
    expect(result.model).toBe('holt-winters');
    expect(result.stepMs).toBeGreaterThan(4 * 60_000);
    expect(result.stepMs).toBeLessThan(6 * 60_000);
    const notes = result.notes.join('\n');
    expect(notes).toMatch(/empty steps interpolated linearly/);
    expect(notes).toMatch(/left missing/);
    expect(Math.abs(result.etaMs! - truth) / truth).toBeLessThan(0.05);
    expect(within(truth, result.earliestMs, result.latestMs)).toBe(true);
  });

  it('answers null beyond the horizon', () => {
    const shape = (i: number): number => 50 + 0.01 * i;
    const samples = series(3 * DAY_STEPS, shape, 0.2, 2);
    const threshold = shape(3 * DAY_STEPS - 1 + 2 * DAY_STEPS);
    const short = timeToThreshold(samples, threshold, { horizonMs: DAY_MS });
    expect(short.etaMs).toBeNull();
    expect(short.latestMs).toBeNull();
    expect(timeToThreshold(samples, threshold, { horizonMs: 3 * DAY_MS }).etaMs).not.toBeNull();
  });

  describe('edge cases', () => {
    it('a constant series never gets there', () => {
      const samples = Array.from({ length: 3 * DAY_STEPS }, (_, i) => ({ tMs: i * STEP_MS, value: 7 }));
      const result = timeToThreshold(samples, 8, { horizonMs: 30 * DAY_MS });
      expect(result.etaMs).toBeNull();
      expect(result.earliestMs).toBeNull();
      expect(result.fit?.residualStd).toBe(0);
    });

    it('a single sample gives no date, unless it is already there', () => {
      const below = timeToThreshold([{ tMs: 0, value: 5 }], 10, { horizonMs: DAY_MS });
      expect(below.etaMs).toBeNull();
      expect(below.model).toBe('none');
      expect(below.notes.join('\n')).toMatch(/no trend/);
      const above = timeToThreshold([{ tMs: 0, value: 5 }], 10, { horizonMs: DAY_MS, direction: 'falling' });
      expect(above.etaMs).toBe(0);
      expect(timeToThreshold([], 10, { horizonMs: DAY_MS }).etaMs).toBeNull();
    });

    it('two samples give the straight line through them, and say the band is rough', () => {
      const result = timeToThreshold(
        [
          { tMs: 0, value: 10 },
          { tMs: HOUR_MS, value: 11 },
        ],
        15,
        { horizonMs: DAY_MS },
      );
      expect(result.model).toBe('holt');
      expect(result.etaMs).toBeCloseTo(4 * HOUR_MS, -3);
      expect(result.notes.join('\n')).toMatch(/σ is rough/);
    });

    it('a mostly missing series still fits, on its own forecast through the gaps', () => {
      const values = new Array<number>(3 * DAY_STEPS).fill(NaN);
      values[0] = 1;
      values[500] = 6;
      values[800] = 9;
      const model = fitHoltWinters(values, { period: DAY_STEPS });
      expect(model.residualCount).toBe(3);
      expect(Number.isFinite(model.level + model.trend + model.residualStd)).toBe(true);
      expect(model.trend).toBeCloseTo(0.01, 3);
    });

    it('a series that already crossed answers 0', () => {
      const samples = series(DAY_STEPS, (i) => 90 + 0.1 * i, 0.5, 10); // ends near 118.7
      const result = timeToThreshold(samples, 100, { horizonMs: DAY_MS, direction: 'rising' });
      expect(result).toMatchObject({ etaMs: 0, earliestMs: 0, latestMs: 0, model: 'none' });
      expect(result.notes.join('\n')).toMatch(/already at or above the threshold \(100\)/);
    });

    it('skips NaN and Infinity values and timestamps, with the same answer as without them', () => {
      const shape = (i: number): number => 50 + 0.01 * i;
      const samples = series(3 * DAY_STEPS, shape, 0.2, 11);
      const threshold = shape(3 * DAY_STEPS - 1 + DAY_STEPS);
      const dirty: Sample[] = [...samples];
      dirty.splice(100, 0, { tMs: 100.5 * STEP_MS, value: NaN }, { tMs: 200.5 * STEP_MS, value: Infinity });
      dirty.push({ tMs: NaN, value: 60 }, { tMs: 1e15, value: -Infinity });
      const clean = timeToThreshold(samples, threshold, { horizonMs: 7 * DAY_MS });
      const skipped = timeToThreshold(dirty, threshold, { horizonMs: 7 * DAY_MS });
      expect(skipped.etaMs).toBe(clean.etaMs);
      expect(skipped.etaMs).not.toBeNull();
      expect(skipped.notes[0]).toBe('4 non-finite samples skipped');
    });

    it('refuses a threshold or horizon that is not a number', () => {
      const samples = series(10, (i) => i, 0);
      expect(() => timeToThreshold(samples, NaN, { horizonMs: DAY_MS })).toThrow(/threshold must be finite/);
      expect(() => timeToThreshold(samples, 100, { horizonMs: -1 })).toThrow(/horizonMs/);
      expect(() => timeToThreshold(samples, 100, { horizonMs: 10_000 * DAY_MS })).toThrow(/give a larger stepMs/);
    });
  });
});
