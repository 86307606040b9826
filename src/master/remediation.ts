/**
 * What the master does about an alert where that is safe (issue 16: from signal to action). Run on each alert a
 * monitor reports that has no action recorded yet; the action (or why none was taken) is kept on the alert and
 * shown by `hox alerts`.
 *
 * One policy so far, `move-primary`: a hyper_db member whose disk is forecast to fill (`disk-full`: its partition's
 * quota) and that is its cluster's primary hands the primary role to another member, by the same switchover
 * `hox db switchover CLUSTER` requests (a planned handover: the old primary stops accepting writes only once a
 * standby has caught up), before the disk fills and a failover has to be made in a hurry.
 *
 * - Only when the cluster has another member, is started, and is not paused by its owner.
 * - At most one automatic switchover per cluster per hour ({@link SWITCHOVER_EVERY_MS}): two members filling at
 *   once must not bounce the primary between them.
 * - Reversible: `hox db switchover CLUSTER --to MEMBER` moves it back (said in the action).
 * - The member keeps filling as a standby: freeing space stays the owner's to do (or a retention policy's).
 */
import { HoxError } from '../shared/errors.js';
import type { AlertRow, InstanceRow, JsonObject } from '../store/store.js';
import type { OpContext } from './context.js';
import type { InternalSoftwareTypes } from './internal-types.js';
import { ADMIN_OWNER_ID, type Principal } from './principal.js';
import { requestInstance } from './requests.js';

export const SWITCHOVER_EVERY_MS = 3_600_000;
const HYPER_DB_RELEASE = 'hyper_db';

/** The action taken for `alert` (to record on it), or null when no policy applies (tried again next report). */
export async function remediate(
  ctx: OpContext,
  alert: AlertRow,
  internalTypes: InternalSoftwareTypes,
): Promise<JsonObject | null> {
  if (alert.rule !== 'disk-full' || alert.instanceId === null) return null;
  const member = await ctx.tx.getInstance(alert.instanceId);
  if (member === undefined || member.releaseUrl !== HYPER_DB_RELEASE || member.softwareType !== 'member') return null;
  const tree = await ctx.tx.getTree(member.treeId);
  const root = tree === undefined ? undefined : await ctx.tx.getInstance(tree.rootInstanceId);
  if (tree === undefined || root === undefined || root.softwareType !== 'cluster') return null;
  if (!isPrimary(member, root)) return null; // a standby filling up: nothing to move (yet)
  const atMs = ctx.clock.nowMs();
  const base = { policy: 'move-primary', cluster: tree.title, member: member.title, at: new Date(atMs).toISOString() };
  const refused = (reason: string): JsonObject => ({ ...base, done: false, reason });

  const parameters = root.parameters;
  const members = typeof parameters['members'] === 'number' ? parameters['members'] : 3;
  if (members < 2) return refused('the cluster has no other member to take the primary role');
  if (root.requestedState !== 'started') return refused(`the cluster is ${root.requestedState}`);
  if (parameters['paused'] === true) return refused(`the cluster is paused by its owner (hox db resume ${tree.title})`);
  const recent = (await ctx.tx.listAlerts({ resolvedSinceMs: atMs - SWITCHOVER_EVERY_MS, limit: 10_000 })).find(
    (a) =>
      a.treeId === tree.id &&
      a.action?.['done'] === true &&
      a.action['policy'] === 'move-primary' &&
      Date.parse(String(a.action['at'])) > atMs - SWITCHOVER_EVERY_MS,
  );
  if (recent !== undefined)
    return refused(
      `an automatic switchover (${String(recent.action!['switchover'])}) was requested less than an hour ago`,
    );

  const switchover = `auto-switchover-${alert.id}`;
  const owner: Principal = tree.ownerId === ADMIN_OWNER_ID ? { kind: 'admin' } : { kind: 'user', userId: tree.ownerId };
  try {
    await requestInstance(
      { ...ctx, principal: owner },
      {
        title: tree.title,
        software_release_uri: root.releaseUrl,
        software_type: root.softwareType,
        parameters: { ...parameters, switchover: { id: switchover, to: null } },
        sla_parameters: root.sla,
        state: 'started',
      },
      internalTypes,
    );
  } catch (error) {
    if (!(error instanceof HoxError)) throw error;
    return refused(`the switchover could not be requested: ${error.message}`);
  }
  return {
    ...base,
    done: true,
    switchover,
    note: `switchover requested away from ${member.title}; hox db switchover ${tree.title} --to ${member.title} moves it back`,
  };
}

/** The member published itself as primary, or the cluster names it. */
function isPrimary(member: InstanceRow, root: InstanceRow): boolean {
  return member.connectionParameters['role'] === 'primary' || root.connectionParameters['primary'] === member.title;
}
