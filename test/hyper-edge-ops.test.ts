/**
 * `hox app ps`, `hox app logs`, `hox app restart` and `hox app run` (issue 13, items 12 and 13), through the `hox` CLI as a user,
 * on a master and two real `hox node` processes with hyper_edge only (no database: no hyper_db lock needed).
 * One platform and one app of 2 replicas (one per node) for the file:
 *
 * - ps shows each replica's web process with a pid that is a real process, its node and partition;
 * - logs prints the lines each replica's web process wrote (--process web: those only); --follow prints a
 *   line written after it started, and Ctrl-C ends it at once, without an error;
 * - restart gives every replica a new web process (pids and start times change, the old ones are gone)
 *   while the public URL keeps answering every request;
 * - run prints the output of a command reading a config var, exits with its exit code, leaves nothing
 *   behind; the command is an argument vector (no shell unless asked);
 * - an unknown app, and another user's app, are refused with a clear error.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHyperDbPlatform, type HyperDbPlatform } from '../src/testing/hyperdb-platform.js';
import { appLogs } from '../src/testing/app-logs.js';
import { HOX_FROM_SOURCES, ROOT, runHox, type HoxRun } from './support/hox-cli.js';

const SERVER = `import { createServer } from 'node:http';
const server = createServer((req, res) => {
  if (req.url === '/healthz') return res.end('ok\\n');
  if (req.url.startsWith('/say/')) console.log(\`ops got \${req.url}\`);
  res.end(\`ops \${process.env.HOX_APP_VERSION} on \${process.env.HOX_REPLICA} pid \${process.pid}\\n\`);
});
server.keepAliveTimeout = 1000;
server.listen(Number(process.env.PORT), process.env.HOST, () => console.log(\`ops listening on \${process.env.HOX_REPLICA}\`));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
`;

interface PsRow {
  replica: string;
  node: string | null;
  partition: string | null;
  process: string | null;
  type: string | null;
  state: string;
  pid: number | null;
  started_at: string | null;
  uptime_s: number | null;
  restarts: number;
  release: number | null;
}

describe('hox app ps, restart and run', () => {
  let p: HyperDbPlatform;
  let home: string;
  let env: NodeJS.ProcessEnv;
  let bobEnv: NodeJS.ProcessEnv;
  let aliceToken: string;
  let url: string;
  const dirs: string[] = [];

  const hox = (args: string[], as = env): Promise<HoxRun> => runHox(args, as, 240_000);
  const ok = async (args: string[]): Promise<string> => {
    const run = await hox(args);
    if (run.code !== 0)
      throw new Error(
        `hox ${args.join(' ')} exited ${run.code}\n${run.stdout}\n${run.stderr}\n${await appLogs({ ...p, admin: p.admin.withToken(aliceToken) }, 'ops', 60)}`,
      );
    return run.stdout;
  };
  const ps = async (): Promise<PsRow[]> =>
    (JSON.parse(await ok(['app', 'ps', 'ops', '--json'])) as { processes: PsRow[] }).processes;
  const webPids = (rows: PsRow[]): number[] => rows.filter((r) => r.type === 'web').map((r) => r.pid!);

  beforeAll(async () => {
    // Nodes relay metrics every 5 s (30 s by default): the metrics test waits for them.
    p = await startHyperDbPlatform({
      nodes: 2,
      partitions: 3,
      nodeIdPrefix: 'ops-node',
      releases: ['hyper_edge'],
      usageIntervalS: 5,
    });
    home = mkdtempSync(join(tmpdir(), 'hox-ops-cli-'));
    const user = async (name: string) => (await p.admin.call('createUser', { name })).token;
    const base = { ...process.env, HOX_CONFIG: join(home, 'config.json'), HOX_MASTER_URL: p.master.url };
    aliceToken = await user('alice');
    env = { ...base, HOX_TOKEN: aliceToken };
    bobEnv = { ...base, HOX_TOKEN: await user('bob') };
    const dir = mkdtempSync(join(tmpdir(), 'hox-ops-app-'));
    dirs.push(dir);
    writeFileSync(
      join(dir, 'package.json'),
      '{ "name": "ops", "version": "1.0.0", "private": true, "type": "module" }\n',
    );
    writeFileSync(join(dir, 'server.js'), SERVER);
    writeFileSync(join(dir, 'Procfile'), 'web: node server.js\n');
    writeFileSync(join(dir, 'hox.toml'), '[healthcheck]\npath = "/healthz"\ntimeout = 10\n');
    const out = await ok(['app', 'deploy', 'ops', dir, '--scale', '2', '--env', 'GREETING=bonjour']);
    url = /serving at (http:\S+)/.exec(out)![1]!;
  }, 300_000);

  afterAll(async () => {
    await p?.stop();
    for (const d of [home, ...dirs]) if (d !== undefined) rmSync(d, { recursive: true, force: true });
  }, 120_000);

  it('ps shows the web process of both replicas: real pids, their nodes and partitions', async () => {
    const rows = await ps();
    expect(rows.map((r) => [r.replica, r.process, r.state, r.release, r.restarts])).toEqual([
      ['replica-1', 'web', 'running', 1, 0],
      ['replica-2', 'web', 'running', 1, 0],
    ]);
    // One replica per node (anti-affinity), each in a partition the master placed it in.
    expect(new Set(rows.map((r) => r.node))).toEqual(new Set(['ops-node-1', 'ops-node-2']));
    for (const r of rows) {
      expect(r.partition).toMatch(/\S/);
      expect(r.pid).toBeGreaterThan(1);
      // The node runs on this machine: the pid it reported is a live process, and it is what answers.
      expect(existsSync(`/proc/${r.pid}`)).toBe(true);
      expect(Date.parse(r.started_at!)).toBeLessThanOrEqual(Date.now());
      expect(r.uptime_s).toBeGreaterThanOrEqual(0);
    }
    const answered = new Set<string>();
    for (let i = 0; i < 8; i++) answered.add((await (await fetch(url)).text()).trim());
    expect(answered).toEqual(new Set(rows.map((r) => `ops v1 on ${r.replica} pid ${r.pid}`)));
    const text = await ok(['app', 'ps', 'ops']);
    expect(text).toMatch(/^ops: release v1$/m);
    expect(text).toMatch(
      new RegExp(`^ {2}replica-1 +web +running +pid ${rows[0]!.pid} +up \\S+ +restarts 0 +v1 +ops-node-\\d/`, 'm'),
    );
    expect(text).toMatch(/^ {2}replica-2 +web +running +pid \d+/m);
  }, 120_000);

  it("logs prints what the replicas' web processes wrote; --follow streams a new line and ends on Ctrl-C", async () => {
    const text = await ok(['app', 'logs', 'ops', '--process', 'web']);
    const lines = text.split('\n').filter((line) => line !== '');
    // Only web's lines, each prefixed by the runner with the process type and the release.
    expect(lines.length).toBeGreaterThan(0);
    for (const line of lines) expect(line).toMatch(/^.{24} replica-\d\/runner \| \[web(\.\d+)? v1\] /);
    for (const replica of ['replica-1', 'replica-2'])
      expect(text).toMatch(
        new RegExp(`^.{24} ${replica}/runner \\| \\[web(\\.\\d+)? v1\\] ops listening on ${replica}$`, 'm'),
      );

    const follower = spawn(
      process.execPath,
      [...HOX_FROM_SOURCES, 'app', 'logs', 'ops', '--process', 'web', '--follow'],
      { env, cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    let err = '';
    follower.stdout.on('data', (c: Buffer) => (out += c.toString()));
    follower.stderr.on('data', (c: Buffer) => (err += c.toString()));
    const exited = new Promise<number | null>((resolve) => follower.once('exit', (code) => resolve(code)));
    /** Polls (every 200 ms, at most `ms`) until `done`; says what it waited for and what it saw otherwise. */
    const until = async (what: string, done: () => boolean, ms: number): Promise<void> => {
      for (const deadline = Date.now() + ms; !done(); await sleep(200))
        if (Date.now() > deadline) throw new Error(`no ${what} after ${ms} ms:\n${out}\n${err}`);
    };
    try {
      await until('first lines', () => out.includes('ops listening on'), 60_000);
      const said = `/say/${Date.now()}`;
      expect((await fetch(new URL(said, url))).status).toBe(200);
      await until('new line', () => out.includes(`ops got ${said}`), 30_000);
      expect(out).toMatch(new RegExp(`^.{24} replica-\\d/runner \\| \\[web(\\.\\d+)? v1\\] ops got ${said}$`, 'm'));
    } finally {
      follower.kill('SIGINT');
    }
    // Ctrl-C ends it (bounded: killed otherwise) as an interrupted command does, 128 + 2, with no error.
    const code = await Promise.race([exited, sleep(15_000).then(() => 'running')]);
    if (code === 'running') follower.kill('SIGKILL');
    expect(code, err).toBe(130);
    expect(err).not.toMatch(/Error|^\s+at /m);
  }, 120_000);

  it('restart replaces every web process, one replica at a time, while the URL keeps answering', async () => {
    const before = await ps();
    // A request loop through the public endpoint for the whole restart: no request may fail.
    let stop = false;
    const results: string[] = [];
    const load = (async () => {
      for (let i = 0; i < 5000 && !stop; i++) {
        results.push(
          await fetch(url).then(
            async (r) => `${r.status} ${(await r.text()).trim()}`,
            (error: Error) => `0 ${error.message}`,
          ),
        );
        await sleep(20);
      }
    })();
    let out: string;
    try {
      out = await ok(['app', 'restart', 'ops']);
    } finally {
      stop = true;
      await load;
    }
    expect(out).toMatch(/replica-1: restarted web \(pids web \d+ → web \d+\)/);
    expect(out).toMatch(/replica-2: restarted web/);
    expect(out).toContain('ops: restarted every process on replica-1, replica-2, one replica at a time');
    // Replica-1 was done before replica-2 was asked.
    expect(out.indexOf('replica-1: restarted')).toBeLessThan(out.indexOf('replica-2: restarting'));
    expect(results.length).toBeGreaterThan(10);
    expect(results.filter((r) => !r.startsWith('200 '))).toEqual([]);

    const after = await ps();
    expect(after.map((r) => [r.replica, r.state, r.release])).toEqual([
      ['replica-1', 'running', 1],
      ['replica-2', 'running', 1],
    ]);
    for (const [i, row] of after.entries()) {
      expect(row.pid).not.toBe(before[i]!.pid);
      expect(Date.parse(row.started_at!)).toBeGreaterThan(Date.parse(before[i]!.started_at!));
      expect(existsSync(`/proc/${row.pid}`)).toBe(true);
    }
    // The old processes go once drained (the last replica's may still be finishing its requests when the CLI
    // returns: the new one already serves), and the new ones are what answers.
    for (const pid of webPids(before))
      await expect
        .poll(() => existsSync(`/proc/${pid}`), { timeout: 30_000, interval: 250, message: `old web ${pid} gone` })
        .toBe(false);
    const answered = new Set<string>();
    for (let i = 0; i < 8; i++) answered.add((await (await fetch(url)).text()).trim());
    expect(answered).toEqual(new Set(after.map((r) => `ops v1 on ${r.replica} pid ${r.pid}`)));

    // One replica only, one process type: the other replica keeps its process.
    const single = await ok(['app', 'restart', 'ops', '--process', 'web', '--replica', '2']);
    expect(single).toContain('ops: restarted web on replica-2');
    const last = await ps();
    expect(last[0]!.pid).toBe(after[0]!.pid);
    expect(last[1]!.pid).not.toBe(after[1]!.pid);
    // A process type the app does not run is refused before anything is asked.
    const unknown = await hox(['app', 'restart', 'ops', '--process', 'ticker']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain("app 'ops' runs no process of type 'ticker' (it runs: web)");
  }, 240_000);

  it("each replica's requests, latencies and web state reach the master's /metrics, labelled with the app and replica", async () => {
    for (let i = 0; i < 20; i++) expect((await fetch(url)).status).toBe(200);
    const scrape = async () =>
      await (
        await fetch(`${p.master.url}/metrics`, { headers: { authorization: `Bearer ${p.master.adminToken}` } })
      ).text();
    /** A series' value whose labels include all of `labels`. */
    const valueOf = (text: string, name: string, labels: Record<string, string>): number | undefined => {
      for (const line of text.split('\n')) {
        if (!line.startsWith(`${name}{`)) continue;
        if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`)))
          return Number(line.slice(line.lastIndexOf(' ') + 1));
      }
      return undefined;
    };
    let text = '';
    await expect
      .poll(
        async () => {
          text = await scrape();
          return ['replica-1', 'replica-2'].every(
            (r) => (valueOf(text, 'hyperedge_requests_total', { code: '200', tree: 'ops', instance: r }) ?? 0) > 0,
          );
        },
        { timeout: 60_000, interval: 1000, message: "both replicas' request counts at the master" },
      )
      .toBe(true);
    for (const replica of ['replica-1', 'replica-2']) {
      const labels = { tree: 'ops', instance: replica };
      // Every request went through one of the two replicas' proxies: their latencies too.
      expect(valueOf(text, 'hyperedge_request_duration_seconds_count', labels)).toBeGreaterThan(0);
      expect(valueOf(text, 'hyperedge_request_duration_seconds_bucket', { ...labels, le: '+Inf' })).toBe(
        valueOf(text, 'hyperedge_request_duration_seconds_count', labels),
      );
      expect(valueOf(text, 'hyperedge_web_up', labels)).toBe(1);
      expect(valueOf(text, 'hyperedge_web_restarts_total', labels)).toBe(0);
    }
    expect(text.match(/^# TYPE hyperedge_request_duration_seconds histogram$/gm)).toHaveLength(1);
    // The app's owner is alice: the series say so (hox metrics selects on it).
    const { user_id: aliceId } = (await p.admin.call('listUsers', {})).result_list.find((u) => u.name === 'alice')!;
    expect(valueOf(text, 'hyperedge_web_up', { tree: 'ops', owner: aliceId })).toBe(1);
  }, 120_000);

  it("run prints a one-off command's output with the app's environment and exits with its code", async () => {
    // Killed well before the test's own limit, so that a run that never ends shows what it printed and the
    // replicas' logs instead of a bare timeout.
    const run = await runHox(
      ['app', 'run', 'ops', '--', 'sh', '-c', 'echo "greeting=$GREETING from $HOX_APP"; echo oops >&2; exit 3'],
      env,
      75_000,
    );
    const seen = async (): Promise<string> =>
      `${run.stdout}\n${run.stderr}\n${await appLogs({ ...p, admin: p.admin.withToken(aliceToken) }, 'ops', 60)}`;
    if (run.code !== 3) expect(run.code, await seen()).toBe(3);
    expect(run.code).toBe(3);
    expect(run.stdout.split('\n')).toEqual(expect.arrayContaining(['greeting=bonjour from ops', 'oops']));
    expect(run.stderr).toMatch(/ops: running `sh -c .*` on replica-1 \(v1\)/);
    expect(run.stderr).toContain('exited with code 3');

    // An argument vector, run without a shell: `$GREETING` reaches node as is; success exits 0.
    const plain = await runHox(
      [
        'app',
        'run',
        'ops',
        '--',
        'node',
        '-e',
        'console.log(process.argv[1], process.env.GREETING, process.cwd().length > 0)',
        '$GREETING',
      ],
      env,
      75_000,
    );
    if (plain.code !== 0) expect(plain.code, `${plain.stdout}\n${plain.stderr}\n${await seen()}`).toBe(0);
    expect(plain.code).toBe(0);
    expect(plain.stdout.trim()).toBe('$GREETING bonjour true');

    // Nothing is left behind: the root lists no run, the replica publishes none.
    const alice = p.admin.withToken(aliceToken);
    const root = await alice.call('getInstanceTree', { title: 'ops' });
    expect('parameters' in root && 'runs' in root.parameters).toBe(false);
    await expect
      .poll(
        async () =>
          (await alice.call('listTreeStatus', { title: 'ops' })).result_list[0]!.instance_list.find(
            (i) => i.title === 'replica-1',
          )!.connection_parameters.runs,
        { timeout: 20_000, interval: 500 },
      )
      .toEqual([]);
  }, 180_000);

  it('Ctrl-C stops the command on its replica and removes it', async () => {
    const alice = p.admin.withToken(aliceToken);
    const replicaRuns = async (): Promise<{ id: string; state: string; pid: number | null }[]> =>
      ((await alice.call('listTreeStatus', { title: 'ops' })).result_list[0]!.instance_list.find(
        (i) => i.title === 'replica-1',
      )!.connection_parameters.runs ?? []) as { id: string; state: string; pid: number | null }[];
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        join(ROOT, 'src', 'bin', 'hox.ts'),
        'app',
        'run',
        'ops',
        '--',
        'sh',
        '-c',
        'echo waiting; exec sleep 300',
      ],
      { env, cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      for (let i = 0; i < 240 && !stdout.includes('waiting'); i++) await sleep(250);
      expect(stdout, stderr).toContain('waiting');
      const [running] = await replicaRuns();
      expect(running).toMatchObject({ state: 'running' });
      expect(existsSync(`/proc/${running!.pid}`)).toBe(true);
      child.kill('SIGINT');
      expect(await exited, 'an interrupted command exits 130, as shells expect').toBe(130);
      expect(stderr).toContain('ops: stopping `sh -c echo waiting; exec sleep 300` on replica-1');
      // The root no longer lists it; the runner stopped it and publishes no run.
      const root = await alice.call('getInstanceTree', { title: 'ops' });
      expect('parameters' in root && 'runs' in root.parameters).toBe(false);
      await expect.poll(replicaRuns, { timeout: 30_000, interval: 500 }).toEqual([]);
      await expect.poll(() => existsSync(`/proc/${running!.pid}`), { timeout: 10_000, interval: 250 }).toBe(false);
    } finally {
      child.kill('SIGKILL');
    }
  }, 180_000);

  it("refuses an unknown app, and another user's app, with a clear error", async () => {
    for (const args of [
      ['app', 'ps', 'nope'],
      ['app', 'run', 'nope', '--', 'true'],
    ]) {
      const run = await hox(args);
      expect(run.code, args.join(' ')).toBe(1);
      expect(run.stderr).toContain("app 'nope' not found");
    }
    // What the nodes reported, read as the owner without the CLI (quicker).
    const alice = p.admin.withToken(aliceToken);
    const published = async () =>
      (await alice.call('listTreeStatus', { title: 'ops' })).result_list[0]!.instance_list.filter((i) =>
        i.title.startsWith('replica-'),
      ).map((i) => JSON.stringify(i.connection_parameters.processes));
    const before = await published();
    for (const args of [
      ['app', 'ps', 'ops'],
      ['app', 'restart', 'ops'],
      ['app', 'run', 'ops', '--', 'sh', '-c', 'echo $GREETING'],
    ]) {
      const run = await hox(args, bobEnv);
      expect(run.code, args.join(' ')).toBe(1);
      expect(run.stderr).toContain("app 'ops' not found");
      expect(run.stdout).not.toContain('bonjour');
    }
    // Nothing was restarted by the refused requests.
    expect(await published()).toEqual(before);
  }, 120_000);
});
