/** The deploy benchmark's results and their Markdown report (stdout). */
import { markdownTable, percentileOfSorted } from '../support/report.js';
import type { Deploy, DeployRun, StepDurations } from './deploy-run.js';
import type { Options } from './run.js';
import type { ThroughputRow } from './throughput.js';

export interface Results {
  command: string;
  machine: { cpus: number; cpuModel: string | null; node: string; loadAverageAtStart: number };
  options: Options;
  apps: { name: string; runtime: string; loadPath: string }[];
  setup: { platformMs: number; dbClusterMs: number | null; cliStartupMs: number[] };
  runs: Record<string, DeployRun[]>;
  errors: Record<string, string[]>;
  throughput: ThroughputRow[];
}

function median(values: number[]): number {
  const known = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  return percentileOfSorted(known, 0.5);
}

function max(values: number[]): number {
  const known = values.filter((v) => Number.isFinite(v));
  return known.length === 0 ? Number.NaN : Math.max(...known);
}

const s = (ms: number): string => (Number.isFinite(ms) ? (ms / 1000).toFixed(2) : '–');
const ms = (v: number): string => (Number.isFinite(v) ? (v < 10 ? v.toFixed(2) : v.toFixed(0)) : '–');

const KINDS = [
  ['fresh', (x: DeployRun) => x.fresh],
  ['redeploy', (x: DeployRun) => x.redeploy],
  ['redeploy under load', (x: DeployRun) => x.redeployUnderLoad],
] as const satisfies readonly (readonly [string, (x: DeployRun) => Deploy])[];

function deployTable(r: Results): string {
  const rows = r.apps.map((a) => {
    const runs = r.runs[a.name] ?? [];
    return [
      a.name,
      a.runtime,
      `${runs.length}/${r.options.runs}`,
      ...KINDS.flatMap(([, pick]) => [s(median(runs.map((x) => pick(x).ms))), s(max(runs.map((x) => pick(x).ms)))]),
      s(median(runs.map((x) => x.destroyMs))),
    ];
  });
  return markdownTable(
    [
      'app',
      'runtime',
      'runs ok',
      'fresh deploy median s',
      'max s',
      'redeploy median s',
      'max s',
      'under load median s',
      'max s',
      'destroy median s',
    ],
    rows,
    2,
  );
}

function stepTable(r: Results): string {
  const rows = r.apps.flatMap((a) =>
    KINDS.map(([kind, pick]) => {
      const steps = (r.runs[a.name] ?? []).map((x) => pick(x).steps);
      const m = (key: keyof StepDurations): string => s(median(steps.map((x) => x[key])));
      return [
        a.name,
        kind,
        m('toRunnerMs'),
        m('buildMs'),
        m('releaseMs'),
        m('startHealthyMs'),
        m('switchDrainMs'),
        m('reportMs'),
      ];
    }),
  );
  return markdownTable(
    ['app', 'deploy', 'to runner', 'build', 'release', 'start → healthy', 'switch + drain', '→ CLI'],
    rows,
    2,
  );
}

function redeployLoadTable(r: Results): string {
  const rows = r.apps.map((a) => {
    const runs = (r.runs[a.name] ?? []).map((x) => x.duringRedeploy);
    return [
      a.name,
      `GET ${a.loadPath}`,
      String(runs.length),
      String(runs.reduce((n, x) => n + x.ok + x.failures.length, 0)),
      String(runs.reduce((n, x) => n + x.failures.length, 0)),
      ms(median(runs.map((x) => x.p50Ms))),
      ms(median(runs.map((x) => x.p99Ms))),
      ms(max(runs.map((x) => x.p99Ms))),
      ms(max(runs.map((x) => x.maxMs))),
    ];
  });
  return markdownTable(
    ['app', 'request', 'redeploys', 'requests', 'failed', 'p50 ms', 'p99 ms', 'worst p99 ms', 'max ms'],
    rows,
    2,
  );
}

function throughputTable(r: Results): string {
  const rows = r.throughput.map((t) => {
    const f = t.figures;
    return [
      t.app,
      `GET ${r.apps.find((a) => a.name === t.app)?.loadPath ?? '/'}`,
      t.target,
      f.requestsPerS.toFixed(0),
      `${Math.min(...t.roundRequestsPerS).toFixed(0)}–${Math.max(...t.roundRequestsPerS).toFixed(0)}`,
      ms(f.p50Ms),
      ms(f.p99Ms),
      String(f.failures.length),
      `${t.ratioToDirect.toFixed(2)}×`,
      f.machineBusyPercent.toFixed(0),
      f.benchCpuPercent.toFixed(0),
    ];
  });
  return markdownTable(
    [
      'app',
      'request',
      'target',
      'req/s',
      'rounds req/s',
      'p50 ms',
      'p99 ms',
      'failed',
      'req/s vs direct',
      'machine busy %',
      'load gen + master CPU %',
    ],
    rows,
    3,
  );
}

export function printReport(r: Results): void {
  const o = r.options;
  const failures = r.apps.flatMap((a) =>
    (r.runs[a.name] ?? []).flatMap((x) =>
      x.duringRedeploy.failures.map(
        (f) => `- ${a.name} run ${x.run}: at ${(f.atMs / 1000).toFixed(2)} s of the load: ${f.what}`,
      ),
    ),
  );
  const errors = Object.entries(r.errors).flatMap(([app, list]) => list.map((e) => `- ${app} ${e}`));
  const out = [
    `## bench/deploy — ${o.runs} runs per app, ${r.machine.cpus} CPUs (${r.machine.cpuModel ?? '?'}), ` +
      `Node ${r.machine.node}, load average at start ${r.machine.loadAverageAtStart.toFixed(2)}`,
    '',
    `Command: \`${r.command}\``,
    '',
    `Setup (not measured): master + 2 nodes (8 partitions each), releases installed, in ${s(r.setup.platformMs)} s` +
      (r.setup.dbClusterMs === null
        ? ''
        : `; hyper_db cluster 'db' of ${o.dbMembers} member(s) in ${s(r.setup.dbClusterMs)} s`) +
      `; a bare CLI call (\`hox app list\`, tsx start-up included) takes ${s(median(r.setup.cliStartupMs))} s.`,
    '',
    'Wall time of `hox app deploy` until it prints "serving". Fresh: the app was destroyed after the previous run ' +
      '(new partitions, empty npm cache, new database). Redeploy: the same source again while serving (build ' +
      `reused), with nothing else running, then with ${o.concurrency} loops loading the public endpoint:`,
    '',
    deployTable(r),
    '',
    'Where the time goes (medians, s; from the replica runner’s log): to runner = CLI start-up, pack, upload, ' +
      'request, placement, partition set-up; build = unpack + npm ci / venv; release = the release command ' +
      '(migrations); switch + drain = proxy switched, old version drained and stopped; → CLI = until the CLI saw it ' +
      'published and exited.',
    '',
    stepTable(r),
    '',
    `Redeploys under load through the public endpoint (${o.concurrency} keep-alive loops, from 0.5 s before to ` +
      '0.5 s after each redeploy; latency percentiles per redeploy, then the median and worst over the runs):',
    '',
    redeployLoadTable(r),
    '',
    failures.length === 0 ? 'Failed requests: none.' : `Failed requests:\n${failures.join('\n')}`,
  ];
  if (r.throughput.length > 0)
    out.push(
      '',
      `Throughput (${o.concurrency} keep-alive loops, one replica; ${o.durationS} s per target in ${o.rounds} ` +
        'rounds, each running every target in turn after 0.5 s of warm-up; "vs direct" is the median over the ' +
        'rounds of the ratio within a round; the load generator runs on a worker thread of the benchmark process, ' +
        'whose main thread is the master):',
      '',
      throughputTable(r),
    );
  if (errors.length > 0) out.push('', `Runs that failed:\n${errors.join('\n')}`);
  process.stdout.write(`${out.join('\n')}\n`);
}
