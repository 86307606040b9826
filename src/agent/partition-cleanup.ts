/**
 * Emptying a partition between tenants. Partition users belong to the
 * partition, not to the instance: whatever the previous instance left running
 * (a daemon that escaped its process group) would otherwise meet the next one,
 * and a root `rm -rf` inside a directory its user controls can be raced with
 * symlinks. So: kill everything of that uid, then delete as that uid.
 */
import { readFile, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { HELPER_ENV, runCommand } from './run-command.js';

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

const EMPTY = `
const fs = require('node:fs'); const path = require('node:path');
const dir = process.argv[1];
for (const entry of fs.readdirSync(dir)) fs.rmSync(path.join(dir, entry), { recursive: true, force: true });`;

/** Deletes everything inside the partition directory, as its user when it has one. */
export async function emptyPartition(
  partition: { path: string; uid: number | undefined; gid: number | undefined },
  nodePath: string,
): Promise<void> {
  if (partition.uid === undefined) {
    for (const entry of await readdir(partition.path))
      await rm(join(partition.path, entry), { recursive: true, force: true });
    return;
  }
  await runCommand([nodePath, '-e', EMPTY, partition.path], {
    cwd: partition.path,
    uid: partition.uid,
    gid: partition.gid,
    env: HELPER_ENV,
    timeoutMs: 60_000,
    label: `emptying partition ${partition.path}`,
  });
}
