/**
 * Why an instance gets no partition, in words that say what to do: the
 * allocator's query (`findFreePartition`) only answers "none", and the same
 * "no free partition" for a mistyped release and for a full node sent users
 * looking in the wrong place. It says what a waiting instance waits for
 * (src/master/placement.ts); run only once allocation has failed, and not by
 * the allocator's own passes, so it costs nothing on success; it reads at most
 * {@link MAX_EXPLAINED_NODES} nodes and falls back to the allocator's filters
 * beyond that.
 *
 * Every message about room keeps the words "no free partition": the hyper_edge
 * and hyper_db releases recognise a child waiting for lack of room by them.
 */
import { HoxError } from '../shared/errors.js';
import type { ComputeNodeRow, StoreTx } from '../store/store.js';

/** Above this many candidate nodes the explanation is not worth the reads: the generic message stays. */
export const MAX_EXPLAINED_NODES = 64;

export interface AllocationScope {
  releaseUrl: string;
  /** SLA computer_guid. */
  nodeId?: string | undefined;
  /** SLA network_guid. */
  networkGuid?: string | undefined;
  /** What else filtered nodes out (anti-affinity, unique_by_network), already in words. */
  exclusions: string[];
}

export async function noPartitionError(tx: StoreTx, scope: AllocationScope): Promise<HoxError> {
  const generic = new HoxError('HOX_NO_FREE_PARTITION', genericMessage(scope));
  const nodes = (await tx.listNodes()).filter(
    (n) =>
      (scope.nodeId === undefined || n.id === scope.nodeId) &&
      (scope.networkGuid === undefined || n.networkGuid === scope.networkGuid),
  );
  if (nodes.length > MAX_EXPLAINED_NODES) return generic;
  const suppliedBy = new Map<string, string[]>();
  for (const node of nodes)
    for (const s of await tx.listSoftwareInstallations(node.id))
      if (s.requestedState === 'available') suppliedBy.set(s.url, [...(suppliedBy.get(s.url) ?? []), node.id]);
  const supplying = nodes.filter((n) => suppliedBy.get(scope.releaseUrl)?.includes(n.id));
  if (supplying.length === 0) return new HoxError('HOX_NO_FREE_PARTITION', notSupplied(scope, nodes, suppliedBy));
  if (scope.exclusions.length > 0) return generic;
  let total = 0;
  let free = 0;
  for (const node of supplying)
    for (const p of await tx.listPartitions(node.id)) {
      total += 1;
      if (p.state === 'free') free += 1;
    }
  // Free partitions on supplying nodes and still none found: the allocator knows something this does not.
  if (free > 0) return generic;
  if (total === 0)
    return new HoxError(
      'HOX_NO_FREE_PARTITION',
      `no free partition: ${supplying.map((n) => `'${n.id}'`).join(', ')} supplies '${scope.releaseUrl}' ` +
        'but has no partitions yet (its agent formats them when it starts)',
    );
  const release = `'${scope.releaseUrl}'`;
  const message =
    supplying.length === 1
      ? `no free partition: all ${total} partitions of compute node '${supplying[0]!.id}' (which supplies ${release}) ` +
        'are used (start the node with more --partitions, or destroy an instance)'
      : `no free partition: all ${total} partitions of the ${supplying.length} compute nodes supplying ${release} ` +
        'are used (add a compute node, start the nodes with more --partitions, or destroy an instance)';
  return new HoxError('HOX_NO_FREE_PARTITION', message);
}

/** The allocator's own filters, as before: when nothing more precise can be said. */
function genericMessage(scope: AllocationScope): string {
  const where = [
    `with software release '${scope.releaseUrl}' supplied`,
    scope.nodeId !== undefined && `on compute node '${scope.nodeId}'`,
    scope.networkGuid !== undefined && `in network '${scope.networkGuid}'`,
    ...scope.exclusions,
  ].filter(Boolean);
  return `no free partition ${where.join(' ')}`;
}

function notSupplied(scope: AllocationScope, nodes: ComputeNodeRow[], suppliedBy: Map<string, string[]>): string {
  const supplied = [...suppliedBy.keys()].sort();
  const list = supplied.length === 0 ? 'none yet: hox supply RELEASE' : supplied.join(', ');
  if (scope.nodeId !== undefined)
    return `software release '${scope.releaseUrl}' is not supplied on compute node '${scope.nodeId}' (supplied there: ${list})`;
  if (scope.networkGuid !== undefined)
    return `software release '${scope.releaseUrl}' is not supplied in network '${scope.networkGuid}' (supplied there: ${list})`;
  if (nodes.length === 0)
    return `no compute node is registered yet, so nothing runs '${scope.releaseUrl}' (hox node, or hox up)`;
  return `unknown release '${scope.releaseUrl}' (supplied: ${list})`;
}
