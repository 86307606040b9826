/**
 * When will a resource reach its limit: {@link timeToThreshold} puts irregular samples on a regular grid, fits
 * forecast.ts's Holt-Winters model (daily seasonality by default) and finds where the forecast and its 95 % band
 * cross the threshold. Pure functions, no I/O.
 *
 * The grid ends at the last sample: a step's value is the mean of the samples within half a step of it; an empty
 * step is interpolated linearly between its neighbours when the gap is at most 3 steps (jitter, a lost scrape),
 * and left missing beyond that, so a straight line drawn across a night's outage does not teach the daily cycle
 * that nights are flat. forecast.ts's header says what the model cannot foresee.
 */
import { fitHoltWinters, forecastSteps, type ForecastMethod, type HoltWintersModel, type Sample } from './forecast.js';

/** A regular grid of values ending at the last sample; NaN where a gap was too long to interpolate. */
export interface ResampledSeries {
  /** The time of `values[0]`; `values[k]` is at startMs + k·stepMs. */
  startMs: number;
  stepMs: number;
  values: number[];
  /** Empty steps filled by linear interpolation (gaps of at most MAX_INTERPOLATED_STEPS steps). */
  interpolatedSteps: number;
  /** Empty steps left NaN (longer gaps). */
  missingSteps: number;
  /** The longest stretch between two steps that had samples. */
  longestGapMs: number;
}

/** Gaps of at most this many empty steps are interpolated; longer ones are left missing. */
export const MAX_INTERPOLATED_STEPS = 3;

/**
 * Puts samples (finite, in time order) on a grid of `stepMs` that ends at the
 * last sample: a step holds the mean of the samples within half a step of it.
 */
export function resampleOnGrid(samples: readonly Sample[], stepMs: number): ResampledSeries {
  const last = samples[samples.length - 1];
  if (last === undefined) throw new RangeError('resampleOnGrid needs at least one sample');
  const steps = Math.round((last.tMs - samples[0]!.tMs) / stepMs) + 1;
  const sums = new Float64Array(steps);
  const counts = new Uint32Array(steps);
  for (const { tMs, value } of samples) {
    const k = Math.max(0, steps - 1 - Math.round((last.tMs - tMs) / stepMs));
    sums[k]! += value;
    counts[k]!++;
  }
  const values = Array.from(sums, (sum, k) => (counts[k]! > 0 ? sum / counts[k]! : NaN));
  let interpolatedSteps = 0;
  let missingSteps = 0;
  let longestGap = 1;
  // The first and the last step always hold a sample, so every gap has a step with data on each side.
  for (let k = 1, before = 0; k < steps; k++) {
    if (counts[k] === 0) continue;
    const gap = k - before;
    longestGap = Math.max(longestGap, gap);
    if (gap - 1 <= MAX_INTERPOLATED_STEPS) {
      const from = values[before]!;
      for (let j = before + 1; j < k; j++) values[j] = from + ((values[k]! - from) * (j - before)) / gap;
      interpolatedSteps += gap - 1;
    } else {
      missingSteps += gap - 1;
    }
    before = k;
  }
  return {
    startMs: last.tMs - (steps - 1) * stepMs,
    stepMs,
    values,
    interpolatedSteps,
    missingSteps,
    longestGapMs: steps > 1 ? longestGap * stepMs : 0,
  };
}

/** {@link timeToThreshold}'s options. */
export interface ThresholdOptions {
  /** How far ahead to look. */
  horizonMs: number;
  /** The seasonal period; 0 for none. @default 86_400_000 (a day) */
  periodMs?: number;
  /** The grid's step. @default the median spacing of the samples */
  stepMs?: number;
  /**
   * 'rising': the threshold is a ceiling the series grows towards (bytes used
   * and capacity); 'falling': a floor it drops towards (free bytes and 0).
   * @default the side of the threshold the first sample is on
   */
  direction?: 'rising' | 'falling';
}

/** When a series is expected to reach a threshold; times are from the last sample. */
export interface ThresholdForecast {
  /** When the forecast reaches the threshold: 0 if the last sample already has, null if not within the horizon. */
  etaMs: number | null;
  /** When the 95 % band's near edge reaches it (the upper edge for a ceiling), or null. */
  earliestMs: number | null;
  /** When the 95 % band's far edge reaches it (the lower edge for a ceiling), or null. */
  latestMs: number | null;
  direction: 'rising' | 'falling';
  /** 'none' when no model was needed or possible (already crossed, fewer than two sample times). */
  model: ForecastMethod | 'none';
  /** The grid's step (NaN with fewer than two sample times). */
  stepMs: number;
  fit?: HoltWintersModel;
  /** What limits the answer's confidence, in plain English. */
  notes: string[];
}

const DAY_MS = 86_400_000;
/** The longest horizon, in grid steps, that {@link timeToThreshold} walks. */
export const MAX_HORIZON_STEPS = 1_000_000;

/**
 * When will the series reach `threshold`? Samples may be irregular, unsorted
 * and contain non-finite values (skipped). A crossing is the first forecast
 * step at or beyond the threshold, interpolated linearly within the step.
 *
 * @example
 * const full = timeToThreshold(diskUsedSamples, capacityBytes, { horizonMs: 30 * 86_400_000 });
 * if (full.earliestMs !== null && full.earliestMs < 7 * 86_400_000) warn(full);
 */
export function timeToThreshold(
  samples: readonly Sample[],
  threshold: number,
  options: ThresholdOptions,
): ThresholdForecast {
  const { horizonMs, periodMs = DAY_MS } = options;
  if (!Number.isFinite(threshold)) throw new RangeError(`timeToThreshold: threshold must be finite, got ${threshold}`);
  if (!(horizonMs >= 0 && Number.isFinite(horizonMs))) {
    throw new RangeError(`timeToThreshold: horizonMs must be finite and >= 0, got ${horizonMs}`);
  }
  const clean = samples.filter((s) => Number.isFinite(s.tMs) && Number.isFinite(s.value)).sort((a, b) => a.tMs - b.tMs);
  const notes: string[] = [];
  if (clean.length < samples.length) notes.push(`${samples.length - clean.length} non-finite samples skipped`);
  const first = clean[0];
  const last = clean[clean.length - 1];
  const direction = options.direction ?? (first === undefined || first.value <= threshold ? 'rising' : 'falling');
  const result = {
    etaMs: null,
    earliestMs: null,
    latestMs: null,
    direction,
    model: 'none' as const,
    stepMs: NaN,
    notes,
  };
  if (last === undefined) return { ...result, notes: [...notes, 'no finite samples'] };
  const reached = (value: number): boolean => (direction === 'rising' ? value >= threshold : value <= threshold);
  if (reached(last.value)) {
    const side = direction === 'rising' ? 'above' : 'below';
    const note = `the last sample (${last.value}) is already at or ${side} the threshold (${threshold})`;
    return { ...result, etaMs: 0, earliestMs: 0, latestMs: 0, notes: [...notes, note] };
  }
  const stepMs = options.stepMs ?? medianSpacing(clean);
  if (!(stepMs > 0 && Number.isFinite(stepMs)) || last.tMs - first!.tMs < stepMs / 2) {
    return { ...result, notes: [...notes, 'all samples within half a step of one another: no trend to follow'] };
  }
  if (horizonMs / stepMs > MAX_HORIZON_STEPS) {
    throw new RangeError(
      `timeToThreshold: a horizon of ${duration(horizonMs)} is more than ${MAX_HORIZON_STEPS} steps of ` +
        `${duration(stepMs)}: give a larger stepMs`,
    );
  }
  const grid = resampleOnGrid(clean, stepMs);
  notes.push(...gridNotes(clean.length, grid));
  const period = periodMs > 0 ? Math.round(periodMs / stepMs) : 0;
  if (period >= 2 && Math.abs(period * stepMs - periodMs) > 0.01 * periodMs) {
    notes.push(`the period (${duration(periodMs)}) is not a whole number of steps: rounded to ${period} steps`);
  }
  const fit = fitHoltWinters(grid.values, { period });
  const historyMs = last.tMs - first!.tMs;
  if (horizonMs > historyMs) {
    notes.push(
      `looking ${duration(horizonMs)} ahead from ${duration(historyMs)} of history: trust the band, not the date`,
    );
  }
  notes.push(...fit.notes);
  const origin = grid.values[grid.values.length - 1]!;
  const crossings = scanCrossings(fit, origin, threshold, reached, horizonMs, stepMs);
  const rising = direction === 'rising';
  return {
    ...result,
    etaMs: crossings.value,
    earliestMs: rising ? crossings.upper95 : crossings.lower95,
    latestMs: rising ? crossings.lower95 : crossings.upper95,
    model: fit.model,
    stepMs,
    fit,
  };
}

type Curve = 'value' | 'lower95' | 'upper95';
const CURVES: readonly Curve[] = ['value', 'lower95', 'upper95'];

/** When each curve first reaches the threshold within the horizon (null: not within it), from the last grid value. */
function scanCrossings(
  fit: HoltWintersModel,
  origin: number,
  threshold: number,
  reached: (value: number) => boolean,
  horizonMs: number,
  stepMs: number,
): Record<Curve, number | null> {
  const found: Partial<Record<Curve, number>> = {};
  const before: Record<Curve, number> = { value: origin, lower95: origin, upper95: origin };
  const steps = Math.ceil(horizonMs / stepMs);
  for (const point of forecastSteps(fit)) {
    if (point.step > steps) break;
    for (const curve of CURVES) {
      const value = point[curve];
      const previous = before[curve];
      if (found[curve] === undefined && reached(value)) {
        // Linear within the step; a start already past (a late sample in the last step's mean) gives the step's start.
        const within = reached(previous) ? 0 : (threshold - previous) / (value - previous);
        found[curve] = (point.step - 1 + within) * stepMs;
      }
      before[curve] = value;
    }
    if (CURVES.every((c) => found[c] !== undefined)) break;
  }
  const inHorizon = (atMs: number | undefined): number | null =>
    atMs !== undefined && atMs <= horizonMs ? atMs : null;
  return { value: inHorizon(found.value), lower95: inHorizon(found.lower95), upper95: inHorizon(found.upper95) };
}

/** The median time between consecutive samples at distinct times (NaN when there are none). */
function medianSpacing(samples: readonly Sample[]): number {
  const spacings: number[] = [];
  for (let i = 1; i < samples.length; i++) {
    const spacing = samples[i]!.tMs - samples[i - 1]!.tMs;
    if (spacing > 0) spacings.push(spacing);
  }
  spacings.sort((a, b) => a - b);
  return spacings[Math.floor(spacings.length / 2)] ?? NaN;
}

/** What resampling did to the samples, for the notes. */
function gridNotes(sampleCount: number, grid: ResampledSeries): string[] {
  const notes = [`${sampleCount} samples on ${grid.values.length} steps of ${duration(grid.stepMs)}`];
  if (grid.interpolatedSteps > 0) notes.push(`${grid.interpolatedSteps} empty steps interpolated linearly`);
  if (grid.missingSteps > 0) {
    notes.push(
      `${grid.missingSteps} steps in gaps longer than ${MAX_INTERPOLATED_STEPS} steps ` +
        `(longest ${duration(grid.longestGapMs)}) left missing: the model ran through them on its own forecast`,
    );
  }
  return notes;
}

/** A duration for people: "5 min", "6 h", "2.5 d". */
function duration(ms: number): string {
  const round = (x: number): number => Math.round(x * 10) / 10;
  if (ms < 3_600_000) return `${round(ms / 60_000)} min`;
  if (ms < 2 * DAY_MS) return `${round(ms / 3_600_000)} h`;
  return `${round(ms / DAY_MS)} d`;
}
