/** What the supervisor knows of one service, between its processes. */
import { Backoff, type BackoffOptions } from './backoff.js';
import type { ExitStatus, LaunchPlan } from './service-launch.js';
import type { ServiceState, ServiceStatus } from './types.js';

export interface ServiceEntry {
  readonly partitionId: string;
  readonly name: string;
  /** What to (re)start it with; null until an `ensure()` lists a service found in a pid record. */
  plan: LaunchPlan | null;
  /** Hash of what the current (or last) process was launched with. */
  specHash: string;
  stopTimeoutMs: number;
  state: ServiceState;
  since: number;
  pid: number | null;
  startTime: number | null;
  /** Settles when our own child exits; null for adopted processes, which are polled instead. */
  exited: Promise<ExitStatus> | null;
  adopted: boolean;
  restarts: number;
  lastExitCode: number | null;
  lastExitSignal: string | null;
  startedAtMs: number;
  backoff: Backoff;
  restartTimer: NodeJS.Timeout | null;
  /** Its process died while no supervisor watched: the next start counts as a restart. */
  diedUnwatched: boolean;
  /** The pid record file naming the current (or last) process. */
  recordFile: string | null;
}

export function newServiceEntry(
  partitionId: string,
  name: string,
  nowMs: number,
  backoff: BackoffOptions,
): ServiceEntry {
  return {
    partitionId,
    name,
    plan: null,
    specHash: '',
    stopTimeoutMs: 0,
    state: 'stopped',
    since: nowMs,
    pid: null,
    startTime: null,
    exited: null,
    adopted: false,
    restarts: 0,
    lastExitCode: null,
    lastExitSignal: null,
    startedAtMs: nowMs,
    backoff: new Backoff(backoff),
    restartTimer: null,
    diedUnwatched: false,
    recordFile: null,
  };
}

export function serviceStatus(entry: ServiceEntry): ServiceStatus {
  return {
    partitionId: entry.partitionId,
    name: entry.name,
    state: entry.state,
    pid: entry.pid,
    restarts: entry.restarts,
    lastExitCode: entry.lastExitCode,
    lastExitSignal: entry.lastExitSignal,
    since: entry.since,
    adopted: entry.adopted,
  };
}

/** Object.assign, type-checked against the entry's fields. */
export function updateEntry(entry: ServiceEntry, changes: Partial<Omit<ServiceEntry, 'partitionId' | 'name'>>): void {
  Object.assign(entry, changes);
}
