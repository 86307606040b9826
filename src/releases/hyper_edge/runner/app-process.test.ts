import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { AppProcess, outputSummary, runToCompletion } from './app-process.js';

/** Live (not zombie) processes of a process group, from /proc. */
function liveMembers(group: number): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const [state, , pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(pgrp) === group && state !== 'Z') found.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

describe('runToCompletion', () => {
  it('tells the process group as soon as the command starts, so a restarted runner can kill what a build left running', async () => {
    let group: number | undefined;
    const run = runToCompletion({
      label: 'build test',
      // A child of its own in the background, as npm's scripts have: killing the shell alone would leave it.
      command: 'sleep 30 & echo $! > /dev/null; sleep 30',
      cwd: '/tmp',
      env: { PATH: '/usr/bin:/bin' },
      log: () => {},
      timeoutMs: 60_000,
      onSpawn: (pid) => (group = pid),
    });
    expect(group).toBeGreaterThan(1);
    await sleep(200);
    expect(liveMembers(group!).length).toBe(3); // the shell and its two sleeps
    // What the next runner does with the recorded groups.
    process.kill(-group!, 'SIGKILL');
    await expect(run).rejects.toThrow(/killed by SIGKILL/);
    for (let i = 0; i < 50 && liveMembers(group!).length > 0; i++) await sleep(20);
    expect(liveMembers(group!)).toEqual([]);
  });
});

describe('outputSummary', () => {
  it("keeps npm's first error paragraph and leaves out its help text and debug log line", () => {
    const lines = [
      '> x@1.0.0 build',
      'npm error code ENOENT',
      'npm error syscall open',
      'npm error path /app/package.json',
      'npm error errno -2',
      'npm error',
      'npm error A complete log of this run can be found in: /app/.npm/_logs/debug-0.log',
    ];
    expect(outputSummary(lines)).toBe(
      'npm error code ENOENT | npm error syscall open | npm error path /app/package.json',
    );
  });

  it('any other output: its last lines', () => {
    const lines = ['one', 'two', 'three', 'four', 'five', 'six'];
    expect(outputSummary(lines)).toBe('two | three | four | five | six');
    expect(outputSummary([])).toBe('');
  });
});

describe('a node app with no start script', () => {
  it("fails with npm's own line and the fix, not npm's help text", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hox-nostart-'));
    try {
      writeFileSync(join(dir, 'package.json'), '{ "name": "nostart", "version": "1.0.0" }\n');
      const run = runToCompletion({
        label: 'web v1',
        command: 'npm start',
        cwd: dir,
        env: { PATH: `${dirname(process.execPath)}:/usr/bin:/bin`, HOME: dir, npm_config_update_notifier: 'false' },
        log: () => {},
        timeoutMs: 60_000,
      });
      const error = await run.then(
        () => new Error('npm start succeeded'),
        (e: unknown) => e as Error,
      );
      expect(error.message).toMatch(/failed \(exit 1\): npm error Missing script: "start" — add a "start" script/);
      expect(error.message).toContain(
        "a Procfile line that starts the server on $HOST:$PORT, e.g. 'web: node index.js'",
      );
      expect(error.message).not.toMatch(/Did you mean|Mark your favorite|complete log/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});

describe('AppProcess for hox app run and hox app ps', () => {
  it('runs an argument vector without a shell, and says when the program cannot start', async () => {
    const lines: string[] = [];
    const p = new AppProcess({
      label: 'run.x v1',
      command: 'unused',
      argv: ['/bin/echo', '$HOME', 'a;b'],
      cwd: '/tmp',
      env: { PATH: '/usr/bin:/bin', HOME: '/nowhere' },
      log: (line) => lines.push(line),
    });
    expect(await p.exited).toEqual({ code: 0, signal: null });
    await sleep(100);
    expect(lines).toEqual(['[run.x v1] $HOME a;b']);
    const missing = new AppProcess({
      label: 'run.y v1',
      command: 'unused',
      argv: ['no-such-program-here'],
      cwd: '/tmp',
      env: { PATH: '/usr/bin:/bin' },
      log: (line) => lines.push(line),
    });
    expect((await missing.exited).code).toBe(127);
    expect(lines.at(-1)).toMatch(/^\[run\.y v1\] cannot start: spawn no-such-program-here ENOENT/);
  });

  it("mainPid is the shell's only child (the command itself), the pid the app sees", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hox-main-pid-'));
    try {
      const p = new AppProcess({
        label: 'web v1',
        command: `sleep 20; echo done`,
        cwd: dir,
        env: { PATH: '/usr/bin:/bin' },
        log: () => {},
      });
      let main: number | null = null;
      for (let i = 0; i < 50 && (main === null || main === p.child.pid); i++) {
        await sleep(50);
        main = p.mainPid();
      }
      expect(main).not.toBe(p.child.pid);
      expect(readFileSync(`/proc/${main}/cmdline`, 'utf8').split('\0')[0]).toBe('sleep');
      await p.stop(2000);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
