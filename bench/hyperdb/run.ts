/**
 * bench/hyperdb: clustered PostgreSQL peers side by side through the same
 * fault scenarios (scenarios.ts) with the same write client.
 *
 *   npx tsx bench/hyperdb/run.ts [--peers hyperdb,patroni] --runs 5 [--baseline patroni] [--scenarios member-death,switchover]
 *                                [--patroni-ttl 30 --patroni-loop-wait 10 --patroni-retry-timeout 10] [--json] [--out FILE]
 *
 * Each peer in turn: start a fresh cluster, run every scenario `--runs` times,
 * stop the cluster (processes killed, files removed). Prints one Markdown table
 * per scenario with median and max of the scenario's figure, the invariants
 * summed over the runs, and the ratio of each peer's median to the baseline's
 * when the baseline ran too. Progress goes to stderr.
 *
 * Needs root (PostgreSQL runs as `postgres`; Patroni is installed with apt-get
 * when missing).
 */
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import { parseArgs } from 'node:util';
import { log, markdownTable, percentileOfSorted } from '../support/report.js';
import type { ClusterUnderTest } from './cluster-under-test.js';
import { DEFAULT_PATRONI_TIMINGS, type PatroniTimings } from './patroni-config.js';
import { HyperDbCluster } from './hyperdb-cluster.js';
import { PatroniCluster } from './patroni-cluster.js';
import { runScenarios, SCENARIO_NAMES, type ScenarioName, type ScenarioResult } from './scenarios.js';

interface Options {
  peers: string[];
  runs: number;
  baseline: string;
  scenarios: ScenarioName[];
  patroniTimings: PatroniTimings;
  json: boolean;
  out: string | undefined;
}

/** Every peer the benchmark can run: one factory per implementation of ClusterUnderTest. */
const PEERS: Record<string, (options: Options) => ClusterUnderTest> = {
  patroni: (options) =>
    new PatroniCluster({ timings: options.patroniTimings, log: (line) => log(`[patroni] ${line}`) }),
  hyperdb: () => new HyperDbCluster({ log: (line) => log(`[hyper_db] ${line}`) }),
};

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      peers: { type: 'string', multiple: true, default: ['hyperdb', 'patroni'] },
      runs: { type: 'string', default: '5' },
      baseline: { type: 'string', default: 'patroni' },
      scenarios: { type: 'string', default: SCENARIO_NAMES.join(',') },
      'patroni-ttl': { type: 'string', default: String(DEFAULT_PATRONI_TIMINGS.ttlS) },
      'patroni-loop-wait': { type: 'string', default: String(DEFAULT_PATRONI_TIMINGS.loopWaitS) },
      'patroni-retry-timeout': { type: 'string', default: String(DEFAULT_PATRONI_TIMINGS.retryTimeoutS) },
      json: { type: 'boolean', default: false },
      out: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) {
    process.stdout.write(
      [
        'usage: npx tsx bench/hyperdb/run.ts [options]',
        `  --peers hyperdb,patroni     comma-separated, or repeated; known: ${Object.keys(PEERS).join(', ')}`,
        '  --runs 5                    runs of each scenario',
        '  --baseline patroni          the ratio column divides by this peer’s median',
        `  --scenarios ${SCENARIO_NAMES.join(',')}`,
        '  --patroni-ttl 30 --patroni-loop-wait 10 --patroni-retry-timeout 10   Patroni timings (s); defaults are Patroni’s',
        '  --json                      print the results as JSON (progress stays on stderr)',
        '  --out FILE                  also write the JSON results to FILE',
        '',
      ].join('\n'),
    );
    process.exit(0);
  }
  const int = (name: string, text: string, min: number, max: number): number => {
    const n = Number(text);
    if (!Number.isInteger(n) || n < min || n > max) {
      throw new Error(`--${name} must be an integer in [${min}, ${max}], got '${text}'`);
    }
    return n;
  };
  const peers = values.peers.flatMap((p) => p.split(',')).filter((p) => p !== '');
  for (const peer of peers) {
    if (!(peer in PEERS)) throw new Error(`unknown peer '${peer}'; known: ${Object.keys(PEERS).join(', ')}`);
  }
  const scenarios = values.scenarios.split(',').filter((s) => s !== '');
  for (const scenario of scenarios) {
    if (!SCENARIO_NAMES.includes(scenario as ScenarioName)) {
      throw new Error(`unknown scenario '${scenario}'; known: ${SCENARIO_NAMES.join(', ')}`);
    }
  }
  return {
    peers,
    runs: int('runs', values.runs, 1, 1_000),
    baseline: values.baseline,
    scenarios: scenarios as ScenarioName[],
    patroniTimings: {
      ttlS: int('patroni-ttl', values['patroni-ttl'], 1, 3_600),
      loopWaitS: int('patroni-loop-wait', values['patroni-loop-wait'], 1, 3_600),
      retryTimeoutS: int('patroni-retry-timeout', values['patroni-retry-timeout'], 1, 3_600),
    },
    json: values.json,
    out: values.out,
  };
}

// ---------------------------------------------------------------- report

interface Summary {
  ok: number;
  total: number;
  medianMs: number;
  maxMs: number;
  valuesMs: number[];
  ackedLost: number | undefined;
  dualPrimary: number | undefined;
  unknownCommits: number | undefined;
  requests: number | undefined;
  failedRequests: number | undefined;
  errors: string[];
  notes: string[];
}

function sum(values: (number | undefined)[]): number | undefined {
  const known = values.filter((v): v is number => v !== undefined);
  return known.length === 0 ? undefined : known.reduce((a, b) => a + b, 0);
}

function summarize(result: ScenarioResult): Summary {
  const valuesMs = result.runs.flatMap((r) => (r.valueMs === undefined ? [] : [r.valueMs]));
  const sorted = [...valuesMs].sort((a, b) => a - b);
  return {
    ok: valuesMs.length,
    total: result.runs.length,
    medianMs: percentileOfSorted(sorted, 0.5),
    maxMs: sorted.at(-1) ?? Number.NaN,
    valuesMs,
    ackedLost: sum(result.runs.map((r) => r.ackedLost)),
    dualPrimary: sum(result.runs.map((r) => r.dualPrimary)),
    unknownCommits: sum(result.runs.map((r) => r.unknownCommits)),
    requests: sum(result.runs.map((r) => r.requests)),
    failedRequests: sum(result.runs.map((r) => r.failedRequests)),
    errors: result.runs.flatMap((r) => (r.error === undefined ? [] : [`run ${r.run}: ${r.error}`])),
    notes: result.runs.flatMap((r) => (r.notes ?? []).map((note) => `run ${r.run}: ${note}`)),
  };
}

const seconds = (ms: number): string => (Number.isFinite(ms) ? (ms / 1000).toFixed(2) : '—');
const count = (n: number | undefined): string => (n === undefined ? '—' : String(n));

const FIGURES: Record<ScenarioName, string> = {
  'member-death': 'write downtime after kill -9 of the primary member (agent + postmaster)',
  rejoin: 'restart of the killed member → cluster healthy again (old member streaming)',
  switchover: 'longest write gap during a planned switchover',
  'switchover-no-retry':
    'clients without retries (a pool of 4 + fresh connections) through the read-write endpoint during a planned switchover: the longest single request; failed requests',
  'hung-primary': 'write downtime after SIGSTOP of every PostgreSQL process of the primary, its agent running',
  'disk-full':
    "the primary's WAL filesystem filled (all but 40 MiB, then ~10 MB INSERTs until one fails) → first write acknowledged by another member",
};

function scenarioTable(scenario: ScenarioName, results: ScenarioResult[], baseline: string): string {
  const rows = results.filter((r) => r.scenario === scenario);
  const base = rows.find((r) => r.peer === baseline);
  const baseMedian = base === undefined ? Number.NaN : summarize(base).medianMs;
  const noRetry = scenario === 'switchover-no-retry';
  const body = rows.map((result) => {
    const s = summarize(result);
    const failed = noRetry ? [`${count(s.failedRequests)}/${count(s.requests)}`] : [];
    const ratio =
      Number.isFinite(baseMedian) && Number.isFinite(s.medianMs) ? `${(s.medianMs / baseMedian).toFixed(2)}×` : '—';
    return [
      result.peer,
      `${s.ok}/${s.total}`,
      seconds(s.medianMs),
      seconds(s.maxMs),
      ...failed,
      count(s.ackedLost),
      count(s.dualPrimary),
      count(s.unknownCommits),
      ratio,
      s.valuesMs.map((v) => seconds(v)).join(', '),
    ];
  });
  const header = [
    'peer',
    'runs ok',
    'median (s)',
    'max (s)',
    ...(noRetry ? ['failed requests'] : []),
    'acked-lost',
    'dual-primary',
    'unknown commits',
    `vs ${baseline}`,
    'every run (s)',
  ];
  const errors = rows.flatMap((r) => summarize(r).errors.map((e) => `- ${r.peer} failed ${e}`));
  const notes = rows.flatMap((r) => summarize(r).notes.map((n) => `- ${r.peer} ${n}`));
  return [
    `### ${scenario}: ${FIGURES[scenario]}`,
    '',
    markdownTable(header, body, 2),
    ...(errors.length > 0 ? ['', ...errors] : []),
    ...(notes.length > 0 ? ['', ...notes] : []),
  ].join('\n');
}

// ---------------------------------------------------------------- main

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  let current: ClusterUnderTest | undefined;
  process.on('SIGINT', () => {
    log('interrupted: stopping the cluster');
    void (current?.stop() ?? Promise.resolve()).finally(() => process.exit(130));
  });
  const results: ScenarioResult[] = [];
  for (const peer of options.peers) {
    const cluster = PEERS[peer]!(options);
    current = cluster;
    try {
      const startedAt = Date.now();
      log(`${peer}: starting`);
      await cluster.start();
      log(`${peer}: bootstrapped in ${((Date.now() - startedAt) / 1000).toFixed(1)} s`);
      results.push(...(await runScenarios(cluster, { runs: options.runs, scenarios: options.scenarios, log })));
    } catch (error) {
      log(`${peer}: ${error instanceof Error ? error.message : String(error)}`);
      process.exitCode = 1;
    } finally {
      await cluster.stop();
      current = undefined;
    }
  }
  const json = JSON.stringify({ options, machine: { cpus: os.cpus().length, kernel: os.release() }, results }, null, 2);
  if (options.out !== undefined) writeFileSync(options.out, `${json}\n`);
  if (options.json) {
    process.stdout.write(`${json}\n`);
    return;
  }
  const t = options.patroniTimings;
  process.stdout.write(
    [
      `## bench/hyperdb — ${options.runs} runs per scenario, ${os.cpus().length} CPUs`,
      '',
      `Patroni timings: ttl ${t.ttlS} s, loop_wait ${t.loopWaitS} s, retry_timeout ${t.retryTimeoutS} s; synchronous_mode on.`,
      '',
      ...options.scenarios.flatMap((scenario) => [scenarioTable(scenario, results, options.baseline), '']),
    ].join('\n'),
  );
}

await main();
