/**
 * Where an instance goes: a free partition for an instance of its own, a host for a shared one.
 *
 * SlapOS's pending allocation: a request that cannot be placed now is still accepted. Its instance waits, unplaced,
 * and {@link placeWaiting} (run on every change that may make room, src/master/pending-allocation.ts) places it
 * without another request; until then its requester is answered "not ready" with {@link Placement}'s reason.
 * What can never succeed is refused at once instead: an SLA naming a compute node that is not registered, or a
 * host instance that does not exist or is another user's.
 */
import { HoxError } from '../shared/errors.js';
import type { InstanceRow, PartitionRow } from '../store/store.js';
import { noPartitionError } from './allocation-failure.js';
import type { OpContext } from './context.js';
import { touchHost, touchInstance } from './lifecycle.js';
import { ADMIN_OWNER_ID } from './principal.js';
import { parseSla, type Sla } from './sla.js';

/** What an instance needs placing: the fields the allocator reads. */
export type Placeable = Pick<
  InstanceRow,
  'title' | 'treeId' | 'shared' | 'releaseUrl' | 'softwareType' | 'requesterId'
>;

export type Placement =
  | { kind: 'partition'; partition: PartitionRow }
  | { kind: 'host'; host: InstanceRow }
  /** Nothing fits now; `reason` says what it waits for, in words that say what to do. */
  | { kind: 'waiting'; reason: string };

/** Whether an instance waits for a partition (or a host): requested, not destroyed, placed nowhere yet. */
export function isWaiting(i: Pick<InstanceRow, 'nodeId' | 'requestedState'>): boolean {
  return i.nodeId === null && i.requestedState !== 'destroyed';
}

/**
 * Finds where `instance` (of owner `ownerId`) goes now; throws only for what waiting cannot fix. With
 * `explain: false` a waiting reason is left generic (the allocator's pass: it reads none).
 */
export async function findPlacement(
  ctx: OpContext,
  instance: Placeable,
  sla: Sla,
  ownerId: string,
  options: { explain?: boolean } = {},
): Promise<Placement> {
  if (sla.computer_guid !== undefined && (await ctx.tx.getNode(sla.computer_guid)) === undefined)
    throw new HoxError('HOX_NODE_NOT_FOUND', `compute node '${sla.computer_guid}' not found`, {
      field: 'sla_parameters.computer_guid',
    });
  if (instance.shared) return await findHost(ctx, instance, sla, ownerId);
  return await findPartition(ctx, instance, sla, options.explain ?? true);
}

/** A partition for an instance of its own, or why none fits. */
async function findPartition(ctx: OpContext, instance: Placeable, sla: Sla, explain: boolean): Promise<Placement> {
  // Anti-affinity and unique_by_network are about the other instances its requester made (a root has none).
  const siblings =
    instance.requesterId === null
      ? []
      : (await ctx.tx.listTreeInstances(instance.treeId)).filter((i) => !i.shared && i.nodeId !== null);
  const excludeNodeIds =
    sla.anti_affinity === undefined
      ? []
      : siblings.filter((i) => i.sla.anti_affinity === sla.anti_affinity).map((i) => i.nodeId as string);
  const excludeNetworkGuids: string[] = [];
  if (sla.mode === 'unique_by_network') {
    for (const nodeId of new Set(siblings.map((i) => i.nodeId as string))) {
      const network = (await ctx.tx.getNode(nodeId))?.networkGuid;
      if (network) excludeNetworkGuids.push(network);
    }
  }
  const partition = await ctx.tx.findFreePartition({
    releaseUrl: instance.releaseUrl,
    ...(sla.computer_guid === undefined ? {} : { nodeId: sla.computer_guid }),
    ...(sla.network_guid === undefined ? {} : { networkGuid: sla.network_guid }),
    excludeNodeIds,
    excludeNetworkGuids,
  });
  if (partition !== undefined) return { kind: 'partition', partition };
  if (!explain) return { kind: 'waiting', reason: 'waiting for a partition' };
  const why = await noPartitionError(ctx.tx, {
    releaseUrl: instance.releaseUrl,
    nodeId: sla.computer_guid,
    networkGuid: sla.network_guid,
    exclusions: [
      excludeNodeIds.length > 0 &&
        `away from ${excludeNodeIds.map((n) => `'${n}'`).join(', ')} (anti_affinity '${sla.anti_affinity}')`,
      excludeNetworkGuids.length > 0 && `outside network(s) ${excludeNetworkGuids.join(', ')} (unique_by_network)`,
    ].filter((e): e is string => typeof e === 'string'),
  });
  return { kind: 'waiting', reason: `waiting for a partition: ${why.message}` };
}

/**
 * The host of a shared instance: a busy partition running the same release (and type), in a tree of the same
 * owner or of the admin (a platform service such as a CDN frontend) — never another user's instance, which would
 * see the shared instance's parameters and publish its connection parameters.
 */
async function findHost(ctx: OpContext, instance: Placeable, sla: Sla, ownerId: string): Promise<Placement> {
  const wantType = instance.softwareType;
  const owners = new Set([ownerId, ADMIN_OWNER_ID]);
  const ofOwners = async (h: InstanceRow): Promise<boolean> =>
    owners.has((await ctx.tx.getTree(h.treeId))?.ownerId ?? '');
  const fits = async (h: InstanceRow): Promise<boolean> =>
    h.releaseUrl === instance.releaseUrl &&
    !h.shared &&
    h.partitionId !== null &&
    h.requestedState !== 'destroyed' &&
    (wantType === '' || h.softwareType === wantType) &&
    (await ofOwners(h));
  const release = `'${instance.releaseUrl}'${wantType ? ` with software type '${wantType}'` : ''}`;
  if (sla.instance_guid !== undefined) {
    const host = await ctx.tx.getInstance(sla.instance_guid);
    // One that is not there, or not the requester's to use, never will be: refused rather than waited for.
    if (host === undefined || host.shared || !(await ofOwners(host)))
      throw new HoxError(
        'HOX_NO_SHARED_HOST',
        `instance '${sla.instance_guid}' cannot host shared instance '${instance.title}': it must exist, be yours or the admin's, and not be shared itself`,
        { field: 'sla_parameters.instance_guid' },
      );
    if (await fits(host)) return { kind: 'host', host };
    return {
      kind: 'waiting',
      reason: `waiting for a host: instance '${sla.instance_guid}' must be allocated, not destroyed, and run ${release}`,
    };
  }
  for (const candidate of await ctx.tx.listHostCandidates(instance.releaseUrl, sla.computer_guid))
    if (await fits(candidate)) return { kind: 'host', host: candidate };
  return {
    kind: 'waiting',
    reason: `waiting for a host: no instance runs ${release}${sla.computer_guid ? ` on compute node '${sla.computer_guid}'` : ''} to host shared instance '${instance.title}'`,
  };
}

/** The instance row's fields once placed (a new row takes them as they are). */
export function placedFields(placement: Placement): Partial<InstanceRow> {
  switch (placement.kind) {
    case 'partition':
      return { nodeId: placement.partition.nodeId, partitionId: placement.partition.partitionId };
    case 'host':
      return { hostInstanceId: placement.host.id, nodeId: placement.host.nodeId };
    case 'waiting':
      return {};
  }
}

/** Takes the partition (or tells the host): after the instance row holds {@link placedFields}. */
export async function claimPlacement(ctx: OpContext, placement: Placement, instanceId: string): Promise<void> {
  if (placement.kind === 'partition')
    await ctx.tx.updatePartition(placement.partition.nodeId, placement.partition.partitionId, {
      state: 'busy',
      instanceId,
    });
  else if (placement.kind === 'host') await touchHost(ctx, placement.host.id);
}

/** The owner whose hosts a shared instance of tree `treeId` may use. */
async function ownerOf(ctx: OpContext, treeId: string): Promise<string> {
  return (await ctx.tx.getTree(treeId))?.ownerId ?? '';
}

/**
 * Places a waiting instance if something fits now (a new processing timestamp, and its node told); otherwise
 * returns it as it is with the reason it still waits.
 */
export async function placeWaiting(
  ctx: OpContext,
  instance: InstanceRow,
  options: { explain?: boolean } = {},
): Promise<{ instance: InstanceRow; waiting: string | null }> {
  const sla = parseSla(instance.sla, instance.shared);
  const placement = await findPlacement(ctx, instance, sla, await ownerOf(ctx, instance.treeId), options);
  if (placement.kind === 'waiting') return { instance, waiting: placement.reason };
  const placed = await touchInstance(ctx, instance, placedFields(placement));
  await claimPlacement(ctx, placement, instance.id);
  return { instance: placed, waiting: null };
}

/** Why a waiting instance still waits (nothing changed), for what the master shows of it. */
export async function waitingReason(ctx: OpContext, instance: InstanceRow): Promise<string> {
  let sla: Sla;
  try {
    sla = parseSla(instance.sla, instance.shared);
    const placement = await findPlacement(ctx, instance, sla, await ownerOf(ctx, instance.treeId));
    return placement.kind === 'waiting' ? placement.reason : 'waiting for the allocator (room is free now)';
  } catch (error) {
    if (error instanceof HoxError) return `waiting: ${error.message}`;
    throw error;
  }
}
