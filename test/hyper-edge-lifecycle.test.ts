/**
 * hyper_edge's life after the first deploy, through the `hox` CLI, on a master and two real `hox node`
 * processes with hyper_edge only (no database: no hyper_db lock needed): what a user sees (the CLI's
 * output and --json, the public URL's answers) and what is real (processes, instances, partitions).
 *
 * - a release that fails on one of two replicas after the other has switched is rolled back on both;
 * - a failing `release` command (Procfile `release:`) is rolled back, and the failed release is listed;
 * - `rollback --to`;
 * - scale-down stops the replica and frees its partition before the CLI returns;
 * - a crashed `web` is restarted with a growing delay, the app saying `down` (and `hox list` `error`)
 *   until it is healthy again;
 * - an app whose first release never served is `down`, and a failed second release does not claim that
 *   the first keeps serving (issue 13, items 1, 2, 3, 15 and its "untested today" list).
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHyperDbPlatform, type HyperDbPlatform } from '../src/testing/hyperdb-platform.js';
import { appLogs } from '../src/testing/app-logs.js';
import { runHox, type HoxRun } from './support/hox-cli.js';

/** The test app: says which version and replica answered; its health check fails on the replica named by FAIL_ON. */
const SERVER = `import { createServer } from 'node:http';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
const version = process.env.HOX_APP_VERSION;
const replica = process.env.HOX_REPLICA;
// A file the test drops into the partition keeps the web process from starting (a crash loop).
if (existsSync(join(process.env.HOME, 'stay-down'))) {
  console.error('stay-down present: exiting');
  process.exit(3);
}
const server = createServer((req, res) => {
  if (req.url === '/healthz') {
    const failing = process.env.FAIL_ON === replica;
    res.writeHead(failing ? 500 : 200);
    return res.end(failing ? 'failing here\\n' : 'ok\\n');
  }
  if (req.url === '/pid') return res.end(String(process.pid));
  res.end(\`life \${version} on \${replica}\${process.env.GREETING ? ': ' + process.env.GREETING : ''}\\n\`);
});
server.keepAliveTimeout = 1000;
server.listen(Number(process.env.PORT), process.env.HOST);
process.on('SIGTERM', () => server.close(() => process.exit(0)));
`;

interface Status {
  release: number | null;
  health: string;
  health_message: string | null;
  url: string;
  replicas: {
    name: string;
    upstream: string;
    serving: number | null;
    web_down: { reason: string; restarts: number } | null;
  }[];
  releases: { id: number; description: string; failed?: { replica: string; reason: string } }[];
}

function writeApp(dir: string, procfile: string, toml = '[healthcheck]\npath = "/healthz"\ntimeout = 6\n'): void {
  writeFileSync(
    join(dir, 'package.json'),
    '{ "name": "life", "version": "1.0.0", "private": true, "type": "module" }\n',
  );
  writeFileSync(join(dir, 'server.js'), SERVER);
  writeFileSync(join(dir, 'Procfile'), procfile);
  writeFileSync(join(dir, 'hox.toml'), toml);
}

/** Pids whose working directory is inside `dir`. */
function processesUnder(dir: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cwd = readlinkSync(`/proc/${entry}/cwd`);
      if (cwd === dir || cwd.startsWith(`${dir}/`)) pids.push(Number(entry));
    } catch {
      // gone
    }
  }
  return pids;
}

describe('hyper_edge: rollback, release command, scale-down, crashes, and saying what serves', () => {
  let p: HyperDbPlatform;
  let home: string;
  let env: NodeJS.ProcessEnv;
  const dirs: string[] = [];

  const hox = (args: string[]): Promise<HoxRun> => runHox(args, env, 240_000);
  const ok = async (args: string[]): Promise<string> => {
    const run = await hox(args);
    if (run.code !== 0)
      throw new Error(
        `hox ${args.join(' ')} exited ${run.code}\n${run.stdout}\n${run.stderr}\n${await appLogs(p, 'life', 60)}`,
      );
    return run.stdout;
  };
  const status = async (app = 'life'): Promise<Status> =>
    JSON.parse(await ok(['app', 'status', app, '--json'])) as Status;
  /** The public URL's answers to `count` requests (status and body). */
  const answers = async (url: string, count: number): Promise<string[]> => {
    const out: string[] = [];
    for (let i = 0; i < count; i++) {
      const line = await fetch(url).then(
        async (r) => `${r.status} ${(await r.text()).trim()}`,
        (error: Error) => `0 ${error.message}`,
      );
      out.push(line);
    }
    return out;
  };
  /** Polls until `check` returns a value, or fails with the last thing seen. */
  const until = async <T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> => {
    const deadline = Date.now() + timeoutMs;
    for (let i = 0; i < 600; i++) {
      const v = await check();
      if (v !== undefined) return v;
      if (Date.now() > deadline) break;
      await sleep(250);
    }
    throw new Error(`timed out waiting for ${what}\n${JSON.stringify(await status().catch(() => null))}`);
  };
  const source = (): string => {
    const dir = mkdtempSync(join(tmpdir(), 'hox-life-app-'));
    dirs.push(dir);
    return dir;
  };

  beforeAll(async () => {
    p = await startHyperDbPlatform({ nodes: 2, partitions: 4, nodeIdPrefix: 'life-node', releases: ['hyper_edge'] });
    home = mkdtempSync(join(tmpdir(), 'hox-life-cli-'));
    env = {
      ...process.env,
      HOX_CONFIG: join(home, 'config.json'),
      HOX_MASTER_URL: p.master.url,
      HOX_TOKEN: p.master.adminToken,
    };
  }, 180_000);

  afterAll(async () => {
    await p?.stop();
    for (const d of [home, ...dirs]) if (d !== undefined) rmSync(d, { recursive: true, force: true });
  }, 120_000);

  it('rolls back both replicas when one fails after the other has switched, and lists the failed release', async () => {
    const dir = source();
    writeApp(dir, 'web: node server.js\n');
    expect(await ok(['app', 'deploy', 'life', dir, '--scale', '2'])).toMatch(/v1 deployed and serving at http:/);
    const s1 = await status();
    expect(s1).toMatchObject({ release: 1, health: 'ok', health_message: null });
    const seen = new Set(await answers(s1.url, 12));
    expect([...seen].sort()).toEqual(['200 life v1 on replica-1', '200 life v1 on replica-2']);
    expect(await ok(['app', 'list'])).toMatch(/^life {2}v1 {2}ok {2}2 replica\(s\)/m);

    // v2 passes its health check on replica-1 (which switches to it) and fails on replica-2.
    const run = await hox(['app', 'config', 'set', 'life', 'FAIL_ON=replica-2']);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(
      /life: v2 failed on replica-2: health check failed after 6 s: GET \/healthz answered 500.* — rolled back: v1 keeps serving/,
    );
    // Replica-1 had switched to v2: it is back on v1, as is everything the public endpoint answers.
    const runner1 = await p.serviceLog('life', 'replica-1', 'runner');
    expect(runner1).toMatch(/v2: serving on /);
    expect(runner1.lastIndexOf('v1: serving on ')).toBeGreaterThan(runner1.indexOf('v2: serving on '));
    expect(new Set(await answers(s1.url, 12))).toEqual(
      new Set(['200 life v1 on replica-1', '200 life v1 on replica-2']),
    );
    const s2 = await status();
    expect(s2).toMatchObject({ release: 1, health: 'ok' });
    expect(s2.replicas.map((r) => r.serving)).toEqual([1, 1]);
    expect(s2.releases.map((r) => r.id)).toEqual([2, 1]);
    expect(s2.releases[0]).toMatchObject({
      id: 2,
      description: 'config: set FAIL_ON',
      failed: { replica: 'replica-2', reason: expect.stringMatching(/health check failed/) as unknown },
    });
    expect(await ok(['app', 'status', 'life'])).toMatch(
      /v2 .*config: set FAIL_ON {2}FAILED on replica-2: health check/,
    );
  }, 400_000);

  it('a failing release command is rolled back, said, and listed', async () => {
    const dir = source();
    writeApp(dir, "web: node server.js\nrelease: echo migrating; echo 'relation exists' >&2; exit 4\n");
    const run = await hox(['app', 'deploy', 'life', dir]);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(
      /v3 failed on replica-[12]: release v3: `echo migrating; .*` failed \(exit 4\):.*relation exists.* — rolled back: v1 keeps serving/s,
    );
    const s = await status();
    expect(new Set(await answers(s.url, 8))).toEqual(new Set(['200 life v1 on replica-1', '200 life v1 on replica-2']));
    expect(s).toMatchObject({ release: 1, health: 'ok' });
    expect(s.releases.map((r) => [r.id, r.failed === undefined])).toEqual([
      [3, false],
      [2, false],
      [1, true],
    ]);
  }, 300_000);

  it('rollback --to a release of the history; a failed or unknown one is refused', async () => {
    await ok(['app', 'config', 'set', 'life', 'GREETING=hi']);
    await ok(['app', 'config', 'set', 'life', 'GREETING=yo']);
    const url = (await status()).url;
    expect(new Set(await answers(url, 8))).toEqual(
      new Set(['200 life v5 on replica-1: yo', '200 life v5 on replica-2: yo']),
    );
    for (const to of ['3', '99']) {
      const refused = await hox(['app', 'rollback', 'life', '--to', to]);
      expect(refused.code).toBe(2);
      expect(refused.stderr).toContain(`app 'life' has no release v${to} in its history (v4, v1)`);
    }
    expect(await ok(['app', 'rollback', 'life', '--to', '4'])).toContain('v6 rolled back to v4 and serving');
    expect(new Set(await answers(url, 8))).toEqual(
      new Set(['200 life v6 on replica-1: hi', '200 life v6 on replica-2: hi']),
    );
    const s = await status();
    expect(s).toMatchObject({ release: 6, health: 'ok' });
    expect(s.releases[0]).toMatchObject({ id: 6, description: 'rollback to v4' });
  }, 300_000);

  it('scale-down stops the replica and frees its partition before the CLI returns', async () => {
    const partition2 = await p.partitionPath('life', 'replica-2');
    expect(processesUnder(partition2).length).toBeGreaterThan(0);
    const [before] = (await p.admin.call('listTreeStatus', { title: 'life' })).result_list;
    const replica2 = before!.instance_list.find((i) => i.title === 'replica-2')!;
    const free = async () =>
      (await p.admin.call('listNodes', {})).result_list.find((n) => n.computer_guid === replica2.computer_guid)!
        .free_partition_count;
    const freeBefore = await free();
    const out = await ok(['app', 'scale', 'life', '1']);
    expect(out).toContain('life: 1 replica(s) serving v6; replica-2 stopped, partition(s) freed');
    // Reality, at once: no instance, no process in its partition, and the partition is free for another.
    const [after] = (await p.admin.call('listTreeStatus', { title: 'life' })).result_list;
    expect(after!.instance_list.map((i) => i.title).sort()).toEqual(['life', 'replica-1']);
    expect(processesUnder(partition2)).toEqual([]);
    expect(await free()).toBe(freeBefore + 1);
    expect(new Set(await answers((await status()).url, 6))).toEqual(new Set(['200 life v6 on replica-1: hi']));
    expect(await status()).toMatchObject({ health: 'ok', replicas: [{ name: 'replica-1', serving: 6 }] });
  }, 300_000);

  it('a crashed web is restarted with a growing delay; the app says down meanwhile, and ok once healthy', async () => {
    const partition = await p.partitionPath('life', 'replica-1');
    const s = await status();
    const upstream = s.replicas[0]!.upstream;
    const pid = Number(await (await fetch(`http://${upstream}/pid`)).text());
    expect(processesUnder(partition)).toContain(pid);
    writeFileSync(join(partition, 'stay-down'), '');
    process.kill(pid, 'SIGKILL');
    // What the user sees: the app down, saying why, with the restarts counted; the tree in error too.
    const down = await until('the app to say it is down', async () => {
      const now = await status();
      return now.health === 'down' && (now.replicas[0]?.web_down?.restarts ?? 0) >= 2 ? now : undefined;
    });
    expect(down.health_message).toMatch(
      /^no replica serves \(replica-1: web v6 exited \(3\): stay-down present: exiting \(restarting, \d+ restart\(s\) so far\)\)$/,
    );
    expect(await ok(['app', 'list'])).toMatch(/^life {2}v6 {2}down: no replica serves \(replica-1: web v6 exited/m);
    const tree = await until('hox list to say error', async () => {
      const [t] = (await p.admin.call('listTreeStatus', { title: 'life' })).result_list;
      return t?.health === 'error' ? t : undefined;
    });
    expect(tree.health_message).toMatch(
      /^life: promise serving: command .*serving-check\.sh'\]: exit 1: down: no replica serves \(replica-1: web v6/,
    );
    expect((await answers(s.url, 1))[0]).not.toMatch(/^200/);
    const log = await p.serviceLog('life', 'replica-1', 'runner');
    // Killed under `sh -c`: the shell reports 128 + 9, or the signal when it exec'd the command.
    expect(log).toMatch(/web v6 exited \((SIGKILL|137)\)[^\n]*; restarting in 500 ms/);
    expect(log).toMatch(/web v6 exited \(3\): stay-down present: exiting; restarting in 1000 ms/);

    // The cause goes away: the next restart serves again, and every status says ok.
    rmSync(join(partition, 'stay-down'));
    await until('the app to be ok again', async () => ((await status()).health === 'ok' ? true : undefined), 90_000);
    const [answer] = await answers(s.url, 1);
    expect(answer).toBe('200 life v6 on replica-1: hi');
    const again = Number(await (await fetch(`http://${upstream}/pid`)).text());
    expect(again).not.toBe(pid);
    expect(processesUnder(partition)).toContain(again);
    expect((await status()).replicas[0]?.web_down).toBeNull();
    await until('hox list to say ok', async () => {
      const [t] = (await p.admin.call('listTreeStatus', { title: 'life' })).result_list;
      return t?.health === 'ok' ? true : undefined;
    });
    expect(await p.serviceLog('life', 'replica-1', 'runner')).toMatch(/web v6 healthy again after \d+ restart\(s\)/);
  }, 300_000);

  it('an app whose first release never served is down, and a failed second one does not say it keeps serving', async () => {
    const dir = source();
    writeApp(dir, 'web: node server.js\n', '[build]\ncommands = ["echo compiling; exit 3"]\n');
    const first = await hox(['app', 'deploy', 'never', dir]);
    expect(first.code).toBe(1);
    expect(first.stderr).toMatch(
      /never: v1 failed on replica-1: build v1: `echo compiling; exit 3` failed \(exit 3\): compiling — nothing serves/,
    );
    const s1 = await status('never');
    expect(s1).toMatchObject({ release: 1, health: 'down' });
    expect(s1.health_message).toMatch(/^no replica serves \(replica-1: v1 failed: build v1/);
    expect(await ok(['app', 'status', 'never'])).toMatch(/^never: release v1 \(down: no replica serves/);
    expect(s1.releases).toMatchObject([{ id: 1, failed: { replica: 'replica-1' } }]);

    // v2's web never starts; v1 never served: nothing serves, and the CLI says so.
    const dir2 = source();
    writeApp(dir2, 'web: node -e "process.exit(1)"\n');
    const second = await hox(['app', 'deploy', 'never', dir2]);
    expect(second.code).toBe(1);
    expect(second.stderr).toMatch(/never: v2 failed on replica-1: web exited before it was healthy/);
    expect(second.stderr).toMatch(/rolled back to v1, which failed too \(replica-1: build v1: .*\): nothing serves/);
    expect(second.stderr).not.toContain('keeps serving');
    const s2 = await status('never');
    expect(s2).toMatchObject({ release: 1, health: 'down' });
    expect(s2.releases.map((r) => [r.id, r.failed?.replica])).toEqual([
      [2, 'replica-1'],
      [1, 'replica-1'],
    ]);
    const list = await ok(['app', 'list']);
    expect(list).toMatch(/^never {2}v1 {2}down: no replica serves/m);
    expect(list).not.toMatch(/^never .* ok /m);
    const [tree] = (await p.admin.call('listTreeStatus', { title: 'never' })).result_list;
    expect(existsSync(join(await p.partitionPath('never', 'replica-1'), 'app'))).toBe(true);
    expect(tree).toBeDefined();
    await until('hox list to say error for never', async () => {
      const [t] = (await p.admin.call('listTreeStatus', { title: 'never' })).result_list;
      return t?.health === 'error' && /promise serving: .*down: no replica serves/.test(t.health_message ?? '')
        ? true
        : undefined;
    });
    expect(readFileSync(join(await p.partitionPath('never', 'never'), 'serving-health.txt'), 'utf8')).toMatch(
      /^down: no replica serves/,
    );

    // A good deploy at last: it serves, and the release list still shows the two that failed.
    const dir3 = source();
    writeApp(dir3, 'web: node server.js\n');
    expect(await ok(['app', 'deploy', 'never', dir3])).toMatch(/never: v3 deployed and serving/);
    const s3 = await status('never');
    expect(s3).toMatchObject({ release: 3, health: 'ok' });
    expect(s3.releases.map((r) => [r.id, r.failed?.replica])).toEqual([
      [3, undefined],
      [2, 'replica-1'],
      [1, 'replica-1'],
    ]);
  }, 300_000);
});
