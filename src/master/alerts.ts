/**
 * Alerts: what the platform's monitor (an `hyper_monitor` instance of the admin's, src/releases/hyper_monitor)
 * forecasts or detects, reported to the master as the monitor's whole current set (`hox.put.v1.alerts`), kept with
 * their opening and resolution times, and listed by `hox alerts`.
 *
 * - Only an admin-owned hyper_monitor instance (or the admin) reports, and it reports for itself: each monitor's
 *   alerts are its own set; a key it stops reporting is resolved.
 * - The master resolves each alert's resource: a partition to the instance on it now, and so to its tree and owner.
 *   When the partition has another instance than when the alert opened, the old alert is resolved and a new one
 *   opened (its action was about the old tenant).
 *   A user lists the alerts on their own trees; node-wide ones (a node's filesystem) are the admin's.
 * - Resolved alerts are kept 7 days.
 * - Each alert gets one try of the remediation policies (remediation.ts) when it opens, or at a later report if no
 *   policy applied yet; what was done, or why nothing was, is kept on the alert (`action`).
 */
import { HoxError } from '../shared/errors.js';
import { newId } from '../shared/ids.js';
import type { Body } from '../protocol/schemas.js';
import type { AlertRow, InstanceRow, StoreTx } from '../store/store.js';
import type { OpContext } from './context.js';
import type { InternalSoftwareTypes } from './internal-types.js';
import { ADMIN_OWNER_ID, describePrincipal, requesterOwnerId, type Principal } from './principal.js';
import { remediate } from './remediation.js';

/** The built-in release whose admin-owned instances read `/metrics` and report alerts. */
export const MONITOR_RELEASE = 'hyper_monitor';
export const RESOLVED_KEPT_MS = 7 * 86_400_000;
const LIST_LIMIT = 200;

/**
 * Whether `principal` is the admin, or an instance of hyper_monitor in one of the admin's trees (the platform's
 * monitor: it reads every tenant's metrics, so a user's own hyper_monitor gets nothing).
 */
export async function monitorInstance(tx: StoreTx, principal: Principal): Promise<InstanceRow | 'admin' | null> {
  if (principal.kind === 'admin') return 'admin';
  if (principal.kind !== 'instance') return null;
  const instance = await tx.getInstance(principal.instanceId);
  if (instance === undefined || instance.shared || instance.releaseUrl !== MONITOR_RELEASE) return null;
  const tree = await tx.getTree(instance.treeId);
  return tree?.ownerId === ADMIN_OWNER_ID ? instance : null;
}

type ReportedAlert = Body<'alertReport'>['alerts'][number];

export async function reportAlerts(
  ctx: OpContext,
  body: Body<'alertReport'>,
  internalTypes: InternalSoftwareTypes = new Map(),
): Promise<Body<'alertReportResult'>> {
  const monitor = await monitorInstance(ctx.tx, ctx.principal);
  if (monitor === null)
    throw new HoxError(
      'HOX_FORBIDDEN',
      `${describePrincipal(ctx.principal)} may not report alerts: the platform's monitor only (an ${MONITOR_RELEASE} instance of the admin's)`,
    );
  if (monitor !== 'admin' && monitor.id !== body.instance_guid)
    throw new HoxError('HOX_FORBIDDEN', `instance '${monitor.id}' reports its own alerts only`);
  const keys = new Set<string>();
  for (const alert of body.alerts) {
    if (keys.has(alert.key))
      throw new HoxError('HOX_BAD_REQUEST', `alert key '${alert.key}' is reported twice`, { field: 'alerts' });
    keys.add(alert.key);
  }
  const nowMs = ctx.clock.nowMs();
  const open = new Map(
    (await ctx.tx.listAlerts({ open: true, sourceInstanceId: body.instance_guid, limit: 100_000 })).map((a) => [
      a.key,
      a,
    ]),
  );
  const resources = new ResourceResolver(ctx.tx);
  const result = { opened: 0, updated: 0, resolved: 0, unknown_resources: [] as string[] };
  for (const alert of body.alerts) {
    const resource = await resources.resolve(alert.resource);
    if (resource === null) {
      result.unknown_resources.push(alert.key);
      continue;
    }
    let previous = open.get(alert.key);
    // The partition has another tenant since (destroyed, then allocated again): the old alert is over, and its
    // action was about someone else's instance.
    if (previous !== undefined && previous.instanceId !== resource.instanceId) previous = undefined;
    else open.delete(alert.key);
    const row: AlertRow = {
      ...rowOf(alert, resource),
      id: previous?.id ?? newId('al_', 12),
      sourceInstanceId: body.instance_guid,
      openedAtMs: previous?.openedAtMs ?? nowMs,
      updatedAtMs: nowMs,
      resolvedAtMs: null,
      action: previous?.action ?? null,
    };
    // One action per alert: what was done (or refused) is not tried again while it stays open.
    row.action ??= await remediate(ctx, row, internalTypes);
    await ctx.tx.putAlert(row);
    if (previous === undefined) result.opened += 1;
    else result.updated += 1;
  }
  for (const gone of open.values()) {
    await ctx.tx.putAlert({ ...gone, resolvedAtMs: nowMs, updatedAtMs: nowMs });
    result.resolved += 1;
  }
  await ctx.tx.deleteResolvedAlerts(nowMs - RESOLVED_KEPT_MS);
  return result;
}

type Resource = Pick<AlertRow, 'nodeId' | 'partitionId' | 'path' | 'instanceId' | 'treeId' | 'ownerId'>;

function rowOf(
  alert: ReportedAlert,
  resource: Resource,
): Omit<AlertRow, 'id' | 'sourceInstanceId' | 'openedAtMs' | 'updatedAtMs' | 'resolvedAtMs' | 'action'> {
  return {
    key: alert.key,
    rule: alert.rule,
    severity: alert.severity,
    ...resource,
    summary: alert.summary,
    etaMs: alert.eta_ms,
    etaEarliestMs: alert.eta_earliest_ms,
    etaLatestMs: alert.eta_latest_ms,
    evidence: alert.evidence,
  };
}

/** A reported resource → what the store says of it now (null: no such node). */
class ResourceResolver {
  private readonly nodes = new Map<string, Map<string, InstanceRow> | null>();
  private readonly owners = new Map<string, string | null>();

  constructor(private readonly tx: StoreTx) {}

  async resolve(resource: ReportedAlert['resource']): Promise<Resource | null> {
    let partitions = this.nodes.get(resource.node);
    if (partitions === undefined) {
      const node = await this.tx.getNode(resource.node);
      partitions =
        node === undefined
          ? null
          : new Map(
              (await this.tx.listNodeInstances(resource.node))
                .filter((i) => i.partitionId !== null && !i.shared)
                .map((i) => [i.partitionId!, i]),
            );
      this.nodes.set(resource.node, partitions);
    }
    if (partitions === null) return null;
    const instance = resource.partition === undefined ? undefined : partitions.get(resource.partition);
    let ownerId: string | null = null;
    if (instance !== undefined) {
      if (!this.owners.has(instance.treeId))
        this.owners.set(instance.treeId, (await this.tx.getTree(instance.treeId))?.ownerId ?? null);
      ownerId = this.owners.get(instance.treeId) ?? null;
    }
    return {
      nodeId: resource.node,
      partitionId: resource.partition ?? null,
      path: resource.path ?? null,
      instanceId: instance?.id ?? null,
      treeId: instance?.treeId ?? null,
      ownerId,
    };
  }
}

export async function listAlerts(ctx: OpContext, body: Body<'alertQuery'>): Promise<Body<'alertList'>> {
  const ownerId = requesterOwnerId(ctx.principal);
  const nowMs = ctx.clock.nowMs();
  const rows = await ctx.tx.listAlerts({
    ...(body.all === true ? { resolvedSinceMs: nowMs - RESOLVED_KEPT_MS } : { open: true }),
    ...(ctx.principal.kind === 'admin' ? {} : { ownerId }),
    limit: body.limit ?? LIST_LIMIT,
  });
  const trees = new Map<string, string | null>();
  const instances = new Map<string, string | null>();
  const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
  const out: Body<'alertList'>['result_list'] = [];
  for (const row of rows) {
    if (row.treeId !== null && !trees.has(row.treeId))
      trees.set(row.treeId, (await ctx.tx.getTree(row.treeId))?.title ?? null);
    if (row.instanceId !== null && !instances.has(row.instanceId))
      instances.set(row.instanceId, (await ctx.tx.getInstance(row.instanceId))?.title ?? null);
    out.push({
      id: row.id,
      rule: row.rule,
      severity: row.severity,
      state: row.resolvedAtMs === null ? 'open' : 'resolved',
      node: row.nodeId,
      partition: row.partitionId,
      path: row.path,
      tree: row.treeId === null ? null : (trees.get(row.treeId) ?? null),
      instance: row.instanceId === null ? null : (instances.get(row.instanceId) ?? null),
      summary: row.summary,
      eta: iso(row.etaMs),
      eta_earliest: iso(row.etaEarliestMs),
      eta_latest: iso(row.etaLatestMs),
      evidence: row.evidence,
      opened_at: new Date(row.openedAtMs).toISOString(),
      updated_at: new Date(row.updatedAtMs).toISOString(),
      resolved_at: iso(row.resolvedAtMs),
      action: row.action,
    });
  }
  return { result_list: out };
}
