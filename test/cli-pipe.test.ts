/**
 * `hox … | head`: a reader that goes away is a normal end. The binary's root
 * (src/bin/hox.ts) turns EPIPE on stdout or stderr into a quiet exit 0, after
 * stopping what the command runs, for every command. Each case closes the
 * reading end of the child's stdout before the child writes, as `head` does
 * once it has its lines.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestMaster, type TestMaster } from '../src/testing/test-master.js';
import { HOX_FROM_SOURCES, ROOT } from './support/hox-cli.js';

interface ClosedRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
}

/** Runs hox from the sources with its stdout (or stderr) closed on the reading side at once. */
function runWithClosedOutput(args: string[], env: NodeJS.ProcessEnv, close: 'stdout' | 'stderr'): Promise<ClosedRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...HOX_FROM_SOURCES, ...args], {
      cwd: ROOT,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    if (close === 'stdout') {
      child.stdout.destroy();
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    } else {
      child.stderr.destroy();
      child.stdout.resume();
    }
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stderr });
    });
  });
}

describe('hox with its output closed early', () => {
  let master: TestMaster;
  let home: string;
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    master = await startTestMaster();
    home = mkdtempSync(join(tmpdir(), 'hox-cli-pipe-'));
    env = {
      PATH: process.env.PATH,
      HOME: home,
      HOX_CONFIG: join(home, 'config.json'),
      HOX_MASTER_URL: master.url,
      HOX_TOKEN: master.adminToken,
    };
    for (const title of ['pipe-a', 'pipe-b']) {
      // No node: the trees exist without a partition, which `hox list` shows all the same.
      await master.admin
        .call('requestInstance', { title, software_release_uri: 'demo', software_type: 'default' })
        .catch(() => undefined);
    }
  });

  afterAll(async () => {
    await master?.stop();
    if (home !== undefined) rmSync(home, { recursive: true, force: true });
  });

  it.each(['--help', 'list', 'releases', 'nodes', 'app list'])(
    'hox %s exits 0 without a stack trace',
    async (line: string) => {
      const run = await runWithClosedOutput(line.split(' '), env, 'stdout');
      expect(run.stderr).not.toMatch(/EPIPE|Unhandled|at .*\.(js|ts):\d+/);
      expect(run).toMatchObject({ code: 0, signal: null });
    },
  );

  it('a failing command keeps its exit code when stderr is closed', async () => {
    const run = await runWithClosedOutput(['show', 'no-such-tree'], env, 'stderr');
    expect(run.code).toBe(1);
  });

  it('hox master stops its master and exits 0 once nobody reads its output', async () => {
    const dataDir = join(home, 'master');
    const run = await runWithClosedOutput(
      ['master', '--data-dir', dataDir, '--listen', '127.0.0.1:0', '--log-level', 'error'],
      env,
      'stdout',
    );
    expect(run.stderr).toContain('stdout closed: stopping');
    expect(run.stderr).not.toMatch(/EPIPE|Unhandled/);
    expect(run).toMatchObject({ code: 0, signal: null });
  });
});
