/**
 * NAB's "windowedGaussian" baseline, re-implemented from its description to
 * check our scorer against NAB's published figures (standard 39.65,
 * reward_low_FP_rate 20.87, reward_low_FN_rate 47.41): a value's anomaly
 * score is how unlikely it is under a normal distribution fitted to the
 * values before it.
 *
 * - The model is the mean and population standard deviation of up to 6400
 *   past values (a standard deviation of 0 is taken as 1e-6).
 * - Until the window is full the model is refitted after every value; after
 *   that, new values wait in a buffer and the window slides by 100 values at
 *   a time, refitted once per slide.
 * - The score of a value is 1 − Q(|z|), z = (value − mean) / std, where Q is
 *   the normal tail probability: 0.5 for a value at the mean, towards 1 far
 *   from it. The first value, with no model yet, scores 0.
 *
 * Deterministic: the same values give the same scores.
 */

/** @default 6400 values */
export const GAUSSIAN_WINDOW_SIZE = 6400;
/** @default 100 values */
export const GAUSSIAN_STEP_SIZE = 100;

/** Anomaly scores (0..1) for a series, one per value, each from the values before it only. */
export function windowedGaussianScores(values: ArrayLike<number>): Float64Array {
  const scores = new Float64Array(values.length);
  const window: number[] = [];
  let pending: number[] = [];
  let mean = 0;
  let std = 1;
  const refit = (): void => {
    let sum = 0;
    for (const v of window) sum += v;
    mean = sum / window.length;
    let squares = 0;
    for (const v of window) squares += (v - mean) * (v - mean);
    std = Math.sqrt(squares / window.length) || 0.000001;
  };
  for (let i = 0; i < values.length; i++) {
    const value = values[i]!;
    scores[i] = window.length === 0 ? 0 : 1 - normalTail(value, mean, std);
    if (window.length < GAUSSIAN_WINDOW_SIZE) {
      window.push(value);
      refit();
    } else {
      pending.push(value);
      if (pending.length === GAUSSIAN_STEP_SIZE) {
        window.splice(0, GAUSSIAN_STEP_SIZE);
        window.push(...pending);
        pending = [];
        refit();
      }
    }
  }
  return scores;
}

/** Q: the probability that a normal variable lands at least as far from the mean as `x`, on x's side. */
export function normalTail(x: number, mean: number, std: number): number {
  // Mirror a value below the mean onto the upper side (the curve is symmetric).
  const upper = x < mean ? 2 * mean - x : x;
  const z = (upper - mean) / std;
  return 0.5 * erfc(z / Math.SQRT2);
}

/**
 * The complementary error function, to about 1e-15 relative: the Taylor
 * series of erf near 0, a continued fraction (Lentz's method) further out
 * where 1 − erf would lose the digits that matter.
 */
export function erfc(x: number): number {
  if (x < 0) return 2 - erfc(-x);
  if (x < 2) {
    // erf(x) = 2/√π Σ (−1)^n x^(2n+1) / (n! (2n+1))
    let term = x; // (−1)^n x^(2n+1) / n!
    let sum = x;
    for (let n = 1; n < 100; n++) {
      term *= (-x * x) / n;
      const add = term / (2 * n + 1);
      sum += add;
      if (Math.abs(add) < 1e-17 * Math.abs(sum)) break;
    }
    return 1 - (2 / Math.sqrt(Math.PI)) * sum;
  }
  if (x > 27) return 0; // below the smallest double
  // erfc(x) = e^(−x²)/√π · 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + 2/(x + …)))))
  const tiny = 1e-300;
  let f = x;
  let c = x;
  let d = 0;
  for (let n = 1; n < 500; n++) {
    const a = n / 2;
    d = x + a * d;
    d = Math.abs(d) < tiny ? tiny : d;
    c = x + a / c;
    c = Math.abs(c) < tiny ? tiny : c;
    d = 1 / d;
    const delta = c * d;
    f *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  return Math.exp(-x * x) / Math.sqrt(Math.PI) / f;
}
