/**
 * `node format`: makes each partition exist on the machine — its directory
 * (mode 0750) with its `.hox` directory for the services, and when the agent
 * is root its own unix user and group owning them, its cgroups with their
 * limits and its private /tmp and /dev/shm (see `../isolate/`). Idempotent:
 * existing users, directories and cgroups are reused.
 */
import { execFile } from 'node:child_process';
import { chmod, chown, mkdir, readFile, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { promisify } from 'node:util';
import { ensureRuntimeDir } from '../publish/runtime-file.js';
import {
  cgroupProcsFiles,
  createPartitionCgroups,
  ownV1Cgroups,
  partitionCgroups,
  removePartitionCgroups,
  type PartitionCgroups,
  type ResolvedLimits,
} from '../isolate/partition-cgroups.js';
import type { PartitionIsolation } from '../isolate/partition-launch.js';
import {
  ensurePrivateDirs,
  keepMountPoints,
  privateDirs,
  removePrivateShm,
  type PrivateDirs,
} from '../isolate/private-mounts.js';
import type { PartitionLayout } from './partition-layout.js';

const run = promisify(execFile);

export interface FormattedPartition extends PartitionLayout {
  /** undefined when the agent runs services as itself. */
  uid: number | undefined;
  gid: number | undefined;
  /**
   * How every process of the partition is started (its cgroups, private /tmp and /dev/shm, its
   * user); undefined without partition users: processes then run as the agent, unisolated.
   */
  isolation: PartitionIsolation | undefined;
  /** The partition's cgroups (limits, usage, kill); undefined without partition users. */
  cgroups: PartitionCgroups | undefined;
  /** Its private /tmp and /dev/shm; undefined without partition users. */
  privateDirs: PrivateDirs | undefined;
}

/** What isolation needs to know beyond the layouts (only with partition users). */
export interface IsolationOptions {
  dataDir: string;
  /** Limits a partition has until its plan says otherwise. */
  defaultLimits: ResolvedLimits;
  /** Directories every partition process must see at their path even when they lie under /tmp. */
  visiblePaths: readonly string[];
}

/** uid and gid of a user from /etc/passwd, or undefined. */
export async function lookupUser(name: string): Promise<{ uid: number; gid: number } | undefined> {
  const passwd = await readFile('/etc/passwd', 'utf8');
  for (const line of passwd.split('\n')) {
    const [user, , uid, gid] = line.split(':');
    if (user === name && uid !== undefined && gid !== undefined) return { uid: Number(uid), gid: Number(gid) };
  }
  return undefined;
}

async function ensureUser(layout: PartitionLayout): Promise<{ uid: number; gid: number }> {
  const existing = await lookupUser(layout.user);
  if (existing !== undefined) return existing;
  try {
    await run('useradd', [
      '--system',
      '--user-group',
      '--no-create-home',
      '--home-dir',
      layout.path,
      '--shell',
      '/usr/sbin/nologin',
      '--comment',
      `HyperOpenX partition ${layout.partitionId}`,
      layout.user,
    ]);
  } catch (error) {
    // Another agent may have created it meanwhile.
    const raced = await lookupUser(layout.user);
    if (raced !== undefined) return raced;
    throw new Error(`cannot create unix user '${layout.user}' for partition ${layout.partitionId}`, { cause: error });
  }
  const created = await lookupUser(layout.user);
  if (created === undefined) throw new Error(`unix user '${layout.user}' missing right after useradd`);
  return created;
}

/** Partition users must be able to traverse every directory above their partition. */
async function assertTraversable(dir: string): Promise<void> {
  for (let current = dir; ; current = dirname(current)) {
    const { mode } = await stat(current);
    if ((mode & 0o001) === 0)
      throw new Error(
        `partition users cannot reach their partitions: '${current}' is not traversable by others (chmod o+x '${current}', or use another --data-dir)`,
      );
    if (dirname(current) === current) return;
  }
}

export async function formatPartitions(
  layouts: PartitionLayout[],
  options: { partitionUsers: boolean; isolation?: IsolationOptions | undefined },
): Promise<FormattedPartition[]> {
  const out: FormattedPartition[] = [];
  const own = options.partitionUsers && options.isolation !== undefined ? await ownV1Cgroups() : {};
  for (const layout of layouts) {
    const parent = dirname(layout.path);
    // Partition users must traverse the data dir to reach their partition (never list it).
    if (options.partitionUsers) {
      await chmod(dirname(parent), 0o711);
      await assertTraversable(dirname(dirname(parent)));
    }
    await mkdir(parent, { recursive: true });
    await chmod(parent, 0o711); // partition users traverse, never list
    await mkdir(layout.path, { recursive: true });
    await chmod(layout.path, 0o750);
    if (options.partitionUsers) {
      const { uid, gid } = await ensureUser(layout);
      await chown(layout.path, uid, gid);
      out.push({ ...layout, uid, gid, ...(await isolate(layout, uid, gid, own, options.isolation)) });
    } else {
      out.push({
        ...layout,
        uid: undefined,
        gid: undefined,
        isolation: undefined,
        cgroups: undefined,
        privateDirs: undefined,
      });
    }
    // Where services write their runtime publication (`.hox/publish.json`), theirs to write.
    await ensureRuntimeDir(out[out.length - 1]!);
  }
  return out;
}

async function isolate(
  layout: PartitionLayout,
  uid: number,
  gid: number,
  own: Awaited<ReturnType<typeof ownV1Cgroups>>,
  options: IsolationOptions | undefined,
): Promise<Pick<FormattedPartition, 'isolation' | 'cgroups' | 'privateDirs'>> {
  if (options === undefined) return { isolation: undefined, cgroups: undefined, privateDirs: undefined };
  const cgroups = partitionCgroups(own, layout.nodeTag, layout.partitionId);
  await createPartitionCgroups(cgroups, options.defaultLimits);
  const dirs = privateDirs(options.dataDir, layout.nodeTag, layout.partitionId);
  const keep = keepMountPoints(dirs.tmpDir, options.visiblePaths);
  await ensurePrivateDirs(dirs, gid, keep);
  return {
    isolation: { uid, gid, cgroupProcs: cgroupProcsFiles(cgroups), tmpDir: dirs.tmpDir, shmDir: dirs.shmDir, keep },
    cgroups,
    privateDirs: dirs,
  };
}

/**
 * Removes a partition's unix user (when the node is retired), and what isolated the partition:
 * its cgroups (killing what is left in them) and its /dev/shm directory.
 */
export async function removePartitionUser(user: string): Promise<void> {
  const named = /^hx([0-9a-f]{6})-(p\d+)$/.exec(user);
  if (named !== null && process.getuid?.() === 0) {
    await removePartitionCgroups(named[1]!, named[2]!);
    await removePrivateShm(named[1]!, named[2]!);
  }
  if ((await lookupUser(user)) === undefined) return;
  await run('userdel', [user]);
}
