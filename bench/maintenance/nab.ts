/**
 * bench/maintenance: a streaming anomaly detector on the Numenta Anomaly
 * Benchmark (NAB), scored by our own NAB scorer (src/maintenance/nab-score.ts).
 *
 *   npx tsx bench/maintenance/nab.ts --data DIR [--detector ours|windowedGaussian] [--json]
 *
 * DIR is a copy of NAB's corpus: data/<category>/<file>.csv (timestamp,value),
 * labels/combined_windows.json, config/profiles.json and
 * results/final_results.json (the published scores printed beside ours).
 *
 * `--detector windowedGaussian` runs NAB's own baseline: its scores must come
 * out at the published ones (standard 39.65), which is what tells us the
 * scorer is right. `--json` prints one object: detector, the three profile
 * scores, the thresholds.
 */
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { anomalyScores } from '../../src/maintenance/anomaly-detector.js';
import { labelRows, scoreCorpus, type CostWeights, type LabelledSeries } from '../../src/maintenance/nab-score.js';
import { windowedGaussianScores } from '../../src/maintenance/windowed-gaussian.js';
import { log, markdownTable } from '../support/report.js';

const DETECTORS = {
  ours: (values: Float64Array, timestamps: Float64Array) => anomalyScores(values, timestamps),
  // NAB's published windowedGaussian scores were computed from results files written by Python 2, whose str(float)
  // keeps 12 significant digits: every score above 1 − 5e-13 was read back as 1.0, which is the threshold NAB's
  // sweep chose. Rounding the same way reproduces them (without it: standard 40.13, reward_low_FP_rate 23.94).
  windowedGaussian: (values: Float64Array) => windowedGaussianScores(values).map((s) => Number(s.toPrecision(12))),
} as const;
type DetectorName = keyof typeof DETECTORS;

const PROFILES = ['standard', 'reward_low_FP_rate', 'reward_low_FN_rate'] as const;
type ProfileName = (typeof PROFILES)[number];

/** `2014-04-10 07:15:00` or `2014-04-10 07:15:00.000000` as ms since the epoch (read as UTC; only equality matters). */
function parseTimestamp(text: string, where: string): number {
  const m = /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?$/.exec(text.trim());
  if (m === null) throw new Error(`${where}: timestamp '${text}' is not YYYY-MM-DD HH:MM:SS[.ffffff]`);
  const [y, mo, d, h, mi, s] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  const ms = m[7] === undefined ? 0 : Math.floor(Number(`0.${m[7]}`) * 1000);
  return Date.UTC(y, mo - 1, d, h, mi, s, ms);
}

function readJson(path: string): unknown {
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch (cause) {
    throw new Error(`cannot read ${path} as JSON`, { cause });
  }
}

interface Corpus {
  files: Array<{ name: string; timestamps: Float64Array; values: Float64Array; windows: Array<[number, number]> }>;
  profiles: Record<ProfileName, CostWeights>;
  published: Record<string, Partial<Record<ProfileName, number>>>;
}

/** Reads the corpus, every problem named with its file. */
function readCorpus(dir: string): Corpus {
  const need = ['data', 'labels/combined_windows.json', 'config/profiles.json', 'results/final_results.json'];
  const missing = need.filter((p) => !existsSync(join(dir, p)));
  if (missing.length > 0) {
    throw new Error(`--data ${dir} is not a NAB corpus: missing ${missing.join(', ')}`);
  }
  const labels = readJson(join(dir, 'labels/combined_windows.json')) as Record<string, Array<[string, string]>>;
  const profileJson = readJson(join(dir, 'config/profiles.json')) as Record<string, { CostMatrix?: CostWeights }>;
  const profiles = {} as Record<ProfileName, CostWeights>;
  for (const name of PROFILES) {
    const m = profileJson[name]?.CostMatrix;
    if (m === undefined || ![m.tpWeight, m.fpWeight, m.fnWeight].every(Number.isFinite)) {
      throw new Error(
        `${join(dir, 'config/profiles.json')}: profile '${name}' has no CostMatrix with the three weights`,
      );
    }
    profiles[name] = { tpWeight: m.tpWeight, fpWeight: m.fpWeight, fnWeight: m.fnWeight };
  }
  const files: Corpus['files'] = [];
  for (const category of readdirSync(join(dir, 'data')).sort()) {
    if (!statSync(join(dir, 'data', category)).isDirectory()) continue;
    for (const file of readdirSync(join(dir, 'data', category)).sort()) {
      if (!file.endsWith('.csv')) continue;
      const name = `${category}/${file}`;
      const windows = labels[name];
      if (windows === undefined) throw new Error(`${name}: no entry in labels/combined_windows.json`);
      const lines = readFileSync(join(dir, 'data', name), 'utf8')
        .trim()
        .split('\n')
        .slice(1);
      const timestamps = new Float64Array(lines.length);
      const values = new Float64Array(lines.length);
      lines.forEach((line, i) => {
        const [t, v] = line.split(',');
        timestamps[i] = parseTimestamp(t ?? '', `${name} row ${i + 2}`);
        values[i] = Number(v);
        if (v === undefined || !Number.isFinite(values[i])) throw new Error(`${name} row ${i + 2}: value '${v}'`);
      });
      files.push({
        name,
        timestamps,
        values,
        windows: windows.map(([a, b]) => [parseTimestamp(a, name), parseTimestamp(b, name)]),
      });
    }
  }
  if (files.length === 0) throw new Error(`--data ${dir}: no data/<category>/*.csv files`);
  const published = readJson(join(dir, 'results/final_results.json')) as Corpus['published'];
  return { files, profiles, published };
}

function main(): void {
  const { values } = parseArgs({
    options: {
      data: { type: 'string' },
      detector: { type: 'string', default: 'ours' },
      json: { type: 'boolean', default: false },
    },
  });
  if (values.data === undefined) throw new Error('--data DIR is required (a copy of the NAB corpus)');
  if (!(values.detector in DETECTORS)) {
    throw new Error(`--detector '${values.detector}' is not one of ${Object.keys(DETECTORS).join(', ')}`);
  }
  const detector = values.detector as DetectorName;
  const corpus = readCorpus(values.data);
  const rowCount = corpus.files.reduce((n, f) => n + f.values.length, 0);
  log(`${corpus.files.length} files, ${rowCount} rows; running ${detector}`);

  const started = performance.now();
  const series: LabelledSeries[] = corpus.files.map((f) => ({
    name: f.name,
    timestamps: f.timestamps,
    windows: f.windows,
    scores: DETECTORS[detector](f.values, f.timestamps),
  }));
  const detectMs = performance.now() - started;
  const rows = labelRows(series);
  const results = Object.fromEntries(PROFILES.map((p) => [p, scoreCorpus(rows, corpus.profiles[p])])) as Record<
    ProfileName,
    ReturnType<typeof scoreCorpus>
  >;
  const scoreMs = performance.now() - started - detectMs;
  log(`detection ${(detectMs / 1000).toFixed(1)} s, scoring ${(scoreMs / 1000).toFixed(1)} s`);

  if (values.json) {
    const out = {
      detector,
      ...Object.fromEntries(PROFILES.map((p) => [p, results[p].score])),
      thresholds: Object.fromEntries(PROFILES.map((p) => [p, results[p].threshold])),
    };
    process.stdout.write(`${JSON.stringify(out)}\n`);
    return;
  }
  const published = corpus.published;
  const reference = ['ARTime', 'numenta', 'windowedGaussian'].filter((d) => published[d] !== undefined);
  const header = ['profile', `${detector}`, 'threshold', ...reference.map((d) => `published ${d}`)];
  const table = PROFILES.map((p) => [
    p,
    results[p].score.toFixed(2),
    results[p].threshold.toPrecision(8),
    ...reference.map((d) => published[d]?.[p]?.toFixed(2) ?? '-'),
  ]);
  process.stdout.write(`${markdownTable(header, table, 1)}\n\n${rows.windowCount} windows in ${rowCount} rows\n`);
}

try {
  main();
} catch (error) {
  log(`nab: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 1;
}
