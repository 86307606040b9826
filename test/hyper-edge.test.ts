/**
 * hyper_edge end to end, through the `hox` CLI, on a master and three real
 * `hox node` processes with hyper_db and hyper_edge supplied: a hyper_db
 * cluster of three members, then the pilot CRM (Node, postgres addon), the
 * Flask example (Python, postgres addon) and the hello example deployed,
 * redeployed under load, scaled, rolled back, and the CRM's data checked
 * across a database failover.
 */
import { cpSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { healthy, signalAll, startHyperDbPlatform, type HyperDbPlatform } from '../src/testing/hyperdb-platform.js';
import { appLogs } from '../src/testing/app-logs.js';
import { startHttpLoad } from '../src/testing/http-load.js';
import { signInToCrm, TEST_CRM_ADMIN_PASSWORD, type CrmClient } from './support/crm-client.js';
import { ROOT, runHox, type HoxRun } from './support/hox-cli.js';

const CLUSTER = 'db';

/** Pids whose working directory and argv match (a replica's runner, its app's processes). */
function processesWhere(match: (cwd: string, argv: string[]) => boolean): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cwd = readlinkSync(`/proc/${entry}/cwd`);
      if (match(cwd, readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0'))) pids.push(Number(entry));
    } catch {
      // gone, or not ours to read
    }
  }
  return pids;
}

describe('hyper_edge: apps through the CLI', () => {
  let p: HyperDbPlatform;
  let home: string;
  let env: NodeJS.ProcessEnv;
  const report: string[] = [];
  /** The CRM's administrator, signed in once the CRM is deployed. */
  let crm: CrmClient;

  const hox = (args: string[], timeoutMs = 300_000): Promise<HoxRun> => runHox(args, env, timeoutMs);

  /** Runs hox and expects success; on failure, the output and the app's logs make the message. */
  const ok = async (args: string[], app?: string): Promise<string> => {
    const run = await hox(args);
    if (run.code !== 0)
      throw new Error(
        `hox ${args.join(' ')} exited ${run.code}\n${run.stdout}\n${run.stderr}\n${app ? await logs(app) : ''}`,
      );
    return run.stdout;
  };

  const appUrl = async (app: string): Promise<string> => {
    const status = JSON.parse(await ok(['app', 'status', app, '--json'])) as { url: string };
    return status.url;
  };

  const logs = (app: string): Promise<string> => appLogs(p, app);

  beforeAll(async () => {
    p = await startHyperDbPlatform({
      nodes: 3,
      partitions: 5,
      nodeIdPrefix: 'edge-node',
      releases: ['hyper_db', 'hyper_edge'],
    });
    home = mkdtempSync(join(tmpdir(), 'hox-edge-cli-'));
    env = {
      ...process.env,
      HOX_CONFIG: join(home, 'config.json'),
      HOX_MASTER_URL: p.master.url,
      HOX_TOKEN: p.master.adminToken,
      // Debian's python3 (with python3-flask and python3-psycopg2) for the Flask app's build.
      PATH: `/usr/bin:${process.env.PATH ?? ''}`,
    };
    await ok(['db', 'create', CLUSTER, '--members', '3', '--wait', '--timeout', '240']);
  }, 300_000);

  afterAll(async () => {
    if (report.length > 0) console.log(`hyper_edge figures:\n  ${report.join('\n  ')}`);
    await p?.stop();
    if (home !== undefined) rmSync(home, { recursive: true, force: true });
  }, 120_000);

  it('rejects a bad hox.toml before uploading anything, naming the key', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hox-edge-bad-'));
    try {
      cpSync(join(ROOT, 'examples', 'hello'), dir, { recursive: true });
      writeFileSync(join(dir, 'hox.toml'), '[run]\nwbe = "node server.js"\n[healthcheck]\npath = "healthz"\n');
      const run = await hox(['app', 'deploy', 'bad', dir]);
      expect(run.code).toBe(2);
      expect(run.stderr).toContain("'run.wbe'");
      expect(run.stderr).toMatch(/healthcheck\.path/);
      // Nothing was requested.
      await expect(p.admin.call('listTreeStatus', { title: 'bad' })).rejects.toThrow(/not found/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('deploys the CRM with its postgres addon: pages read and write the database', async () => {
    const t = performance.now();
    const out = await ok(['app', 'deploy', 'crm', join(ROOT, 'examples', 'crm')], 'crm');
    report.push(`CRM deploy (npm ci, migration, health) → serving: ${Math.round(performance.now() - t)} ms`);
    expect(out).toMatch(/v1 deployed and serving at http:\/\//);
    const url = await appUrl('crm');
    // The CRM asks to sign in; the test chooses the first administrator's password (a config var overrides the
    // generated CRM_ADMIN_PASSWORD), which makes release v2.
    expect((await fetch(new URL('/companies', url), { redirect: 'manual' })).status).toBe(303);
    await ok(['app', 'config', 'set', 'crm', `CRM_ADMIN_PASSWORD=${TEST_CRM_ADMIN_PASSWORD}`], 'crm');
    crm = await signInToCrm(url);
    const created = await crm.post('/companies', { name: 'Abilian', website: 'https://abilian.com', notes: 'pilot' });
    expect(created.status).toBe(303);
    expect((await crm.get('/companies')).body).toContain('Abilian');
    expect((await crm.get('/search?q=abil')).body).toContain('Abilian');
    // The app got the addon's variables, and they are hyper_db's read-write endpoint.
    const config = JSON.parse(await ok(['app', 'config', 'list', 'crm', '--json'])) as { env: Record<string, string> };
    // Only the config var set above: the addon's variables are not config, they come from the database.
    expect(Object.keys(config.env)).toEqual(['CRM_ADMIN_PASSWORD']);
  }, 300_000);

  it('redeploys and changes config under load with zero failed requests', async () => {
    const url = await appUrl('crm');
    const load = startHttpLoad(new URL('/companies', url).toString(), {
      concurrency: 4,
      headers: { cookie: crm.cookie },
    });
    await sleep(500);
    const t = performance.now();
    await ok(['app', 'deploy', 'crm', join(ROOT, 'examples', 'crm')], 'crm');
    const redeployMs = performance.now() - t;
    await ok(['app', 'config', 'set', 'crm', 'CRM_TITLE=Pilot'], 'crm');
    await sleep(500);
    const result = await load.stop();
    report.push(
      `CRM redeploy under load: ${Math.round(redeployMs)} ms; ${result.ok} requests, ${result.failures.length} failed`,
    );
    expect(result.failures, JSON.stringify(result.failures.slice(0, 5))).toEqual([]);
    expect(result.ok).toBeGreaterThan(50);
    const status = JSON.parse(await ok(['app', 'status', 'crm', '--json'])) as { release: number };
    expect(status.release).toBe(4);
    // The data is still there (same database).
    expect((await crm.get('/companies')).body).toContain('Abilian');
  }, 300_000);

  it('a release whose health check fails is rolled back: the previous one keeps serving', async () => {
    await ok(['app', 'deploy', 'hello', join(ROOT, 'examples', 'hello')], 'hello');
    const url = await appUrl('hello');
    expect(await (await fetch(url)).text()).toContain('hello from v1');
    const run = await hox(['app', 'config', 'set', 'hello', 'FAIL_HEALTH=1']);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/v2 failed on replica-1: health check failed .*500.*rolled back: v1 keeps serving/s);
    expect(await (await fetch(url)).text()).toContain('hello from v1');
    const status = JSON.parse(await ok(['app', 'status', 'hello', '--json'])) as {
      release: number;
      replicas: { serving: number; failed: { release: number } | null }[];
    };
    expect(status.release).toBe(1);
    expect(status.replicas[0]?.serving).toBe(1);
    // The failed config was not kept: the next release starts from v1's.
    const config = JSON.parse(await ok(['app', 'config', 'list', 'hello', '--json', '--reveal'])) as {
      env: Record<string, string>;
    };
    expect(config.env).toEqual({});
  }, 300_000);

  it('scales to two replicas on two nodes, both serving through the one public endpoint; rollback', async () => {
    await ok(['app', 'config', 'set', 'hello', 'GREETING=hi'], 'hello');
    await ok(['app', 'scale', 'hello', '2'], 'hello');
    const url = await appUrl('hello');
    const seen = new Set<string>();
    for (let i = 0; i < 20 && seen.size < 2; i++) seen.add((await (await fetch(url)).text()).trim());
    expect([...seen].sort()).toEqual(['hello from v3 on replica-1: hi', 'hello from v3 on replica-2: hi']);
    const [tree] = (await p.admin.call('listTreeStatus', { title: 'hello' })).result_list;
    const nodes = new Set(
      tree!.instance_list.filter((i) => i.title.startsWith('replica-')).map((i) => i.computer_guid),
    );
    expect(nodes.size).toBe(2);
    // The worker runs on the first replica only.
    const runnerLogs = await logs('hello');
    expect(runnerLogs).toMatch(/--- replica-1 runner\.log ---[^]*\[ticker\.1 v3\] tick \d+ \(v3\)/);
    expect(runnerLogs).not.toMatch(/--- replica-2 runner\.log ---[^-]*\[ticker/);
    const out = await ok(['app', 'rollback', 'hello'], 'hello');
    expect(out).toContain('rolled back to v1');
    for (let i = 0; i < 4; i++) expect(await (await fetch(url)).text()).toMatch(/^hello from v4 on replica-[12]\n$/);
  }, 300_000);

  it('a runner killed with SIGKILL comes back, stops what it left behind and serves the same release', async () => {
    const partition = await p.partitionPath('hello', 'replica-1');
    const status = JSON.parse(await ok(['app', 'status', 'hello', '--json'])) as {
      replicas: { name: string; upstream: string }[];
    };
    const upstream = status.replicas.find((r) => r.name === 'replica-1')!.upstream;
    const runners = () =>
      processesWhere((cwd, argv) => cwd === partition && argv.some((a) => a.includes('runner/main')));
    const webs = () => processesWhere((cwd) => cwd.startsWith(join(partition, 'app', 'releases')));
    const [runner] = runners();
    const before = webs();
    expect(runner).toBeDefined();
    expect(before.length).toBeGreaterThan(0);
    process.kill(runner!, 'SIGKILL');
    let answer = '';
    for (let i = 0; i < 150; i++) {
      const again = runners();
      if (again.length === 1 && again[0] !== runner && before.every((pid) => !webs().includes(pid))) {
        answer = await fetch(`http://${upstream}/`)
          .then((r) => r.text())
          .catch(() => '');
        if (answer.startsWith('hello from v4 on replica-1')) break;
      }
      await sleep(200);
    }
    expect(answer).toMatch(/^hello from v4 on replica-1/);
    expect(before.filter((pid) => webs().includes(pid))).toEqual([]);
  }, 120_000);

  it('deploys the Flask app (Python, Debian packages) with its postgres addon', async () => {
    await ok(['app', 'deploy', 'notes', join(ROOT, 'examples', 'flask-notes')], 'notes');
    const url = await appUrl('notes');
    const posted = await fetch(new URL('/notes', url), {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'body=buy+milk',
      redirect: 'manual',
    });
    expect([302, 303]).toContain(posted.status);
    expect(await (await fetch(url)).text()).toContain('buy milk');
  }, 300_000);

  it('serves a static site; a release whose build fails is rolled back, saying why', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hox-edge-site-'));
    try {
      writeFileSync(join(dir, 'index.html'), '<h1>static v1</h1>\n');
      await ok(['app', 'deploy', 'site', dir], 'site');
      const url = await appUrl('site');
      expect(await (await fetch(url)).text()).toBe('<h1>static v1</h1>\n');
      writeFileSync(join(dir, 'index.html'), '<h1>static v2</h1>\n');
      writeFileSync(join(dir, 'hox.toml'), 'runtime = "static"\n[build]\ncommands = ["echo compiling; exit 3"]\n');
      const run = await hox(['app', 'deploy', 'site', dir]);
      expect(run.code).toBe(1);
      expect(run.stderr).toMatch(
        /v2 failed on replica-1: build v2: `echo compiling; exit 3` failed \(exit 3\): compiling — rolled back: v1 keeps serving/,
      );
      expect(await (await fetch(url)).text()).toBe('<h1>static v1</h1>\n');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 300_000);

  it("the CRM's data survives a database failover, and it writes again afterwards", async () => {
    const before = await p.waitForCluster(CLUSTER, healthy(3), 60_000);
    const victim = before.members.find((m) => m.role === 'primary')!;
    const [tree] = (await p.admin.call('listTreeStatus', { title: CLUSTER })).result_list;
    const node = tree!.instance_list.find((i) => i.title === victim.name)!.computer_guid!;
    p.killAgent(node);
    signalAll(await p.memberPids(CLUSTER, victim.name), 'SIGKILL');
    await p.waitForCluster(CLUSTER, (s) => s.primary !== null && s.primary !== victim.name, 60_000);
    // The session lives in the database too: it survives the failover.
    let created = 0;
    for (let i = 0; i < 100 && created !== 303; i++) {
      created = (await crm.post('/companies', { name: 'After failover' })).status;
      if (created !== 303) await sleep(200);
    }
    expect(created).toBe(303);
    const page = (await crm.get('/companies')).body;
    expect(page).toContain('Abilian');
    expect(page).toContain('After failover');
    p.startAgent(node);
  }, 300_000);
});
