/**
 * A member's `pg_wal` on a small filesystem of its own, so that the disk-full
 * scenario can fill it: an ext4 image (sparse) loop-mounted on `pg_wal`, and
 * the way back onto the data directory's disk. Every step runs while the
 * member is killed (nothing may write to `pg_wal` meanwhile). Needs root
 * (mount) and Linux.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** `pg_wal` of a data directory, mounted on a loop-mounted image. */
export interface WalFilesystem {
  readonly walDir: string;
  /** Takes all the free space of the filesystem but `leaveBytes` (fallocate). */
  fill(leaveBytes: number): void;
  /** Removes what {@link fill} took. Idempotent. */
  unfill(): void;
  /**
   * Copies the WAL back onto the data directory's disk, unmounts the image (lazily) and removes it. Idempotent;
   * after it `pg_wal` is an ordinary directory again, owned by the data directory's owner.
   */
  restore(): void;
}

function run(command: string, args: string[]): string {
  return execFileSync(command, args, { stdio: ['ignore', 'pipe', 'pipe'] }).toString();
}

/** Free bytes of the filesystem holding `dir`. */
export function freeBytes(dir: string): number {
  return Number(run('df', ['--output=avail', '-B1', dir]).split('\n')[1]);
}

/**
 * Moves `<dataDir>/pg_wal` onto an ext4 image of `imageBytes` (sparse, in a temporary directory), mounted on
 * `pg_wal`: its WAL copied (`cp -a`), owned by the data directory's owner, mode 0700. On failure everything is
 * put back as it was.
 */
export function moveWalOntoLoopFilesystem(dataDir: string, imageBytes: number): WalFilesystem {
  const walDir = path.join(dataDir, 'pg_wal');
  const aside = `${walDir}.bench-aside`;
  const owner = statSync(dataDir);
  const chown = (target: string) => run('chown', ['-R', `${owner.uid}:${owner.gid}`, target]);
  if (!statSync(walDir, { throwIfNoEntry: false })?.isDirectory()) throw new Error(`${walDir} is not a directory`);
  const imageDir = mkdtempSync(path.join(os.tmpdir(), 'hox-bench-wal-'));
  const image = path.join(imageDir, 'wal.img');
  const filler = path.join(walDir, 'bench-filler.tmp');
  let mounted = false;
  run('truncate', ['-s', String(imageBytes), image]);
  run('mkfs.ext4', ['-q', '-F', image]);
  try {
    renameSync(walDir, aside);
    mkdirSync(walDir, { mode: 0o700 });
    run('mount', ['-o', 'loop', image, walDir]);
    mounted = true;
    rmSync(path.join(walDir, 'lost+found'), { recursive: true, force: true });
    for (const name of readdirSync(aside)) run('cp', ['-a', path.join(aside, name), path.join(walDir, name)]);
    chown(walDir);
    run('chmod', ['0700', walDir]);
    rmSync(aside, { recursive: true, force: true });
  } catch (error) {
    if (mounted) run('umount', ['-l', walDir]);
    if (statSync(aside, { throwIfNoEntry: false }) !== undefined) {
      rmSync(walDir, { recursive: true, force: true });
      renameSync(aside, walDir);
    }
    rmSync(imageDir, { recursive: true, force: true });
    throw error;
  }
  let restored = false;
  return {
    walDir,
    fill(leaveBytes) {
      run('fallocate', ['-l', String(Math.max(0, freeBytes(walDir) - leaveBytes)), filler]);
    },
    unfill() {
      rmSync(filler, { force: true });
    },
    restore() {
      if (restored) return;
      rmSync(filler, { force: true });
      const fresh = `${walDir}.bench-back`;
      rmSync(fresh, { recursive: true, force: true });
      mkdirSync(fresh, { mode: 0o700 });
      for (const name of readdirSync(walDir)) run('cp', ['-a', path.join(walDir, name), path.join(fresh, name)]);
      // A member cloned afresh meanwhile may have left pg_wal where it was, or not: unmount only a mount point.
      if (statSync(walDir).dev !== statSync(dataDir).dev) run('umount', ['-l', walDir]);
      rmSync(walDir, { recursive: true, force: true });
      renameSync(fresh, walDir);
      chown(walDir);
      run('chmod', ['0700', walDir]);
      rmSync(imageDir, { recursive: true, force: true });
      restored = true;
    },
  };
}
