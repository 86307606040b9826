/**
 * The supervisor against real processes: `node -e` scripts tagged with a
 * marker argument, so that every process a test started (grandchildren
 * included) can be found in /proc and killed afterwards.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { HoxError } from '../../shared/errors.js';
import { readProcStatSync, writePidRecord } from './pid-record.js';
import { Supervisor, type SupervisedService, type SupervisorEvent, type SupervisorOptions } from './supervisor.js';

const SLEEPER = 'setInterval(() => {}, 1000)';
const CRASHER = 'process.exit(1)';
const TALKER = "console.log('hello on stdout'); console.error('hello on stderr'); setInterval(() => {}, 1000)";
const STUBBORN = "process.on('SIGTERM', () => {}); console.log('ready'); setInterval(() => {}, 1000)";
const PARENT = `require('node:child_process').spawn(process.execPath, ['-e', '${SLEEPER}', process.argv[1] + '-grandchild'], { stdio: 'ignore' }); ${SLEEPER}`;

let root = '';
let partitionPath = '';
let marker = '';
let counter = 0;
const supervisors: Supervisor[] = [];
const agents: ChildProcess[] = [];

/** Live (not zombie) processes whose command line holds `tag`. */
function markedPids(tag = marker): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      if (cmdline.split('\0').some((arg) => arg.startsWith(tag)) && readProcStatSync(Number(entry))?.state !== 'Z') {
        pids.push(Number(entry));
      }
    } catch {
      // The process ended while we looked.
    }
  }
  return pids;
}

function isAlive(pid: number): boolean {
  const stat = readProcStatSync(pid);
  return stat !== null && stat.state !== 'Z';
}

/** Polls `check` until it returns a value other than undefined/false; bounded in time. */
async function waitFor<T>(
  what: string,
  check: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMs = 10_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(20);
  }
}

function killMarked(): void {
  for (const pid of markedPids()) {
    for (const target of [-pid, pid]) {
      try {
        process.kill(target, 'SIGKILL');
      } catch {
        // Already gone, or not a group leader.
      }
    }
  }
}

function newSupervisor(options: Partial<SupervisorOptions> = {}): {
  supervisor: Supervisor;
  events: SupervisorEvent[];
} {
  const events: SupervisorEvent[] = [];
  const supervisor = new Supervisor({
    stateDir: join(root, 'run'),
    logDir: (partitionId) => join(root, 'log', partitionId),
    onEvent: (event) => events.push(event),
    pollIntervalMs: 50,
    backoff: { initialMs: 50, maxMs: 200, resetAfterMs: 10_000 },
    ...options,
  });
  supervisors.push(supervisor);
  return { supervisor, events };
}

function service(
  name: string,
  script: string,
  extra: { env?: Record<string, string>; stopTimeoutMs?: number; uid?: number; gid?: number } = {},
): SupervisedService {
  return {
    partitionId: 'p0',
    spec: { name, command: [process.execPath, '-e', script, marker], stopTimeoutMs: extra.stopTimeoutMs },
    partitionPath,
    uid: extra.uid,
    gid: extra.gid,
    env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', ...extra.env },
  };
}

function only(supervisor: Supervisor, name: string) {
  const status = supervisor.status('p0').find((s) => s.name === name);
  if (status === undefined) throw new Error(`no status for '${name}'`);
  return status;
}

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'hox-supervise-'));
  partitionPath = join(root, 'p0');
  await mkdir(partitionPath);
  counter += 1;
  marker = `hox-supervise-test-${process.pid}-${counter}`;
});

afterEach(async () => {
  await Promise.all(supervisors.splice(0).map((s) => s.stop()));
  for (const agent of agents.splice(0)) agent.kill('SIGKILL');
  killMarked();
  await waitFor('test processes to die', () => markedPids().length === 0, 5_000);
  await rm(root, { recursive: true, force: true });
});

describe('Supervisor', () => {
  it('runs a service detached, with stdout and stderr appended to <logDir>/<name>.log', async () => {
    const { supervisor, events } = newSupervisor();
    await supervisor.start();
    await supervisor.ensure('p0', [service('web', TALKER)]);

    const status = only(supervisor, 'web');
    expect(status).toMatchObject({ partitionId: 'p0', state: 'running', restarts: 0, adopted: false });
    const pid = status.pid!;
    expect(isAlive(pid)).toBe(true);
    expect(readProcStatSync(pid)?.pgrp).toBe(pid); // its own process group
    expect(events).toContainEqual({ partitionId: 'p0', name: 'web', kind: 'started', pid });
    const logPath = join(root, 'log', 'p0', 'web.log');
    const log = await waitFor('both lines in the log', async () => {
      const text = existsSync(logPath) ? await readFile(logPath, 'utf8') : '';
      return text.includes('hello on stdout') && text.includes('hello on stderr') && text;
    });
    expect(log).toContain('hello on stdout');
    const record = JSON.parse(await readFile(join(root, 'run', 'p0@web.json'), 'utf8')) as Record<string, unknown>;
    expect(record).toMatchObject({ partitionId: 'p0', name: 'web', pid, startTime: readProcStatSync(pid)?.startTime });
  });

  it('is idempotent: the same spec again leaves the process alone', async () => {
    const { supervisor, events } = newSupervisor();
    await supervisor.start();
    await supervisor.ensure('p0', [service('web', SLEEPER)]);
    const pid = only(supervisor, 'web').pid;
    await supervisor.ensure('p0', [service('web', SLEEPER)]);
    await supervisor.ensure('p0', [service('web', SLEEPER)]);
    expect(only(supervisor, 'web').pid).toBe(pid);
    expect(events.filter((e) => e.kind === 'started')).toHaveLength(1);
    expect(markedPids()).toEqual([pid]);
  });

  it('restarts a crashing service with exponential backoff and counts the restarts', async () => {
    const { supervisor, events } = newSupervisor();
    await supervisor.start();
    await supervisor.ensure('p0', [service('crash', CRASHER)]);
    await waitFor('5 restarts', () => only(supervisor, 'crash').restarts >= 5);

    const delays = events.filter((e) => e.kind === 'restarting').map((e) => e.delayMs);
    expect(delays.slice(0, 5)).toEqual([50, 100, 200, 200, 200]);
    const exits = events.filter((e) => e.kind === 'exited');
    expect(exits.length).toBeGreaterThanOrEqual(5);
    expect(exits.every((e) => e.code === 1 && e.signal === null)).toBe(true);
    expect(events.filter((e) => e.kind === 'started').length).toBeGreaterThanOrEqual(5);
    expect(only(supervisor, 'crash').lastExitCode).toBe(1);
  });

  it('starts the backoff over after a run of resetAfterMs', async () => {
    const { supervisor, events } = newSupervisor({ backoff: { initialMs: 30, maxMs: 1_000, resetAfterMs: 100 } });
    await supervisor.start();
    await supervisor.ensure('p0', [service('slow-crash', 'setTimeout(() => process.exit(3), 300)')]);
    await waitFor('3 restarts', () => only(supervisor, 'slow-crash').restarts >= 3);
    expect(events.filter((e) => e.kind === 'restarting').map((e) => e.delayMs)).toEqual([30, 30, 30]);
    expect(only(supervisor, 'slow-crash').lastExitCode).toBe(3);
  });

  it('restarts a service whose spec changed, as a new process', async () => {
    const { supervisor, events } = newSupervisor();
    await supervisor.start();
    await supervisor.ensure('p0', [service('web', SLEEPER, { env: { COLOR: 'blue' } })]);
    const before = only(supervisor, 'web').pid!;
    await supervisor.ensure('p0', [service('web', SLEEPER, { env: { COLOR: 'green' } })]);

    const after = only(supervisor, 'web');
    expect(after.state).toBe('running');
    expect(after.pid).not.toBe(before);
    expect(after.restarts).toBe(0); // a deliberate restart is not a crash
    expect(isAlive(before)).toBe(false);
    expect(readFileSync(`/proc/${after.pid}/environ`, 'utf8').split('\0')).toContain('COLOR=green');
    expect(events.map((e) => e.kind)).toEqual(['started', 'stopped', 'started']);
    expect(markedPids()).toEqual([after.pid]);
  });

  it('stops the services no longer listed and forgets their pid records', async () => {
    const { supervisor } = newSupervisor();
    await supervisor.start();
    await supervisor.ensure('p0', [service('keep', SLEEPER), service('drop', SLEEPER)]);
    const keep = only(supervisor, 'keep').pid!;
    const drop = only(supervisor, 'drop').pid!;
    await supervisor.ensure('p0', [service('keep', SLEEPER)]);

    expect(isAlive(drop)).toBe(false);
    expect(isAlive(keep)).toBe(true);
    expect(supervisor.status('p0').map((s) => s.name)).toEqual(['keep']);
    expect(await readdir(join(root, 'run'))).toEqual(['p0@keep.json']);
  });

  it('stopPartition sends SIGTERM, then SIGKILL after stopTimeoutMs to a process that ignores it', async () => {
    const { supervisor, events } = newSupervisor();
    await supervisor.start();
    await supervisor.ensure('p0', [service('polite', SLEEPER), service('stubborn', STUBBORN, { stopTimeoutMs: 300 })]);
    const logPath = join(root, 'log', 'p0', 'stubborn.log');
    await waitFor('the SIGTERM handler', () => existsSync(logPath) && readFileSync(logPath, 'utf8').includes('ready'));
    const pids = supervisor.status('p0').map((s) => s.pid!);

    const t0 = Date.now();
    await supervisor.stopPartition('p0');
    const elapsed = Date.now() - t0;

    // Not before stopTimeoutMs (SIGKILL only once the SIGTERM was ignored that long); how long after is a figure.
    expect(elapsed).toBeGreaterThanOrEqual(290);
    console.log(`stopPartition with a 300 ms stopTimeoutMs took ${elapsed} ms`);
    expect(pids.every((pid) => !isAlive(pid))).toBe(true);
    expect(only(supervisor, 'polite')).toMatchObject({ state: 'stopped', pid: null, lastExitSignal: 'SIGTERM' });
    expect(only(supervisor, 'stubborn')).toMatchObject({ state: 'stopped', pid: null, lastExitSignal: 'SIGKILL' });
    expect(events.filter((e) => e.kind === 'stopped')).toHaveLength(2);
    expect(events.filter((e) => e.kind === 'restarting')).toHaveLength(0);
    expect(await readdir(join(root, 'run'))).toEqual([]);
  });

  it('stopPartition kills the whole process group, children of the service included', async () => {
    const { supervisor } = newSupervisor();
    await supervisor.start();
    await supervisor.ensure('p0', [service('parent', PARENT)]);
    await waitFor('the grandchild', () => markedPids(`${marker}-grandchild`).length === 1);
    await supervisor.stopPartition('p0');
    expect(markedPids()).toEqual([]);
  });

  it('leaves services running on stop(); a new supervisor adopts them instead of starting duplicates', async () => {
    const a = newSupervisor();
    await a.supervisor.start();
    await a.supervisor.ensure('p0', [service('web', SLEEPER)]);
    const pid = only(a.supervisor, 'web').pid!;
    await a.supervisor.stop();
    await sleep(200);
    expect(isAlive(pid)).toBe(true);

    const b = newSupervisor();
    await b.supervisor.start();
    expect(b.events).toEqual([{ partitionId: 'p0', name: 'web', kind: 'adopted', pid }]);
    await b.supervisor.ensure('p0', [service('web', SLEEPER)]);
    expect(only(b.supervisor, 'web')).toMatchObject({ state: 'running', pid, adopted: true, restarts: 0 });
    expect(markedPids()).toEqual([pid]);

    // Not its child: B notices the death by polling, and restarts it.
    process.kill(pid, 'SIGKILL');
    const restarted = await waitFor('the restart', () => {
      const s = only(b.supervisor, 'web');
      return s.state === 'running' && s.pid !== pid && s;
    });
    expect(restarted).toMatchObject({ adopted: false, restarts: 1 });
    expect(b.events.map((e) => e.kind)).toEqual(['adopted', 'exited', 'restarting', 'started']);
    expect(markedPids()).toEqual([restarted.pid]);
  });

  it('starts a new process when the recorded one died while no supervisor watched', async () => {
    const a = newSupervisor();
    await a.supervisor.start();
    await a.supervisor.ensure('p0', [service('web', SLEEPER)]);
    const pid = only(a.supervisor, 'web').pid!;
    await a.supervisor.stop();
    process.kill(-pid, 'SIGKILL');
    await waitFor('the service to die', () => !isAlive(pid));

    const b = newSupervisor();
    await b.supervisor.start();
    expect(only(b.supervisor, 'web')).toMatchObject({ state: 'stopped', pid: null, adopted: false });
    await b.supervisor.ensure('p0', [service('web', SLEEPER)]);
    const status = only(b.supervisor, 'web');
    expect(status).toMatchObject({ state: 'running', adopted: false, restarts: 1 });
    expect(status.pid).not.toBe(pid);
    expect(markedPids()).toEqual([status.pid]);
  });

  it('never adopts nor signals a recycled pid (alive, but with another start time)', async () => {
    const own = readProcStatSync(process.pid)!;
    const web = service('web', SLEEPER);
    await mkdir(join(root, 'run'));
    await writePidRecord(join(root, 'run'), {
      partitionId: 'p0',
      name: 'web',
      pid: process.pid,
      startTime: own.startTime + 12_345,
      specHash: 'whatever',
      stopTimeoutMs: 100,
      startedAtMs: 0,
    });

    const { supervisor, events } = newSupervisor();
    await supervisor.start();
    expect(events).toEqual([]);
    expect(only(supervisor, 'web')).toMatchObject({ state: 'stopped', pid: null, adopted: false });
    await supervisor.stopPartition('p0'); // must not signal the test process
    await supervisor.ensure('p0', [web]);
    const status = only(supervisor, 'web');
    expect(status).toMatchObject({ state: 'running', adopted: false });
    expect(status.pid).not.toBe(process.pid);
    expect(isAlive(status.pid!)).toBe(true);
  });

  it('a SIGKILLed agent leaves its services running, and the next agent adopts them', async () => {
    const web = service('web', SLEEPER);
    const agentScript = `
      import { Supervisor } from ${JSON.stringify(new URL('./supervisor.ts', import.meta.url).href)};
      const { stateDir, logDir, web } = JSON.parse(process.env.HOX_TEST_AGENT);
      const supervisor = new Supervisor({ stateDir, logDir: () => logDir });
      await supervisor.start();
      await supervisor.ensure('p0', [web]);
      console.log(JSON.stringify(supervisor.status()));`;
    const config = { stateDir: join(root, 'run'), logDir: join(root, 'log', 'p0'), web };
    const agent = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', agentScript], {
      env: { ...process.env, HOX_TEST_AGENT: JSON.stringify(config) },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    agents.push(agent);
    let output = '';
    agent.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const line = await waitFor('the agent to report', () => output.includes('\n') && output, 20_000);
    const [reported] = JSON.parse(line) as { pid: number }[];
    const pid = reported!.pid;
    const agentExit = new Promise((resolve) => agent.once('exit', resolve));
    agent.kill('SIGKILL');
    await agentExit;
    await sleep(300);
    expect(isAlive(pid)).toBe(true);
    expect(markedPids()).toEqual([pid]);

    const { supervisor } = newSupervisor();
    await supervisor.start();
    await supervisor.ensure('p0', [web]);
    expect(only(supervisor, 'web')).toMatchObject({ state: 'running', pid, adopted: true });
    expect(markedPids()).toEqual([pid]);
  });

  it('gives up on a command that cannot be spawned, and tries again at the next ensure', async () => {
    const { supervisor, events } = newSupervisor();
    await supervisor.start();
    const missing: SupervisedService = {
      ...service('ghost', SLEEPER),
      spec: { name: 'ghost', command: ['hox-no-such-command'] },
    };
    await expect(supervisor.ensure('p0', [missing, service('web', SLEEPER)])).rejects.toThrow(/ghost.*ENOENT/);
    expect(only(supervisor, 'ghost')).toMatchObject({ state: 'failed', pid: null });
    expect(only(supervisor, 'web').state).toBe('running'); // the others are handled regardless
    expect(events.filter((e) => e.kind === 'gave-up')).toEqual([{ partitionId: 'p0', name: 'ghost', kind: 'gave-up' }]);
    await expect(supervisor.ensure('p0', [missing])).rejects.toBeInstanceOf(HoxError);
    expect(events.filter((e) => e.kind === 'gave-up')).toHaveLength(2);
  });

  it('refuses to act before start() and rejects invalid service lists', async () => {
    const { supervisor } = newSupervisor();
    await expect(supervisor.ensure('p0', [service('web', SLEEPER)])).rejects.toThrow(/start\(\)/);
    await supervisor.start();
    const bad = service('Web!', SLEEPER);
    await expect(supervisor.ensure('p0', [bad])).rejects.toMatchObject({ code: 'HOX_BAD_REQUEST' });
    await expect(supervisor.ensure('p1', [service('web', SLEEPER)])).rejects.toMatchObject({ code: 'HOX_BAD_REQUEST' });
    expect(supervisor.status()).toEqual([]);
    expect(markedPids()).toEqual([]);
  });

  it.skipIf(process.getuid?.() !== 0)(
    'runs the service as the given user, logging through a file the user cannot redirect',
    async () => {
      const nobody = readFileSync('/etc/passwd', 'utf8')
        .split('\n')
        .map((line) => line.split(':'))
        .find((fields) => fields[0] === 'nobody');
      expect(nobody).toBeDefined();
      const [uid, gid] = [Number(nobody![2]), Number(nobody![3])];
      await chmod(root, 0o755); // the service must be able to enter its cwd
      const logDir = join(root, 'log', 'p0');
      const script = `console.log('hello from nobody'); ${SLEEPER}`;

      const { supervisor } = newSupervisor();
      await supervisor.start();
      await supervisor.ensure('p0', [service('web', script, { uid, gid })]);
      const pid = only(supervisor, 'web').pid!;
      const procStatus = readFileSync(`/proc/${pid}/status`, 'utf8');
      expect(procStatus).toMatch(new RegExp(`^Uid:\\t${uid}\\t${uid}\\t${uid}\\t${uid}$`, 'm'));
      expect(procStatus).toMatch(new RegExp(`^Gid:\\t${gid}\\t${gid}\\t${gid}\\t${gid}$`, 'm'));
      // The agent owns the directory and the file; the service's group may only read them.
      expect(await stat(logDir)).toMatchObject({ uid: 0, gid });
      expect(await stat(join(logDir, 'web.log'))).toMatchObject({ uid: 0, gid });
      await waitFor('the service to log', () =>
        readFileSync(join(logDir, 'web.log'), 'utf8').includes('hello from nobody'),
      );
      await supervisor.stopPartition('p0');
      // A log replaced by a symlink is refused, never followed.
      const victim = join(root, 'victim.txt');
      writeFileSync(victim, 'untouched');
      rmSync(join(logDir, 'web.log'));
      symlinkSync(victim, join(logDir, 'web.log'));
      await expect(supervisor.ensure('p0', [service('web', script, { uid, gid })])).rejects.toThrow();
      expect(readFileSync(victim, 'utf8')).toBe('untouched');
      expect((await stat(victim)).uid).toBe(0);
    },
  );
});
