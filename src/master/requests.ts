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
import type { InstanceRow, InstanceTreeRow } from '../store/store.js';
import { nextTimestamp, type OpContext } from './context.js';
import { canonicalJson } from './canonical-json.js';
import { instanceDocument, type InstanceDocument } from './instance-view.js';
import { assertMayRequestType, type InternalSoftwareTypes } from './internal-types.js';
import { destroyInstance, touchHost, touchInstance } from './lifecycle.js';
import { claimPlacement, findPlacement, isWaiting, placeWaiting, placedFields } from './placement.js';
import { describePrincipal, requesterOwnerId } from './principal.js';
import { parseSla } from './sla.js';
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

/** SlapOS's words, then (ours) what it waits for: clients compare the status and the name, people read the rest. */
export function notReady(reason?: string): NotReady {
  const message = 'Software Instance Not Ready';
  return {
    status: 102,
    name: 'SoftwareInstanceNotReady',
    message: reason === undefined ? message : `${message}: ${reason}`,
  };
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
    const updated = await updateInstance(ctx, existing, input, shared, state);
    if (!isWaiting(updated)) return instanceDocument(ctx.tx, updated);
    // Still waiting: placed now if something fits under what was just asked (a new SLA included).
    const placed = await placeWaiting(ctx, updated);
    return placed.waiting === null ? instanceDocument(ctx.tx, placed.instance) : notReady(placed.waiting);
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
  const placement = await findPlacement(ctx, row, sla, ownerId ?? tree?.ownerId ?? '');
  Object.assign(row, placedFields(placement));
  if (tree === undefined) {
    if (ownerId === undefined) throw new HoxError('HOX_INTERNAL', 'root request without an owner');
    await ctx.tx.insertTree({ id: treeId, ownerId, title: input.title, rootInstanceId: instanceId, createdAtMs: now });
  }
  await ctx.tx.insertInstance(row);
  await claimPlacement(ctx, placement, instanceId);
  await ctx.tx.appendChange({ nodeId: row.nodeId, treeId, atMs: now });
  // Accepted, placed nowhere yet: it waits (SlapOS's 102) and the master places it once something fits.
  if (placement.kind === 'waiting') return notReady(placement.reason);
  return instanceDocument(ctx.tx, row);
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
