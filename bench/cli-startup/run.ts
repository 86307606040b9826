/**
 * bench/cli-startup: how long the built `hox` binary takes to answer read
 * commands, against a bare `node -e 0` on the same machine at the same time.
 *
 *   npm run build && npx tsx bench/cli-startup/run.ts [--runs 21] [--json] [--hox path/to/bin/hox.js]
 *
 * `--hox` measures another build (an older commit's dist/, to compare).
 *
 * Cases, run round-robin (one of each per round, so a change of load on a
 * shared machine touches them all alike):
 *  - `node -e 0`: the floor, a bare Node start;
 *  - `hox --version`, `hox --help`;
 *  - `hox list`, `hox show bench-0`, `hox app status bench-app` and `hox db
 *    status bench-db` against a running master (a real one, SQLite, started
 *    here, with 5 demo trees, an app and a cluster requested on a registered
 *    node that runs nothing): read commands with their round trips;
 *  - `hox list` against a master that is not there (a closed port on
 *    127.0.0.1): the start-up cost alone, the fastest failure.
 * Each prints the median wall time (spawn to exit) and the median CPU time of
 * the child (user + system, from this process's cutime/cstime in
 * /proc/self/stat, so Linux only; 1 clock tick resolution), each with its
 * ratio to `node -e 0`. CPU time is the steadier figure on a busy machine.
 */
import { spawn } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { addTestNode, startTestMaster } from '../../src/testing/test-master.js';
import { log, markdownTable, percentileOfSorted } from '../support/report.js';

const ROOT = join(import.meta.dirname, '..', '..');
const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;

interface Case {
  name: string;
  args: string[];
  env: NodeJS.ProcessEnv;
  /** The exit code the case must end with (a wrong one means the figure measures something else). */
  code: number;
}

/** CPU time (ms) of this process's children that have been waited for. */
function childrenCpuMs(): number {
  // Fields after the command name (which may hold spaces, so split after its closing parenthesis).
  const fields = readFileSync('/proc/self/stat', 'utf8').split(') ')[1]!.split(' ');
  // cutime and cstime are fields 16 and 17 of stat(5), i.e. 13 and 14 after the name.
  return ((Number(fields[13]) + Number(fields[14])) * 1000) / CLK_TCK;
}

function runOnce(c: Case): Promise<{ wallMs: number; cpuMs: number }> {
  const cpuBefore = childrenCpuMs();
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, c.args, { env: c.env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      const wallMs = performance.now() - started;
      if (code !== c.code) reject(new Error(`${c.name}: exit ${String(code)}, expected ${c.code}: ${stderr.trim()}`));
      else resolve({ wallMs, cpuMs: childrenCpuMs() - cpuBefore });
    });
  });
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      runs: { type: 'string', default: '21' },
      json: { type: 'boolean', default: false },
      hox: { type: 'string', default: join(ROOT, 'dist', 'bin', 'hox.js') },
    },
  });
  const runs = Number.parseInt(values.runs, 10);
  const HOX = values.hox;
  if (!(runs > 0)) throw new Error(`--runs must be a positive integer, not '${values.runs}'`);
  if (!existsSync(HOX)) throw new Error(`${HOX} is missing: run npm run build first (the binary runs from dist/)`);

  const home = mkdtempSync(join(tmpdir(), 'hox-cli-startup-'));
  const master = await startTestMaster();
  try {
    // A node that never runs anything: the trees exist and are allocated, which is all the read commands read.
    await addTestNode(master.admin, 'bench-node', { partitions: 8, releases: ['demo', 'hyper_edge', 'hyper_db'] });
    for (let i = 0; i < 5; i++)
      await master.admin.call('requestInstance', {
        title: `bench-${i}`,
        software_release_uri: 'demo',
        software_type: 'default',
      });
    // An app and a cluster as `hox app create` and `hox db create` request them (nothing published yet).
    await master.admin.call('requestInstance', {
      title: 'bench-app',
      software_release_uri: 'hyper_edge',
      software_type: 'app',
    });
    await master.admin.call('requestInstance', {
      title: 'bench-db',
      software_release_uri: 'hyper_db',
      software_type: 'cluster',
    });
    // No config file, no inherited HOX_* variables: each case says where its master is.
    const base: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: home, HOX_CONFIG: join(home, 'config.json') };
    const withMaster = { ...base, HOX_MASTER_URL: master.url, HOX_TOKEN: master.adminToken };
    const noMaster = { ...base, HOX_MASTER_URL: 'http://127.0.0.1:9', HOX_TOKEN: 'bench' };
    const cases: Case[] = [
      { name: 'node -e 0', args: ['-e', '0'], env: base, code: 0 },
      { name: 'hox --version', args: [HOX, '--version'], env: base, code: 0 },
      { name: 'hox --help', args: [HOX, '--help'], env: base, code: 0 },
      { name: 'hox list (master up)', args: [HOX, 'list'], env: withMaster, code: 0 },
      { name: 'hox show bench-0', args: [HOX, 'show', 'bench-0'], env: withMaster, code: 0 },
      { name: 'hox app status bench-app', args: [HOX, 'app', 'status', 'bench-app'], env: withMaster, code: 0 },
      { name: 'hox db status bench-db', args: [HOX, 'db', 'status', 'bench-db'], env: withMaster, code: 0 },
      { name: 'hox list (no master)', args: [HOX, 'list'], env: noMaster, code: 3 },
    ];
    const samples = new Map(cases.map((c) => [c.name, { wall: [] as number[], cpu: [] as number[] }]));
    log(`bench/cli-startup: ${runs} rounds of ${cases.length} cases (${HOX})`);
    for (let round = 0; round < runs; round++) {
      for (const c of cases) {
        const { wallMs, cpuMs } = await runOnce(c);
        samples.get(c.name)!.wall.push(wallMs);
        samples.get(c.name)!.cpu.push(cpuMs);
      }
      if ((round + 1) % 5 === 0) log(`  ${round + 1}/${runs}`);
    }
    const median = (xs: number[]): number =>
      percentileOfSorted(
        [...xs].sort((a, b) => a - b),
        0.5,
      );
    const floor = samples.get('node -e 0')!;
    const floorWall = median(floor.wall);
    const floorCpu = median(floor.cpu);
    const results = cases.map((c) => {
      const s = samples.get(c.name)!;
      const wallMs = median(s.wall);
      const cpuMs = median(s.cpu);
      return { name: c.name, wallMs, wallRatio: wallMs / floorWall, cpuMs, cpuRatio: cpuMs / floorCpu };
    });
    if (values.json) {
      process.stdout.write(`${JSON.stringify({ runs, node: process.version, results })}\n`);
      return;
    }
    const rows = results.map((r) => [
      r.name,
      r.wallMs.toFixed(0),
      `${r.wallRatio.toFixed(2)}×`,
      r.cpuMs.toFixed(0),
      `${r.cpuRatio.toFixed(2)}×`,
    ]);
    process.stdout.write(
      `${markdownTable(['command', 'wall ms (median)', 'vs node', 'CPU ms (median)', 'vs node'], rows, 1)}\n`,
    );
    process.stdout.write(`\n${runs} runs each, Node ${process.version}, load average ${loadAverage()}\n`);
  } finally {
    await master.stop();
    rmSync(home, { recursive: true, force: true });
  }
}

function loadAverage(): string {
  return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
}

await main();
