import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { isolatedCommand, type PartitionIsolation } from './partition-launch.js';

const isRoot = process.getuid?.() === 0;

describe.skipIf(!isRoot && process.env.CI !== 'true')('isolatedCommand (as root)', () => {
  const dirs: string[] = [];
  afterEach(() => {
    while (dirs.length > 0) rmSync(dirs.pop()!, { recursive: true, force: true });
  });

  function isolation(): PartitionIsolation {
    if (!isRoot) throw new Error('the launcher needs root (CI=true: this must not be skipped)');
    const dir = mkdtempSync('/var/tmp/hox-launch-');
    dirs.push(dir);
    for (const leaf of ['tmp', 'shm']) mkdirSync(join(dir, leaf), { mode: 0o1777 });
    spawnSync('chmod', ['1777', join(dir, 'tmp'), join(dir, 'shm')]);
    writeFileSync(join(dir, 'tmp', 'mine'), 'private\n');
    return { uid: 65534, gid: 65534, cgroupProcs: [], tmpDir: join(dir, 'tmp'), shmDir: join(dir, 'shm'), keep: [] };
  }

  it('runs the command as the user, with exactly its environment, its private /tmp, and the pid it was spawned with', () => {
    const command = isolatedCommand(isolation(), {
      file: '/bin/sh',
      args: ['-c', 'echo "$$ $(id -u):$(id -g) $(id -G)"; ls /tmp; exec /usr/bin/env -0'],
      cwd: '/usr',
      env: { PATH: '/usr/bin:/bin', ODD: 'a=b c\n$x' },
    });
    const result = spawnSync(command.file, command.args, { env: command.env, encoding: 'utf8' });
    expect(result.stderr).toBe('');
    const [first = '', listing = '', ...rest] = result.stdout.split('\n');
    const env = rest
      .join('\n')
      .split('\0')
      .filter((entry) => entry !== '');
    expect(first).toBe(`${result.pid} 65534:65534 65534`);
    expect(listing).toBe('mine');
    // The shell adds PWD; nothing of the launcher's (its HOX_LAUNCH_ENV, its own PATH) is left.
    expect(env.sort()).toEqual(['ODD=a=b c\n$x', 'PATH=/usr/bin:/bin', 'PWD=/usr']);
    // And nothing of the service's environment is on any command line.
    expect(command.args.join(' ')).not.toContain('a=b c');
  });

  it("never lets the service's LD_PRELOAD reach the root steps: only the command itself loads it", () => {
    const command = isolatedCommand(isolation(), {
      file: '/bin/true',
      args: [],
      cwd: '/',
      env: { PATH: '/usr/bin:/bin', LD_PRELOAD: '/nonexistent/hox-preload.so' },
    });
    const result = spawnSync(command.file, command.args, { env: command.env, encoding: 'utf8' });
    expect(result.status).toBe(0);
    // Five programs run (unshare, sh, mount twice, setpriv, perl, true): one complains, the last.
    expect(result.stderr.match(/hox-preload\.so/g) ?? []).toHaveLength(1);
  });
});
