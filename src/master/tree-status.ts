/** Instance trees with the state and health of each instance: what `hox list` / `hox show` display. */
import type { OpContext } from './context.js';
import { accessStatus } from './instance-view.js';
import { partitionUsageStatus, type PartitionUsageStatus } from './partition-usage.js';
import { ADMIN_OWNER_ID } from './principal.js';
import { HoxError } from '../shared/errors.js';
import type { InstanceRow, InstanceTreeRow, PartitionUsageRow } from '../store/store.js';

export type TreeHealth = 'ok' | 'pending' | 'error' | 'destroying';

export interface TreeInstanceStatus {
  instance_guid: string;
  title: string;
  requester_guid: string | null;
  shared: boolean;
  software_release_uri: string;
  software_type: string;
  state: string;
  reported_state: string | null;
  access_status_message: string;
  /** When the node last reported a state or an error (ISO 8601), or null. */
  status_at: string | null;
  computer_guid: string | null;
  compute_partition_id: string | null;
  host_instance_guid: string | null;
  processing_timestamp: number;
  connection_parameters: Record<string, unknown>;
  /** The partition's limits and usage as its node last reported them; null without a partition or a report. */
  partition_usage: PartitionUsageStatus | null;
}

export interface TreeStatus {
  title: string;
  owner: string;
  root_instance_guid: string;
  created_at: string;
  health: TreeHealth;
  instance_list: TreeInstanceStatus[];
}

function health(instances: InstanceRow[], root: InstanceRow | undefined): TreeHealth {
  if (root?.requestedState === 'destroyed') return 'destroying';
  if (instances.some((i) => i.errorMessage !== null)) return 'error';
  const settled = instances.every(
    (i) =>
      i.shared ||
      i.requestedState === i.reportedState ||
      (i.requestedState === 'destroyed' && i.reportedState === null),
  );
  return settled ? 'ok' : 'pending';
}

/** The report, if it is about the partition the instance has now (an instance never moves: a safety belt). */
function usageOf(i: InstanceRow, row: PartitionUsageRow | undefined, now: number): PartitionUsageStatus | null {
  if (row === undefined || row.nodeId !== i.nodeId || row.partitionId !== i.partitionId) return null;
  return partitionUsageStatus(row, now);
}

async function describeTree(ctx: OpContext, tree: InstanceTreeRow): Promise<TreeStatus> {
  const instances = await ctx.tx.listTreeInstances(tree.id);
  const usage = new Map(
    (await ctx.tx.listPartitionUsage(instances.filter((i) => i.partitionId !== null).map((i) => i.id))).map((u) => [
      u.instanceId,
      u,
    ]),
  );
  const now = ctx.clock.nowMs();
  const owner =
    tree.ownerId === ADMIN_OWNER_ID ? 'admin' : ((await ctx.tx.getUser(tree.ownerId))?.name ?? tree.ownerId);
  return {
    title: tree.title,
    owner,
    root_instance_guid: tree.rootInstanceId,
    created_at: new Date(tree.createdAtMs).toISOString(),
    health: health(
      instances,
      instances.find((i) => i.id === tree.rootInstanceId),
    ),
    instance_list: instances.map((i) => ({
      instance_guid: i.id,
      title: i.title,
      requester_guid: i.requesterId,
      shared: i.shared,
      software_release_uri: i.releaseUrl,
      software_type: i.softwareType,
      state: i.requestedState,
      reported_state: i.reportedState,
      access_status_message: accessStatus(i),
      status_at: i.statusAtMs === null ? null : new Date(i.statusAtMs).toISOString(),
      computer_guid: i.nodeId,
      compute_partition_id: i.partitionId,
      host_instance_guid: i.hostInstanceId,
      processing_timestamp: i.processingTimestamp,
      connection_parameters: i.connectionParameters,
      partition_usage: usageOf(i, usage.get(i.id), now),
    })),
  };
}

/** Trees visible to the caller (admin: all; user: own), optionally one title. */
export async function listTreeStatus(ctx: OpContext, title?: string): Promise<TreeStatus[]> {
  const p = ctx.principal;
  if (p.kind !== 'admin' && p.kind !== 'user')
    throw new HoxError('HOX_FORBIDDEN', 'only users and the admin list instance trees');
  // The admin lists every tree, but a title names one in the admin's own scope (as its requests do).
  const trees = await ctx.tx.listTrees(p.kind === 'user' ? p.userId : title === undefined ? undefined : ADMIN_OWNER_ID);
  const wanted = title === undefined ? trees : trees.filter((t) => t.title === title);
  if (title !== undefined && wanted.length === 0)
    throw new HoxError('HOX_INSTANCE_TREE_NOT_FOUND', `instance tree '${title}' not found`);
  const out: TreeStatus[] = [];
  for (const t of wanted) out.push(await describeTree(ctx, t));
  return out;
}
