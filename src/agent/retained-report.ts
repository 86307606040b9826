/** What the master is told of the node's retained sets (see retained-store.ts): its protocol bodies. */
import type { RequestOf } from '../client/master-client.js';
import type { RetainedSet } from './retained-store.js';

/** The time a set has left, as of `nowMs` in the node's clock (the master places it in its own). */
function expiresInMs(set: RetainedSet, nowMs: number): number {
  return Math.max(0, Date.parse(set.expires_at) - nowMs);
}

/** The report of a set just retained, sent before the instance is reported destroyed. */
export function retainedSetReport(nodeId: string, set: RetainedSet, nowMs: number): RequestOf<'reportRetainedSet'> {
  return {
    computer_guid: nodeId,
    compute_partition_id: set.compute_partition_id,
    instance_guid: set.instance_guid,
    expires_in_ms: expiresInMs(set, nowMs),
    path_list: set.paths.map((p) => ({ path: p.path, kind: p.kind, bytes: p.bytes, catalog: p.catalog })),
  };
}

/** Every complete set the node still holds: the master forgets the others (expired, removed by hand). */
export function retainedListReport(
  nodeId: string,
  sets: readonly RetainedSet[],
  nowMs: number,
): RequestOf<'reportRetainedSets'> {
  return {
    computer_guid: nodeId,
    retained_list: sets.map((s) => ({ instance_guid: s.instance_guid, expires_in_ms: expiresInMs(s, nowMs) })),
  };
}
