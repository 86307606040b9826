/**
 * Forecasts for predictive maintenance: when will a resource (disk bytes,
 * inodes, WAL size, connections, memory) reach its limit, and how sure can we
 * be of that date. Pure functions, no I/O, no dependencies.
 *
 * The model is additive Holt-Winters written in its error-correction form,
 * ETS(A,A,A) in Hyndman, Koehler, Ord and Snyder, "Forecasting with
 * Exponential Smoothing" (2008): a level ℓ, a trend b and one seasonal term
 * per phase of the period (m steps: a day by default). For each value y_t:
 *
 *   forecast  ŷ_t = ℓ + φ·b + s_(t−m),  error e_t = y_t − ŷ_t
 *   update    ℓ ← ℓ + φ·b + α·e_t,  b ← φ·b + α·β·e_t,  s_t = s_(t−m) + γ·e_t
 *
 * and h steps after the last value ŷ = ℓ + (φ + φ² + … + φ^h)·b + the seasonal
 * term of that phase. β is the textbook trend weight (a fraction of α).
 *
 * - The smoothing weights not given are those with the smallest sum of
 *   squared one-step errors: the best of a 7 × 4 × 4 grid, refined by a
 *   coordinate search in logit space with halving steps (about 200 passes
 *   over the series in all; a week of 5-minute values fits in a few ms).
 *   φ (damping) stays 1 unless given: a damped trend flattens out and pushes
 *   exhaustion dates later, the unsafe side for capacity.
 * - The starting state is drawn from the whole series (what optimising it
 *   along with the weights would give when they are small): a least-squares
 *   line through the means of the full periods gives ℓ and b, and a phase's
 *   seasonal term is the line's mean residual at that phase, the terms
 *   centred on 0 and shrunk towards 0 by the share of their spread that
 *   noise alone would explain. Without the shrinking, a series with no cycle
 *   gets a forecast that wiggles with frozen noise and reaches a threshold
 *   early, on a random upswing.
 * - With fewer than two full periods, one cycle cannot be told from trend:
 *   the fit falls back to Holt's linear trend (no seasonal terms, γ = 0),
 *   starting from a line through all the values, and says so.
 * - A missing value (NaN, ±Infinity) is not an update: the state moves on by
 *   its own forecast, as a state-space model treats a gap.
 *
 * The band, for h steps ahead (Hyndman et al. 2008, table 6.1, class 1):
 *
 *   v_h = σ² · (1 + Σ_{j=1}^{h−1} c_j²),  c_j = α + α·β·(φ + … + φ^j) + γ·[j mod m = 0]
 *
 * with σ² = (sum of squared one-step errors) / (errors − estimated
 * quantities), and the band ŷ ± z·√v_h, z = 1.2816 (80 %) or 1.9600 (95 %).
 * Undamped, the variance grows like α²h from the level and α²β²h³/3 from the
 * trend: the band opens slowly at first, then fast.
 *
 * time-to-threshold.ts uses it to say when a resource reaches its limit.
 *
 * What it cannot forecast: anything the past does not show — a cleanup job,
 * log rotation, a new tenant, a deploy that changes the growth rate; a
 * sawtooth (WAL truncated at checkpoints, memory freed by a restart) is seen
 * as a noisy trend; only one seasonal period (a weekly pattern on top of the
 * daily one is noise to it); a cycle whose amplitude grows with the level. The
 * band assumes independent, normal one-step errors of constant spread and
 * ignores the uncertainty of the weights themselves, so on real data it is
 * more often too narrow than too wide, and the further out the more so.
 */

/** Which model a fit used. */
export type ForecastMethod = 'holt' | 'holt-winters';

/** One observation of a metric. */
export interface Sample {
  tMs: number;
  value: number;
}

/** {@link fitHoltWinters}'s options; a weight left out is chosen from the data. */
export interface HoltWintersOptions {
  /** The seasonal period in steps (288: a day of 5-minute steps); below 2, no seasonality. */
  period: number;
  /** Level weight, 0..1. */
  alpha?: number;
  /** Trend weight as a fraction of alpha, 0..1. */
  beta?: number;
  /** Seasonal weight, 0..1 (chosen within 0..1 − alpha). */
  gamma?: number;
  /** Trend damping, 0..1; 1 is no damping. @default 1 */
  phi?: number;
}

/** A fitted model: its weights, the state after the last value, and the spread of its one-step errors. */
export interface HoltWintersModel {
  model: ForecastMethod;
  /** The seasonal period in steps; 1 for Holt. */
  period: number;
  alpha: number;
  beta: number;
  gamma: number;
  phi: number;
  level: number;
  trend: number;
  /** The seasonal terms of the next `period` steps: step h uses `seasonal[(h − 1) % period]` (Holt: `[0]`). */
  seasonal: readonly number[];
  /** σ, the standard deviation of the one-step errors. */
  residualStd: number;
  /** How many one-step errors σ was measured on. */
  residualCount: number;
  /** What the fit chose or had to give up, in plain English. */
  notes: string[];
}

/** The forecast for one step ahead with its 80 % and 95 % prediction bands. */
export interface ForecastPoint {
  step: number;
  value: number;
  /** √v_h (see the module comment). */
  std: number;
  lower80: number;
  upper80: number;
  lower95: number;
  upper95: number;
}

/** Two-sided normal quantiles. */
export const Z80 = 1.2815515655446004;
export const Z95 = 1.959963984540054;

const GRID_ALPHA = [0.005, 0.02, 0.08, 0.2, 0.4, 0.7, 0.95];
const GRID_BETA = [0.005, 0.03, 0.1, 0.3];
/** As a fraction of 1 − alpha. */
const GRID_GAMMA = [0.001, 0.05, 0.2, 0.5];
/** Logit bounds: weights stay within about 1e-4 of 0 and 1. */
const LOGIT_LIMIT = 9;
const MAX_SEARCH_PASSES = 200;

/**
 * Fits additive Holt-Winters to regularly spaced values, or Holt's linear
 * trend when there are fewer than two full periods; NaN and ±Infinity are
 * missing values. Throws a RangeError with fewer than two finite values or a
 * weight outside 0..1.
 *
 * @example
 * const model = fitHoltWinters(diskUsedBytes, { period: 288 }); // 5-minute steps, daily cycle
 * const nextDay = forecast(model, 288);
 */
export function fitHoltWinters(values: readonly number[], options: HoltWintersOptions): HoltWintersModel {
  const finite = values.reduce((n, v) => (Number.isFinite(v) ? n + 1 : n), 0);
  if (finite < 2) throw new RangeError(`fitHoltWinters needs at least 2 finite values, got ${finite}`);
  for (const name of ['alpha', 'beta', 'gamma', 'phi'] as const) {
    const weight = options[name];
    if (weight !== undefined && !(weight >= 0 && weight <= 1)) {
      throw new RangeError(`fitHoltWinters: ${name} must be within 0..1, got ${weight}`);
    }
  }
  const notes: string[] = [];
  const requested = Math.round(options.period);
  const seasonal = requested >= 2 && values.length >= 2 * requested;
  if (requested >= 2 && !seasonal) {
    notes.push(
      `fewer than two full periods (${values.length} values, period ${requested}): Holt's linear trend, no seasonality`,
    );
  }
  const m = seasonal ? requested : 1;
  const phi = options.phi ?? 1;
  const start = initialState(values, m, phi);
  if (seasonal && start.shrink < 0.5) {
    notes.push(`a weak cycle: its starting terms were shrunk to ${Math.round(start.shrink * 100)} % of their size`);
  }
  const weights = chooseWeights(values, start, options, seasonal, phi);
  const season = Float64Array.from(start.season);
  const run = runFilter(values, start, weights, phi, season);

  // σ² divides by the errors less what was estimated: the weights chosen, the starting level, trend and season.
  const chosen = (['alpha', 'beta', 'gamma'] as const).filter(
    (k) => options[k] === undefined && (seasonal || k !== 'gamma'),
  );
  const freedom = run.count - (chosen.length + 2 + (m - 1));
  if (freedom < 10) notes.push(`only ${Math.max(freedom, 0)} one-step errors beyond what was fitted: σ is rough`);
  if (phi < 1) notes.push(`damped trend (φ = ${phi}): growth flattens out over the horizon`);
  return {
    model: seasonal ? 'holt-winters' : 'holt',
    period: m,
    ...weights,
    phi,
    level: run.level,
    trend: run.trend,
    seasonal: Array.from({ length: m }, (_, j) => season[(values.length + j) % m]!),
    residualStd: Math.sqrt(run.sse / Math.max(1, freedom)),
    residualCount: run.count,
    notes,
  };
}

/**
 * The next `steps` forecasts of a fitted model with their bands (the module
 * comment gives the formula); the bands widen with every step.
 */
export function forecast(model: HoltWintersModel, steps: number): ForecastPoint[] {
  if (!Number.isInteger(steps) || steps < 0) {
    throw new RangeError(`forecast: steps must be an integer >= 0, got ${steps}`);
  }
  const points: ForecastPoint[] = [];
  for (const point of forecastSteps(model)) {
    if (points.length === steps) break;
    points.push(point);
  }
  return points;
}

/** Forecasts for steps 1, 2, … without end; the variance sum is carried from step to step. */
export function* forecastSteps(model: HoltWintersModel): Generator<ForecastPoint, never> {
  const { alpha, beta, gamma, phi, period, level, trend, seasonal, residualStd } = model;
  let phiPower = 1;
  let phiSum = 0; // φ + … + φ^h
  let varianceSum = 0; // Σ_{j=1}^{h−1} c_j²
  for (let step = 1; ; step++) {
    phiPower *= phi;
    phiSum += phiPower;
    const value = level + phiSum * trend + seasonal[(step - 1) % period]!;
    const std = residualStd * Math.sqrt(1 + varianceSum);
    yield {
      step,
      value,
      std,
      lower80: value - Z80 * std,
      upper80: value + Z80 * std,
      lower95: value - Z95 * std,
      upper95: value + Z95 * std,
    };
    const c = alpha + alpha * beta * phiSum + (period > 1 && step % period === 0 ? gamma : 0);
    varianceSum += c * c;
  }
}

interface StartState {
  level: number;
  trend: number;
  /** Indexed by phase: t mod m. */
  season: Float64Array;
  /** The factor the seasonal terms were shrunk by (1 without seasons). */
  shrink: number;
}

interface Weights {
  alpha: number;
  beta: number;
  gamma: number;
}

/**
 * The state before the first value, drawn from the whole series: what
 * optimising the starting state along with the weights would give for small
 * weights (a line and a fixed cycle fitted to everything), at the cost of
 * one pass. With seasons, a least-squares line through the means of the full
 * periods (a line through the values themselves would lean with the cycle:
 * a sine over whole periods correlates with time), and a phase's term is the
 * line's mean residual there; without, a line through all the values.
 */
function initialState(values: readonly number[], m: number, phi: number): StartState {
  const periods = Math.floor(values.length / m);
  const span = periods * m;
  // A period's mean sits at the mean time of its finite values (its middle, unless values are missing).
  const means = Array.from({ length: m > 1 ? periods : 0 }, (_, j) => meanOf(values, j * m, (j + 1) * m));
  const meanValues = means.map((p) => p.y);
  const line =
    m > 1 ? leastSquaresLine(meanValues, periods, (j) => means[j]!.t) : leastSquaresLine(values, span, (t) => t);
  // Fewer than two periods with a finite value (long outages) fall back on a line through the values.
  const { intercept, slope } = line ?? leastSquaresLine(values, values.length, (t) => t)!;
  if (m === 1) return { level: intercept - phi * slope, trend: slope, season: new Float64Array(1), shrink: 1 };
  const { season, offset, shrink } = seasonalTerms(values, span, m, (t) => intercept + slope * t);
  // So that the first forecast, ℓ + φb + s, lies on the line and cycle at t = 0.
  return { level: intercept + offset - phi * slope, trend: slope, season, shrink };
}

/**
 * The starting seasonal terms: a phase's term is the mean residual from the
 * line there, the terms centred on 0, then shrunk towards 0 by the share of
 * their spread that noise alone would explain, max(0, 1 − (σ²/c) / V), where
 * σ² is the spread of the residuals around their phase's term, c the values
 * per phase and V the spread of the terms (James-Stein style). With no cycle
 * V ≈ σ²/c and the terms, pure noise, vanish: otherwise the forecast would
 * wiggle with frozen noise and reach a threshold early on a random upswing.
 * A clear cycle keeps its terms nearly whole.
 */
function seasonalTerms(
  values: readonly number[],
  span: number,
  m: number,
  line: (t: number) => number,
): { season: Float64Array; offset: number; shrink: number } {
  const season = new Float64Array(m);
  const counts = new Float64Array(m);
  for (let t = 0; t < span; t++) {
    if (!Number.isFinite(values[t])) continue;
    season[t % m]! += values[t]! - line(t);
    counts[t % m]!++;
  }
  let offset = 0;
  for (let i = 0; i < m; i++) offset += (season[i]! /= Math.max(counts[i]!, 1)) / m;
  let spread = 0;
  for (let i = 0; i < m; i++) spread += (season[i]! -= offset) ** 2 / (m - 1);
  let within = 0;
  let n = 0;
  for (let t = 0; t < span; t++) {
    if (!Number.isFinite(values[t])) continue;
    within += (values[t]! - line(t) - offset - season[t % m]!) ** 2;
    n++;
  }
  const noise = within / Math.max(1, n - m - 2) / (n / m);
  const shrink = spread > 0 ? Math.max(0, 1 - noise / spread) : 1;
  for (let i = 0; i < m; i++) season[i]! *= shrink;
  return { season, offset, shrink };
}

/** The mean time and value of the finite values in [from, to); NaN when there are none. */
function meanOf(values: readonly number[], from: number, to: number): { t: number; y: number } {
  let sumT = 0;
  let sumY = 0;
  let n = 0;
  for (let t = from; t < to; t++) {
    if (Number.isFinite(values[t])) {
      sumT += t;
      sumY += values[t]!;
      n++;
    }
  }
  return { t: sumT / n, y: sumY / n };
}

/** y ≈ intercept + slope·x(i) over the finite values among the first `end`; undefined with fewer than 2. */
function leastSquaresLine(
  ys: readonly number[],
  end: number,
  x: (i: number) => number,
): { intercept: number; slope: number } | undefined {
  let n = 0;
  let sumX = 0;
  let sumY = 0;
  for (let i = 0; i < end; i++) {
    if (!Number.isFinite(ys[i])) continue;
    n++;
    sumX += x(i);
    sumY += ys[i]!;
  }
  if (n < 2) return undefined;
  const meanX = sumX / n;
  const meanY = sumY / n;
  let covariance = 0;
  let varianceX = 0;
  for (let i = 0; i < end; i++) {
    if (!Number.isFinite(ys[i])) continue;
    covariance += (x(i) - meanX) * (ys[i]! - meanY);
    varianceX += (x(i) - meanX) ** 2;
  }
  const slope = covariance / varianceX;
  return { intercept: meanY - slope * meanX, slope };
}

/** One pass of the recursion (module comment): the one-step squared errors and the final state; overwrites `season`. */
function runFilter(
  values: readonly number[],
  start: StartState,
  { alpha, beta, gamma }: Weights,
  phi: number,
  season: Float64Array,
): { sse: number; count: number; level: number; trend: number } {
  season.set(start.season);
  const m = season.length;
  const alphaBeta = alpha * beta;
  let level = start.level;
  let trend = start.trend;
  let sse = 0;
  let count = 0;
  for (let t = 0, phase = 0; t < values.length; t++) {
    const y = values[t]!;
    const carried = level + phi * trend;
    trend *= phi;
    if (Number.isFinite(y)) {
      const error = y - carried - season[phase]!;
      sse += error * error;
      count++;
      level = carried + alpha * error;
      trend += alphaBeta * error;
      season[phase]! += gamma * error;
    } else {
      level = carried;
    }
    if (++phase === m) phase = 0;
  }
  return { sse, count, level, trend };
}

/** The weights given, and for the others those with the least one-step squared error (grid, then coordinate search). */
function chooseWeights(
  values: readonly number[],
  start: StartState,
  options: HoltWintersOptions,
  seasonal: boolean,
  phi: number,
): Weights {
  const free = [options.alpha === undefined, options.beta === undefined, seasonal && options.gamma === undefined];
  const sigmoid = (u: number): number => 1 / (1 + Math.exp(-u));
  const logit = (p: number): number => Math.log(p / (1 - p));
  const weightsOf = (u: readonly number[]): Weights => {
    const alpha = options.alpha ?? sigmoid(u[0]!);
    const beta = options.beta ?? sigmoid(u[1]!);
    const gamma = seasonal ? (options.gamma ?? (1 - alpha) * sigmoid(u[2]!)) : 0;
    return { alpha, beta, gamma };
  };
  const season = new Float64Array(start.season.length);
  const cost = (u: readonly number[]): number => runFilter(values, start, weightsOf(u), phi, season).sse;

  const grids = [GRID_ALPHA, GRID_BETA, GRID_GAMMA].map((grid, i) => (free[i] ? grid.map(logit) : [0]));
  let best = [0, 0, 0];
  let bestCost = Infinity;
  for (const a of grids[0]!) {
    for (const b of grids[1]!) {
      for (const g of grids[2]!) {
        const c = cost([a, b, g]);
        if (c < bestCost) [best, bestCost] = [[a, b, g], c];
      }
    }
  }
  // Coordinate search: move one logit by ±step while it helps; halve the step when no move does.
  let step = 1;
  for (let pass = 0; step > 0.02 && pass < MAX_SEARCH_PASSES; pass++) {
    let moved = false;
    for (let i = 0; i < 3 && !moved; i++) {
      if (!free[i]) continue;
      for (const direction of [1, -1]) {
        const trial = [...best];
        trial[i] = Math.max(-LOGIT_LIMIT, Math.min(LOGIT_LIMIT, trial[i]! + direction * step));
        const c = cost(trial);
        if (c < bestCost) {
          [best, bestCost, moved] = [trial, c, true];
          break;
        }
      }
    }
    if (!moved) step /= 2;
  }
  return weightsOf(best);
}
