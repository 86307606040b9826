/**
 * What happens to instances over time, shared by requests and reports:
 * timestamps, cascading destruction, freeing partitions once nodes confirm.
 */
import type { InstanceRow } from '../store/store.js';
import { nextTimestamp, type OpContext } from './context.js';
import { revokeHolderCertificates } from './pki/holder-certificates.js';

/** Gives the instance a new processing timestamp and wakes whoever watches it. */
export async function touchInstance(
  ctx: OpContext,
  instance: InstanceRow,
  patch: Partial<Omit<InstanceRow, 'id'>> = {},
): Promise<InstanceRow> {
  const updated = {
    ...instance,
    ...patch,
    processingTimestamp: nextTimestamp(ctx.clock, instance.processingTimestamp),
  };
  await ctx.tx.updateInstance(instance.id, { ...patch, processingTimestamp: updated.processingTimestamp });
  await ctx.tx.appendChange({ nodeId: updated.nodeId, treeId: updated.treeId, atMs: ctx.clock.nowMs() });
  return updated;
}

/** Moves the host of a shared instance so it reprocesses its list. */
export async function touchHost(ctx: OpContext, hostInstanceId: string | null): Promise<void> {
  if (hostInstanceId === null) return;
  const host = await ctx.tx.getInstance(hostInstanceId);
  if (host !== undefined) await touchInstance(ctx, host);
}

/**
 * Requests destruction of an instance and, first, of every instance it
 * requested. Shared instances go at once (their host simply stops serving
 * them), and so do instances still waiting for a partition; partitions stay
 * busy until their node reports destroyed.
 */
export async function destroyInstance(ctx: OpContext, instance: InstanceRow): Promise<void> {
  const all = await ctx.tx.listTreeInstances(instance.treeId);
  const doomed: InstanceRow[] = [];
  const visit = (i: InstanceRow): void => {
    for (const child of all) if (child.requesterId === i.id) visit(child);
    doomed.push(i);
  };
  visit(instance);
  for (const i of doomed) {
    if (i.requestedState === 'destroyed') continue;
    // Only a report made once destruction is requested confirms it: a `destroyed` reported before (a node's
    // mistake, or a stale one) must not free the partition before the node has destroyed anything.
    await touchInstance(ctx, i, {
      requestedState: 'destroyed',
      ...(i.reportedState === 'destroyed' ? { reportedState: null } : {}),
    });
    if (i.shared) await touchHost(ctx, i.hostInstanceId);
  }
  await collectDestroyed(ctx, instance.treeId);
}

/**
 * Forgets destroyed instances whose node confirmed (or that are shared),
 * children before parents; frees their partitions; drops the tree when empty.
 */
export async function collectDestroyed(ctx: OpContext, treeId: string): Promise<void> {
  let remaining = await ctx.tx.listTreeInstances(treeId);
  for (let progress = true; progress;) {
    progress = false;
    for (const i of remaining) {
      if (i.requestedState !== 'destroyed') continue;
      // A partition is freed once its node confirms; an instance that never got one (it waited) goes at once.
      if (!i.shared && i.partitionId !== null && i.reportedState !== 'destroyed') continue;
      if (remaining.some((c) => c.requesterId === i.id)) continue;
      await forget(ctx, i);
      remaining = remaining.filter((r) => r.id !== i.id);
      progress = true;
      break;
    }
  }
  if (remaining.length === 0 && (await ctx.tx.getTree(treeId)) !== undefined) await ctx.tx.deleteTree(treeId);
}

async function forget(ctx: OpContext, i: InstanceRow): Promise<void> {
  if (i.nodeId !== null && i.partitionId !== null) {
    await ctx.tx.updatePartition(i.nodeId, i.partitionId, { state: 'free', instanceId: null });
  }
  // Shared instances it hosted lose their host: they wait, not ready, until the master places them on another.
  for (const hosted of await ctx.tx.listHostedInstances(i.id)) {
    await ctx.tx.updateInstance(hosted.id, { hostInstanceId: null, nodeId: null });
    await ctx.tx.appendChange({ nodeId: null, treeId: hosted.treeId, atMs: ctx.clock.nowMs() });
  }
  await ctx.tx.deleteTokens('instance', i.id);
  // Its certificates stop working with its token, in the same transaction.
  await revokeHolderCertificates(ctx, 'instance', i.id);
  await ctx.tx.deleteInstance(i.id);
  await ctx.tx.appendChange({ nodeId: i.nodeId, treeId: i.treeId, atMs: ctx.clock.nowMs() });
}
