/**
 * The directories a partition's processes see as /tmp and /dev/shm (see
 * `partition-launch.ts`), kept outside the partition so the tenant cannot
 * rearrange what leads to them, and wiped with the partition:
 *
 * - `<data-dir>/tmp/<partition>/tmp` (on disk, counted in the disk quota);
 * - `/dev/shm/hox-<nodeTag>/<partition>/shm` (tmpfs, counted in the memory limit).
 *
 * `<…>/<partition>` is root's, group the partition's, mode 0710: only the
 * partition's user may pass, so no other tenant reaches its /tmp by path. The
 * leaves are root's with mode 1777, like /tmp: the tenant creates what it
 * wants but cannot remove the root-owned mount points inside
 * (`keepMountPoints`).
 */
import { lstat, mkdir, rm, rmdir } from 'node:fs/promises';
import { chmod, chown } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import { isErrno } from '../supervise/pid-record.js';

export interface PrivateDirs {
  tmpDir: string;
  shmDir: string;
}

/** Where a partition's private directories are. Pure. */
export function privateDirs(dataDir: string, nodeTag: string, partitionId: string): PrivateDirs {
  return {
    tmpDir: join(dataDir, 'tmp', partitionId, 'tmp'),
    shmDir: join('/dev/shm', `hox-${nodeTag}`, partitionId, 'shm'),
  };
}

/**
 * For each directory of `paths` that lies under /tmp (a data dir in /tmp, as in tests), where it is
 * bind-mounted inside the private /tmp so the partition's processes still see it at its path. Pure.
 */
export function keepMountPoints(tmpDir: string, paths: readonly string[]): Array<{ source: string; target: string }> {
  const under = (path: string, parent: string) => path === parent || path.startsWith(`${parent}${sep}`);
  const inTmp = [...new Set(paths)].filter((path) => path.startsWith(`/tmp${sep}`));
  // A path inside another kept one is visible through it already.
  return inTmp
    .filter((path) => !inTmp.some((other) => other !== path && under(path, other)))
    .map((source) => ({ source, target: join(tmpDir, relative('/tmp', source)) }));
}

/** Creates (or checks) the private directories and the mount points inside; idempotent. */
export async function ensurePrivateDirs(
  dirs: PrivateDirs,
  gid: number,
  keep: ReadonlyArray<{ target: string }>,
): Promise<void> {
  for (const leaf of [dirs.tmpDir, dirs.shmDir]) {
    const partitionDir = dirname(leaf);
    await ensureRootDir(dirname(partitionDir), 0o711);
    await ensureRootDir(partitionDir, 0o710, gid);
    await ensureRootDir(leaf, 0o1777);
  }
  for (const { target } of keep) {
    // Every level below the private /tmp root's own: the tenant, who may write in /tmp, must not own one.
    const levels = relative(dirs.tmpDir, target).split(sep);
    for (let i = 1; i <= levels.length; i += 1) await ensureRootDir(join(dirs.tmpDir, ...levels.slice(0, i)), 0o755);
  }
}

/** Deletes everything the tenant left in its private directories (its processes are gone), then recreates them. */
export async function wipePrivateDirs(
  dirs: PrivateDirs,
  gid: number,
  keep: ReadonlyArray<{ target: string }>,
): Promise<void> {
  // Root may delete here: no process of the partition is left to race the walk with links, and no other
  // user can enter the partition's 0710 directory. rm never follows a link it meets.
  await rm(dirs.tmpDir, { recursive: true, force: true });
  await rm(dirs.shmDir, { recursive: true, force: true });
  await ensurePrivateDirs(dirs, gid, keep);
}

/**
 * A directory owned by root (group `gid` if given) with `mode`. Something else already there — a
 * link, a file, a directory of another owner (/dev/shm is writable by everyone) — is an error:
 * never adopted, never followed.
 */
async function ensureRootDir(path: string, mode: number, gid?: number): Promise<void> {
  try {
    await mkdir(path, { mode: 0o700 });
  } catch (error) {
    if (!isErrno(error, 'EEXIST')) throw error;
  }
  const stats = await lstat(path);
  if (!stats.isDirectory() || stats.uid !== 0)
    throw new Error(`'${path}' is not a directory of root's (someone else made it): remove it, then start again`);
  await chown(path, 0, gid ?? 0);
  await chmod(path, mode);
}

/** When a partition is retired: its /dev/shm directory goes (its /tmp goes with the data dir). */
export async function removePrivateShm(nodeTag: string, partitionId: string): Promise<void> {
  const { shmDir } = privateDirs('/', nodeTag, partitionId);
  await rm(dirname(shmDir), { recursive: true, force: true });
  await rmdir(dirname(dirname(shmDir))).catch(() => undefined);
}
