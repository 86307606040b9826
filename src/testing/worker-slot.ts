/**
 * Which vitest worker runs this test file, and what that worker's compute nodes may use on this machine,
 * so that two test files can run at once (`vitest run --maxWorkers=2`) without sharing partition addresses
 * (hence ports and nftables tables). Node ids, data dirs and partition users are unique already (data dirs
 * are fresh temporary directories; users and cgroups are named after the node id and data dir).
 *
 * Slot 1 (the only one when vitest runs one file at a time, and outside vitest) changes nothing: an agent
 * picks its range from its node id, 127.20.0–127.219.249. Another slot s gets 127.(220+s).n, n counted
 * from 1 per node id in this process (one process per test file): no two nodes of a file share a range,
 * and no range of one slot is another's.
 */

/** The vitest pool slot of this process: 1..maxWorkers (VITEST_POOL_ID), 1 outside vitest. */
export function testWorkerSlot(env: NodeJS.ProcessEnv = process.env): number {
  const slot = Number(env['VITEST_POOL_ID'] ?? '1');
  return Number.isInteger(slot) && slot >= 1 ? slot : 1;
}

const MAX_SLOT = 34; // 127.254.x at most
const prefixes = new Map<string, string>();

/**
 * The partition address range (`a.b.c`, for `--ip-prefix`) of a test node called `nodeId` in this
 * worker's slot, the same for every call with that id; undefined in slot 1 (the agent's own default).
 */
export function testIpPrefix(nodeId: string, slot: number = testWorkerSlot()): string | undefined {
  if (slot <= 1) return undefined;
  if (slot > MAX_SLOT) throw new Error(`vitest worker slot ${slot}: at most ${MAX_SLOT} workers can run node tests`);
  let prefix = prefixes.get(nodeId);
  if (prefix === undefined) {
    const used = new Set(prefixes.values());
    for (let n = 1; n <= 250 && prefix === undefined; n++)
      if (!used.has(`127.${220 + slot}.${n}`)) prefix = `127.${220 + slot}.${n}`;
    if (prefix === undefined) throw new Error(`more than 250 test nodes in one file (slot ${slot})`);
    prefixes.set(nodeId, prefix);
  }
  return prefix;
}
