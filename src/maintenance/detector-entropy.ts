/**
 * A windowed distribution-change signal, after NAB's "relativeEntropy"
 * detector: the histogram of the last `rows` values, over bins cut at
 * quantiles of the long reference window, is compared with the histograms of
 * `references` earlier, non-overlapping windows; the signal is the smallest
 * relative entropy (Kullback-Leibler divergence) to any of them, i.e. how
 * unlike every recent stretch the current one is, given as the chi-square
 * statistic 2 × rows × divergence / (bins − 1), about 1 for a steady series.
 * Memory is fixed: the current window and the reference windows, each kept
 * sorted.
 */
/** What the signal needs of the long reference window (e.g. a SortedWindow): its size and quantiles. */
export interface QuantileSource {
  readonly size: number;
  quantile(q: number): number;
}

/** Bin edges as quantiles of the reference values (6 bins, the tails apart). */
const EDGE_QUANTILES = [0.05, 0.25, 0.5, 0.75, 0.95];
/** Counts added to every bin so an empty one does not make the divergence infinite. */
const PSEUDO_COUNT = 0.5;

/** How many of `sorted` (ascending) are below `edge`. */
function countBelow(sorted: Float64Array, edge: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid]! < edge) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** The smoothed bin shares of `sorted` over `edges`. */
function shares(sorted: Float64Array, edges: number[], out: Float64Array): void {
  let below = 0;
  const total = sorted.length + PSEUDO_COUNT * (edges.length + 1);
  for (let b = 0; b <= edges.length; b++) {
    const upTo = b < edges.length ? countBelow(sorted, edges[b]!) : sorted.length;
    out[b] = (upTo - below + PSEUDO_COUNT) / total;
    below = upTo;
  }
}

export class EntropySignal {
  /** The last `rows` values, as a ring. */
  private readonly recent: Float64Array;
  private next = 0;
  private held = 0;
  private readonly snapshots: Float64Array[] = [];
  private readonly current: Float64Array;
  private readonly p = new Float64Array(EDGE_QUANTILES.length + 1);
  private readonly q = new Float64Array(EDGE_QUANTILES.length + 1);
  private sinceSnapshot = 0;
  /** Snapshots taken but not yet usable (they overlap the current window). */
  private readonly pending: Float64Array[] = [];

  constructor(
    readonly rows: number,
    readonly references: number,
  ) {
    this.recent = new Float64Array(rows);
    this.current = new Float64Array(rows);
  }

  /**
   * The statistic for the window ending at `value` against the nearest
   * reference window (0 until there is one), bins cut at quantiles of
   * `reference`; then `value` joins the windows.
   */
  update(value: number, reference: QuantileSource): number {
    this.recent[this.next] = value;
    this.next = (this.next + 1) % this.rows;
    this.held = Math.min(this.held + 1, this.rows);
    if (this.held < this.rows) return 0;
    this.current.set(this.recent);
    this.current.sort();
    let divergence = 0;
    if (this.snapshots.length > 0 && reference.size > 0) {
      const edges = EDGE_QUANTILES.map((q) => reference.quantile(q));
      shares(this.current, edges, this.p);
      divergence = Infinity;
      for (const snapshot of this.snapshots) {
        shares(snapshot, edges, this.q);
        let kl = 0;
        for (let b = 0; b < this.p.length; b++) kl += this.p[b]! * Math.log(this.p[b]! / this.q[b]!);
        divergence = Math.min(divergence, kl);
      }
    }
    // Every `rows` values the current window becomes a reference once it no longer overlaps the next ones.
    if (++this.sinceSnapshot >= this.rows) {
      this.sinceSnapshot = 0;
      this.pending.push(Float64Array.from(this.current));
      if (this.pending.length > 1) {
        this.snapshots.push(this.pending.shift()!);
        if (this.snapshots.length > this.references) this.snapshots.shift();
      }
    }
    return (2 * this.rows * divergence) / EDGE_QUANTILES.length;
  }
}
