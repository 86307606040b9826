/**
 * The fuzzy ART network behind detector-art.ts: a dual-vigilance fuzzy ART
 * (Carpenter, Grossberg and Rosen's fuzzy ART with an upper and a lower
 * vigilance, as ARTime uses it) over complement-coded feature vectors in
 * 0..1, with at most a fixed number of categories.
 */

/** The vigilance the first categories are learnt at, before the series' own is estimated. */
export const FIRST_VIGILANCE = 0.8;

/** The outcome of presenting one feature vector to the network. */
export interface Presentation {
  /** The best match (0..1). */
  match: number;
  /** The best category's level similarity (0..1). */
  energy: number;
  /** Whether no category resonated, even at the lower vigilance. */
  novel: boolean;
}

/** Cosine similarity (1 − the other's norm when one vector is zero), to order the first vectors by typicality. */
function cosine(a: Float64Array, b: Float64Array): number {
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < a.length; i++) {
    ab += a[i]! * b[i]!;
    aa += a[i]! * a[i]!;
    bb += b[i]! * b[i]!;
  }
  if (aa === 0 || bb === 0) return 1 - Math.sqrt(aa + bb);
  return ab / Math.sqrt(aa * bb);
}

/**
 * A dual-vigilance fuzzy ART network. The match of a category w for a vector
 * x is (|x ∧ w| / |w|)³ × e², where e is the same ratio over the latest level
 * and its complement only: a description must agree in shape and in level.
 * Every category matching at the upper vigilance or above learns the vector
 * (fast learning: it shrinks to x ∧ w); failing that, a vector matching some
 * category at the lower vigilance gets a category of its own, and one that
 * matches none is novel (and gets a category too).
 */
export class FuzzyArt {
  /** The categories' weights, `2 × dim` each, one after another (a flat array keeps the match loop fast). */
  private readonly weights: Float64Array;
  /** Each category's |w|, kept with its weights. */
  private readonly sizes: Float64Array;
  private readonly lastUsed: Float64Array;
  private readonly match: Float64Array;
  private readonly x: Float64Array;
  private count = 0;
  private clock = 0;
  /** The level similarity of the latest {@link FuzzyArt.similarity}. */
  private energy = 0;
  /** Below it a vector is novel. */
  lower = FIRST_VIGILANCE;
  /** From it up a category learns the vector. */
  upper = FIRST_VIGILANCE;

  /** `dim` features, the one at `levelIndex` being the latest level; at most `maxCategories` categories. */
  constructor(
    private readonly dim: number,
    private readonly levelIndex: number,
    private readonly maxCategories: number,
  ) {
    this.weights = new Float64Array(maxCategories * 2 * dim);
    this.sizes = new Float64Array(maxCategories);
    this.lastUsed = new Float64Array(maxCategories);
    this.match = new Float64Array(maxCategories);
    this.x = new Float64Array(2 * dim);
  }

  /** Matches `features` (0..1) against every category, then learns it. */
  present(features: Float64Array): Presentation {
    const { x, dim } = this;
    for (let i = 0; i < dim; i++) {
      x[i] = features[i]!;
      x[dim + i] = 1 - features[i]!;
    }
    let best = -1;
    let bestEnergy = 0;
    let aboveLower = 0;
    for (let c = 0; c < this.count; c++) {
      // The match is at most e²: a category whose level alone rules it out is not matched in full.
      const bound = this.levelSimilarity(c) ** 2;
      if (bound < this.lower && best >= 0 && bound <= this.match[best]!) {
        this.match[c] = 0;
        continue;
      }
      const m = this.similarity(c);
      this.match[c] = m;
      if (m >= this.lower) aboveLower++;
      if (best < 0 || m > this.match[best]!) {
        best = c;
        bestEnergy = this.energy;
      }
    }
    const novel = this.count > 0 && aboveLower === 0;
    const match = best < 0 ? 0 : this.match[best]!;
    this.clock++;
    let resonant = false;
    for (let c = 0; c < this.count; c++) {
      if (this.match[c]! < this.upper || this.match[c]! < this.lower) continue;
      this.learn(c);
      resonant = true;
    }
    if (!resonant) this.commit();
    return { match, energy: bestEnergy, novel };
  }

  /** How well category `c` agrees with the current vector on the latest level and its complement (0..1). */
  private levelSimilarity(c: number): number {
    const { x, weights } = this;
    const at = c * x.length;
    const a = this.levelIndex;
    const b = this.dim + a;
    const levelSize = weights[at + a]! + weights[at + b]!;
    if (levelSize <= 0) return 1;
    return (Math.min(x[a]!, weights[at + a]!) + Math.min(x[b]!, weights[at + b]!)) / levelSize;
  }

  /** The match of category `c` for the current vector; its level similarity is left in `energy`. */
  private similarity(c: number): number {
    const { x, weights } = this;
    const width = x.length;
    const at = c * width;
    let shared = 0;
    for (let i = 0; i < width; i++) shared += Math.min(x[i]!, weights[at + i]!);
    const size = this.sizes[c]!;
    const feature = shared / (size > 0 ? size : 0.001);
    this.energy = this.levelSimilarity(c);
    return feature ** 3 * this.energy ** 2;
  }

  /** Fast learning: category `c` shrinks to what it shares with the current vector. */
  private learn(c: number): void {
    const width = this.x.length;
    const at = c * width;
    let size = 0;
    for (let i = 0; i < width; i++) {
      const w = Math.min(this.weights[at + i]!, this.x[i]!);
      this.weights[at + i] = w;
      size += w;
    }
    this.sizes[c] = size;
    this.lastUsed[c] = this.clock;
  }

  /** A new category holding the current vector, in place of the least recently used one when full (bounded memory). */
  private commit(): void {
    let c = this.count;
    if (c < this.maxCategories) {
      this.count++;
    } else {
      c = 0;
      for (let k = 1; k < this.count; k++) if (this.lastUsed[k]! < this.lastUsed[c]!) c = k;
    }
    this.weights.set(this.x, c * this.x.length);
    this.sizes[c] = this.x.reduce((a, b) => a + b, 0);
    this.lastUsed[c] = this.clock;
  }

  /**
   * The series' first vigilance: a scratch network at {@link FIRST_VIGILANCE}
   * learns `vectors`, least typical first, and the mean best match over the
   * second half is how alike the series' usual stretches are.
   */
  static firstVigilance(vectors: readonly Float64Array[], levelIndex: number): number {
    const dim = vectors[0]?.length ?? 0;
    const typical = vectors.map((v) => vectors.reduce((sum, u) => sum + (u === v ? 1 : cosine(u, v)), 0));
    const order = vectors.map((_, i) => i).sort((a, b) => typical[a]! - typical[b]!);
    const scratch = new FuzzyArt(dim, levelIndex, vectors.length + 1);
    let sum = 0;
    let count = 0;
    order.forEach((i, rank) => {
      const { match } = scratch.present(vectors[i]!);
      if (rank >= vectors.length >> 1) {
        sum += match;
        count++;
      }
    });
    return count > 0 ? sum / count : FIRST_VIGILANCE;
  }
}
