/**
 * What the master does about an alert where that is safe (issue 16: from signal to action). Run on each alert a
 * monitor reports that has no action recorded yet; the action (or why none was taken) is kept on the alert and
 * shown by `hox alerts`.
 *
 * Two policies: `restart-replica` (below, {@link restartReplica}) and `move-primary`: a hyper_db member whose disk is forecast to fill (`disk-full`: its partition's
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
import { randomBytes } from 'node:crypto';
import { HoxError } from '../shared/errors.js';
import type { AlertRow, InstanceRow, InstanceTreeRow, JsonObject } from '../store/store.js';
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
  if (alert.rule === 'disk-full') return await movePrimary(ctx, alert, internalTypes);
  if (alert.rule === 'memory-full') return await restartReplica(ctx, alert, internalTypes);
  return null;
}

/** `move-primary` (above). */
async function movePrimary(
  ctx: OpContext,
  alert: AlertRow,
  internalTypes: InternalSoftwareTypes,
): Promise<JsonObject | null> {
  if (alert.instanceId === null) return null;
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
  const [recent] = await actionsDone(ctx, tree.id, 'move-primary', atMs - SWITCHOVER_EVERY_MS);
  if (recent !== undefined)
    return refused(
      `an automatic switchover (${String(recent.action!['switchover'])}) was requested less than an hour ago`,
    );

  const switchover = `auto-switchover-${alert.id}`;
  const problem = await requestAsOwner(ctx, tree, root, { switchover: { id: switchover, to: null } }, internalTypes);
  if (problem !== null) return refused(`the switchover could not be requested: ${problem}`);
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

/** Actions of `policy` done on the tree since `sinceMs`, newest first. */
async function actionsDone(ctx: OpContext, treeId: string, policy: string, sinceMs: number): Promise<AlertRow[]> {
  return (await ctx.tx.listAlerts({ resolvedSinceMs: sinceMs, limit: 10_000 }))
    .filter(
      (a) =>
        a.treeId === treeId &&
        a.action?.['done'] === true &&
        a.action['policy'] === policy &&
        Date.parse(String(a.action['at'])) > sinceMs,
    )
    .sort((a, b) => Date.parse(String(b.action!['at'])) - Date.parse(String(a.action!['at'])));
}

/**
 * Requests the tree's root again with `changes` over its parameters, as its owner (what the owner's CLI would
 * do); the refusal's message, or null once requested.
 */
async function requestAsOwner(
  ctx: OpContext,
  tree: InstanceTreeRow,
  root: InstanceRow,
  changes: JsonObject,
  internalTypes: InternalSoftwareTypes,
): Promise<string | null> {
  const principal: Principal =
    tree.ownerId === ADMIN_OWNER_ID ? { kind: 'admin' } : { kind: 'user', userId: tree.ownerId };
  try {
    await requestInstance(
      { ...ctx, principal },
      {
        title: tree.title,
        software_release_uri: root.releaseUrl,
        software_type: root.softwareType,
        parameters: { ...root.parameters, ...changes },
        sla_parameters: root.sla,
        state: 'started',
      },
      internalTypes,
    );
    return null;
  } catch (error) {
    if (!(error instanceof HoxError)) throw error;
    return error.message;
  }
}

/**
 * `restart-replica`: a hyper_edge replica whose memory is forecast to reach its limit (`memory-full`: a leak, most
 * likely) has its processes restarted, as `hox app restart APP --replica N` does: a new `web` takes the traffic
 * once healthy, then the old one is drained and stopped, so no request is lost, and the memory it held is given
 * back before the kernel kills anything for it.
 *
 * - Only an app that is started and serves a release.
 * - Rolling: at most one automatic restart per app every {@link APP_RESTART_EVERY_MS} (the previous replica is
 *   healthy again long before), and one per replica every {@link REPLICA_RESTART_EVERY_MS}: a leak fast enough
 *   to need more is a bug to fix, not to hide (said in the refusal).
 * - Not reversible (nothing to undo: the same release runs again), explained: the leak comes back with the
 *   traffic, and the action says so.
 */
export const APP_RESTART_EVERY_MS = 10 * 60_000;
export const REPLICA_RESTART_EVERY_MS = 3_600_000;
const HYPER_EDGE_RELEASE = 'hyper_edge';

async function restartReplica(
  ctx: OpContext,
  alert: AlertRow,
  internalTypes: InternalSoftwareTypes,
): Promise<JsonObject | null> {
  if (alert.instanceId === null) return null;
  const replica = await ctx.tx.getInstance(alert.instanceId);
  if (replica === undefined || replica.releaseUrl !== HYPER_EDGE_RELEASE || replica.softwareType !== 'replica')
    return null;
  const tree = await ctx.tx.getTree(replica.treeId);
  const root = tree === undefined ? undefined : await ctx.tx.getInstance(tree.rootInstanceId);
  if (tree === undefined || root === undefined || root.softwareType !== 'app') return null;
  const atMs = ctx.clock.nowMs();
  const base = { policy: 'restart-replica', app: tree.title, replica: replica.title, at: new Date(atMs).toISOString() };
  const refused = (reason: string): JsonObject => ({ ...base, done: false, reason });

  const parameters = root.parameters;
  if (root.requestedState !== 'started') return refused(`the app is ${root.requestedState}`);
  if (parameters['release'] === undefined) return refused('the app serves no release');
  const recent = await actionsDone(ctx, tree.id, 'restart-replica', atMs - REPLICA_RESTART_EVERY_MS);
  const sameReplica = recent.find((a) => a.action!['replica'] === replica.title);
  if (sameReplica !== undefined)
    return refused(
      `${replica.title} was restarted for its memory less than an hour ago (${String(sameReplica.action!['at'])}): a leak this fast is to be fixed in the app (hox app logs ${tree.title})`,
    );
  const sameApp = recent.find((a) => Date.parse(String(a.action!['at'])) > atMs - APP_RESTART_EVERY_MS);
  if (sameApp !== undefined)
    return refused(
      `${String(sameApp.action!['replica'])} of the app was restarted less than 10 minutes ago: one replica at a time`,
    );

  const id = `auto${randomBytes(6).toString('hex')}`;
  const restart =
    typeof parameters['restart'] === 'object' && parameters['restart'] !== null ? parameters['restart'] : {};
  const problem = await requestAsOwner(
    ctx,
    tree,
    root,
    { restart: { ...restart, [replica.title]: { id } } },
    internalTypes,
  );
  if (problem !== null) return refused(`the restart could not be requested: ${problem}`);
  return {
    ...base,
    done: true,
    restart: id,
    note: `${replica.title}'s processes restarted (a new web takes the traffic once healthy, then the old one is drained): the memory comes back if the app leaks it (hox app ps ${tree.title}, hox metrics ${tree.title})`,
  };
}
