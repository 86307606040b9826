/**
 * Emptying a partition between tenants. Partition users belong to the
 * partition, not to the instance: whatever the previous instance left running
 * (a daemon that escaped its process group) would otherwise meet the next one,
 * and a root `rm -rf` inside a directory its user controls can be raced with
 * symlinks. So: kill everything in the partition's cgroups and everything of
 * that uid, then delete as that uid; then renew its private /tmp and /dev/shm
 * and its cgroups.
 */
import { chmod, chown, readFile, readdir } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import type { FormattedPartition } from './format/partition-formatter.js';
import { killCgroupProcesses, renewPartitionCgroups, type ResolvedLimits } from './isolate/partition-cgroups.js';
import { wipePrivateDirs } from './isolate/private-mounts.js';
import { HELPER_ENV, runCommand } from './run-command.js';

/**
 * Everything of the previous tenant goes: its processes (cgroups first: they hold every process the
 * agent started for it, whatever its session or process group; then the uid, for anything else),
 * its files, its /tmp and /dev/shm; its cgroups start over with `limits`.
 */
export async function wipePartition(
  partition: FormattedPartition,
  nodePath: string,
  limits: ResolvedLimits,
  /** Runs once the tenant's processes are gone, before its files go (moving retained paths out). */
  beforeEmpty?: () => Promise<void>,
): Promise<void> {
  if (partition.cgroups !== undefined) await killCgroupProcesses(partition.cgroups);
  if (partition.uid !== undefined) await killPartitionProcesses(partition.uid, partition.gid);
  await beforeEmpty?.();
  await emptyPartition(partition, nodePath);
  if (partition.privateDirs !== undefined && partition.isolation !== undefined)
    await wipePrivateDirs(partition.privateDirs, partition.isolation.gid, partition.isolation.keep);
  if (partition.cgroups !== undefined) await renewPartitionCgroups(partition.cgroups, limits);
}

/** Pids whose real uid is `uid`. */
export async function processesOfUid(uid: number): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const status = await readFile(`/proc/${entry}/status`, 'utf8');
      const match = /^Uid:\s+(\d+)/m.exec(status);
      if (match !== null && Number(match[1]) === uid) pids.push(Number(entry));
    } catch {
      // gone
    }
  }
  return pids;
}

/** Kills every process of the partition's user (never called for the agent's own user). */
export async function killPartitionProcesses(uid: number, gid: number | undefined): Promise<number> {
  for (let round = 0; round < 20; round += 1) {
    const left = await processesOfUid(uid);
    if (left.length === 0) return round;
    // kill(-1) from a process of that uid reaches exactly the processes of that uid.
    // It kills itself too, so it never "succeeds": its outcome says nothing, the next scan does.
    await runCommand(['/bin/kill', '-KILL', '-1'], { cwd: '/', uid, gid, env: HELPER_ENV, timeoutMs: 60_000 }).catch(
      () => undefined,
    );
    await sleep(50);
  }
  const left = await processesOfUid(uid);
  if (left.length > 0) throw new Error(`processes of uid ${uid} survive: ${left.join(', ')}`);
  return 20;
}

// A tenant may leave directories it cannot write (0555): as their owner, the wipe opens them first.
// lstat, so a link is never followed (it is then removed as a link).
const EMPTY = `
const fs = require('node:fs'); const path = require('node:path');
const dir = process.argv[1];
const open = (p) => {
  const stats = fs.lstatSync(p);
  if (!stats.isDirectory()) return;
  if ((stats.mode & 0o700) !== 0o700) fs.chmodSync(p, (stats.mode & 0o7777) | 0o700);
  for (const entry of fs.readdirSync(p)) open(path.join(p, entry));
};
open(dir);
for (const entry of fs.readdirSync(dir)) fs.rmSync(path.join(dir, entry), { recursive: true, force: true });`;

/**
 * Deletes everything inside the partition directory, as its user when it has one, and gives the
 * directory back its mode (a tenant may have opened it to everyone) and owner.
 */
export async function emptyPartition(
  partition: { path: string; uid: number | undefined; gid: number | undefined },
  nodePath: string,
): Promise<void> {
  // Not as root (no partition users) the same script runs as the agent, which then owns everything there.
  // Root may chmod the directory itself: its parent is root's (0711), so it cannot have been swapped for a link.
  await chmod(partition.path, 0o750);
  await runCommand([nodePath, '-e', EMPTY, partition.path], {
    cwd: '/',
    ...(partition.uid === undefined ? {} : { uid: partition.uid, gid: partition.gid }),
    env: HELPER_ENV,
    timeoutMs: 60_000,
    label: `emptying partition ${partition.path}`,
  });
  if (partition.uid !== undefined) await chown(partition.path, partition.uid, partition.gid ?? -1);
}
