/**
 * Where a partition's processes live in the cgroup hierarchies. Pure: names only.
 *
 * The convention, shared with the network isolation (nftables matches
 * `socket cgroupv2 level 3 "<partitionCgroup2Path(...)>"`):
 *
 * - cgroup2 (no controllers on these machines; it only names processes):
 *   `<CGROUP2_MOUNT>/hox/<nodeTag>/<partitionId>`, always from the root of the
 *   hierarchy, whatever cgroup the agent itself runs in;
 * - cgroup v1 controllers (`memory`, `cpu`, `pids`, where the limits are):
 *   `/sys/fs/cgroup/<controller>/<agent's own cgroup>/hox/<nodeTag>/<partitionId>`,
 *   beneath the cgroup the agent was started in (a service manager keeps its
 *   children inside its own cgroup; on a plain node that is the root).
 *
 * Every process the agent starts for a partition joins all of them before it
 * executes anything of the tenant; the directories exist from the format on.
 */

/** Where the cgroup2 hierarchy is mounted on these machines. */
export const CGROUP2_MOUNT = '/sys/fs/cgroup/unified';

/** Where the cgroup v1 controllers are mounted, one directory each. */
export const CGROUP_V1_ROOT = '/sys/fs/cgroup';

/** The v1 controllers that hold a partition's limits. */
export const CGROUP_V1_CONTROLLERS = ['memory', 'cpu', 'pids'] as const;
export type CgroupV1Controller = (typeof CGROUP_V1_CONTROLLERS)[number];

/**
 * A partition's cgroup2 path relative to the root of the cgroup2 hierarchy, as
 * nftables wants it (`socket cgroupv2 level 3 "hox/a1b2c3/p0"`): always 3 levels.
 *
 * @example partitionCgroup2Path('a1b2c3', 'p0') === 'hox/a1b2c3/p0'
 */
export function partitionCgroup2Path(nodeTag: string, partitionId: string): string {
  if (!/^[0-9a-f]{6}$/.test(nodeTag)) throw new Error(`'${nodeTag}' is not a node tag (6 hex digits)`);
  if (!/^p\d{1,3}$/.test(partitionId)) throw new Error(`'${partitionId}' is not a partition id`);
  return `hox/${nodeTag}/${partitionId}`;
}

/** The node's own cgroup2 directory relative to the root (`hox/<nodeTag>`), parent of its partitions'. */
export function nodeCgroup2Path(nodeTag: string): string {
  return partitionCgroup2Path(nodeTag, 'p0').slice(0, -'/p0'.length);
}
