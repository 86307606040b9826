/** Reading instances, and what nodes and instances report about them. */
import { HoxError, badRequest } from '../shared/errors.js';
import { hashToken, newToken } from '../shared/ids.js';
import { BANG_NOTE, type ReportedInstanceState, type RequestedState } from '../shared/states.js';
import type { InstanceRow } from '../store/store.js';
import { canonicalJson } from './canonical-json.js';
import type { OpContext } from './context.js';
import { freePartitionDocument, instanceDocument, type InstanceDocument } from './instance-view.js';
import { collectDestroyed, touchHost, touchInstance } from './lifecycle.js';
import { loadNode, touchNode } from './nodes.js';
import { describePrincipal, loadInstance, requesterOwnerId } from './principal.js';
import { MAX_TITLE_LENGTH, notReady, type NotReady } from './requests.js';

/**
 * Reports and publications come from the instance itself, the node running it
 * (for a shared instance: its host or the host's node) or the admin.
 */
async function loadForReport(ctx: OpContext, instanceId: string): Promise<InstanceRow> {
  const instance = await loadInstance(ctx.tx, ctx.principal, instanceId);
  const p = ctx.principal;
  const allowed =
    p.kind === 'admin' ||
    (p.kind === 'node' && instance.nodeId === p.nodeId) ||
    (p.kind === 'instance' && (p.instanceId === instance.id || p.instanceId === instance.hostInstanceId));
  if (!allowed)
    throw new HoxError('HOX_FORBIDDEN', `${describePrincipal(p)} may not report for instance '${instanceId}'`);
  return instance;
}

export async function getInstance(ctx: OpContext, instanceId: string): Promise<InstanceDocument> {
  // One placed nowhere yet reads as SlapOS's master shows it: no compute node, no partition, no data.
  return instanceDocument(ctx.tx, await loadInstance(ctx.tx, ctx.principal, instanceId));
}

export async function getPartition(ctx: OpContext, nodeId: string, partitionId: string): Promise<InstanceDocument> {
  const node = await loadNode(ctx, nodeId);
  const partition = await ctx.tx.getPartition(nodeId, partitionId);
  if (partition === undefined)
    throw new HoxError('HOX_PARTITION_NOT_FOUND', `partition '${partitionId}' not found on compute node '${nodeId}'`);
  await touchNode(ctx, node);
  const instance = partition.instanceId === null ? undefined : await ctx.tx.getInstance(partition.instanceId);
  if (instance === undefined) return freePartitionDocument(nodeId, partitionId, partition.ipList);
  return instanceDocument(ctx.tx, instance, partition);
}

/** Every partition of a node with its full document: one call per sync instead of one per partition. */
export async function listPartitionDocuments(ctx: OpContext, nodeId: string): Promise<InstanceDocument[]> {
  const node = await loadNode(ctx, nodeId);
  await touchNode(ctx, node);
  const out: InstanceDocument[] = [];
  for (const partition of await ctx.tx.listPartitions(nodeId)) {
    const instance = partition.instanceId === null ? undefined : await ctx.tx.getInstance(partition.instanceId);
    out.push(
      instance === undefined
        ? freePartitionDocument(nodeId, partition.partitionId, partition.ipList)
        : await instanceDocument(ctx.tx, instance, partition),
    );
  }
  return out;
}

export interface NodeInstanceItem {
  instance_guid: string;
  title: string;
  state: RequestedState;
  compute_partition_id: string;
  software_release_uri: string;
}

/** The (non-shared) instances a node must run, destroyed ones included until it confirms. */
export async function listNodeInstances(ctx: OpContext, nodeId: string): Promise<NodeInstanceItem[]> {
  const p = ctx.principal;
  // An instance sees itself only, as SlapOS's master answers it (test_InstanceAccess_11).
  if (p.kind === 'instance') {
    const self = await ctx.tx.getInstance(p.instanceId);
    if (self?.nodeId !== nodeId)
      throw new HoxError('HOX_FORBIDDEN', `${describePrincipal(p)} does not run on compute node '${nodeId}'`);
  } else await touchNode(ctx, await loadNode(ctx, nodeId));
  return (await ctx.tx.listNodeInstances(nodeId))
    .filter((i) => !i.shared && i.partitionId !== null)
    .filter((i) => p.kind !== 'instance' || i.id === p.instanceId)
    .map((i) => ({
      instance_guid: i.id,
      title: i.title,
      state: i.requestedState,
      compute_partition_id: i.partitionId ?? '',
      software_release_uri: i.releaseUrl,
    }));
}

export interface HostedInstanceItem extends NodeInstanceItem {
  software_type: string;
  parameters: Record<string, unknown>;
}

/** The shared instances a host instance serves. */
export async function listHostedInstances(ctx: OpContext, hostId: string): Promise<HostedInstanceItem[]> {
  const host = await loadInstance(ctx.tx, ctx.principal, hostId);
  return (await ctx.tx.listHostedInstances(host.id)).map((i) => ({
    instance_guid: i.id,
    title: i.title,
    state: i.requestedState,
    compute_partition_id: host.partitionId ?? '',
    software_release_uri: i.releaseUrl,
    software_type: i.softwareType,
    parameters: i.parameters,
  }));
}

export async function reportInstanceState(
  ctx: OpContext,
  instanceId: string,
  reported: ReportedInstanceState,
): Promise<void> {
  const instance = await loadForReport(ctx, instanceId);
  // Always recorded, even unchanged: "reported after my request" is how a requester knows it converged.
  await ctx.tx.updateInstance(instance.id, {
    reportedState: reported,
    errorMessage: null,
    statusAtMs: ctx.clock.nowMs(),
  });
  await ctx.tx.appendChange({ nodeId: null, treeId: instance.treeId, atMs: ctx.clock.nowMs() });
  if (reported === 'destroyed' && instance.requestedState === 'destroyed') await collectDestroyed(ctx, instance.treeId);
}

export async function reportInstanceError(ctx: OpContext, instanceId: string, message: string): Promise<void> {
  const instance = await loadForReport(ctx, instanceId);
  // SlapOS's words, its spelling included (its clients compare them).
  const text = `while instanciating: ${message}`;
  // The same error again is news only when it answers a newer request than the one it was last reported for
  // (its requester waits for a report made after its request): otherwise the change feed is spared.
  const reportedSinceRequest = (instance.statusAtMs ?? 0) * 1000 >= instance.processingTimestamp;
  if (instance.errorMessage === text && reportedSinceRequest) return;
  await ctx.tx.updateInstance(instance.id, { errorMessage: text, statusAtMs: ctx.clock.nowMs() });
  await ctx.tx.appendChange({ nodeId: null, treeId: instance.treeId, atMs: ctx.clock.nowMs() });
}

/**
 * Publishes connection parameters. The requester (parent instance) gets a new
 * processing timestamp so its node converges again with the child's values.
 */
export async function publishConnectionParameters(
  ctx: OpContext,
  instanceId: string,
  parameters: Record<string, unknown>,
): Promise<boolean> {
  const instance = await loadForReport(ctx, instanceId);
  if (canonicalJson(instance.connectionParameters) === canonicalJson(parameters)) return false;
  await ctx.tx.updateInstance(instance.id, { connectionParameters: parameters });
  await ctx.tx.appendChange({ nodeId: null, treeId: instance.treeId, atMs: ctx.clock.nowMs() });
  if (instance.requesterId !== null) {
    const requester = await ctx.tx.getInstance(instance.requesterId);
    if (requester !== undefined && requester.requestedState !== 'destroyed') await touchInstance(ctx, requester);
  }
  return true;
}

/** An instance renames or bangs within its own tree only, never the tree of a shared instance it hosts. */
async function assertOwnTree(ctx: OpContext, instance: InstanceRow): Promise<void> {
  if (ctx.principal.kind !== 'instance') return;
  const self = await ctx.tx.getInstance(ctx.principal.instanceId);
  if (self?.treeId !== instance.treeId)
    throw new HoxError(
      'HOX_FORBIDDEN',
      `${describePrincipal(ctx.principal)} may only act within its own instance tree`,
    );
}

/** Bangs the whole tree of an instance: every instance in it is reprocessed. */
export async function bangInstance(ctx: OpContext, instanceId: string, message: string): Promise<void> {
  const instance = await loadInstance(ctx.tx, ctx.principal, instanceId);
  await assertOwnTree(ctx, instance);
  if (ctx.principal.kind === 'node' && instance.nodeId !== ctx.principal.nodeId)
    throw new HoxError('HOX_FORBIDDEN', `${describePrincipal(ctx.principal)} may not bang instance '${instanceId}'`);
  for (const i of await ctx.tx.listTreeInstances(instance.treeId)) {
    if (i.requestedState === 'destroyed') continue;
    // As SlapOS's master does, the banged instance's status says so (`#error bang called: …`) until its node
    // reports again. Not a report: status_at stays, so a requester still waits for the node's answer.
    const note = i.id === instance.id ? { errorMessage: `${BANG_NOTE}${message}` } : {};
    await touchInstance(ctx, i, note);
    if (i.shared) await touchHost(ctx, i.hostInstanceId);
  }
}

/** Renames an instance; renaming a root renames its tree. Partition and guid stay. */
export async function renameInstance(ctx: OpContext, instanceId: string, title: string): Promise<void> {
  if (title.trim() === '') throw badRequest('title', 'must not be empty');
  if (title.length > MAX_TITLE_LENGTH) throw badRequest('title', `longer than ${MAX_TITLE_LENGTH} characters`);
  const instance = await loadInstance(ctx.tx, ctx.principal, instanceId);
  await assertOwnTree(ctx, instance);
  if (ctx.principal.kind === 'node')
    throw new HoxError('HOX_FORBIDDEN', `${describePrincipal(ctx.principal)} may not rename instances`);
  if (instance.title === title) return;
  const clash = await ctx.tx.findInstance(instance.treeId, title);
  if (clash !== undefined)
    throw new HoxError('HOX_TITLE_CONFLICT', `title '${title}' is already used in this instance tree`, {
      field: 'title',
    });
  const tree = await ctx.tx.getTree(instance.treeId);
  if (tree !== undefined && tree.rootInstanceId === instance.id) {
    if ((await ctx.tx.findTree(tree.ownerId, title)) !== undefined)
      throw new HoxError('HOX_TITLE_CONFLICT', `an instance tree titled '${title}' already exists`, { field: 'title' });
    await ctx.tx.updateTree(tree.id, { title });
  }
  await touchInstance(ctx, instance, { title });
}

/** Issues a fresh instance token (replacing the previous one) for the node running the instance. */
export async function issueInstanceToken(ctx: OpContext, instanceId: string): Promise<string> {
  const instance = await loadInstance(ctx.tx, ctx.principal, instanceId);
  const p = ctx.principal;
  if (!(p.kind === 'admin' || (p.kind === 'node' && instance.nodeId === p.nodeId && !instance.shared)))
    throw new HoxError('HOX_FORBIDDEN', `${describePrincipal(p)} may not obtain a token for instance '${instanceId}'`);
  await ctx.tx.deleteTokens('instance', instance.id);
  const token = newToken('inst');
  await ctx.tx.insertToken({
    hash: hashToken(token),
    kind: 'instance',
    subject: instance.id,
    createdAtMs: ctx.clock.nowMs(),
    expiresAtMs: null,
    usedAtMs: null,
  });
  return token;
}

export async function getTreeRoot(ctx: OpContext, title: string): Promise<InstanceDocument | NotReady> {
  const ownerId = requesterOwnerId(ctx.principal);
  const tree = await ctx.tx.findTree(ownerId, title);
  if (tree === undefined)
    throw new HoxError('HOX_INSTANCE_TREE_NOT_FOUND', `instance tree '${title}' not found`, {
      slaposTitle: `No instance tree found with title: ${title}`,
    });
  const root = await ctx.tx.getInstance(tree.rootInstanceId);
  if (root === undefined) return notReady(`instance tree '${title}' has no root instance yet`);
  return getInstance(ctx, root.id);
}

export async function listTreeTitles(ctx: OpContext): Promise<{ title: string }[]> {
  const ownerId = requesterOwnerId(ctx.principal);
  return (await ctx.tx.listTrees(ownerId)).map((t) => ({ title: t.title }));
}
