/**
 * The partition cgroups on the machine: created at format, limits written at
 * every convergence, read for `hox show`, emptied and renewed when the
 * partition is wiped. Names come from `partition-cgroup.ts`.
 *
 * The cgroup2 directory is never removed while the node lives: nftables
 * resolves `socket cgroupv2` paths to the directory's id when a rule is added,
 * so a removed and recreated directory would no longer match the network
 * rules. The v1 directories (limits and accounting) are removed and created
 * again at each wipe, so the next tenant starts with empty counters and no
 * page cache charged to it.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, rmdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  CGROUP2_MOUNT,
  CGROUP_V1_CONTROLLERS,
  CGROUP_V1_ROOT,
  partitionCgroup2Path,
  type CgroupV1Controller,
} from './partition-cgroup.js';
import { isErrno } from '../supervise/pid-record.js';

/** A partition's limits, all set (the plan's over the node's defaults). */
export interface ResolvedLimits {
  memoryBytes: number;
  /** CPU time in cores (1.5: one and a half cores' worth per period). */
  cpus: number;
  pids: number;
  diskBytes: number;
  logBytes: number;
}

/** The partition's cgroup directories (absolute), those the machine has. */
export interface PartitionCgroups {
  v1: Partial<Record<CgroupV1Controller, string>>;
  v2: string | undefined;
}

const CFS_PERIOD_US = 100_000;

/** The agent's own cgroup in each v1 controller (from /proc/self/cgroup), where partition cgroups nest. */
export async function ownV1Cgroups(): Promise<Partial<Record<CgroupV1Controller, string>>> {
  const own: Partial<Record<CgroupV1Controller, string>> = {};
  for (const line of (await readFile('/proc/self/cgroup', 'utf8')).split('\n')) {
    const [, controllers = '', path = ''] = line.split(':');
    for (const controller of controllers.split(',')) {
      if ((CGROUP_V1_CONTROLLERS as readonly string[]).includes(controller))
        own[controller as CgroupV1Controller] = path;
    }
  }
  return own;
}

/** The directories of a partition's cgroups on this machine (nothing created). */
export function partitionCgroups(
  own: Partial<Record<CgroupV1Controller, string>>,
  nodeTag: string,
  partitionId: string,
): PartitionCgroups {
  const relative = partitionCgroup2Path(nodeTag, partitionId);
  const v1: Partial<Record<CgroupV1Controller, string>> = {};
  for (const controller of CGROUP_V1_CONTROLLERS) {
    const mount = join(CGROUP_V1_ROOT, controller);
    const base = own[controller];
    if (base !== undefined && existsSync(join(mount, 'cgroup.procs'))) v1[controller] = join(mount, base, relative);
  }
  const v2 = existsSync(join(CGROUP2_MOUNT, 'cgroup.procs')) ? join(CGROUP2_MOUNT, relative) : undefined;
  return { v1, v2 };
}

/** The `cgroup.procs` files a process of the partition joins. */
export function cgroupProcsFiles(cgroups: PartitionCgroups): string[] {
  return [...Object.values(cgroups.v1), ...(cgroups.v2 === undefined ? [] : [cgroups.v2])].map((dir) =>
    join(dir, 'cgroup.procs'),
  );
}

/** Creates the directories (idempotent) and writes `limits`. */
export async function createPartitionCgroups(cgroups: PartitionCgroups, limits: ResolvedLimits): Promise<void> {
  for (const dir of [...Object.values(cgroups.v1), ...(cgroups.v2 === undefined ? [] : [cgroups.v2])])
    await mkdir(dir, { recursive: true, mode: 0o755 });
  await applyLimits(cgroups, limits);
}

/**
 * Writes the limits; takes effect at once for running processes. A memory
 * limit below what the partition uses now is refused by the kernel (EBUSY):
 * that is an error naming both.
 */
export async function applyLimits(cgroups: PartitionCgroups, limits: ResolvedLimits): Promise<void> {
  const { memory, cpu, pids } = cgroups.v1;
  if (memory !== undefined) {
    try {
      await writeFile(join(memory, 'memory.limit_in_bytes'), String(limits.memoryBytes));
    } catch (error) {
      const usage = await readNumber(join(memory, 'memory.usage_in_bytes'));
      throw new Error(`cannot limit memory to ${limits.memoryBytes} bytes (the partition uses ${usage} now)`, {
        cause: error,
      });
    }
  }
  if (cpu !== undefined) {
    await writeFile(join(cpu, 'cpu.cfs_period_us'), String(CFS_PERIOD_US));
    await writeFile(join(cpu, 'cpu.cfs_quota_us'), String(Math.max(1000, Math.round(limits.cpus * CFS_PERIOD_US))));
  }
  if (pids !== undefined) await writeFile(join(pids, 'pids.max'), String(limits.pids));
}

/** What the partition uses now, where the kernel counts it; undefined where it does not. */
export interface CgroupUsage {
  memoryBytes: number | undefined;
  /**
   * The memory the partition cannot give back: `memoryBytes` less the page cache not recently used
   * (`total_inactive_file`), which the kernel reclaims at the limit rather than kill (the kubelet's working set).
   * What a leak grows; what a forecast of running out must follow.
   */
  memoryWorkingSetBytes: number | undefined;
  pids: number | undefined;
  /** Processes the kernel killed for want of memory inside the partition, since its last wipe. */
  oomKills: number | undefined;
}

export async function readCgroupUsage(cgroups: PartitionCgroups): Promise<CgroupUsage> {
  const { memory, pids } = cgroups.v1;
  const oomControl =
    memory === undefined ? '' : await readFile(join(memory, 'memory.oom_control'), 'utf8').catch(() => '');
  const oom = /^oom_kill (\d+)/m.exec(oomControl);
  const memoryBytes = memory === undefined ? undefined : await readNumber(join(memory, 'memory.usage_in_bytes'));
  const stat = memory === undefined ? '' : await readFile(join(memory, 'memory.stat'), 'utf8').catch(() => '');
  const inactiveFile = /^total_inactive_file (\d+)/m.exec(stat);
  return {
    memoryBytes,
    memoryWorkingSetBytes:
      memoryBytes === undefined || inactiveFile === null
        ? undefined
        : Math.max(0, memoryBytes - Number(inactiveFile[1])),
    pids: pids === undefined ? undefined : await readNumber(join(pids, 'pids.current')),
    oomKills: oom === null ? undefined : Number(oom[1]),
  };
}

/** Pids in the partition's cgroups (all of them, v1 and v2). */
export async function cgroupPids(cgroups: PartitionCgroups): Promise<number[]> {
  const pids = new Set<number>();
  for (const file of cgroupProcsFiles(cgroups)) {
    const text = await readFile(file, 'utf8').catch((error: unknown) => {
      if (isErrno(error, 'ENOENT')) return '';
      throw error;
    });
    for (const line of text.split('\n')) if (line !== '') pids.add(Number(line));
  }
  return [...pids];
}

/**
 * Kills every process in the partition's cgroups, forks in flight included
 * (cgroup2's `cgroup.kill`, which the kernel applies to new children too;
 * SIGKILL by pid as well, for a machine without it), and waits until none is left.
 */
export async function killCgroupProcesses(cgroups: PartitionCgroups): Promise<void> {
  for (let round = 0; round < 100; round += 1) {
    const left = await cgroupPids(cgroups);
    if (left.length === 0) return;
    if (cgroups.v2 !== undefined) await writeFile(join(cgroups.v2, 'cgroup.kill'), '1').catch(() => undefined);
    for (const pid of left) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
    await sleep(round < 10 ? 20 : 100);
  }
  throw new Error(`processes survive in the partition's cgroups: ${(await cgroupPids(cgroups)).join(', ')}`);
}

/**
 * After `killCgroupProcesses`: removes the v1 directories and creates them
 * again with `limits` (fresh counters for the next tenant). The cgroup2
 * directory stays (see the module comment).
 */
export async function renewPartitionCgroups(cgroups: PartitionCgroups, limits: ResolvedLimits): Promise<void> {
  for (const dir of Object.values(cgroups.v1)) {
    // A dying process may still be listed for a moment after SIGKILL: rmdir says EBUSY until it is reaped.
    for (let attempt = 0; ; attempt += 1) {
      try {
        await rmdir(dir);
        break;
      } catch (error) {
        if (isErrno(error, 'ENOENT')) break;
        if (!isErrno(error, 'EBUSY') || attempt >= 50) throw error;
        await sleep(20);
      }
    }
  }
  await createPartitionCgroups(cgroups, limits);
}

async function readNumber(file: string): Promise<number | undefined> {
  try {
    return Number((await readFile(file, 'utf8')).trim());
  } catch {
    return undefined;
  }
}

/**
 * When a partition is retired (its user removed): kills what is left in its cgroups and removes
 * them all, cgroup2 included, then the node's own directories once they are empty. Best effort
 * for the parents (another partition of the node may still have its cgroups).
 */
export async function removePartitionCgroups(nodeTag: string, partitionId: string): Promise<void> {
  const cgroups = partitionCgroups(await ownV1Cgroups(), nodeTag, partitionId);
  const dirs = [...Object.values(cgroups.v1), ...(cgroups.v2 === undefined ? [] : [cgroups.v2])];
  if (!dirs.some((dir) => existsSync(dir))) return;
  await killCgroupProcesses(cgroups);
  for (const dir of dirs) {
    await rmdir(dir).catch((error: unknown) => {
      if (!isErrno(error, 'ENOENT')) throw error;
    });
    // hox/<nodeTag>, then hox: removed when this was the last partition (ENOTEMPTY/EBUSY otherwise).
    for (const parent of [join(dir, '..'), join(dir, '..', '..')]) await rmdir(parent).catch(() => undefined);
  }
}
