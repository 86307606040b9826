/**
 * Failures an app's root has published that waiting will not fix: a replica
 * the master found no partition for, a postgres addon whose database name
 * another owner holds. `hox app deploy/scale/rollback --wait` stops at once on
 * them instead of waiting for its whole timeout.
 *
 * Only a publication made for this request counts: the root must have
 * reported after the request was processed (its `status_at` at or after the
 * request's processing_timestamp), so what an earlier request left behind
 * never fails a new one.
 */
import { rootOf, type Tree } from '../db/cluster-client.js';
import type { AppView } from './app-view.js';

/** The master's allocation failure, once the root has dropped its anti-affinity (it retries without it). */
const NO_ROOM = /no free partition/i;
const ANTI_AFFINITY = /anti_affinity/;
/** hyper_db's answers for a database name it will not hand to this app (src/releases/hyper_db/router/router.ts). */
const NAME_HELD = /is taken|was not made by hyper_db/;

export interface KnownFailure {
  /** The replica (`replica-3`) or `addon` it is about. */
  where: string;
  reason: string;
}

/** What failed for good in `tree`'s publication for the request made at `notBeforeMs` (master time), if anything. */
export function knownAppFailure(
  tree: Tree,
  view: AppView,
  replicas: number,
  notBeforeMs: number,
): KnownFailure | undefined {
  const root = rootOf(tree);
  if (root?.status_at === null || root?.status_at === undefined) return undefined;
  if (Date.parse(root.status_at) < notBeforeMs) return undefined;
  for (const r of view.replicas.slice(0, replicas))
    if (r.error !== null && NO_ROOM.test(r.error) && !ANTI_AFFINITY.test(r.error))
      return {
        where: r.name,
        reason: `${r.error.replace(/^waiting for a partition: /, '')} (waiting will not help: free a partition, or start the node with more --partitions; the master allocates it once one is free)`,
      };
  const held = view.problems.find((p) => NAME_HELD.test(p));
  if (held !== undefined) return { where: 'addon', reason: held };
  return undefined;
}
