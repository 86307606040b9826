/**
 * The README's path through the built `hox` binary, as a new user walks it:
 * `hox up`, request the demo with --wait, list, show, logs, update in place,
 * destroy (confirmed) — plus the exit codes for bad input, failures waiting
 * will not fix, and an unreachable master.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../src/testing/free-port.js';
import { cleanUpNodePartitions, waitFor } from './support/agent-harness.js';

const ROOT = join(import.meta.dirname, '..');
const HOX = join(ROOT, 'dist', 'bin', 'hox.js');
const PARTITIONS = 3;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

describe('hox CLI end to end', () => {
  let home: string;
  let dataDir: string;
  let up: ChildProcess | undefined;
  let env: NodeJS.ProcessEnv;
  let upOutput = '';
  let upStderr = '';

  const hox = (args: string[], timeoutMs = 120_000): Promise<Run> =>
    new Promise((resolve) => {
      execFile(process.execPath, [HOX, ...args], { env, timeout: timeoutMs }, (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : 1;
        resolve({ code, stdout, stderr });
      });
    });

  /** Runs hox on a terminal (a pseudo-terminal by util-linux's `script`), typing `input`. */
  const hoxOnTerminal = (args: string[], input: string): Promise<Run> =>
    new Promise((resolve) => {
      const quote = (a: string) => `'${a.replace(/'/g, `'\\''`)}'`;
      const line = [process.execPath, HOX, ...args].map(quote).join(' ');
      const child = execFile(
        'script',
        ['-qec', line, '/dev/null'],
        { env, timeout: 60_000 },
        (error, stdout, stderr) => {
          const code = error === null ? 0 : typeof error.code === 'number' ? error.code : 1;
          resolve({ code, stdout, stderr });
        },
      );
      child.stdin?.end(input);
    });

  beforeAll(async () => {
    // Not execFileSync: a build blocking the worker longer than a minute (a loaded machine) makes vitest's
    // RPC to the worker time out ("Timeout calling onTaskUpdate"), an error that fails the run.
    await promisify(execFile)('npm', ['run', '--silent', 'build'], { cwd: ROOT });
    home = mkdtempSync(join(tmpdir(), 'hox-cli-'));
    chmodSync(home, 0o711); // partition users traverse it to reach their partitions
    dataDir = join(home, 'data');
    env = { ...process.env, HOX_CONFIG: join(home, 'config.json'), HOX_MASTER_URL: '', HOX_TOKEN: '' };
    delete env.HOX_MASTER_URL;
    delete env.HOX_TOKEN;
    const port = await freePort();
    up = spawn(
      process.execPath,
      [
        HOX,
        'up',
        '--data-dir',
        dataDir,
        '--listen',
        `127.0.0.1:${port}`,
        '--partitions',
        String(PARTITIONS),
        '--no-monitor',
      ],
      { env, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    up.stdout?.on('data', (chunk: Buffer) => (upOutput += chunk.toString()));
    up.stderr?.on('data', (chunk: Buffer) => (upStderr += chunk.toString()));
    // The summary ends with this line: wait for all of it, not just its first chunk.
    await waitFor('hox up ready', () => upOutput.includes('hox up again brings it back'), 60_000);
  }, 300_000); // the build alone takes 1.5 min on a loaded machine

  afterAll(async () => {
    if (up !== undefined && up.exitCode === null) {
      up.kill('SIGINT');
      await new Promise((resolve) => up!.once('exit', resolve));
    }
    await cleanUpNodePartitions('local', join(dataDir, 'node'), PARTITIONS);
    rmSync(home, { recursive: true, force: true });
  });

  it("prints where to look, the summary last; the node's detail goes to the log file", () => {
    expect(upOutput).toMatch(/master: +https:\/\/127\.0\.0\.1:\d+/);
    expect(upOutput).toContain(join(dataDir, 'master', 'admin-token'));
    expect(upOutput).toContain('hox request hello --release demo --wait     # deploy the demo release');
    expect(upOutput).not.toContain('already done');
    expect(upOutput).toContain(`log:          ${join(dataDir, 'hox-up.log')}`);
    expect(upStderr).not.toMatch(/^node: /m);
    expect(upOutput.trimEnd().split('\n').at(-1)).toBe('Ctrl-C stops everything; hox up again brings it back.');
    const log = readFileSync(join(dataDir, 'hox-up.log'), 'utf8');
    expect(log).toMatch(/^\d{4}-\d\d-\d\dT[\d:.]+Z hox up: data dir .*, 3 partitions, node 'local'$/m);
    expect(log).toMatch(/^\d{4}-\d\d-\d\dT[\d:.]+Z node: /m);
  });

  it('requests the demo with --wait, lists, shows, reads logs and destroys it', async () => {
    const request = await hox([
      'request',
      'hello',
      '--release',
      'demo',
      '--param',
      'greeting=hi from the CLI',
      '--wait',
    ]);
    expect(request.stderr).toBe('');
    expect(request.code).toBe(0);
    expect(request.stdout).toMatch(/allocated local\/p\d/);
    const url = /url = (http:\/\/\S+)/.exec(request.stdout)?.[1];
    expect(url).toBeDefined();
    expect(await (await fetch(url!)).text()).toBe('hi from the CLI\n');

    const list = await hox(['list']);
    expect(list.code).toBe(0);
    expect(list.stdout).toMatch(/^hello +demo +started +started +ok +1 +local\/p\d/m);
    const listJson = JSON.parse((await hox(['list', '--json'])).stdout) as { title: string; health: string }[];
    expect(listJson).toEqual([expect.objectContaining({ title: 'hello', health: 'ok' })]);

    const show = await hox(['show', 'hello']);
    expect(show.code).toBe(0);
    expect(show.stdout).toContain('#access Instance correctly started');
    expect(show.stdout).toContain(`url = ${url!}`);

    const logs = await hox(['logs', 'hello']);
    expect(logs.code).toBe(0);
    expect(logs.stdout).toMatch(/hello\/http \| listening on 127\.\d+\.\d+\.\d+:\d+/);

    // The README's update in place changes the software type only: the greeting stays.
    const retyped = await hox(['request', 'hello', '--release', 'demo', '--type', 'slow-start', '--wait']);
    expect(retyped.code).toBe(0);
    expect(retyped.stderr).toBe('');
    expect(await (await fetch(url!)).text()).toBe('hi from the CLI\n');
    // New parameters replace the set, and hox says what changes.
    const regreeted = await hox(['request', 'hello', '--release', 'demo', '--param', 'greeting=bye', '--wait']);
    expect(regreeted.code).toBe(0);
    expect(regreeted.stderr).toBe(
      'hello: updating in place; its parameters change:\n  ~ greeting: hi from the CLI → bye\n',
    );
    expect(await (await fetch(url!)).text()).toBe('bye\n');

    // Destruction is confirmed: --yes without a terminal, the typed title on one.
    const unconfirmed = await hox(['destroy', 'hello']);
    expect(unconfirmed.code).toBe(2);
    expect(unconfirmed.stderr).toContain('hox destroy hello --yes');
    const mistyped = await hoxOnTerminal(['destroy', 'hello'], 'helo\n');
    expect(mistyped.code).toBe(1);
    expect(mistyped.stdout).toContain("Type 'hello' to confirm");
    expect(mistyped.stdout).toContain("not destroyed: 'helo' is not 'hello'");
    expect(await (await fetch(url!)).text()).toBe('bye\n');
    const typed = await hoxOnTerminal(['destroy', 'hello', '--wait'], 'hello\n');
    expect(typed.code, typed.stdout).toBe(0);
    expect(typed.stdout).toContain('hello: destroyed');
    expect((await hox(['list'])).stdout).toContain('no instance tree');
  }, 300_000);

  it('answers bad input with one clear line and exit 2', async () => {
    const badParam = await hox(['request', 'x', '--release', 'demo', '--param', 'no-equals-sign']);
    expect(badParam.code).toBe(2);
    expect(badParam.stderr.trim().split('\n')).toEqual([
      "hox: --param 'no-equals-sign': expected KEY=VALUE (or KEY:=JSON)",
    ]);
    const unknownFlag = await hox(['list', '--colour']);
    expect(unknownFlag.code).toBe(2);
    expect(unknownFlag.stderr).toContain("unknown option '--colour'");
    const schema = await hox([
      'request',
      'typed',
      '--release',
      'demo',
      '--param',
      'greeting:=5',
      '--wait',
      '--timeout',
      '60',
    ]);
    expect(schema.code).toBe(2);
    expect(schema.stderr).toContain('parameters.greeting: must be string');
    // A new request failing the same way is answered at once too, not after its timeout (exit 1 then).
    const again = await hox(['request', 'typed', '--release', 'demo', '--param', 'greeting:=6', '--wait']);
    expect(again.code).toBe(2);
    expect(again.stderr).toContain('~ greeting: 5 → 6');
    expect(again.stderr).toContain('parameters.greeting: must be string');
    expect((await hox(['destroy', 'typed', '--yes', '--wait'])).code).toBe(0);
    const sla = await hox(['request', 'placed', '--release', 'demo', '--sla', 'colour=blue']);
    expect(sla.code).toBe(2);
    expect(sla.stderr).toContain("SLA key 'colour'");
  }, 300_000);

  it('an app scaled beyond the free partitions fails at once naming the replica; destroying it is confirmed', async () => {
    const site = mkdtempSync(join(tmpdir(), 'hox-cli-site-'));
    try {
      writeFileSync(join(site, 'index.html'), '<h1>site</h1>\n');
      const deploy = await hox(['app', 'deploy', 'site', site], 300_000);
      expect(deploy.stderr + deploy.stdout).toContain('serving');
      expect(deploy.code).toBe(0);
      // The root and replica-1 hold 2 of the 3 partitions: replica-2 gets the last one, replica-3 none.
      const scale = await hox(['app', 'scale', 'site', String(PARTITIONS)], 300_000);
      expect(scale.code).toBe(1);
      expect(scale.stderr).toMatch(/site: replica-3 failed: no free partition/);
      expect(scale.stderr).not.toContain('timed out');
      const unconfirmed = await hox(['app', 'destroy', 'site']);
      expect(unconfirmed.code).toBe(2);
      expect(unconfirmed.stderr).toContain('hox app destroy site --yes');
      const destroyed = await hox(['app', 'destroy', 'site', '--yes']);
      expect(destroyed.code, destroyed.stderr).toBe(0);
      expect(destroyed.stdout).toContain('site: destroyed');
    } finally {
      rmSync(site, { recursive: true, force: true });
    }
  }, 600_000);

  it('exits 3 when the master is unreachable', async () => {
    const port = await freePort();
    const unreachable = await hox(['--master', `https://127.0.0.1:${port}`, 'list']);
    expect(unreachable.code).toBe(3);
    expect(unreachable.stderr).toContain('unreachable');
    // Plain http to a master this CLI holds a CA for: bad input, and no token sent.
    const plain = await hox(['--master', `http://127.0.0.1:${port}`, 'list']);
    expect(plain.code).toBe(2);
    expect(plain.stderr).toContain(`masters speak HTTPS: use https://127.0.0.1:${port}`);
  });
});
