/**
 * The election simulation (src/releases/hyper_db/keeper/election-sim.ts) over many seeds: no cluster,
 * no PostgreSQL, no lock needed — pure computation on a virtual clock.
 *
 *   npx tsx bench/hyperdb/election-sim.ts [--seeds 1000] [--first 1] [--scenarios chaos-3,chaos-5]
 *                                         [--rules issue-12|before-issue-12] [--without FIX,FIX]
 *   npx tsx bench/hyperdb/election-sim.ts --replay SEED --scenario NAME [--rules before-issue-12] [--trace 200]
 *
 * Prints one Markdown table: per scenario, runs, runs/s, violations per invariant (with the first
 * failing seeds), failovers, and how long the cluster went without a member acknowledging writes
 * while a majority was healthy and connected ("time to primary": median, p99, max) against the
 * liveness bound. The first failure of each scenario is printed in full (seed, invariant, replay
 * command, last events). --replay runs one seed and prints its whole trace. --without leaves safety
 * fixes out of the issue-12 rules (vote-after-position, free-to-stand, stop-following,
 * position-before-clone, lease-from-grants) to see what each prevents.
 */
import { parseArgs } from 'node:util';
import {
  DEFAULT_TIMING,
  SAFETY_FIXES,
  SCENARIOS,
  formatFailure,
  livenessBoundMs,
  runSimulation,
  type SafetyFix,
  type ScenarioName,
  type SimResult,
  type SimRules,
} from '../../src/releases/hyper_db/keeper/election-sim.js';
import { log, markdownTable, percentileOfSorted } from '../support/report.js';

const { values } = parseArgs({
  options: {
    seeds: { type: 'string', default: '1000' },
    first: { type: 'string', default: '1' },
    scenarios: { type: 'string' },
    scenario: { type: 'string' },
    rules: { type: 'string', default: 'issue-12' },
    replay: { type: 'string' },
    trace: { type: 'string', default: '200' },
    without: { type: 'string' },
  },
});

const ALL = Object.keys(SCENARIOS) as ScenarioName[];

function scenarioName(name: string): ScenarioName {
  if (!(ALL as string[]).includes(name)) throw new Error(`unknown scenario '${name}' (known: ${ALL.join(', ')})`);
  return name as ScenarioName;
}

function rulesName(name: string): SimRules {
  if (name !== 'issue-12' && name !== 'before-issue-12')
    throw new Error(`unknown rules '${name}' (known: issue-12, before-issue-12)`);
  return name;
}

const rules = rulesName(values.rules);
const without = (values.without ?? '')
  .split(',')
  .filter((x) => x !== '')
  .map((x) => {
    if (!(SAFETY_FIXES as readonly string[]).includes(x))
      throw new Error(`unknown fix '${x}' (known: ${SAFETY_FIXES.join(', ')})`);
    return x as SafetyFix;
  });

if (values.replay !== undefined) {
  const scenario = scenarioName(values.scenario ?? '');
  const r = runSimulation({ seed: Number(values.replay), scenario, rules, without, traceLines: Number(values.trace) });
  process.stdout.write(`${r.violation === null ? r.trace.join('\n') : formatFailure(r)}\n`);
  process.stdout.write(
    `\n${r.events} events, ${r.failovers} failovers, ${r.acknowledged} commits acknowledged; ${r.violation === null ? 'no violation' : `${r.violation.invariant} violated`}\n`,
  );
  process.exit(r.violation === null ? 0 : 1);
}

const seeds = Number(values.seeds);
const first = Number(values.first);
const scenarios = values.scenarios === undefined ? ALL : values.scenarios.split(',').map(scenarioName);
const bound = livenessBoundMs(DEFAULT_TIMING);
const rows: string[][] = [];
const failuresShown: string[] = [];
let totalRuns = 0;
let totalMs = 0;
for (const scenario of scenarios) {
  const t0 = performance.now();
  const results: SimResult[] = [];
  for (let seed = first; seed < first + seeds; seed++) results.push(runSimulation({ seed, scenario, rules, without }));
  const ms = performance.now() - t0;
  totalRuns += results.length;
  totalMs += ms;
  const failed = results.filter((r) => r.violation !== null);
  const byInvariant = new Map<string, number[]>();
  for (const r of failed) {
    const key = r.violation?.invariant ?? '';
    byInvariant.set(key, [...(byInvariant.get(key) ?? []), r.seed]);
  }
  const ttp = results.flatMap((r) => r.timeToPrimaryMs).sort((a, b) => a - b);
  const f = (x: number): string => (Number.isNaN(x) ? '-' : `${(x / 1000).toFixed(2)} s`);
  rows.push([
    scenario,
    String(results.length),
    (results.length / (ms / 1000)).toFixed(0),
    failed.length === 0
      ? '0'
      : [...byInvariant].map(([k, s]) => `${k} ${s.length} (seeds ${s.slice(0, 3).join(', ')}…)`).join('; '),
    String(results.reduce((n, r) => n + r.failovers, 0)),
    f(percentileOfSorted(ttp, 0.5)),
    f(percentileOfSorted(ttp, 0.99)),
    f(ttp.at(-1) ?? Number.NaN),
  ]);
  if (failed[0] !== undefined) failuresShown.push(formatFailure(failed[0]));
  log(`${scenario}: ${results.length} runs in ${(ms / 1000).toFixed(1)} s, ${failed.length} failed`);
}

process.stdout.write(
  `Election simulation, rules ${rules}${without.length > 0 ? ` without ${without.join(', ')}` : ''}, seeds ${first}..${first + seeds - 1}; liveness bound ${(bound / 1000).toFixed(2)} s; ${(totalRuns / (totalMs / 1000)).toFixed(0)} runs/s overall\n\n`,
);
process.stdout.write(
  `${markdownTable(
    ['scenario', 'runs', 'runs/s', 'violations', 'failovers', 'time to primary p50', 'p99', 'max'],
    rows,
    1,
  )}\n`,
);
for (const text of failuresShown) process.stdout.write(`\n${text}\n`);
