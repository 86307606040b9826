/**
 * bench/converge: how fast a request becomes a running, published instance
 * on a real node agent, how long one node takes to converge many instances,
 * and what the agent costs when there is nothing to do.
 *
 *   npx tsx bench/converge/run.ts [--runs 20] [--instances 100] [--idle-s 30] [--json] [--out FILE]
 *
 * One run:
 *  1. setup (not measured): a master (startTestMaster, SQLite) in this process;
 *     the node agent as a separate `hox node` process (so its CPU and RSS can
 *     be read from /proc), with `--partitions instances+1`; `demo` supplied and
 *     installed; a short idle sample of the agent with no instance.
 *  2. latency (--runs): one at a time, request a `demo`/`default` instance
 *     `lat-i` and time until its connection parameters hold `url` (watched with
 *     the change feed, `waitForChange` on the tree), then until that URL
 *     answers HTTP 200 (polled every 20 ms). Each instance is then destroyed
 *     and the run waits until its partition is free again.
 *  3. throughput (--instances): request that many instances at once, time
 *     until all have published `url` (change feed on everything, the tree list
 *     re-read at most every 50 ms) and until all answer 200.
 *  4. idle (--idle-s): with those instances running, the agent process's CPU
 *     (utime+stime from /proc/<pid>/stat) and RSS (VmRSS), sampled every second.
 *
 * The SlapOS figures are derived from its one-minute cron period alone, not
 * measured, and labelled so.
 */
import { log, machineCpuTimes, markdownTable, percentileOfSorted } from '../support/report.js';
import { execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { removePartitionUser } from '../../src/agent/format/partition-formatter.js';
import { partitionLayouts, type PartitionLayout } from '../../src/agent/format/partition-layout.js';
import { isNotReady, type MasterClient } from '../../src/client/master-client.js';
import { spawnAgentProcess } from '../../src/testing/agent-process.js';
import { startTestMaster, type TestMaster } from '../../src/testing/test-master.js';
import { processesIn, waitFor } from '../../test/support/agent-harness.js';

const RELEASE = 'demo';
const SOFTWARE_TYPE = 'default';
const NODE_ID = 'bench';
const PORTS_PER_PARTITION = 50;
/** SlapOS's node runs slapos node instance from cron once a minute. */
const SLAPOS_PERIOD_S = 60;
const HTTP_POLL_MS = 20;
const TREE_POLL_MIN_MS = 50;
const LATENCY_TIMEOUT_MS = 60_000;

// ---------------------------------------------------------------- options

interface Options {
  runs: number;
  instances: number;
  idleS: number;
  baselineIdleS: number;
  settleS: number;
  portBase: number;
  throughputTimeoutS: number;
  json: boolean;
  /** Also write the JSON results to this file. */
  out: string | undefined;
}

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      runs: { type: 'string', default: '20' },
      instances: { type: 'string', default: '100' },
      'idle-s': { type: 'string', default: '30' },
      'baseline-idle-s': { type: 'string', default: '10' },
      'settle-s': { type: 'string', default: '5' },
      'port-base': { type: 'string', default: '20000' },
      'throughput-timeout-s': { type: 'string', default: '600' },
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
        'usage: npx tsx bench/converge/run.ts [options]',
        '  --runs 20                  sequential request → published latency samples',
        '  --instances 100            instances requested at once for the throughput phase (max 249)',
        '  --idle-s 30                idle sample of the agent with the instances running',
        '  --baseline-idle-s 10       idle sample of the agent before any instance (0 to skip)',
        '  --settle-s 5               pause between convergence and the idle sample',
        '  --port-base 20000          first port of the agent partitions',
        '  --throughput-timeout-s 600 give up on the throughput phase after this long',
        '  --json                     print the results as JSON (progress stays on stderr)',
        '  --out FILE                 also write the JSON results to FILE',
        '',
      ].join('\n'),
    );
    process.exit(0);
  }
  const int = (name: string, text: string, min: number, max: number): number => {
    const n = Number(text);
    if (!Number.isInteger(n) || n < min || n > max)
      throw new Error(`--${name} must be an integer in [${min}, ${max}], got '${text}'`);
    return n;
  };
  return {
    runs: int('runs', values.runs, 1, 10_000),
    instances: int('instances', values.instances, 1, 249),
    idleS: int('idle-s', values['idle-s'], 1, 3600),
    baselineIdleS: int('baseline-idle-s', values['baseline-idle-s'], 0, 3600),
    settleS: int('settle-s', values['settle-s'], 0, 600),
    portBase: int('port-base', values['port-base'], 1024, 65535),
    throughputTimeoutS: int('throughput-timeout-s', values['throughput-timeout-s'], 1, 36_000),
    json: values.json,
    out: values.out,
  };
}

// ---------------------------------------------------------------- helpers

function percentile(values: readonly number[], p: number): number {
  return percentileOfSorted(
    [...values].sort((a, b) => a - b),
    p / 100,
  );
}

function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

interface Summary {
  n: number;
  medianMs: number;
  p90Ms: number;
  minMs: number;
  maxMs: number;
  meanMs: number;
}

function summarize(values: readonly number[]): Summary {
  return {
    n: values.length,
    medianMs: median(values),
    p90Ms: percentile(values, 90),
    minMs: values.length === 0 ? Number.NaN : Math.min(...values),
    maxMs: values.length === 0 ? Number.NaN : Math.max(...values),
    meanMs: values.length === 0 ? Number.NaN : values.reduce((a, b) => a + b, 0) / values.length,
  };
}

/** Polls `url` every {@link HTTP_POLL_MS} until it answers 200; resolves with performance.now() at that answer. */
async function until200(url: string, deadline: number): Promise<number> {
  for (;;) {
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(2000) });
      await response.arrayBuffer();
      if (response.status === 200) return performance.now();
    } catch {
      // not listening yet
    }
    if (performance.now() > deadline) throw new Error(`${url} did not answer 200 in time`);
    await sleep(HTTP_POLL_MS);
  }
}

// ---------------------------------------------------------------- /proc

const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;

/** utime + stime of one process, in clock ticks (its own, not its children's). */
function cpuTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state): utime is field 14, stime field 15.
  return Number(fields[11]) + Number(fields[12]);
}

function parentPid(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
}

/** VmRSS in KiB (0 when gone). */
function rssKiB(pid: number): number {
  try {
    const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match === null ? 0 : Number(match[1]);
  } catch {
    return 0;
  }
}

function procName(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '?';
  }
}

/** Every live descendant of `root`. */
function descendants(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const ppid = parentPid(Number(entry));
      children.set(ppid, [...(children.get(ppid) ?? []), Number(entry)]);
    } catch {
      // gone
    }
  }
  const out: number[] = [];
  const queue = [root];
  while (queue.length > 0) {
    for (const child of children.get(queue.shift()!) ?? []) {
      out.push(child);
      queue.push(child);
    }
  }
  return out;
}

interface IdleSample {
  seconds: number;
  instancesRunning: number;
  /** Agent process CPU, % of one core, over the whole sample. */
  agentCpuPercent: number;
  agentRssMiBMean: number;
  agentRssMiBMax: number;
  /** Other descendants of the agent process that are not services (e.g. tsx's esbuild). */
  helperProcesses: { pid: number; name: string; rssMiB: number; cpuPercent: number }[];
  /** The services themselves (processes whose cwd is a partition), at the end of the sample. */
  serviceProcesses: number;
  servicesRssMiBTotal: number;
  /** This process: master and bench client. */
  benchProcessCpuPercent: number;
  machineBusyPercent: number;
}

async function sampleIdle(
  agentPid: number,
  layouts: readonly PartitionLayout[],
  seconds: number,
  instancesRunning: number,
): Promise<IdleSample> {
  const servicePids = (): number[] => layouts.flatMap((l) => processesIn(l.path));
  const services = new Set(servicePids());
  const helpers = descendants(agentPid).filter((pid) => !services.has(pid));
  const helperStart = new Map(helpers.map((pid) => [pid, safeTicks(pid)]));
  const ticks0 = cpuTicks(agentPid);
  const self0 = process.cpuUsage();
  const machine0 = machineCpuTimes();
  const t0 = performance.now();
  const rss: number[] = [];
  for (let i = 0; i < seconds; i += 1) {
    rss.push(rssKiB(agentPid));
    await sleep(1000);
  }
  rss.push(rssKiB(agentPid));
  const elapsedS = (performance.now() - t0) / 1000;
  const ticks1 = cpuTicks(agentPid);
  const self = process.cpuUsage(self0);
  const machine1 = machineCpuTimes();
  const endServices = servicePids();
  const pct = (ticks: number): number => (ticks / CLK_TCK / elapsedS) * 100;
  return {
    seconds: elapsedS,
    instancesRunning,
    agentCpuPercent: pct(ticks1 - ticks0),
    agentRssMiBMean: rss.reduce((a, b) => a + b, 0) / rss.length / 1024,
    agentRssMiBMax: Math.max(...rss) / 1024,
    helperProcesses: helpers.map((pid) => ({
      pid,
      name: procName(pid),
      rssMiB: rssKiB(pid) / 1024,
      cpuPercent: pct(safeTicks(pid) - (helperStart.get(pid) ?? 0)),
    })),
    serviceProcesses: endServices.length,
    servicesRssMiBTotal: endServices.reduce((a, pid) => a + rssKiB(pid), 0) / 1024,
    benchProcessCpuPercent: ((self.user + self.system) / 1e6 / elapsedS) * 100,
    machineBusyPercent: ((machine1.busy - machine0.busy) / Math.max(1, machine1.total - machine0.total)) * 100,
  };
}

function safeTicks(pid: number): number {
  try {
    return cpuTicks(pid);
  } catch {
    return 0;
  }
}

// ---------------------------------------------------------------- master helpers

type Admin = MasterClient;

async function cursorNow(admin: Admin): Promise<number> {
  return (await admin.call('waitForChange', {})).cursor;
}

async function freePartitions(admin: Admin): Promise<number> {
  const node = (await admin.call('listNodes', {})).result_list.find((n) => n.computer_guid === NODE_ID);
  return node?.free_partition_count ?? -1;
}

/** The tree's root `url`, or undefined while not published. */
async function publishedUrl(admin: Admin, title: string): Promise<string | undefined> {
  const doc = await admin.call('getInstanceTree', { title });
  if (isNotReady(doc)) return undefined;
  const url = doc.connection_parameters.url;
  return typeof url === 'string' && url !== '' ? url : undefined;
}

/** Waits, on the change feed of the node, until `wanted` partitions are free. */
async function waitFree(admin: Admin, wanted: number, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  let cursor = await cursorNow(admin);
  while ((await freePartitions(admin)) < wanted) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${wanted} free partitions`);
    cursor = (await admin.call('waitForChange', { since: cursor, computer_guid: NODE_ID, timeout_ms: 1000 })).cursor;
  }
}

// ---------------------------------------------------------------- phases

interface LatencySample {
  title: string;
  publishedMs: number;
  http200Ms: number;
  destroyFreedMs: number;
}

async function latencyRun(admin: Admin, i: number, partitions: number): Promise<LatencySample> {
  const title = `lat-${i}`;
  let cursor = await cursorNow(admin);
  const t0 = performance.now();
  const deadline = t0 + LATENCY_TIMEOUT_MS;
  const first = await admin.call('requestInstance', {
    title,
    software_release_uri: RELEASE,
    software_type: SOFTWARE_TYPE,
  });
  let url = isNotReady(first) ? undefined : (first.connection_parameters.url as string | undefined);
  while (url === undefined) {
    if (performance.now() > deadline) throw new Error(`${title}: no url after ${LATENCY_TIMEOUT_MS} ms`);
    cursor = (await admin.call('waitForChange', { since: cursor, instance_tree_title: title, timeout_ms: 1000 }))
      .cursor;
    url = await publishedUrl(admin, title);
  }
  const tPublished = performance.now();
  const tHttp = await until200(url, deadline);
  const tDestroy = performance.now();
  await admin.call('requestInstance', {
    title,
    software_release_uri: RELEASE,
    software_type: SOFTWARE_TYPE,
    state: 'destroyed',
  });
  await waitFree(admin, partitions, LATENCY_TIMEOUT_MS);
  return {
    title,
    publishedMs: tPublished - t0,
    http200Ms: tHttp - t0,
    destroyFreedMs: performance.now() - tDestroy,
  };
}

interface ThroughputResult {
  instances: number;
  requestsAcceptedMs: number;
  allPublishedMs: number;
  allHttp200Ms: number;
  perInstancePublishedMs: number;
  perInstanceHttp200Ms: number;
  /** When each instance was first seen published, from the start. */
  publishedAt: Summary;
  http200At: Summary;
  treeReads: number;
  agentCpuSeconds: number;
  benchProcessCpuSeconds: number;
  machineBusyPercent: number;
}

async function throughput(admin: Admin, agentPid: number, count: number, timeoutMs: number): Promise<ThroughputResult> {
  const titles = Array.from({ length: count }, (_, i) => `tp-${i}`);
  const published = new Map<string, number>();
  const http200 = new Map<string, Promise<number>>();
  let cursor = await cursorNow(admin);
  const agentTicks0 = cpuTicks(agentPid);
  const self0 = process.cpuUsage();
  const machine0 = machineCpuTimes();
  const t0 = performance.now();
  const deadline = t0 + timeoutMs;
  await Promise.all(
    titles.map((title) =>
      admin.call('requestInstance', { title, software_release_uri: RELEASE, software_type: SOFTWARE_TYPE }),
    ),
  );
  const tAccepted = performance.now();
  log(`throughput: ${count} requests accepted in ${((tAccepted - t0) / 1000).toFixed(2)} s`);
  let reads = 0;
  let lastRead = 0;
  let nextReport = 10;
  const wanted = new Set(titles);
  while (published.size < count) {
    if (performance.now() > deadline)
      throw new Error(`throughput: only ${published.size}/${count} published after ${timeoutMs / 1000} s`);
    const wait = TREE_POLL_MIN_MS - (performance.now() - lastRead);
    if (wait > 0) await sleep(wait);
    lastRead = performance.now();
    const trees = (await admin.call('listTreeStatus', {})).result_list;
    const seenAt = performance.now();
    reads += 1;
    for (const tree of trees) {
      if (!wanted.has(tree.title) || published.has(tree.title)) continue;
      const root = tree.instance_list.find((i) => i.title === tree.title);
      const url = root?.connection_parameters.url;
      if (typeof url !== 'string' || url === '') continue;
      published.set(tree.title, seenAt);
      http200.set(tree.title, until200(url, deadline));
    }
    if ((published.size / count) * 100 >= nextReport) {
      log(`throughput: ${published.size}/${count} published after ${((seenAt - t0) / 1000).toFixed(2)} s`);
      while ((published.size / count) * 100 >= nextReport) nextReport += 10;
    }
    if (published.size < count)
      cursor = (await admin.call('waitForChange', { since: cursor, timeout_ms: 1000 })).cursor;
  }
  const tAllPublished = Math.max(...published.values());
  const httpTimes = await Promise.all(http200.values());
  const tAllHttp = Math.max(...httpTimes);
  const agentTicks1 = cpuTicks(agentPid);
  const self = process.cpuUsage(self0);
  const machine1 = machineCpuTimes();
  log(`throughput: all ${count} answer 200 after ${((tAllHttp - t0) / 1000).toFixed(2)} s`);
  return {
    instances: count,
    requestsAcceptedMs: tAccepted - t0,
    allPublishedMs: tAllPublished - t0,
    allHttp200Ms: tAllHttp - t0,
    perInstancePublishedMs: (tAllPublished - t0) / count,
    perInstanceHttp200Ms: (tAllHttp - t0) / count,
    publishedAt: summarize([...published.values()].map((t) => t - t0)),
    http200At: summarize(httpTimes.map((t) => t - t0)),
    treeReads: reads,
    agentCpuSeconds: (agentTicks1 - agentTicks0) / CLK_TCK,
    benchProcessCpuSeconds: (self.user + self.system) / 1e6,
    machineBusyPercent: ((machine1.busy - machine0.busy) / Math.max(1, machine1.total - machine0.total)) * 100,
  };
}

// ---------------------------------------------------------------- the agent process

interface AgentProcess {
  child: ChildProcess;
  output: string[];
  exited: Promise<number | null>;
}

function startAgentProcess(masterUrl: string, dataDir: string, partitions: number, token: string, portBase: number) {
  const child = spawnAgentProcess({
    masterUrl,
    dataDir,
    nodeId: NODE_ID,
    partitions,
    registerToken: token,
    portBase,
    quiet: true,
  });
  const output: string[] = [];
  const keep = (chunk: Buffer): void => {
    output.push(...chunk.toString('utf8').split('\n').filter(Boolean));
    if (output.length > 200) output.splice(0, output.length - 200);
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, output, exited } satisfies AgentProcess;
}

// ---------------------------------------------------------------- output

function ms(v: number): string {
  return Number.isNaN(v) ? '-' : v < 10 ? v.toFixed(2) : v.toFixed(0);
}

function s(vMs: number): string {
  return Number.isNaN(vMs) ? '-' : (vMs / 1000).toFixed(2);
}

interface Results {
  machine: { cpus: number; cpuModel: string | null; node: string; platform: string; loadAverageAtStart: number };
  options: Options;
  setup: { agentRegisteredMs: number; softwareAvailableMs: number; partitions: number };
  baselineIdle: IdleSample | undefined;
  latency: { samples: LatencySample[]; published: Summary; http200: Summary; destroyFreed: Summary };
  throughput: ThroughputResult | undefined;
  idle: IdleSample | undefined;
  slaposDerived: { periodS: number; meanLatencyS: number; worstLatencyS: number; note: string };
}

function printReport(r: Results): void {
  const out: string[] = [];
  out.push(
    `bench/converge — ${r.machine.cpus} CPUs (${r.machine.cpuModel ?? '?'}), Node ${r.machine.node}, ` +
      `load average at start ${r.machine.loadAverageAtStart.toFixed(2)}`,
  );
  out.push(
    `setup (not measured): agent registered and formatted ${r.setup.partitions} partitions in ${s(r.setup.agentRegisteredMs)} s, ` +
      `demo available after ${s(r.setup.softwareAvailableMs)} s more`,
  );
  out.push('');
  out.push(`Latency, one instance at a time (${r.latency.samples.length} runs), ms from the request:`);
  const row = (name: string, x: Summary): string[] => [
    name,
    ms(x.medianMs),
    ms(x.p90Ms),
    ms(x.minMs),
    ms(x.maxMs),
    ms(x.meanMs),
  ];
  out.push(
    markdownTable(
      ['until', 'median', 'p90', 'min', 'max', 'mean'],
      [
        row('url published', r.latency.published),
        row('url answers 200', r.latency.http200),
        row('destroy → partition free', r.latency.destroyFreed),
      ],
      1,
    ),
  );
  const firstRun = r.latency.samples[0];
  if (firstRun !== undefined)
    out.push(
      `first run (release module loaded cold): published ${ms(firstRun.publishedMs)} ms, 200 ${ms(firstRun.http200Ms)} ms`,
    );
  const t = r.throughput;
  if (t !== undefined) {
    out.push('');
    out.push(`Throughput, ${t.instances} instances requested at once on one node:`);
    out.push(
      markdownTable(
        ['until', 'all done s', 'per instance ms', 'median instance s', 'p90 instance s'],
        [
          [
            'url published',
            s(t.allPublishedMs),
            ms(t.perInstancePublishedMs),
            s(t.publishedAt.medianMs),
            s(t.publishedAt.p90Ms),
          ],
          [
            'url answers 200',
            s(t.allHttp200Ms),
            ms(t.perInstanceHttp200Ms),
            s(t.http200At.medianMs),
            s(t.http200At.p90Ms),
          ],
        ],
        1,
      ),
    );
    out.push(
      `requests accepted in ${s(t.requestsAcceptedMs)} s; agent CPU ${t.agentCpuSeconds.toFixed(1)} s, ` +
        `master+bench process CPU ${t.benchProcessCpuSeconds.toFixed(1)} s, machine ${t.machineBusyPercent.toFixed(0)} % busy; ` +
        `${t.treeReads} tree-list reads`,
    );
  }
  const idleRows: string[][] = [];
  for (const [name, x] of [
    ['no instance', r.baselineIdle],
    [`${r.idle?.instancesRunning ?? 0} instances`, r.idle],
  ] as const) {
    if (x === undefined) continue;
    idleRows.push([
      name,
      x.seconds.toFixed(0),
      x.agentCpuPercent.toFixed(2),
      x.agentRssMiBMean.toFixed(1),
      x.agentRssMiBMax.toFixed(1),
      x.helperProcesses.map((h) => `${h.name} ${h.rssMiB.toFixed(0)} MiB`).join(', ') || '-',
      String(x.serviceProcesses),
      x.servicesRssMiBTotal.toFixed(0),
      x.benchProcessCpuPercent.toFixed(2),
      x.machineBusyPercent.toFixed(0),
    ]);
  }
  if (idleRows.length > 0) {
    out.push('');
    out.push('Idle agent (CPU % of one core, from /proc/<pid>/stat; RSS = VmRSS):');
    out.push(
      markdownTable(
        [
          'running',
          's',
          'agent CPU %',
          'agent RSS MiB',
          'RSS max',
          'agent helpers',
          'services',
          'services RSS MiB',
          'master+bench CPU %',
          'machine busy %',
        ],
        idleRows,
        1,
      ),
    );
  }
  const d = r.slaposDerived;
  out.push('');
  out.push(`SlapOS (DERIVED from its ${d.periodS} s cron period, NOT measured):`);
  out.push(
    markdownTable(
      ['figure', 'SlapOS (derived) s', 'hox (measured) s', 'ratio'],
      [
        [
          'mean request → published',
          d.meanLatencyS.toFixed(0),
          s(r.latency.published.meanMs),
          `${(d.meanLatencyS / (r.latency.published.meanMs / 1000)).toFixed(0)}×`,
        ],
        [
          'worst request → published',
          d.worstLatencyS.toFixed(0),
          s(r.latency.published.maxMs),
          `${(d.worstLatencyS / (r.latency.published.maxMs / 1000)).toFixed(0)}×`,
        ],
      ],
      1,
    ),
  );
  out.push(d.note);
  process.stdout.write(`${out.join('\n')}\n`);
}

// ---------------------------------------------------------------- main

async function main(): Promise<void> {
  const opts = parseOptions(process.argv.slice(2));
  const partitions = opts.instances + 1;
  if (opts.portBase + partitions * PORTS_PER_PARTITION > 65535)
    throw new Error('--port-base too high for the partitions');
  const loadAtStart = os.loadavg()[0] ?? Number.NaN;
  let master: TestMaster | undefined;
  let agent: AgentProcess | undefined;
  let dataDir: string | undefined;
  let cleaning: Promise<void> | undefined;

  const cleanup = (): Promise<void> =>
    (cleaning ??= (async () => {
      log('cleanup: stopping the agent, its services, partition users, temp dirs and the master');
      if (agent !== undefined && agent.child.exitCode === null && agent.child.signalCode === null) {
        agent.child.kill('SIGTERM');
        const code = await Promise.race([agent.exited, sleep(15_000, 'timeout' as const)]);
        if (code === 'timeout') {
          log('cleanup: agent ignored SIGTERM for 15 s, SIGKILL');
          agent.child.kill('SIGKILL');
          await agent.exited;
        }
      }
      if (dataDir !== undefined) {
        const layouts = partitionLayouts({
          nodeId: NODE_ID,
          dataDir,
          count: partitions,
          portBase: opts.portBase,
          portsPerPartition: PORTS_PER_PARTITION,
        });
        const pids = layouts.flatMap((l) => processesIn(l.path));
        const signalGroup = (pid: number, signal: NodeJS.Signals): void => {
          try {
            process.kill(-pid, signal);
          } catch {
            try {
              process.kill(pid, signal);
            } catch {
              // gone
            }
          }
        };
        for (const pid of pids) signalGroup(pid, 'SIGTERM');
        const until = performance.now() + 5000;
        while (performance.now() < until && layouts.some((l) => processesIn(l.path).length > 0)) await sleep(100);
        for (const pid of layouts.flatMap((l) => processesIn(l.path))) signalGroup(pid, 'SIGKILL');
        log(`cleanup: stopped ${pids.length} service processes`);
        if (process.getuid?.() === 0) {
          for (const l of layouts)
            await removePartitionUser(l.user).catch((e: unknown) => log(`cleanup: userdel ${l.user}: ${String(e)}`));
        }
        rmSync(dataDir, { recursive: true, force: true });
      }
      await master?.stop();
    })());

  process.on('SIGINT', () => {
    log('interrupted: cleaning up');
    void cleanup().finally(() => process.exit(130));
  });

  try {
    master = await startTestMaster();
    const admin = master.admin;
    dataDir = realpathSync(mkdtempSync(join(os.tmpdir(), 'hox-bench-node-')));
    const { token } = await admin.call('createRegistrationToken', {});
    const tSetup = performance.now();
    agent = startAgentProcess(master.url, dataDir, partitions, token, opts.portBase);
    const a = agent;
    void a.exited.then((code) => {
      if (cleaning === undefined) log(`agent exited early (code ${code}):\n${a.output.slice(-20).join('\n')}`);
    });
    await waitFor(
      'agent registered with its partitions',
      async () => {
        if (a.child.exitCode !== null) throw new Error(`agent exited: ${a.output.slice(-5).join(' / ')}`);
        const node = (await admin.call('listNodes', {})).result_list.find((n) => n.computer_guid === NODE_ID);
        return node?.partition_count === partitions;
      },
      120_000,
    );
    const registeredMs = performance.now() - tSetup;
    log(`setup: agent pid ${a.child.pid} registered with ${partitions} partitions in ${s(registeredMs)} s`);
    const tSupply = performance.now();
    await admin.call('supply', { computer_guid: NODE_ID, software_release_uri: RELEASE });
    await waitFor(
      'demo available',
      async () => {
        const list = (await admin.call('listSoftwareStatus', { computer_guid: NODE_ID })).result_list;
        const entry = list.find((e) => e.software_release_uri === RELEASE);
        if (entry?.reported_state === 'error') throw new Error(`install failed: ${entry.error_message ?? ''}`);
        return entry?.reported_state === 'available';
      },
      120_000,
    );
    const softwareMs = performance.now() - tSupply;
    log(`setup: demo available after ${s(softwareMs)} s`);
    const agentPid = a.child.pid!;
    const layouts = partitionLayouts({
      nodeId: NODE_ID,
      dataDir,
      count: partitions,
      portBase: opts.portBase,
      portsPerPartition: PORTS_PER_PARTITION,
    });

    let baselineIdle: IdleSample | undefined;
    if (opts.baselineIdleS > 0) {
      log(`idle (no instance): sampling the agent for ${opts.baselineIdleS} s`);
      baselineIdle = await sampleIdle(agentPid, layouts, opts.baselineIdleS, 0);
    }

    const samples: LatencySample[] = [];
    for (let i = 0; i < opts.runs; i += 1) {
      const sample = await latencyRun(admin, i, partitions);
      samples.push(sample);
      log(
        `latency ${i + 1}/${opts.runs}: published ${ms(sample.publishedMs)} ms, 200 ${ms(sample.http200Ms)} ms, ` +
          `freed ${ms(sample.destroyFreedMs)} ms after destroy`,
      );
    }

    const tp = await throughput(admin, agentPid, opts.instances, opts.throughputTimeoutS * 1000);
    if (opts.settleS > 0) await sleep(opts.settleS * 1000);
    log(`idle (${opts.instances} instances): sampling the agent for ${opts.idleS} s`);
    const idle = await sampleIdle(agentPid, layouts, opts.idleS, opts.instances);

    const results: Results = {
      machine: {
        cpus: os.cpus().length,
        cpuModel: os.cpus()[0]?.model ?? null,
        node: process.version,
        platform: `${os.type()} ${os.release()}`,
        loadAverageAtStart: loadAtStart,
      },
      options: opts,
      setup: { agentRegisteredMs: registeredMs, softwareAvailableMs: softwareMs, partitions },
      baselineIdle,
      latency: {
        samples,
        published: summarize(samples.map((x) => x.publishedMs)),
        http200: summarize(samples.map((x) => x.http200Ms)),
        destroyFreed: summarize(samples.map((x) => x.destroyFreedMs)),
      },
      throughput: tp,
      idle,
      slaposDerived: {
        periodS: SLAPOS_PERIOD_S,
        meanLatencyS: SLAPOS_PERIOD_S / 2,
        worstLatencyS: SLAPOS_PERIOD_S,
        note:
          'Derived: a request arriving at a uniformly random moment waits on average half a cron period (30 s) and at ' +
          'worst a full one (60 s) before the node even starts processing it; buildout and service start come on top. ' +
          'No SlapOS node was run here.',
      },
    };
    if (opts.out !== undefined) writeFileSync(opts.out, `${JSON.stringify(results, null, 2)}\n`);
    if (opts.json) process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
    else printReport(results);
  } finally {
    await cleanup();
  }
}

main().catch((error: unknown) => {
  process.stderr.write(
    `bench/converge failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
  );
  process.exitCode = 1;
});
