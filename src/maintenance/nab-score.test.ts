import { describe, expect, it } from 'vitest';
import {
  NO_DETECTION_THRESHOLD,
  fileRawScore,
  labelRows,
  probationLength,
  scaledSigmoid,
  scoreCorpus,
  sweepThresholds,
  type CostWeights,
  type LabelledSeries,
} from './nab-score.js';

const STANDARD: CostWeights = { tpWeight: 1, fpWeight: 0.11, fnWeight: 1 };
const MINUTE_MS = 60_000;

type Synthetic = LabelledSeries & { scores: number[] };

/** A series of `rows` rows, one a minute, with windows given as row numbers and a score of 1 at `detections`. */
function series(rows: number, windows: Array<[number, number]>, detections: number[], name = 'synthetic'): Synthetic {
  const timestamps = Array.from({ length: rows }, (_, i) => Date.UTC(2024, 0, 1) + i * MINUTE_MS);
  const scores = new Array<number>(rows).fill(0);
  for (const d of detections) scores[d] = 1;
  return { name, timestamps, scores, windows: windows.map(([a, b]) => [timestamps[a]!, timestamps[b]!]) };
}

// 1000 rows: probation is rows 0..149; one window of 50 rows at 500..549.
const WINDOW: [number, number] = [500, 549];
const score = (detections: number[], weights = STANDARD): number =>
  fileRawScore(series(1000, [WINDOW], detections), weights, 0.5);

describe('NAB scoring rules', () => {
  it('uses NAB curve: full credit at the left edge, none at the right edge, −1 from three widths on', () => {
    expect(scaledSigmoid(-1)).toBeCloseTo(0.98661, 5);
    expect(scaledSigmoid(0)).toBe(0);
    expect(scaledSigmoid(1)).toBeCloseTo(-0.98661, 5);
    expect(scaledSigmoid(3)).toBe(-1);
  });

  it('gives a detection at the window start more than one at its end', () => {
    const atStart = score([500]);
    const atEnd = score([549]);
    expect(atStart).toBeCloseTo(1, 12); // tpWeight, exactly
    expect(atEnd).toBeGreaterThan(0);
    expect(atEnd).toBeLessThan(0.1);
    expect(score([525])).toBeLessThan(atStart);
    expect(score([525])).toBeGreaterThan(atEnd);
  });

  it('counts only the first detection in a window', () => {
    expect(score([510, 511, 530, 549])).toBeCloseTo(score([510]), 12);
    expect(score([530, 549])).toBeCloseTo(score([530]), 12);
  });

  it('charges a false positive far from any window the full fpWeight', () => {
    const missed = score([]);
    expect(score([300]) - missed).toBeCloseTo(-0.11, 12); // before the first window
    expect(score([900]) - missed).toBeCloseTo(-0.11, 12); // more than three widths after it
    const justAfter = score([551]) - missed;
    expect(justAfter).toBeLessThan(0);
    expect(justAfter).toBeGreaterThan(-0.11 / 2);
  });

  it('charges a missed window fnWeight', () => {
    expect(score([])).toBe(-1);
    expect(score([], { tpWeight: 1, fpWeight: 0.11, fnWeight: 2 })).toBe(-2);
    expect(fileRawScore(series(1000, [WINDOW, [700, 749]], []), STANDARD, 0.5)).toBe(-2);
  });

  it('ignores detections in the probationary period', () => {
    expect(probationLength(1000)).toBe(150);
    expect(probationLength(100_000)).toBe(750);
    expect(score([0, 10, 149])).toBe(-1);
    expect(score([150])).toBeCloseTo(-1.11, 12);
  });

  it('refuses a window that does not start and end on rows', () => {
    const bad = series(1000, [WINDOW], []);
    const shifted = { ...bad, windows: [[bad.windows[0]![0] + 1, bad.windows[0]![1]] as const] };
    expect(() => fileRawScore(shifted, STANDARD, 0.5)).toThrow(/synthetic: window .* does not start and end on rows/);
  });
});

describe('threshold sweep and normalization', () => {
  const corpusOf = (detections: (file: number) => number[]): Synthetic[] => [
    series(1000, [WINDOW], detections(0), 'a'),
    series(
      2000,
      [
        [600, 699],
        [1500, 1599],
      ],
      detections(1),
      'b',
    ),
    series(800, [], detections(2), 'c'),
  ];

  it('scores the null detector 0 and a perfect detector 100', () => {
    const nullDetector = corpusOf(() => []).map((s) => ({ ...s, scores: s.scores.map(() => 0.5) }));
    const perfect = corpusOf((f) => [[500], [600, 1500], []][f]!);
    for (const weights of [STANDARD, { tpWeight: 1, fpWeight: 0.22, fnWeight: 1 }, { ...STANDARD, fnWeight: 2 }]) {
      const nul = scoreCorpus(labelRows(nullDetector), weights);
      expect(nul.score).toBe(0);
      expect(nul.threshold).toBe(NO_DETECTION_THRESHOLD);
      expect(scoreCorpus(labelRows(perfect), weights).score).toBeCloseTo(100, 10);
    }
  });

  it('agrees with the row-by-row score at every threshold, summed over files', () => {
    // Deterministic pseudo-random scores (a linear congruential generator).
    let seed = 7;
    const random = (): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const corpus = corpusOf(() => []).map((s) => ({
      ...s,
      scores: s.scores.map(() => Math.round(random() * 50) / 50),
    }));
    const sweep = sweepThresholds(labelRows(corpus), STANDARD);
    expect(sweep.length).toBeGreaterThan(40);
    for (const { threshold, rawScore } of sweep) {
      const direct = corpus.reduce((sum, s) => sum + fileRawScore(s, STANDARD, threshold), 0);
      expect(rawScore).toBeCloseTo(direct, 9);
    }
  });

  it('picks the threshold with the best corpus score, the higher one on a tie', () => {
    // 0.9 at the window starts; 0.85 later in a window (ignored, so 0.85 ties with 0.9); 0.8 on a false positive.
    const corpus = corpusOf((f) => [[500], [600, 1500], []][f]!).map((s, f) => {
      const scores = s.scores.map((v) => v * 0.9);
      if (f === 0) scores[510] = 0.85;
      if (f === 2) scores[400] = 0.8;
      return { ...s, scores };
    });
    const rows = labelRows(corpus);
    const sweep = sweepThresholds(rows, STANDARD);
    expect(sweep.find((t) => t.threshold === 0.85)?.rawScore).toBeCloseTo(3, 12);
    const best = scoreCorpus(rows, STANDARD);
    expect(best.threshold).toBe(0.9);
    expect(best.rawScore).toBeCloseTo(3, 12);
    expect(best.windowCount).toBe(3);
  });
});
