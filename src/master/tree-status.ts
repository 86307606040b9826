/** Instance trees with the state and health of each instance: what `hox list` / `hox show` display. */
import type { OpContext } from './context.js';
import { accessStatus } from './instance-view.js';
import { partitionUsageStatus, type PartitionUsageStatus } from './partition-usage.js';
import { promiseReportStatus, type PromiseReportStatus } from './promise-report.js';
import { isWaiting, waitingReason } from './placement.js';
import { ADMIN_OWNER_ID } from './principal.js';
import { treeHealth, type TreeHealth } from './tree-health.js';
import { HoxError } from '../shared/errors.js';
import type {
  ComputeNodeRow,
  InstanceRow,
  InstanceTreeRow,
  PartitionUsageRow,
  PromiseResultRow,
} from '../store/store.js';

export type { TreeHealth } from './tree-health.js';

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
  /** Placed nowhere yet: what it waits for (a partition, a host) and why none fits; null once placed. */
  waiting_for: string | null;
  processing_timestamp: number;
  connection_parameters: Record<string, unknown>;
  /** What it was requested with: its owner reads them (the CLI masks secrets unless asked). */
  parameters: Record<string, unknown>;
  sla_parameters: Record<string, unknown>;
  /** Each promise's latest result as its node last reported them; null without a partition or a report. */
  promises: PromiseReportStatus | null;
  /** The partition's limits and usage as its node last reported them; null without a partition or a report. */
  partition_usage: PartitionUsageStatus | null;
}

export interface TreeStatus {
  title: string;
  owner: string;
  root_instance_guid: string;
  created_at: string;
  /** See tree-health.ts: `ok` only when every instance converged, none errs and every node is in contact. */
  health: TreeHealth;
  /** What is wrong (null when ok). */
  health_message: string | null;
  /** The oldest last contact among the nodes running the tree's instances (ISO 8601; null: none yet). */
  reported_at: string | null;
  /** Its age in the master's clock (ms), as of this answer. */
  reported_age_ms: number | null;
  instance_list: TreeInstanceStatus[];
}

/** The report, if it is about the partition the instance has now (an instance never moves: a safety belt). */
function usageOf(i: InstanceRow, row: PartitionUsageRow | undefined, now: number): PartitionUsageStatus | null {
  if (row === undefined || row.nodeId !== i.nodeId || row.partitionId !== i.partitionId) return null;
  return partitionUsageStatus(row, now);
}

/** The same belt for promise reports. */
function promisesOf(i: InstanceRow, row: PromiseResultRow | undefined, now: number): PromiseReportStatus | null {
  if (row === undefined || row.nodeId !== i.nodeId || row.partitionId !== i.partitionId) return null;
  return promiseReportStatus(row, now);
}

async function describeTree(ctx: OpContext, tree: InstanceTreeRow): Promise<TreeStatus> {
  const instances = await ctx.tx.listTreeInstances(tree.id);
  const placed = instances.filter((i) => i.partitionId !== null).map((i) => i.id);
  const usage = new Map((await ctx.tx.listPartitionUsage(placed)).map((u) => [u.instanceId, u]));
  const promises = new Map((await ctx.tx.listPromiseResults(placed)).map((p) => [p.instanceId, p]));
  const now = ctx.clock.nowMs();
  const nodes = new Map<string, ComputeNodeRow>();
  for (const id of new Set(instances.map((i) => i.nodeId))) {
    const node = id === null ? undefined : await ctx.tx.getNode(id);
    if (node !== undefined) nodes.set(node.id, node);
  }
  const waitingFor = new Map<string, string>();
  for (const i of instances) if (isWaiting(i)) waitingFor.set(i.id, await waitingReason(ctx, i));
  const verdict = treeHealth(instances, tree.rootInstanceId, nodes, now, waitingFor);
  const owner =
    tree.ownerId === ADMIN_OWNER_ID ? 'admin' : ((await ctx.tx.getUser(tree.ownerId))?.name ?? tree.ownerId);
  return {
    title: tree.title,
    owner,
    root_instance_guid: tree.rootInstanceId,
    created_at: new Date(tree.createdAtMs).toISOString(),
    health: verdict.health,
    health_message: verdict.message,
    reported_at: verdict.reportedAtMs === null ? null : new Date(verdict.reportedAtMs).toISOString(),
    reported_age_ms: verdict.reportedAtMs === null ? null : Math.max(0, now - verdict.reportedAtMs),
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
      waiting_for: waitingFor.get(i.id) ?? null,
      processing_timestamp: i.processingTimestamp,
      connection_parameters: i.connectionParameters,
      parameters: i.parameters,
      sla_parameters: i.sla,
      promises: promisesOf(i, promises.get(i.id), now),
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
