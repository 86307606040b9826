/**
 * Killing a cluster member the way a dying machine would: every process of it
 * at once, with SIGKILL. Reads /proc (Linux only).
 */
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

const POLL_MS = 20;

interface ProcStat {
  pid: number;
  ppid: number;
  state: string;
}

/** `/proc/<pid>/stat`; `undefined` when the process is gone. The command name may hold spaces and parentheses. */
function readStat(pid: number): ProcStat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return { pid, state: fields[0] ?? '?', ppid: Number(fields[1]) };
}

/** Whether `pid` is a live (not zombie) process. */
export function isRunning(pid: number): boolean {
  const stat = readStat(pid);
  return stat !== undefined && stat.state !== 'Z' && stat.state !== 'X';
}

/** `pid` and all its descendants that are alive now. */
export function processTree(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = readStat(Number(entry));
    if (stat === undefined) continue;
    const list = children.get(stat.ppid) ?? [];
    list.push(stat.pid);
    children.set(stat.ppid, list);
  }
  const tree: number[] = [];
  const queue = [pid];
  // A process tree cannot hold more processes than /proc lists; the bound guards against pid reuse loops.
  for (let i = 0; i < queue.length && i < 100_000; i += 1) {
    const current = queue[i]!;
    if (!isRunning(current)) continue;
    tree.push(current);
    queue.push(...(children.get(current) ?? []));
  }
  return tree;
}

/**
 * The pid of the postmaster running on `dataDir`, from `<dataDir>/postmaster.pid`;
 * `undefined` when there is none. A stale file (its pid dead, or reused by a
 * process that is not a postgres on this directory) gives `undefined` too.
 */
export function postmasterPid(dataDir: string): number | undefined {
  try {
    const pid = Number(readFileSync(path.join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
    if (!Number.isInteger(pid) || pid <= 0 || !isRunning(pid)) return undefined;
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    return argv.includes(dataDir) ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** Sends `signal` to each pid, ignoring those already gone. */
export function signalAll(pids: readonly number[], signal: NodeJS.Signals): void {
  for (const pid of pids) {
    try {
      process.kill(pid, signal);
    } catch {
      // Already gone.
    }
  }
}

/** Waits until none of `pids` runs; returns whether that happened within `timeoutMs`. */
export async function waitGone(pids: readonly number[], timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (!pids.some(isRunning)) return true;
    if (Date.now() >= deadline) return false;
    await sleep(POLL_MS);
  }
}

/**
 * SIGKILLs the trees of every given root (e.g. an agent and its postmaster) in
 * one sweep, listed before the first signal so that no process is reparented
 * out of reach, and waits until they are gone.
 *
 * @throws when a process survives `timeoutMs`.
 */
export async function killTrees(roots: readonly (number | undefined)[], timeoutMs: number): Promise<number[]> {
  const pids = [...new Set(roots.flatMap((root) => (root === undefined ? [] : processTree(root))))];
  signalAll(pids, 'SIGKILL');
  if (!(await waitGone(pids, timeoutMs))) {
    throw new Error(`processes ${pids.filter(isRunning).join(', ')} survived SIGKILL for ${timeoutMs} ms`);
  }
  return pids;
}
