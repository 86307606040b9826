/**
 * A novelty signal after ARTime (Mark Hampton's NAB detector, built on
 * Adaptive Resonance Theory; written from its published description, not its
 * code): the series is down-sampled, each down-sampled point is described by
 * the shape (a Haar transform) and the levels of the last few points, and a
 * dual-vigilance fuzzy ART network (detector-art-network.ts) learns these
 * descriptions as categories. A description that matches no category even at
 * the lower vigilance is novel; a novel point that no recent novelty masks is
 * reported with a confidence from how far below the vigilances its best match
 * fell and how unlike its level was. The vigilances follow the series: the
 * upper one the mean match, the lower one the worst recent match.
 *
 * Where this departs from ARTime, and why: ARTime normalises the level by the
 * whole file's minimum and maximum, which a stream cannot know (on NAB that
 * knowledge is worth about 25 points to it); here the range is the one of the
 * values learnt first, widened by `margin` of itself each side and then fixed
 * (values past it are clipped). ARTime takes its down-sampling step and its
 * learning span from the file's length; here both are fixed. And the
 * categories are capped, the least recently matched one replaced, so memory
 * stays bounded.
 */
import { FuzzyArt, type Presentation } from './detector-art-network.js';

/** The parameters of {@link ArtSignal}. */
export interface ArtOptions {
  /** Rows per down-sampled point. */
  step: number;
  /** Down-sampled points described by one feature vector (a power of two, for the Haar transform). */
  window: number;
  /** Levels the normalised value is rounded to. */
  levels: number;
  /** Distance (as a share of the range) within which a level is snapped onto the running median: noise is no shape. */
  snap: number;
  /** Feature vectors learnt (and the range taken) before any report. */
  learnPoints: number;
  /** Share of the learnt range added each side of it before it is fixed. */
  margin: number;
  /** The most categories kept. */
  maxCategories: number;
  /** Down-sampled points masked after a report or a novelty. */
  maskPoints: number;
}

/** The defaults measured on NAB (see anomaly-detector.ts, fourth round). */
export const DEFAULT_ART_OPTIONS: Readonly<ArtOptions> = Object.freeze({
  step: 4,
  window: 8,
  levels: 80,
  snap: 0.075,
  learnPoints: 80,
  margin: 1,
  maxCategories: 600,
  maskPoints: 12,
});

/** The highest the upper vigilance may go. */
const MAX_VIGILANCE = 0.97;
/** Down-sampled points the running median is taken over. */
const MEDIAN_POINTS = 2000;
/** Matches of past reports averaged as the floor of the lower vigilance. */
const REPORTS_KEPT = 100;

/** In place: shifts and scales `v` onto 0..1 (all zeros if flat). */
function minMaxScale(v: Float64Array): void {
  let lo = Infinity;
  let hi = -Infinity;
  for (const x of v) {
    lo = Math.min(lo, x);
    hi = Math.max(hi, x);
  }
  const span = hi - lo;
  for (let i = 0; i < v.length; i++) v[i] = span > 0 ? (v[i]! - lo) / span : 0;
}

/** In place: the full orthonormal Haar transform of `v` (length a power of two), coarsest coefficient first. */
function haar(v: Float64Array, scratch: Float64Array): void {
  for (let n = v.length; n > 1; n >>= 1) {
    const half = n >> 1;
    for (let i = 0; i < half; i++) {
      scratch[i] = (v[2 * i]! + v[2 * i + 1]!) / Math.SQRT2;
      scratch[half + i] = (v[2 * i]! - v[2 * i + 1]!) / Math.SQRT2;
    }
    v.set(scratch.subarray(0, n));
  }
}

const mean = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

/** Appends `value` to `list`, dropping the oldest beyond `capacity`. */
function remember(list: number[], value: number, capacity: number): void {
  list.push(value);
  if (list.length > capacity) list.shift();
}

/** A running median over the last `capacity` values, kept sorted. */
class RunningMedian {
  private readonly sorted: number[] = [];
  private readonly arrival: number[] = [];

  constructor(private readonly capacity: number) {}

  push(value: number): void {
    if (this.arrival.length === this.capacity) this.sorted.splice(this.position(this.arrival.shift()!), 1);
    this.arrival.push(value);
    this.sorted.splice(this.position(value), 0, value);
  }

  get median(): number {
    return this.sorted[this.sorted.length >> 1] ?? 0;
  }

  private position(value: number): number {
    let lo = 0;
    let hi = this.sorted.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.sorted[mid]! < value) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}

/**
 * The signal for one series: feed every value in order to
 * {@link ArtSignal.update}, which returns a confidence (0..1) where a novelty
 * is reported and 0 everywhere else.
 */
export class ArtSignal {
  private readonly o: ArtOptions;
  private readonly block: number[] = [];
  private blockAverage = Number.NaN;
  private lo = Infinity;
  private hi = -Infinity;
  private readonly median = new RunningMedian(MEDIAN_POINTS);
  /** The latest `window` down-sampled values. */
  private readonly recent: number[] = [];
  /** The first windows, kept until the range is fixed and the network first trained. */
  private readonly learning: number[][] = [];
  private art: FuzzyArt | undefined;
  private readonly scratch: Float64Array;
  private points = 0;
  private matchSum = 0;
  private matchCount = 0;
  /** The latest best matches (half a learning span), for the lower vigilance. */
  private readonly matches: number[] = [];
  /** The latest shortfalls of the best match from the upper vigilance (a learning span). */
  private readonly shortfalls: number[] = [];
  private readonly reportedMatches: number[] = [];
  private lastReport = -Infinity;
  private lastReportMatch = 0;
  private lastAdapted = 0;
  private maskedByNovelty = false;
  private sinceNovel = 0;

  constructor(options: Partial<ArtOptions> = {}) {
    this.o = { ...DEFAULT_ART_OPTIONS, ...options };
    this.scratch = new Float64Array(this.o.window);
  }

  /** The confidence that `value` (the latest row) ends a novelty; then it is learnt. */
  update(value: number): number {
    if (this.art === undefined) {
      this.lo = Math.min(this.lo, value);
      this.hi = Math.max(this.hi, value);
    }
    this.block.push(value);
    if (this.block.length < this.o.step) return 0;
    const point = this.downsample();
    this.block.length = 0;
    remember(this.recent, point, this.o.window);
    if (this.recent.length < this.o.window) return 0;
    this.median.push(point);
    if (this.art !== undefined) {
      this.points++;
      return this.observe(this.art.present(this.features(this.recent)), true);
    }
    this.learning.push([...this.recent]);
    if (this.learning.length === this.o.learnPoints) this.start();
    return 0;
  }

  /** Fixes the range, estimates the first vigilance and trains the network on the first windows. */
  private start(): void {
    const span = this.hi - this.lo;
    this.lo -= this.o.margin * span;
    this.hi += this.o.margin * span;
    const vectors = this.learning.map((w) => this.features(w));
    this.learning.length = 0;
    const dim = 2 * this.o.window;
    const art = new FuzzyArt(dim, dim - 1, this.o.maxCategories);
    art.lower = art.upper = FuzzyArt.firstVigilance(vectors, dim - 1);
    this.art = art;
    for (const v of vectors) this.observe(art.present(v), false);
    this.points = this.o.learnPoints;
  }

  /** The block's extreme on the side away from the running average of block means, or its mean when near it. */
  private downsample(): number {
    const blockMean = mean(this.block);
    const max = Math.max(...this.block);
    const min = Math.min(...this.block);
    this.blockAverage = Number.isNaN(this.blockAverage) ? blockMean : (this.blockAverage + blockMean) / 2;
    const extreme = Math.abs(max - this.blockAverage) < Math.abs(min - this.blockAverage) ? min : max;
    // An extreme within 10 % of the mean is noise, not a spike.
    return Math.abs(extreme - blockMean) < 0.1 * Math.abs(blockMean) ? blockMean : extreme;
  }

  /** The level of `raw` in 0..1, rounded, and snapped onto the running median when close to it. */
  private level(raw: number): number {
    const span = this.hi - this.lo;
    const scale = (v: number) => Math.round((span > 0 ? (v - this.lo) / span : 0) * this.o.levels) / this.o.levels;
    const level = scale(raw);
    const median = scale(this.median.median);
    return Math.max(0, Math.min(1, Math.abs(level - median) < this.o.snap ? median : level));
  }

  /** The window's shape (its Haar transform, scaled to 0..1) followed by its levels, the latest last. */
  private features(window: readonly number[]): Float64Array {
    const levels = Float64Array.from(window, (v) => this.level(v));
    const shape = Float64Array.from(levels);
    minMaxScale(shape);
    haar(shape, this.scratch);
    minMaxScale(shape);
    const f = new Float64Array(2 * this.o.window);
    f.set(shape, 0);
    f.set(levels, this.o.window);
    return f;
  }

  /** Masks, reports (when `live`) and adapts the vigilances; returns the report's confidence or 0. */
  private observe(p: Presentation, live: boolean): number {
    const art = this.art;
    const o = this.o;
    this.sinceNovel = p.novel ? 0 : this.sinceNovel + 1;
    if (this.maskedByNovelty && this.sinceNovel >= o.maskPoints) this.maskedByNovelty = false;
    this.matchSum += p.match;
    this.matchCount++;
    remember(this.matches, p.match, (o.learnPoints >> 1) + 1);
    remember(this.shortfalls, (art?.upper ?? 0) - p.match, o.learnPoints + 1);
    if (!live || art === undefined) {
      this.maskedByNovelty ||= p.novel;
      return 0;
    }
    const sinceReport = this.points - this.lastReport;
    const n = this.reportedMatches.length;
    if (sinceReport < o.maskPoints && n > 0)
      this.reportedMatches[n - 1] = Math.min(this.reportedMatches[n - 1]!, p.match);
    const justReported = sinceReport <= o.maskPoints;
    // A novelty inside a mask still counts when it matches far worse than the last report did.
    const far = p.match < this.lastReportMatch * (justReported ? 0.9 : 0.7);
    let confidence = 0;
    if (p.novel && (!(this.maskedByNovelty || justReported) || far)) {
      confidence = this.confidence(p, art);
      remember(this.reportedMatches, p.match, REPORTS_KEPT);
      this.lastReportMatch = p.match;
      this.lastReport = this.points;
    }
    this.maskedByNovelty ||= p.novel;
    if (sinceReport === o.maskPoints || this.points - this.lastAdapted >= o.learnPoints >> 1) this.adapt(art);
    return confidence;
  }

  /** How far below the vigilances the best match fell (as a share of 1 − match), plus how unlike its level was. */
  private confidence(p: Presentation, art: FuzzyArt): number {
    const m = Math.min(0.999, p.match);
    const upper = (art.upper - m) / (1 - m);
    const lower = (art.lower - m) / (1 - m);
    return Math.max(0, Math.min(1, 0.35 * upper + 0.65 * lower + 1.5 * (1 - p.energy)));
  }

  /**
   * The upper vigilance follows the mean match; the lower one rises a fifth of
   * the way toward the worst recent match, or, when a match fell below it,
   * sinks by half the usual shortfall (never below the mean match of past
   * reports): so the network grows stricter on a steady series and more
   * tolerant on a changing one. Every adaptation masks until the novelties stop.
   */
  private adapt(art: FuzzyArt): void {
    const upper = Math.min(MAX_VIGILANCE, this.matchSum / this.matchCount);
    const worst = Math.min(...this.matches);
    let lower = art.lower;
    if (lower <= worst) {
      lower += 0.19 * (worst - lower);
    } else {
      const settled = this.points > 2 * this.o.learnPoints;
      const gaps = settled ? this.shortfalls.filter((g) => g > 0.05).map((g) => Math.min(0.37, g)) : [];
      lower -= Math.max(0.01, gaps.length > 0 ? mean(gaps) : 0) / 2;
      if (this.reportedMatches.length > 0) lower = Math.max(lower, mean(this.reportedMatches));
    }
    art.upper = upper;
    art.lower = Math.min(upper, lower);
    this.lastAdapted = this.points;
    this.maskedByNovelty = true;
  }
}
