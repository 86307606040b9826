/**
 * `request`: the heart of the master (specs/request-semantics.md).
 *
 * A user's request names a root in the user's scope; an instance's request
 * names a child in its own tree. The first request creates and allocates
 * (synchronously: a request either gets a partition now or fails with the
 * reason); later ones update in place, never move, and bump the processing
 * timestamp only when something the node consumes changed.
 */
import { HoxError, badRequest } from '../shared/errors.js';
import { newId } from '../shared/ids.js';
import type { RequestedState } from '../shared/states.js';
import type { InstanceRow, InstanceTreeRow, PartitionRow } from '../store/store.js';
import { noPartitionError } from './allocation-failure.js';
import { nextTimestamp, type OpContext } from './context.js';
import { canonicalJson } from './canonical-json.js';
import { instanceDocument, type InstanceDocument } from './instance-view.js';
import { assertMayRequestType, type InternalSoftwareTypes } from './internal-types.js';
import { destroyInstance, touchHost, touchInstance } from './lifecycle.js';
import { ADMIN_OWNER_ID, describePrincipal, requesterOwnerId } from './principal.js';
import { parseSla, type Sla } from './sla.js';
import { checkReleaseUrl } from './software.js';

export const MAX_TITLE_LENGTH = 200;

export interface RequestInput {
  title: string;
  software_release_uri: string;
  software_type: string;
  parameters?: Record<string, unknown>;
  sla_parameters?: Record<string, unknown>;
  state?: RequestedState;
  shared?: boolean;
}

/** The answer SlapOS gives while an accepted request cannot be answered yet. */
export interface NotReady {
  status: 102;
  name: 'SoftwareInstanceNotReady';
  message: string;
}

export function notReady(message: string): NotReady {
  return { status: 102, name: 'SoftwareInstanceNotReady', message };
}

export async function requestInstance(
  ctx: OpContext,
  input: RequestInput,
  internalTypes: InternalSoftwareTypes = new Map(),
): Promise<InstanceDocument | NotReady> {
  if (input.title.trim() === '') throw badRequest('title', 'must not be empty');
  if (input.title.length > MAX_TITLE_LENGTH) throw badRequest('title', `longer than ${MAX_TITLE_LENGTH} characters`);
  checkReleaseUrl('software_release_uri', input.software_release_uri);
  const shared = input.shared ?? false;
  const sla = parseSla(input.sla_parameters ?? {}, shared);
  let state = input.state ?? 'started';

  let existing: InstanceRow | undefined;
  let requester: InstanceRow | undefined;
  let ownerId: string | undefined;
  let tree: InstanceTreeRow | undefined;
  if (ctx.principal.kind === 'instance') {
    requester = await ctx.tx.getInstance(ctx.principal.instanceId);
    if (requester === undefined || requester.requestedState === 'destroyed')
      throw new HoxError('HOX_FORBIDDEN', `${describePrincipal(ctx.principal)} is destroyed and may not request`);
    tree = await ctx.tx.getTree(requester.treeId);
    existing = await ctx.tx.findInstance(requester.treeId, input.title);
    if (existing !== undefined && existing.requesterId !== requester.id)
      throw new HoxError(
        'HOX_TITLE_CONFLICT',
        `title '${input.title}' is already used in instance tree '${tree?.title ?? requester.treeId}' by an instance '${requester.title}' did not request`,
        { field: 'title' },
      );
    // A stopped requester's children follow it (SlapOS's state propagation).
    if (state === 'started' && requester.requestedState === 'stopped') state = 'stopped';
  } else {
    ownerId = requesterOwnerId(ctx.principal);
    tree = await ctx.tx.findTree(ownerId, input.title);
    if (tree !== undefined) existing = await ctx.tx.getInstance(tree.rootInstanceId);
  }
  assertMayRequestType(internalTypes, input, requester);

  if (existing !== undefined) {
    let updated = await updateInstance(ctx, existing, input, shared, state);
    if (updated.shared && updated.hostInstanceId === null && updated.requestedState !== 'destroyed')
      updated = await rehost(ctx, updated, input, sla);
    return answer(ctx, updated);
  }
  if (state === 'destroyed')
    throw new HoxError('HOX_INSTANCE_NOT_FOUND', `instance '${input.title}' does not exist: nothing to destroy`);

  const now = ctx.clock.nowMs();
  const instanceId = newId('SOFTINST');
  const treeId = tree?.id ?? newId('TREE');
  const row: InstanceRow = {
    id: instanceId,
    treeId,
    title: input.title,
    shared,
    releaseUrl: input.software_release_uri,
    softwareType: input.software_type,
    parameters: input.parameters ?? {},
    sla: input.sla_parameters === undefined ? {} : (input.sla_parameters as InstanceRow['sla']),
    requestedState: state,
    reportedState: null,
    requesterId: requester?.id ?? null,
    nodeId: null,
    partitionId: null,
    hostInstanceId: null,
    processingTimestamp: nextTimestamp(ctx.clock, 0),
    connectionParameters: {},
    errorMessage: null,
    statusAtMs: null,
    createdAtMs: now,
  };
  let partition: PartitionRow | undefined;
  if (shared) {
    const host = await findHost(ctx, input, sla, ownerId ?? tree?.ownerId ?? '');
    row.hostInstanceId = host.id;
    row.nodeId = host.nodeId;
  } else {
    partition = await allocate(ctx, requester?.treeId, input.software_release_uri, sla);
    row.nodeId = partition.nodeId;
    row.partitionId = partition.partitionId;
  }
  if (tree === undefined) {
    if (ownerId === undefined) throw new HoxError('HOX_INTERNAL', 'root request without an owner');
    await ctx.tx.insertTree({ id: treeId, ownerId, title: input.title, rootInstanceId: instanceId, createdAtMs: now });
  }
  await ctx.tx.insertInstance(row);
  if (partition !== undefined)
    await ctx.tx.updatePartition(partition.nodeId, partition.partitionId, { state: 'busy', instanceId });
  await ctx.tx.appendChange({ nodeId: row.nodeId, treeId, atMs: now });
  if (shared) await touchHost(ctx, row.hostInstanceId);
  return answer(ctx, row);
}

/** A shared instance that lost its host gets a new one if one fits now; otherwise it keeps waiting. */
async function rehost(ctx: OpContext, instance: InstanceRow, input: RequestInput, sla: Sla): Promise<InstanceRow> {
  let host: InstanceRow;
  try {
    host = await findHost(ctx, input, sla, (await ctx.tx.getTree(instance.treeId))?.ownerId ?? '');
  } catch (error) {
    if (error instanceof HoxError && error.code === 'HOX_NO_SHARED_HOST') return instance;
    throw error;
  }
  const updated = await touchInstance(ctx, instance, { hostInstanceId: host.id, nodeId: host.nodeId });
  await touchHost(ctx, host.id);
  return updated;
}

async function answer(ctx: OpContext, instance: InstanceRow): Promise<InstanceDocument | NotReady> {
  if (instance.shared && instance.hostInstanceId === null)
    return notReady(`shared instance '${instance.title}' has no host yet`);
  return instanceDocument(ctx.tx, instance);
}

async function updateInstance(
  ctx: OpContext,
  existing: InstanceRow,
  input: RequestInput,
  shared: boolean,
  state: RequestedState,
): Promise<InstanceRow> {
  if (existing.shared !== shared)
    throw new HoxError(
      'HOX_CONFLICT',
      `instance '${existing.title}' is ${existing.shared ? '' : 'not '}shared; it cannot change kind`,
      { field: 'shared' },
    );
  if (existing.requestedState === 'destroyed') {
    if (state === 'destroyed') return existing;
    throw new HoxError(
      'HOX_CONFLICT',
      `instance '${existing.title}' is being destroyed; request it again once it is gone`,
      { field: 'state' },
    );
  }
  if (state === 'destroyed') {
    await destroyInstance(ctx, existing);
    return (await ctx.tx.getInstance(existing.id)) ?? { ...existing, requestedState: 'destroyed' };
  }
  const parameters = input.parameters ?? {};
  const newSla = (input.sla_parameters ?? {}) as InstanceRow['sla'];
  const patch: Partial<InstanceRow> = {};
  if (existing.releaseUrl !== input.software_release_uri) patch.releaseUrl = input.software_release_uri;
  if (existing.softwareType !== input.software_type) patch.softwareType = input.software_type;
  if (canonicalJson(existing.parameters) !== canonicalJson(parameters)) patch.parameters = parameters;
  if (existing.requestedState !== state) patch.requestedState = state;
  const slaChanged = canonicalJson(existing.sla) !== canonicalJson(newSla);
  // Placement is sticky: a new SLA is stored but moves nothing, so it alone does not bump the timestamp.
  if (Object.keys(patch).length === 0) {
    if (!slaChanged) return existing;
    await ctx.tx.updateInstance(existing.id, { sla: newSla });
    return { ...existing, sla: newSla };
  }
  if (slaChanged) patch.sla = newSla;
  const updated = await touchInstance(ctx, existing, patch);
  if (shared) await touchHost(ctx, existing.hostInstanceId);
  return updated;
}

/** Picks the partition for a new instance, or explains why none fits. */
async function allocate(
  ctx: OpContext,
  treeId: string | undefined,
  releaseUrl: string,
  sla: Sla,
): Promise<PartitionRow> {
  if (sla.computer_guid !== undefined && (await ctx.tx.getNode(sla.computer_guid)) === undefined)
    throw new HoxError('HOX_NODE_NOT_FOUND', `compute node '${sla.computer_guid}' not found`, {
      field: 'sla_parameters.computer_guid',
    });
  const siblings = treeId === undefined ? [] : (await ctx.tx.listTreeInstances(treeId)).filter((i) => !i.shared);
  const excludeNodeIds =
    sla.anti_affinity === undefined
      ? []
      : siblings
          .filter((i) => i.sla.anti_affinity === sla.anti_affinity && i.nodeId !== null)
          .map((i) => i.nodeId as string);
  const excludeNetworkGuids: string[] = [];
  if (sla.mode === 'unique_by_network') {
    for (const nodeId of new Set(siblings.map((i) => i.nodeId))) {
      if (nodeId === null) continue;
      const network = (await ctx.tx.getNode(nodeId))?.networkGuid;
      if (network) excludeNetworkGuids.push(network);
    }
  }
  const partition = await ctx.tx.findFreePartition({
    releaseUrl,
    ...(sla.computer_guid === undefined ? {} : { nodeId: sla.computer_guid }),
    ...(sla.network_guid === undefined ? {} : { networkGuid: sla.network_guid }),
    excludeNodeIds,
    excludeNetworkGuids,
  });
  if (partition === undefined)
    throw await noPartitionError(ctx.tx, {
      releaseUrl,
      nodeId: sla.computer_guid,
      networkGuid: sla.network_guid,
      exclusions: [
        excludeNodeIds.length > 0 &&
          `away from ${excludeNodeIds.map((n) => `'${n}'`).join(', ')} (anti_affinity '${sla.anti_affinity}')`,
        excludeNetworkGuids.length > 0 && `outside network(s) ${excludeNetworkGuids.join(', ')} (unique_by_network)`,
      ].filter((e): e is string => typeof e === 'string'),
    });
  return partition;
}

/**
 * The host of a new shared instance: a busy partition running the same release (and type), in a tree of
 * the same owner or of the admin (a platform service such as a CDN frontend) — never another user's
 * instance, which would see the shared instance's parameters and publish its connection parameters.
 */
async function findHost(ctx: OpContext, input: RequestInput, sla: Sla, ownerId: string): Promise<InstanceRow> {
  const wantType = input.software_type;
  const owners = new Set([ownerId, ADMIN_OWNER_ID]);
  const fits = async (h: InstanceRow): Promise<boolean> =>
    h.releaseUrl === input.software_release_uri &&
    !h.shared &&
    h.partitionId !== null &&
    h.requestedState !== 'destroyed' &&
    (wantType === '' || h.softwareType === wantType) &&
    owners.has((await ctx.tx.getTree(h.treeId))?.ownerId ?? '');
  if (sla.instance_guid !== undefined) {
    const host = await ctx.tx.getInstance(sla.instance_guid);
    if (host === undefined || !(await fits(host)))
      throw new HoxError(
        'HOX_NO_SHARED_HOST',
        `instance '${sla.instance_guid}' cannot host shared instance '${input.title}': it must exist, be yours or the admin's, be allocated, not destroyed, and run '${input.software_release_uri}'${wantType ? ` with software type '${wantType}'` : ''}`,
        { field: 'sla_parameters.instance_guid' },
      );
    return host;
  }
  if (sla.computer_guid !== undefined && (await ctx.tx.getNode(sla.computer_guid)) === undefined)
    throw new HoxError('HOX_NODE_NOT_FOUND', `compute node '${sla.computer_guid}' not found`, {
      field: 'sla_parameters.computer_guid',
    });
  let host: InstanceRow | undefined;
  for (const candidate of await ctx.tx.listHostCandidates(input.software_release_uri, sla.computer_guid)) {
    if (await fits(candidate)) {
      host = candidate;
      break;
    }
  }
  if (host === undefined)
    throw new HoxError(
      'HOX_NO_SHARED_HOST',
      `no instance runs '${input.software_release_uri}'${wantType ? ` with software type '${wantType}'` : ''}${sla.computer_guid ? ` on compute node '${sla.computer_guid}'` : ''} to host shared instance '${input.title}'`,
    );
  return host;
}
