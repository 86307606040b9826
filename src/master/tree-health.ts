/**
 * A tree's health, derived from what its nodes reported and how recently
 * they were heard from. Pure: rows and the master's clock in, a verdict out.
 *
 * The claim it upholds: `ok` means every instance reached its requested
 * state, none reports an error, and every node running one was in contact
 * with the master within {@link NODE_SILENT_AFTER_MS}. What a node reported
 * is a claim about the past; a node that went silent (its agent dead, cut
 * off) can no longer report the failures that follow, so its last report is
 * never taken for the present: the tree is `stale`, never `ok`.
 *
 * Values, most telling first: `destroying` (the root is requested
 * destroyed); `error` (an instance on a node still in contact reports one, or
 * a shared instance's host published an `error` for it);
 * `stale` (a node running an instance is silent, or an error comes only from
 * such a node); `pending` (an instance has not reached its requested state);
 * `ok`.
 */
import { BANG_NOTE } from '../shared/states.js';
import type { ComputeNodeRow, InstanceRow } from '../store/store.js';

export type TreeHealth = 'ok' | 'pending' | 'error' | 'stale' | 'destroying';

/**
 * How long a node may go without contacting the master before what it reported is stale: three
 * times the longest a healthy agent waits between two syncs (25 s, the change feed's long poll), so
 * also well above the master's 15 s resolution of contact times.
 */
export const NODE_SILENT_AFTER_MS = 75_000;

export interface TreeHealthVerdict {
  health: TreeHealth;
  /** What is wrong, for a person (null when ok). */
  message: string | null;
  /** The oldest last contact among the nodes running the tree's instances (null: none yet). */
  reportedAtMs: number | null;
}

type Node = Pick<ComputeNodeRow, 'id' | 'lastContactAtMs'>;
type Instance = Pick<
  InstanceRow,
  'id' | 'title' | 'shared' | 'nodeId' | 'requestedState' | 'reportedState' | 'errorMessage'
> &
  Partial<Pick<InstanceRow, 'connectionParameters'>>;

const seconds = (ms: number): string => `${Math.round(ms / 1000)} s`;
/**
 * What an instance says is wrong: its node's error report or, for a shared instance, the `error` its host
 * published in its connection parameters (how a host refuses one: a database name taken, say), or null.
 */
function problemOf(i: Instance): string | null {
  if (i.errorMessage !== null && !i.errorMessage.startsWith(BANG_NOTE)) return i.errorMessage;
  const published = i.shared ? i.connectionParameters?.error : undefined;
  return typeof published === 'string' && published !== '' ? published : null;
}

/** An instance's error as a person reads it: the master's `while instantiating:` prefix says nothing here. */
const errorOf = (i: Instance): string => `${i.title}: ${(problemOf(i) ?? '').replace(/^while instan[ct]iating: /, '')}`;

/**
 * @param nodes the nodes the instances run on (by id); a node missing here is treated as silent.
 * @example
 * treeHealth(instances, rootId, nodesById, clock.nowMs())
 * // { health: 'stale', message: "node 'n-2' silent for 80 s (its last report may be out of date)", reportedAtMs: … }
 */
export function treeHealth(
  instances: readonly Instance[],
  rootId: string,
  nodes: ReadonlyMap<string, Node>,
  nowMs: number,
  /** Why each instance placed nowhere yet waits (by id), when known. */
  waitingFor?: ReadonlyMap<string, string>,
): TreeHealthVerdict {
  const nodeIds = [...new Set(instances.map((i) => i.nodeId).filter((id): id is string => id !== null))];
  const contacts = nodeIds.map((id) => nodes.get(id)?.lastContactAtMs ?? null);
  const known = contacts.filter((at): at is number => at !== null);
  const reportedAtMs = known.length === 0 ? null : Math.min(...known);
  const root = instances.find((i) => i.id === rootId);
  if (root?.requestedState === 'destroyed') return { health: 'destroying', message: null, reportedAtMs };

  const silent = new Map<string, number | null>();
  nodeIds.forEach((id, index) => {
    const at = contacts[index] ?? null;
    if (at === null || nowMs - at > NODE_SILENT_AFTER_MS) silent.set(id, at);
  });
  const silence = [...silent].map(([id, at]) =>
    at === null ? `node '${id}' never heard from` : `node '${id}' silent for ${seconds(nowMs - at)}`,
  );
  const staleNote = silence.length === 0 ? '' : `; ${silence.join(', ')}`;
  // The root first: its error usually says what the tree as a whole cannot do.
  const erring = instances
    .filter((i) => problemOf(i) !== null)
    .sort((a, b) => Number(b.id === rootId) - Number(a.id === rootId));
  const fresh = erring.filter((i) => i.nodeId === null || !silent.has(i.nodeId));
  const first = fresh[0];
  if (first !== undefined) return { health: 'error', message: `${errorOf(first)}${staleNote}`, reportedAtMs };
  if (silence.length > 0)
    return {
      health: 'stale',
      message: `${silence.join(', ')} (its last report may be out of date)${erring[0] === undefined ? '' : `; it last reported: ${errorOf(erring[0])}`}`,
      reportedAtMs,
    };
  // Placed nowhere yet (the master places it once room appears): what it waits for says what to do.
  const unplaced = instances.find((i) => i.nodeId === null && i.requestedState !== 'destroyed');
  if (unplaced !== undefined)
    return {
      health: 'pending',
      message: `${unplaced.title}: ${waitingFor?.get(unplaced.id) ?? (unplaced.shared ? 'waiting for a host' : 'waiting for a partition')}`,
      reportedAtMs,
    };
  const waiting = instances.find(
    (i) =>
      !i.shared &&
      i.requestedState !== i.reportedState &&
      !(i.requestedState === 'destroyed' && i.reportedState === null),
  );
  if (waiting !== undefined)
    return {
      health: 'pending',
      message: `${waiting.title}: requested ${waiting.requestedState}, reported ${waiting.reportedState ?? 'nothing yet'}`,
      reportedAtMs,
    };
  return { health: 'ok', message: null, reportedAtMs };
}
