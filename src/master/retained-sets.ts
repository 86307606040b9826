/**
 * Retained sets: what nodes keep of destroyed instances (what a software type declares `retain`: a destroyed
 * cluster's backups) for their retention period, and who may list them.
 *
 * What this upholds:
 * - A node describes only what it held for an instance it ran: a set is created only by its node's report
 *   made while the master still knows the instance, allocated on that node and partition, its destruction
 *   requested (the agent reports it before reporting the instance destroyed). Its owner and titles come from
 *   the master's records then, never from the node. Afterwards the node can only shorten the list: its
 *   periodic report names the sets it still holds; the master forgets this node's others and ignores names
 *   it does not know.
 * - A user lists only their own sets (the admin, every one); others' are not found, as for instances.
 * - A status is a claim: the node says how long a set has left (its clock is not the master's); the master
 *   places that in its own clock, and a set past its time is no longer listed, held or not.
 */
import { HoxError, badRequest } from '../shared/errors.js';
import type { RetainedPathRow, RetainedSetRow } from '../store/store.js';
import type { OpContext } from './context.js';
import { loadNode, touchNode } from './nodes.js';
import { ADMIN_OWNER_ID } from './principal.js';

export interface RetainedSetReport {
  compute_partition_id: string;
  instance_guid: string;
  expires_in_ms: number;
  path_list: RetainedPathRow[];
}

export interface RetainedSetView {
  instance_guid: string;
  title: string;
  instance_title: string;
  owner: string;
  software_release_uri: string;
  software_type: string;
  computer_guid: string;
  destroyed_at: string;
  expires_at: string;
  path_list: RetainedPathRow[];
}

/** Records the set a node kept of an instance it is destroying. */
export async function reportRetainedSet(ctx: OpContext, nodeId: string, report: RetainedSetReport): Promise<void> {
  const node = await loadNode(ctx, nodeId);
  const instance = await ctx.tx.getInstance(report.instance_guid);
  if (instance === undefined || instance.shared || instance.nodeId !== nodeId)
    throw new HoxError(
      'HOX_INSTANCE_NOT_FOUND',
      `instance '${report.instance_guid}' not found on compute node '${nodeId}'`,
      { field: 'instance_guid' },
    );
  if (instance.partitionId !== report.compute_partition_id)
    throw badRequest(
      'compute_partition_id',
      `instance '${report.instance_guid}' is on partition '${instance.partitionId ?? 'none'}' of compute node '${nodeId}', not '${report.compute_partition_id}'`,
    );
  if (instance.requestedState !== 'destroyed')
    throw new HoxError(
      'HOX_CONFLICT',
      `instance '${instance.title}' (${instance.id}) is not being destroyed: nothing of it is retained yet`,
      { field: 'instance_guid' },
    );
  const paths = new Set<string>();
  for (const [index, p] of report.path_list.entries()) {
    if (paths.has(p.path)) throw badRequest(`path_list.${index}.path`, `path '${p.path}' is reported twice`);
    paths.add(p.path);
  }
  const tree = await ctx.tx.getTree(instance.treeId);
  if (tree === undefined) throw new HoxError('HOX_INSTANCE_NOT_FOUND', `instance '${instance.id}' has no tree`);
  const now = ctx.clock.nowMs();
  const previous = (await ctx.tx.listRetainedSets({ nodeId })).find((r) => r.instanceId === instance.id);
  const row: RetainedSetRow = {
    instanceId: instance.id,
    nodeId,
    partitionId: report.compute_partition_id,
    ownerId: tree.ownerId,
    treeTitle: tree.title,
    instanceTitle: instance.title,
    releaseUrl: instance.releaseUrl,
    softwareType: instance.softwareType,
    paths: report.path_list.map((p) => ({ path: p.path, kind: p.kind, bytes: p.bytes, catalog: p.catalog })),
    destroyedAtMs: previous?.destroyedAtMs ?? now,
    expiresAtMs: now + report.expires_in_ms,
    reportedAtMs: now,
  };
  await ctx.tx.putRetainedSet(row);
  await touchNode(ctx, node);
}

/**
 * The node's full list of the sets it still holds: times left updated, this node's other sets forgotten,
 * unknown names ignored. Returns how many are kept and forgotten.
 */
export async function reportRetainedSets(
  ctx: OpContext,
  nodeId: string,
  list: readonly { instance_guid: string; expires_in_ms: number }[],
): Promise<{ kept: number; forgotten: number }> {
  const node = await loadNode(ctx, nodeId);
  const now = ctx.clock.nowMs();
  const held = new Map(list.map((s) => [s.instance_guid, s.expires_in_ms]));
  const forgotten: string[] = [];
  let kept = 0;
  for (const row of await ctx.tx.listRetainedSets({ nodeId })) {
    const left = held.get(row.instanceId);
    if (left === undefined) forgotten.push(row.instanceId);
    else {
      await ctx.tx.updateRetainedSet(row.instanceId, { expiresAtMs: now + left, reportedAtMs: now });
      kept += 1;
    }
  }
  await ctx.tx.deleteRetainedSets(forgotten);
  await touchNode(ctx, node);
  return { kept, forgotten: forgotten.length };
}

/** The caller's sets still within their time (admin: every one; a title names one in the admin's scope). */
export async function listRetainedSets(ctx: OpContext, title?: string): Promise<RetainedSetView[]> {
  const p = ctx.principal;
  if (p.kind !== 'admin' && p.kind !== 'user')
    throw new HoxError('HOX_FORBIDDEN', 'only users and the admin list retained sets');
  const ownerId = p.kind === 'user' ? p.userId : title === undefined ? undefined : ADMIN_OWNER_ID;
  const now = ctx.clock.nowMs();
  const rows = (await ctx.tx.listRetainedSets(ownerId === undefined ? {} : { ownerId })).filter(
    (r) => r.expiresAtMs > now && (title === undefined || r.treeTitle === title),
  );
  const names = new Map<string, string>();
  const out: RetainedSetView[] = [];
  for (const r of rows) {
    if (!names.has(r.ownerId))
      names.set(
        r.ownerId,
        r.ownerId === ADMIN_OWNER_ID ? 'admin' : ((await ctx.tx.getUser(r.ownerId))?.name ?? r.ownerId),
      );
    out.push({
      instance_guid: r.instanceId,
      title: r.treeTitle,
      instance_title: r.instanceTitle,
      owner: names.get(r.ownerId) ?? r.ownerId,
      software_release_uri: r.releaseUrl,
      software_type: r.softwareType,
      computer_guid: r.nodeId,
      destroyed_at: new Date(r.destroyedAtMs).toISOString(),
      expires_at: new Date(r.expiresAtMs).toISOString(),
      path_list: r.paths,
    });
  }
  return out;
}
