/**
 * Turning a {@link SupervisedService} into a process: what exactly is run
 * (and its hash, which decides restarts), and the spawn itself with its log.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import { chown, mkdir, open } from 'node:fs/promises';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { badRequest, HoxError } from '../../shared/errors.js';
import { isolatedCommand, type PartitionIsolation } from '../isolate/partition-launch.js';
import { isErrno, readProcStatSync } from './pid-record.js';
import type { SupervisedService } from './types.js';

export const DEFAULT_STOP_TIMEOUT_MS = 10_000;
const SERVICE_NAME = /^[a-z0-9][a-z0-9_-]*$/;

/** Everything that is launched; any change of it (but `stopTimeoutMs`) changes `specHash`. */
export interface LaunchPlan {
  name: string;
  file: string;
  args: string[];
  cwd: string;
  env: Record<string, string>;
  uid: number | undefined;
  gid: number | undefined;
  isolation: PartitionIsolation | undefined;
  specHash: string;
  stopTimeoutMs: number;
}

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface SpawnedService {
  child: ChildProcess;
  pid: number;
  /** `/proc/<pid>/stat` start time, for the pid record. */
  startTime: number;
  /** Settles when the process exits; it never rejects. Created at spawn, so an early exit is not missed. */
  exited: Promise<ExitStatus>;
}

/** Throws a `HOX_BAD_REQUEST` naming the first field of `services` that cannot be run in `partitionId`. */
export function validateServices(partitionId: string, services: readonly SupervisedService[]): void {
  const seen = new Set<string>();
  services.forEach((service, i) => {
    const field = `services[${i}]`;
    if (service.partitionId !== partitionId) {
      throw badRequest(`${field}.partitionId`, `'${service.partitionId}' is not partition '${partitionId}'`);
    }
    const { name, command, stopTimeoutMs } = service.spec;
    if (!SERVICE_NAME.test(name)) throw badRequest(`${field}.spec.name`, `'${name}' must match ${SERVICE_NAME.source}`);
    if (seen.has(name)) throw badRequest(`${field}.spec.name`, `service '${name}' is listed twice`);
    seen.add(name);
    if (command.length === 0 || command[0] === '') throw badRequest(`${field}.spec.command`, 'must not be empty');
    if (!isAbsolute(service.partitionPath)) {
      throw badRequest(`${field}.partitionPath`, `'${service.partitionPath}' is not absolute`);
    }
    for (const key of ['uid', 'gid'] as const) {
      const id = service[key];
      if (id !== undefined && !(Number.isSafeInteger(id) && id >= 0)) {
        throw badRequest(`${field}.${key}`, `${id} is not a user or group id`);
      }
      if (service.isolation !== undefined && service.isolation[key] !== id)
        throw badRequest(`${field}.isolation.${key}`, `${service.isolation[key]} is not the service's ${key} ${id}`);
    }
    if (stopTimeoutMs !== undefined && !(Number.isFinite(stopTimeoutMs) && stopTimeoutMs >= 0)) {
      throw badRequest(`${field}.spec.stopTimeoutMs`, `${stopTimeoutMs} is not a duration`);
    }
  });
}

/** What launching `service` means, with its hash. Pure. */
export function launchPlan(service: SupervisedService): LaunchPlan {
  const [file = '', ...args] = service.spec.command;
  const cwd = resolve(service.partitionPath, service.spec.cwd ?? '.');
  const env = { ...service.spec.env, ...service.env };
  const { uid, gid, isolation } = service;
  const sortedEnv = Object.entries(env).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  // Isolation is part of what was launched (a service started before its partition had cgroups is
  // restarted into them), but only when there is some: hashes of unisolated services stay as they were.
  const launched = { command: service.spec.command, env: sortedEnv, cwd, uid: uid ?? null, gid: gid ?? null };
  const specHash = createHash('sha256')
    .update(JSON.stringify(isolation === undefined ? launched : { ...launched, isolation }))
    .digest('hex');
  return {
    name: service.spec.name,
    file,
    args,
    cwd,
    env,
    uid,
    gid,
    isolation,
    specHash,
    stopTimeoutMs: service.spec.stopTimeoutMs ?? DEFAULT_STOP_TIMEOUT_MS,
  };
}

/**
 * Spawns the service in its own session (`detached`), stdin from /dev/null,
 * isolated when the plan says so (see `partition-launch.ts`: same pid, its
 * cgroups joined before the service's first instruction),
 * stdout and stderr appended to `<logDir>/<name>.log`, and unreferenced: the
 * agent may exit or be killed without taking the service with it. The log
 * directory and file are given to the service's user. Throws a `HoxError`
 * when the process cannot be started (missing command, bad cwd, bad user).
 */
export async function spawnService(plan: LaunchPlan, partitionId: string, logDir: string): Promise<SpawnedService> {
  const what = `service '${plan.name}' of partition '${partitionId}'`;
  const owned = plan.uid !== undefined || plan.gid !== undefined;
  const logPath = join(logDir, `${plan.name}.log`);
  let log;
  try {
    // The agent keeps owning the directory and the file: a service user who could replace the log with a
    // symlink would make the (root) agent append to, or chown, any file. The group may read them; the
    // service writes only through the descriptor it inherits. O_NOFOLLOW refuses a planted link.
    await mkdir(dirname(logDir), { recursive: true, mode: 0o711 });
    await mkdir(logDir, { mode: 0o750 }).catch((error: unknown) => {
      if (!isErrno(error, 'EEXIST')) throw error;
    });
    if (owned) await chown(logDir, -1, plan.gid ?? -1);
    log = await open(
      logPath,
      constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_NOFOLLOW,
      0o640,
    );
  } catch (error) {
    throw new HoxError('HOX_INTERNAL', `cannot open log '${logPath}' of ${what}`, { cause: error });
  }
  let spawned: Promise<SpawnedService>;
  try {
    if (owned) await log.chown(-1, plan.gid ?? -1);
    const stdio: ['ignore', number, number] = ['ignore', log.fd, log.fd];
    const child =
      plan.isolation === undefined
        ? spawn(plan.file, plan.args, {
            cwd: plan.cwd,
            env: plan.env,
            uid: plan.uid,
            gid: plan.gid,
            detached: true,
            stdio,
          })
        : spawnIsolated(plan, plan.isolation, stdio);
    // Before any await: the exit listener and the /proc read must not miss a process that dies at once.
    spawned = started(child, what);
    // Handled by our caller after the close below; this keeps Node from calling it unhandled meanwhile.
    spawned.catch(() => undefined);
  } catch (error) {
    throw new HoxError('HOX_INTERNAL', `cannot start ${what}: ${String(error)}`, { cause: error });
  } finally {
    // The child holds its own copies of the descriptor from here on.
    await log.close();
  }
  return spawned;
}

function spawnIsolated(
  plan: LaunchPlan,
  isolation: PartitionIsolation,
  stdio: ['ignore', number, number],
): ChildProcess {
  const command = isolatedCommand(isolation, { file: plan.file, args: plan.args, cwd: plan.cwd, env: plan.env });
  // Root until the launcher drops to the partition's user; its cwd is taken again inside the namespace.
  return spawn(command.file, command.args, { cwd: '/', env: command.env, detached: true, stdio });
}

function started(child: ChildProcess, what: string): Promise<SpawnedService> {
  const exited = new Promise<ExitStatus>((resolveExit) => {
    child.once('exit', (code, signal) => resolveExit({ code, signal }));
  });
  return new Promise((resolveStart, reject) => {
    // Errors after a successful spawn (a failed kill()) concern no one here; without a listener they would throw.
    child.on('error', (error) => {
      if (child.pid === undefined) {
        reject(new HoxError('HOX_INTERNAL', `cannot start ${what}: ${error.message}`, { cause: error }));
      }
    });
    const pid = child.pid;
    if (pid === undefined) return; // spawn failed; 'error' follows on the next tick
    child.unref();
    // Still synchronous after spawn(): the child cannot have been reaped, its /proc entry is there.
    const stat = readProcStatSync(pid);
    if (stat === null) {
      reject(new HoxError('HOX_INTERNAL', `${what} (pid ${pid}) has no /proc entry right after spawn`));
      return;
    }
    resolveStart({ child, pid, startTime: stat.startTime, exited });
  });
}
