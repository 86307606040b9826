/**
 * Pid records: one JSON file per supervised service in the supervisor's state
 * directory, so that a restarted agent can find and adopt the processes it
 * started before. A record is trusted only if the process it names is alive
 * AND has the same start time (`/proc/<pid>/stat` field 22) as when it was
 * spawned: pids are recycled, start times of a given pid never repeat.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileDurably } from '../../shared/durable-file.js';

/** What the state directory remembers of one running service. */
export interface PidRecord {
  partitionId: string;
  /** Service name (`ServiceSpec.name`). */
  name: string;
  /** Pid of the service, which is also its process group id and session id. */
  pid: number;
  /** `/proc/<pid>/stat` field 22: clock ticks after boot at which the process started. */
  startTime: number;
  /** Hash of what was launched (command, env, cwd, uid, gid): a different hash means restart. */
  specHash: string;
  /** Grace period between SIGTERM and SIGKILL, so an adopted service can be stopped before it is ensured again. */
  stopTimeoutMs: number;
  /** Wall-clock time of the spawn. */
  startedAtMs: number;
}

/** A record as read back, with the file it came from (removed once the service is stopped or replaced). */
export interface StoredPidRecord extends PidRecord {
  file: string;
}

/** The fields of `/proc/<pid>/stat` the supervisor needs. */
export interface ProcStat {
  /** One letter: R, S, D, Z (zombie), T, … */
  state: string;
  /** Process group id. */
  pgrp: number;
  /** Field 22, in clock ticks after boot. */
  startTime: number;
}

/** Where the record of a service lives. Names are `[a-z0-9][a-z0-9_-]*`; the partition id is escaped. */
export function pidRecordPath(stateDir: string, partitionId: string, name: string): string {
  return join(stateDir, `${encodeURIComponent(partitionId)}@${name}.json`);
}

/** Writes the record atomically (temporary file, fsync, rename), so a crash never leaves half a record. */
export async function writePidRecord(stateDir: string, record: PidRecord): Promise<string> {
  const file = pidRecordPath(stateDir, record.partitionId, record.name);
  await writeFileDurably(file, `${JSON.stringify(record, null, 2)}\n`, {
    mode: 0o600,
    tmp: `${file}.${randomBytes(6).toString('hex')}.tmp`,
  });
  return file;
}

/** Removes a record file; a missing one is fine. */
export async function removePidRecord(file: string): Promise<void> {
  await rm(file, { force: true });
}

/**
 * Every well-formed record of the state directory (a missing directory has
 * none). Files that do not parse are skipped: they name no process that could
 * safely be adopted or signalled.
 */
export async function readPidRecords(stateDir: string): Promise<StoredPidRecord[]> {
  let names: string[];
  try {
    names = await readdir(stateDir);
  } catch (error) {
    if (isErrno(error, 'ENOENT')) return [];
    throw error;
  }
  const records: StoredPidRecord[] = [];
  for (const entry of names.filter((n) => n.endsWith('.json')).sort()) {
    const file = join(stateDir, entry);
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (error) {
      if (isErrno(error, 'ENOENT')) continue;
      throw error;
    }
    const record = parsePidRecord(text);
    if (record !== null) records.push({ ...record, file });
  }
  return records;
}

/** Parses a record, or null when it is not one. The pid must be > 1: signalling 0, 1 or -1 would hit everything. */
export function parsePidRecord(text: string): PidRecord | null {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof value !== 'object' || value === null) return null;
  const v = value as Record<string, unknown>;
  // `starttime` (the /proc name) is accepted too, for records written by hand or by older agents.
  const startTime = Number(v['startTime'] ?? v['starttime']);
  const pid = v['pid'];
  if (typeof v['partitionId'] !== 'string' || typeof v['name'] !== 'string') return null;
  if (!isSignallablePid(pid) || !Number.isSafeInteger(startTime) || startTime < 0) return null;
  const stopTimeoutMs = v['stopTimeoutMs'];
  const startedAtMs = v['startedAtMs'];
  return {
    partitionId: v['partitionId'],
    name: v['name'],
    pid,
    startTime,
    specHash: typeof v['specHash'] === 'string' ? v['specHash'] : '',
    stopTimeoutMs: typeof stopTimeoutMs === 'number' && stopTimeoutMs >= 0 ? stopTimeoutMs : 10_000,
    startedAtMs: typeof startedAtMs === 'number' ? startedAtMs : 0,
  };
}

/** True for a pid that names one process other than init (never 0, 1 or negative). */
export function isSignallablePid(pid: unknown): pid is number {
  return typeof pid === 'number' && Number.isSafeInteger(pid) && pid > 1;
}

/** Parses the text of `/proc/<pid>/stat`. The command name (field 2) may hold spaces and parentheses. */
export function parseProcStat(text: string): ProcStat | null {
  const close = text.lastIndexOf(')');
  if (close < 0) return null;
  // Fields from 3 (state) on; field n is at index n - 3.
  const fields = text
    .slice(close + 2)
    .trim()
    .split(' ');
  const state = fields[0];
  const pgrp = Number(fields[5 - 3]);
  const startTime = Number(fields[22 - 3]);
  if (state === undefined || !Number.isSafeInteger(pgrp) || !Number.isSafeInteger(startTime)) return null;
  return { state, pgrp, startTime };
}

/** `/proc/<pid>/stat`, or null when there is no such process. */
export async function readProcStat(pid: number): Promise<ProcStat | null> {
  try {
    return parseProcStat(await readFile(`/proc/${pid}/stat`, 'utf8'));
  } catch (error) {
    if (isErrno(error, 'ENOENT') || isErrno(error, 'ESRCH')) return null;
    throw error;
  }
}

/**
 * Synchronous {@link readProcStat}, for the moment right after `spawn()`:
 * the event loop has not run yet, so the child, even if it already exited,
 * has not been reaped and its start time can still be read.
 */
export function readProcStatSync(pid: number): ProcStat | null {
  try {
    return parseProcStat(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch (error) {
    if (isErrno(error, 'ENOENT') || isErrno(error, 'ESRCH')) return null;
    throw error;
  }
}

/**
 * Whether `pid` is still the process that started at `startTime`: it exists
 * (`kill(pid, 0)`; EPERM means it exists under another user), is not a zombie,
 * and its start time matches, so a recycled pid is never taken for it.
 */
export async function isProcessAlive(pid: number, startTime: number): Promise<boolean> {
  if (!isSignallablePid(pid)) return false;
  try {
    process.kill(pid, 0);
  } catch (error) {
    if (isErrno(error, 'ESRCH')) return false;
    if (!isErrno(error, 'EPERM')) throw error;
  }
  const stat = await readProcStat(pid);
  return stat !== null && stat.state !== 'Z' && stat.startTime === startTime;
}

export function isErrno(error: unknown, code: string): boolean {
  return error instanceof Error && (error as NodeJS.ErrnoException).code === code;
}
