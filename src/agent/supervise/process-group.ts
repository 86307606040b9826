/**
 * Signalling a service's whole process group. Every service is spawned as a
 * session leader (`detached: true`), so its pid is also its process group id
 * and `kill(-pid, sig)` reaches the children it started too.
 */
import { readdir } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { HoxError } from '../../shared/errors.js';
import { isErrno, isProcessAlive, isSignallablePid, readProcStat } from './pid-record.js';

/** How long to wait for a group to vanish after SIGKILL before calling it stuck. */
const KILL_WAIT_MS = 5_000;
const GROUP_POLL_MS = 25;

/** How a stop went. */
export type TerminateOutcome = 'not-running' | 'terminated' | 'killed';

/** Sends `signal` to process group `pgid`; false when the group no longer exists. */
export function signalGroup(pgid: number, signal: NodeJS.Signals): boolean {
  // A pgid of 0 or 1 would make kill() reach our own group or every process.
  if (!isSignallablePid(pgid)) throw new RangeError(`refusing to signal process group ${String(pgid)}`);
  try {
    process.kill(-pgid, signal);
    return true;
  } catch (error) {
    if (isErrno(error, 'ESRCH')) return false;
    throw new HoxError('HOX_INTERNAL', `cannot send ${signal} to process group ${pgid}`, { cause: error });
  }
}

/**
 * Whether a live process remains in group `pgid`. `kill(-pgid, 0)` alone also
 * counts zombies, which linger where nothing reaps orphans (a container's
 * init may not), so a positive answer is confirmed from /proc.
 */
export async function groupAlive(pgid: number): Promise<boolean> {
  try {
    process.kill(-pgid, 0);
  } catch (error) {
    if (isErrno(error, 'ESRCH')) return false;
    if (!isErrno(error, 'EPERM')) throw error;
  }
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await readProcStat(Number(entry));
    if (stat !== null && stat.pgrp === pgid && stat.state !== 'Z') return true;
  }
  return false;
}

/** Waits until group `pgid` has no live process; false if it still has one after `timeoutMs`. */
export async function waitForGroupExit(pgid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (!(await groupAlive(pgid))) return true;
    const left = deadline - Date.now();
    if (left <= 0) return false;
    await sleep(Math.min(GROUP_POLL_MS, left));
  }
}

/**
 * Stops a service gracefully: SIGTERM to its group, SIGKILL to the group if
 * anything of it is still alive after `stopTimeoutMs`, then waits for it to
 * be gone. Nothing is signalled unless `pid` still is the process that
 * started at `startTime` (a recycled pid belongs to someone else).
 */
export async function terminateGroup(pid: number, startTime: number, stopTimeoutMs: number): Promise<TerminateOutcome> {
  if (!(await isProcessAlive(pid, startTime))) return 'not-running';
  // The leader was alive a moment ago, and Linux does not hand out a pid number again while a
  // process group bears it, so the group signalled below is the service's.
  signalGroup(pid, 'SIGTERM');
  if (await waitForGroupExit(pid, stopTimeoutMs)) return 'terminated';
  signalGroup(pid, 'SIGKILL');
  if (await waitForGroupExit(pid, KILL_WAIT_MS)) return 'killed';
  throw new HoxError('HOX_INTERNAL', `process group ${pid} is still alive ${KILL_WAIT_MS} ms after SIGKILL`);
}
