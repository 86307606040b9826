/**
 * NAB scoring: how the Numenta Anomaly Benchmark turns a detector's anomaly
 * scores into one number per cost profile. Written from NAB's published
 * description (the whitepaper "Evaluating Real-time Anomaly Detection
 * Algorithms – the Numenta Anomaly Benchmark", and the rules its sweeper and
 * optimizer apply); pure functions, no I/O.
 *
 * The rules, all on row positions (elapsed time plays no part):
 *
 * 1. A detection is a row whose anomaly score is >= the threshold.
 * 2. Probation: the first min(floor(15 % of the rows), 750) rows of each file
 *    let the detector learn; detections there count for nothing, neither good
 *    nor bad.
 * 3. A window is a labelled run of rows [first, last] (inclusive). Only the
 *    first detection in a window counts: it earns tpWeight × A(y) / A(-1),
 *    where A(y) = 2 / (1 + e^(5y)) − 1 is the scaled sigmoid and
 *    y = −(last − i + 1) / width is the detection's place in the window: −1 at
 *    the first row (full credit, tpWeight), near 0 at the last row (almost
 *    nothing). Later detections in the same window are ignored.
 * 4. A window with no detection costs −fnWeight (a missed anomaly).
 * 5. A detection outside every window is a false positive costing
 *    fpWeight × A(y), which is negative: before the first window of the file
 *    y counts as "far", A = −1, the full −fpWeight; after a window,
 *    y = (i − lastOfPreviousWindow) / (previousWidth − 1), so a detection
 *    just after a window costs almost nothing and one three window widths on
 *    costs the full fpWeight (A is set to −1 from y >= 3).
 * 6. A file's raw score is the sum of 3, 4 and 5; the corpus's raw score is
 *    the sum over its files.
 * 7. One threshold per profile for the whole corpus, the one that gives the
 *    best corpus raw score: the sweep tries every distinct anomaly score as a
 *    threshold (and 1.1, "detect nothing"); on a tie the higher threshold
 *    wins.
 * 8. Normalized score = 100 × (S − S_null) / (S_perfect − S_null), where the
 *    null detector detects nothing (S_null = −fnWeight × windows) and the
 *    perfect one detects every window at its first row
 *    (S_perfect = tpWeight × windows). So "detect nothing" scores 0, perfect
 *    scores 100, and a noisy detector can go below 0.
 *
 * A window counts (rules 4 and 8) only if some of its rows lie after
 * probation, as in NAB's sweeper; in the NAB corpus every window does.
 */

/** One cost profile's weights (NAB's config/profiles.json, "CostMatrix"). */
export interface CostWeights {
  tpWeight: number;
  fpWeight: number;
  fnWeight: number;
}

/** One labelled file and a detector's scores on it. */
export interface LabelledSeries {
  /** For messages only (e.g. `realKnownCause/nyc_taxi.csv`). */
  name: string;
  /** One per row, ascending (e.g. ms since the epoch); used only to place the windows. */
  timestamps: ArrayLike<number>;
  /** The detector's anomaly score for each row, 0..1 (finite). */
  scores: ArrayLike<number>;
  /** Anomaly windows as [first, last] timestamps, inclusive; each must be a row's timestamp. */
  windows: ReadonlyArray<readonly [number, number]>;
}

/** NAB's probation: 15 % of each file. */
export const PROBATION_FRACTION = 0.15;

/** The threshold that detects nothing (scores are at most 1). */
export const NO_DETECTION_THRESHOLD = 1.1;

/** Rule 3's curve: 1 − 2 / (1 + e^(−5y)) rewritten as 2σ(−5y) − 1; −1 from y >= 3 on (rule 5). */
export function scaledSigmoid(position: number): number {
  if (position >= 3) return -1;
  return 2 / (1 + Math.exp(5 * position)) - 1;
}

/** Rule 2: how many leading rows of a file of `rowCount` rows are probation. */
export function probationLength(rowCount: number, fraction = PROBATION_FRACTION): number {
  return Math.min(Math.floor(fraction * rowCount), fraction * 5000);
}

/** Row kinds in {@link LabelledRows.window}: a window number (>= 0) or one of these. */
const OUTSIDE = -1;
const PROBATION = -2;

/**
 * A corpus prepared for scoring, independent of the profile: what each row
 * would earn if it were detected, and the rows in descending score order.
 */
export interface LabelledRows {
  scores: Float64Array;
  /** Per row: the corpus-wide window number it lies in, −1 outside any window, −2 in probation. */
  window: Int32Array;
  /** Per row: A(y)/A(−1) for rows in a window (× tpWeight), A(y) for rows outside (× fpWeight). */
  credit: Float64Array;
  /** Row numbers sorted by descending score. */
  order: Uint32Array;
  /** Windows that count (rule 4): those with a row after probation. */
  windowCount: number;
}

/** Window limits as row numbers; throws when a limit is not one of the rows' timestamps. */
export function windowRows(series: LabelledSeries): Array<[number, number]> {
  const rowOf = new Map<number, number>();
  for (let i = 0; i < series.timestamps.length; i++) rowOf.set(series.timestamps[i]!, i);
  return series.windows.map(([start, end]) => {
    const first = rowOf.get(start);
    const last = rowOf.get(end);
    if (first === undefined || last === undefined || last < first) {
      throw new Error(`${series.name}: window [${start}, ${end}] does not start and end on rows of the file`);
    }
    return [first, last];
  });
}

/** Labels every row of every file (rules 2, 3 and 5 without the weights) and orders the rows by score. */
export function labelRows(corpus: readonly LabelledSeries[]): LabelledRows {
  const total = corpus.reduce((n, s) => n + s.scores.length, 0);
  const scores = new Float64Array(total);
  const window = new Int32Array(total);
  const credit = new Float64Array(total);
  const maxTp = scaledSigmoid(-1);
  let offset = 0;
  let windowCount = 0;
  for (const series of corpus) {
    const n = series.scores.length;
    if (series.timestamps.length !== n) {
      throw new Error(`${series.name}: ${series.timestamps.length} timestamps but ${n} scores`);
    }
    const probation = probationLength(n);
    const limits = windowRows(series);
    let next = 0; // the next window to enter
    let current: [number, number] | undefined; // the window row i is in
    let previous: [number, number] | undefined; // the last window left behind
    let currentNumber = -1;
    for (let i = 0; i < n; i++) {
      const score = series.scores[i]!;
      if (!Number.isFinite(score)) throw new Error(`${series.name}: row ${i} has anomaly score ${score}`);
      scores[offset + i] = score;
      if (current === undefined && next < limits.length && limits[next]![0] === i) {
        current = limits[next++]!;
        currentNumber = -1;
      }
      if (current !== undefined) {
        const [first, last] = current;
        credit[offset + i] = scaledSigmoid(-(last - i + 1) / (last - first + 1)) / maxTp;
        if (i >= probation && currentNumber < 0) currentNumber = windowCount++;
        window[offset + i] = i < probation ? PROBATION : currentNumber;
        if (i === last) {
          previous = current;
          current = undefined;
        }
      } else {
        // A one-row window has no width to measure by: a detection after it costs the full fpWeight.
        const width = previous === undefined ? 0 : previous[1] - previous[0];
        credit[offset + i] = previous === undefined || width === 0 ? -1 : scaledSigmoid((i - previous[1]) / width);
        window[offset + i] = i < probation ? PROBATION : OUTSIDE;
      }
    }
    offset += n;
  }
  const order = Uint32Array.from({ length: total }, (_, i) => i).sort((a, b) => scores[b]! - scores[a]!);
  return { scores, window, credit, order, windowCount };
}

/** A threshold and the corpus raw score it gives. */
export interface ThresholdScore {
  threshold: number;
  rawScore: number;
}

/**
 * Rule 7: the corpus raw score at every threshold worth trying, from
 * {@link NO_DETECTION_THRESHOLD} down to the lowest score. Lowering the
 * threshold to the next distinct score turns on every row with that score: a
 * false positive adds its cost, a row in a window replaces the window's
 * current value when it is earlier (a higher credit) than the detection
 * already there.
 */
export function sweepThresholds(rows: LabelledRows, weights: CostWeights): ThresholdScore[] {
  const windowValue = new Float64Array(rows.windowCount).fill(-weights.fnWeight);
  let rawScore = -weights.fnWeight * rows.windowCount;
  const result: ThresholdScore[] = [{ threshold: NO_DETECTION_THRESHOLD, rawScore }];
  const { order, scores, window, credit } = rows;
  for (let k = 0; k < order.length; k++) {
    const row = order[k]!;
    const kind = window[row]!;
    if (kind === OUTSIDE) {
      rawScore += credit[row]! * weights.fpWeight;
    } else if (kind >= 0) {
      const value = credit[row]! * weights.tpWeight;
      if (value > windowValue[kind]!) {
        rawScore += value - windowValue[kind]!;
        windowValue[kind] = value;
      }
    }
    const threshold = scores[row]!;
    const nextRow = order[k + 1];
    if (nextRow === undefined || scores[nextRow] !== threshold) result.push({ threshold, rawScore });
  }
  return result;
}

/** Rule 7: the threshold with the best corpus raw score; the higher threshold on a tie. */
export function bestThreshold(rows: LabelledRows, weights: CostWeights): ThresholdScore {
  let best: ThresholdScore | undefined;
  for (const candidate of sweepThresholds(rows, weights)) {
    if (best === undefined || candidate.rawScore > best.rawScore) best = candidate;
  }
  return best!;
}

/** Rule 8: a corpus raw score on NAB's 0 (detect nothing) to 100 (perfect) scale. */
export function normalizedScore(rawScore: number, windowCount: number, weights: CostWeights): number {
  const nullScore = -weights.fnWeight * windowCount;
  const perfectScore = weights.tpWeight * windowCount;
  return (100 * (rawScore - nullScore)) / (perfectScore - nullScore);
}

/**
 * Rules 1 to 6 for one file at a given threshold, computed directly (row by
 * row) rather than by the sweep: the reference the sweep is checked against.
 */
export function fileRawScore(series: LabelledSeries, weights: CostWeights, threshold: number): number {
  const rows = labelRows([series]);
  const firstCredit = new Array<number | undefined>(rows.windowCount).fill(undefined);
  let falsePositives = 0;
  for (let i = 0; i < rows.scores.length; i++) {
    if (rows.scores[i]! < threshold) continue;
    const kind = rows.window[i]!;
    if (kind === OUTSIDE) falsePositives += rows.credit[i]! * weights.fpWeight;
    else if (kind >= 0 && firstCredit[kind] === undefined) firstCredit[kind] = rows.credit[i]!;
  }
  const windows = firstCredit.reduce<number>(
    (sum, c) => sum + (c === undefined ? -weights.fnWeight : c * weights.tpWeight),
    0,
  );
  return windows + falsePositives;
}

/** A detector's result on a corpus for one profile. */
export interface CorpusScore {
  threshold: number;
  rawScore: number;
  /** Rule 8's 0..100 score. */
  score: number;
  windowCount: number;
}

/**
 * The whole of NAB's scoring for one profile: sweep for the best threshold,
 * then normalize.
 *
 * @example
 * const rows = labelRows(files); // once per detector
 * const standard = scoreCorpus(rows, { tpWeight: 1, fpWeight: 0.11, fnWeight: 1 });
 */
export function scoreCorpus(rows: LabelledRows, weights: CostWeights): CorpusScore {
  const best = bestThreshold(rows, weights);
  return {
    threshold: best.threshold,
    rawScore: best.rawScore,
    score: normalizedScore(best.rawScore, rows.windowCount, weights),
    windowCount: rows.windowCount,
  };
}
