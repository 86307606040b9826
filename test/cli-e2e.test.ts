/**
 * The README's path through the built `hox` binary, as a new user walks it:
 * `hox up`, request the demo with --wait, list, show, logs, destroy — plus the
 * exit codes for bad input and an unreachable master.
 */
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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

  const hox = (args: string[], timeoutMs = 120_000): Promise<Run> =>
    new Promise((resolve) => {
      execFile(process.execPath, [HOX, ...args], { env, timeout: timeoutMs }, (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : 1;
        resolve({ code, stdout, stderr });
      });
    });

  beforeAll(async () => {
    execFileSync('npm', ['run', '--silent', 'build'], { cwd: ROOT, stdio: 'ignore' });
    home = mkdtempSync(join(tmpdir(), 'hox-cli-'));
    chmodSync(home, 0o711); // partition users traverse it to reach their partitions
    dataDir = join(home, 'data');
    env = { ...process.env, HOX_CONFIG: join(home, 'config.json'), HOX_MASTER_URL: '', HOX_TOKEN: '' };
    delete env.HOX_MASTER_URL;
    delete env.HOX_TOKEN;
    const port = await freePort();
    up = spawn(
      process.execPath,
      [HOX, 'up', '--data-dir', dataDir, '--listen', `127.0.0.1:${port}`, '--partitions', String(PARTITIONS)],
      { env, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    up.stdout?.on('data', (chunk: Buffer) => (upOutput += chunk.toString()));
    up.stderr?.resume();
    // The summary ends with this line: wait for all of it, not just its first chunk.
    await waitFor('hox up ready', () => upOutput.includes('hox up again brings it back'), 60_000);
  });

  afterAll(async () => {
    if (up !== undefined && up.exitCode === null) {
      up.kill('SIGINT');
      await new Promise((resolve) => up!.once('exit', resolve));
    }
    await cleanUpNodePartitions('local', join(dataDir, 'node'), PARTITIONS);
    rmSync(home, { recursive: true, force: true });
  });

  it('prints where to look', () => {
    expect(upOutput).toMatch(/master: +http:\/\/127\.0\.0\.1:\d+/);
    expect(upOutput).toContain(join(dataDir, 'master', 'admin-token'));
    expect(upOutput).toContain('hox request hello --release demo --wait');
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

    const destroy = await hox(['destroy', 'hello', '--wait']);
    expect(destroy.code).toBe(0);
    expect((await hox(['list'])).stdout).toContain('no instance tree');
  });

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
    const sla = await hox(['request', 'placed', '--release', 'demo', '--sla', 'colour=blue']);
    expect(sla.code).toBe(2);
    expect(sla.stderr).toContain("SLA key 'colour'");
  });

  it('exits 3 when the master is unreachable', async () => {
    const port = await freePort();
    const unreachable = await hox(['--master', `http://127.0.0.1:${port}`, 'list']);
    expect(unreachable.code).toBe(3);
    expect(unreachable.stderr).toContain('unreachable');
  });
});
