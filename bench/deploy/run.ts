/**
 * bench/deploy: how long `hox app deploy` takes to serve the example apps,
 * whether a redeploy drops requests, and what the public endpoint costs.
 *
 *   npx tsx bench/deploy/run.ts [--runs 5] [--apps hello,crm,notes] [--duration-s 10] [--concurrency 8]
 *                               [--rounds 5] [--db-members 3] [--throughput hello,crm] [--json] [--out FILE]
 *
 * Setup (not measured): a master (SQLite, in this process) and two `hox node`
 * processes `bench-edge-node-1..2` with 8 partitions each, hyper_db and
 * hyper_edge supplied and installed; `hox db create db --members 3 --wait`
 * when an app has a postgres addon.
 *
 * Each run of each app, through the real CLI:
 *  1. `hox app deploy NAME examples/…` until it prints "serving": a fresh
 *     deploy (the app was destroyed after the previous run, so new partitions,
 *     an empty npm cache, a new database, migrations from scratch);
 *  2. the same source deployed again, nothing else running (build reused);
 *  3. and again while a load generator (src/testing/http-load.ts on a worker
 *     thread, `--concurrency` keep-alive loops) asks the public endpoint, from
 *     0.5 s before to 0.5 s after; every failed request is printed;
 *  4. on the last run of the `--throughput` apps: `--duration-s` of the same
 *     load on the app's web process (its slot port, from the replica's
 *     runner.json and app/state.json), on the replica's Caddy and on the public
 *     endpoint (the root's Caddy → the replica's Caddy → the app), in
 *     `--rounds` interleaved slices;
 *  5. `hox app destroy NAME`.
 * The replica runner's log gives where each deploy's time went.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { startHyperDbPlatform, type HyperDbPlatform } from '../../src/testing/hyperdb-platform.js';
import { log } from '../support/report.js';
import { HoxCli } from './hox-cli.js';
import { deployRun, type AppSpec, type DeployRun } from './deploy-run.js';
import { printReport, type Results } from './report.js';
import { throughput, type ThroughputRow } from './throughput.js';

const ROOT = join(import.meta.dirname, '..', '..');
const NODE_ID_PREFIX = 'bench-edge-node';
const NODES = 2;
const PARTITIONS_PER_NODE = 8;

/**
 * The example apps; `addon`: needs the hyper_db cluster `db`. The CRM's pages need a signed-in user: its load is
 * on `/healthz`, which still reads its database (`SELECT 1`).
 */
export const APPS: Record<string, AppSpec & { addon: boolean }> = {
  hello: { name: 'hello', dir: 'examples/hello', runtime: 'Node, no dependency + worker', loadPath: '/', addon: false },
  crm: { name: 'crm', dir: 'examples/crm', runtime: 'Node + postgres', loadPath: '/healthz', addon: true },
  notes: { name: 'notes', dir: 'examples/flask-notes', runtime: 'Python + postgres', loadPath: '/', addon: true },
};

export interface Options {
  runs: number;
  apps: string[];
  durationS: number;
  rounds: number;
  concurrency: number;
  dbMembers: number;
  throughputApps: string[];
  json: boolean;
  out: string | undefined;
}

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      runs: { type: 'string', default: '5' },
      apps: { type: 'string', default: 'hello,crm,notes' },
      'duration-s': { type: 'string', default: '10' },
      rounds: { type: 'string', default: '5' },
      concurrency: { type: 'string', default: '8' },
      'db-members': { type: 'string', default: '3' },
      throughput: { type: 'string', default: 'hello,crm' },
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
        'usage: npx tsx bench/deploy/run.ts [options]',
        '  --runs 5                 fresh deploy + redeploy under load + destroy, per app',
        `  --apps hello,crm,notes   known: ${Object.keys(APPS).join(', ')}`,
        '  --duration-s 10          length of each throughput measurement (per target)',
        '  --rounds 5               throughput cut into rounds running every target in turn (shared machines)',
        '  --concurrency 8          keep-alive loops of the load generator (redeploys and throughput)',
        '  --db-members 3           members of the hyper_db cluster for the postgres addons (1 is faster to set up)',
        '  --throughput hello,crm   apps whose public endpoint is compared with direct access ("none": skip)',
        '  --json                   print the results as JSON (progress stays on stderr)',
        '  --out FILE               also write the JSON results to FILE',
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
  const list = (name: string, text: string): string[] => {
    const names = text.split(',').filter((a) => a !== '' && a !== 'none');
    for (const a of names)
      if (!(a in APPS)) throw new Error(`--${name}: unknown app '${a}'; known: ${Object.keys(APPS).join(', ')}`);
    return names;
  };
  const apps = list('apps', values.apps);
  return {
    runs: int('runs', values.runs, 1, 100),
    apps,
    durationS: int('duration-s', values['duration-s'], 1, 600),
    rounds: int('rounds', values.rounds, 1, 100),
    concurrency: int('concurrency', values.concurrency, 1, 256),
    dbMembers: int('db-members', values['db-members'], 1, 5),
    throughputApps: list('throughput', values.throughput).filter((a) => apps.includes(a)),
    json: values.json,
    out: values.out,
  };
}

/** Waits until every node reports the releases installed, so that the first deploy does not pay for it. */
async function softwareAvailable(platform: HyperDbPlatform, releases: string[]): Promise<void> {
  const deadline = performance.now() + 300_000;
  for (const node of platform.nodes) {
    for (;;) {
      const list = (await platform.admin.call('listSoftwareStatus', { computer_guid: node.id })).result_list;
      const states = releases.map((r) => list.find((e) => e.software_release_uri === r)?.reported_state);
      if (states.every((x) => x === 'available')) break;
      if (states.includes('error')) throw new Error(`${node.id}: installing ${releases.join(', ')} failed`);
      if (performance.now() > deadline) throw new Error(`${node.id}: ${releases.join(', ')} not installed in 300 s`);
      await sleep(200);
    }
  }
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  const loadAverageAtStart = os.loadavg()[0] ?? Number.NaN;
  const home = mkdtempSync(join(os.tmpdir(), 'hox-bench-deploy-'));
  let platform: HyperDbPlatform | undefined;
  let hox: HoxCli | undefined;
  let cleaning: Promise<void> | undefined;
  const cleanup = (): Promise<void> =>
    (cleaning ??= (async () => {
      log('cleanup: stopping the CLI calls, the nodes (every partition process and user) and the master');
      hox?.killAll();
      await platform?.stop().catch((e: unknown) => log(`cleanup: ${String(e)}`));
      rmSync(home, { recursive: true, force: true });
    })());
  for (const signal of ['SIGINT', 'SIGTERM'] as const)
    process.on(signal, () => {
      log(`${signal}: cleaning up`);
      void cleanup().finally(() => process.exit(130));
    });

  try {
    const t0 = performance.now();
    platform = await startHyperDbPlatform({
      nodes: NODES,
      partitions: PARTITIONS_PER_NODE,
      nodeIdPrefix: NODE_ID_PREFIX,
      releases: ['hyper_db', 'hyper_edge'],
    });
    await softwareAvailable(platform, ['hyper_db', 'hyper_edge']);
    const platformMs = performance.now() - t0;
    log(`setup: master and ${NODES} nodes, hyper_db and hyper_edge installed, in ${(platformMs / 1000).toFixed(1)} s`);
    hox = new HoxCli({
      root: ROOT,
      masterUrl: platform.master.url,
      adminToken: platform.master.adminToken,
      configPath: join(home, 'config.json'),
    });
    const cliStartupMs: number[] = [];
    for (let i = 0; i < 3; i++) cliStartupMs.push((await hox.ok(['app', 'list'])).wallMs);
    let dbClusterMs: number | null = null;
    if (options.apps.some((a) => APPS[a]!.addon)) {
      const db = await hox.ok(['db', 'create', 'db', '--members', String(options.dbMembers), '--wait']);
      dbClusterMs = db.wallMs;
      log(`setup: hyper_db cluster 'db' (${options.dbMembers} members) in ${(dbClusterMs / 1000).toFixed(1)} s`);
    }

    const ctx = {
      platform,
      hox,
      root: ROOT,
      concurrency: options.concurrency,
      log,
    };
    const runs: Record<string, DeployRun[]> = {};
    const errors: Record<string, string[]> = {};
    const throughputRows: ThroughputRow[] = [];
    for (const name of options.apps) {
      const app = APPS[name]!;
      runs[name] = [];
      errors[name] = [];
      for (let run = 1; run <= options.runs; run++) {
        const last = run === options.runs && options.throughputApps.includes(name);
        try {
          runs[name].push(
            await deployRun(
              ctx,
              app,
              run,
              last ? async () => void throughputRows.push(...(await throughput(ctx, app, options))) : undefined,
            ),
          );
        } catch (error) {
          // Interrupted: the signal handler cleans up and exits; nothing more to report.
          if (cleaning !== undefined) return;
          const message = error instanceof Error ? error.message : String(error);
          log(`${name} run ${run} failed: ${message}`);
          errors[name].push(`run ${run}: ${message.split('\n')[0] ?? ''}`);
          await hox.run(['app', 'destroy', name, '--yes']);
        }
      }
    }

    const results: Results = {
      command: `npx tsx bench/deploy/run.ts ${process.argv.slice(2).join(' ')}`.trim(),
      machine: {
        cpus: os.cpus().length,
        cpuModel: os.cpus()[0]?.model ?? null,
        node: process.version,
        loadAverageAtStart,
      },
      options,
      apps: options.apps.map((a) => ({ name: a, runtime: APPS[a]!.runtime, loadPath: APPS[a]!.loadPath })),
      setup: { platformMs, dbClusterMs, cliStartupMs },
      runs,
      errors,
      throughput: throughputRows,
    };
    if (options.out !== undefined) writeFileSync(options.out, `${JSON.stringify(results, null, 2)}\n`);
    if (options.json) process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
    else printReport(results);
  } finally {
    await cleanup();
  }
}

main().catch((error: unknown) => {
  process.stderr.write(
    `bench/deploy failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
  );
  process.exitCode = 1;
});
