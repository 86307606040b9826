/** Compute nodes: registration, format (the partition list), status, bang, usage. */
import { HoxError, badRequest } from '../shared/errors.js';
import { hashToken, newToken } from '../shared/ids.js';
import type { ComputeNodeRow, InstanceRow, IpAddress, PartitionRow } from '../store/store.js';
import { nextTimestamp, type OpContext } from './context.js';
import { assertNodeAccess, requireAdmin, describePrincipal } from './principal.js';
import { checkTioXml } from './tioxml.js';

/** Node ids are readable slugs: they appear in paths, logs and unix user names. */
export const NODE_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;

export async function loadNode(ctx: OpContext, nodeId: string): Promise<ComputeNodeRow> {
  assertNodeAccess(ctx.principal, nodeId);
  const node = await ctx.tx.getNode(nodeId);
  if (node === undefined)
    throw new HoxError('HOX_NODE_NOT_FOUND', `compute node '${nodeId}' not found`, {
      slaposTitle: `Compute Node '${nodeId}' not found`,
    });
  return node;
}

/** Issues a one-time registration token (admin). */
export async function createRegistrationToken(
  ctx: OpContext,
  ttlSeconds: number,
): Promise<{ token: string; expires_at: string }> {
  requireAdmin(ctx.principal);
  const token = newToken('reg');
  const expiresAtMs = ctx.clock.nowMs() + ttlSeconds * 1000;
  await ctx.tx.insertToken({
    hash: hashToken(token),
    kind: 'registration',
    subject: null,
    createdAtMs: ctx.clock.nowMs(),
    expiresAtMs,
    usedAtMs: null,
  });
  return { token, expires_at: new Date(expiresAtMs).toISOString() };
}

/** Registers a compute node with a registration token (or the admin token); returns the node's own token. */
export async function registerNode(
  ctx: OpContext,
  input: { computer_guid: string; title?: string; network_guid?: string },
): Promise<{ computer_guid: string; token: string }> {
  const p = ctx.principal;
  if (p.kind !== 'registration' && p.kind !== 'admin')
    throw new HoxError('HOX_FORBIDDEN', `${describePrincipal(p)} may not register compute nodes`);
  if (!NODE_ID_PATTERN.test(input.computer_guid))
    throw badRequest(
      'computer_guid',
      'must be 1-63 letters, digits, dot, dash or underscore, starting with a letter or digit',
    );
  if ((await ctx.tx.getNode(input.computer_guid)) !== undefined)
    throw new HoxError('HOX_CONFLICT', `compute node '${input.computer_guid}' is already registered`);
  const now = ctx.clock.nowMs();
  await ctx.tx.insertNode({
    id: input.computer_guid,
    title: input.title ?? input.computer_guid,
    networkGuid: input.network_guid ?? null,
    statusText: `#error no data found for ${input.computer_guid}`,
    createdAtMs: now,
    lastContactAtMs: null,
    statusSinceMs: now,
    bangTimestamp: 0,
  });
  if (p.kind === 'registration') await ctx.tx.updateToken(p.tokenHash, { usedAtMs: now });
  const token = newToken('node');
  await ctx.tx.insertToken({
    hash: hashToken(token),
    kind: 'node',
    subject: input.computer_guid,
    createdAtMs: now,
    expiresAtMs: null,
    usedAtMs: null,
  });
  return { computer_guid: input.computer_guid, token };
}

/**
 * Applies a partition list. Existing partitions keep their allocation (only
 * their addresses are updated); new ones are added free; missing ones are
 * removed, unless busy, in which case the whole format is refused.
 */
export async function formatNode(
  ctx: OpContext,
  nodeId: string,
  partitions: { partition_id: string; ip_list?: IpAddress[] }[],
): Promise<void> {
  const node = await loadNode(ctx, nodeId);
  const seen = new Set<string>();
  for (const [i, part] of partitions.entries()) {
    if (!NODE_ID_PATTERN.test(part.partition_id))
      throw badRequest(
        `compute_partition_list/${i}/partition_id`,
        'must be a slug of letters, digits, dot, dash or underscore',
      );
    if (seen.has(part.partition_id))
      throw badRequest(`compute_partition_list/${i}/partition_id`, `'${part.partition_id}' appears twice`);
    seen.add(part.partition_id);
  }
  const existing = new Map((await ctx.tx.listPartitions(nodeId)).map((p) => [p.partitionId, p]));
  const removed = [...existing.values()].filter((p) => !seen.has(p.partitionId));
  const busy = removed.filter((p) => p.state === 'busy');
  if (busy.length > 0)
    throw new HoxError(
      'HOX_PARTITION_BUSY',
      `cannot remove partition(s) ${busy.map((p) => `'${p.partitionId}'`).join(', ')} of compute node '${nodeId}': still hosting an instance`,
    );
  let changed = removed.length > 0;
  for (const p of removed) await ctx.tx.deletePartition(nodeId, p.partitionId);
  for (const part of partitions) {
    const ipList = part.ip_list ?? [];
    const old = existing.get(part.partition_id);
    if (old === undefined) {
      const row: PartitionRow = { nodeId, partitionId: part.partition_id, state: 'free', ipList, instanceId: null };
      await ctx.tx.insertPartition(row);
      changed = true;
    } else if (JSON.stringify(old.ipList) !== JSON.stringify(ipList)) {
      await ctx.tx.updatePartition(nodeId, part.partition_id, { ipList });
      changed = true;
    }
  }
  await touchNode(ctx, node);
  if (changed) await ctx.tx.appendChange({ nodeId, treeId: null, atMs: ctx.clock.nowMs() });
}

/** How often a node's contact time is written: syncs are frequent, writes are not free. */
const CONTACT_RESOLUTION_MS = 15_000;

/** Records that the node itself called in (only when the caller is that node). */
export async function touchNode(ctx: OpContext, node: ComputeNodeRow): Promise<void> {
  if (ctx.principal.kind !== 'node') return;
  const now = ctx.clock.nowMs();
  if (node.lastContactAtMs !== null && now - node.lastContactAtMs < CONTACT_RESOLUTION_MS) return;
  await ctx.tx.updateNode(node.id, {
    lastContactAtMs: now,
    statusText: `#access ${node.id}`,
    ...(statusKind(node.statusText) === '#access' ? {} : { statusSinceMs: now }),
  });
}

/** `#access`, `#error`…: what SlapOS's `since` follows. */
const statusKind = (text: string): string => text.split(' ', 1)[0] ?? '';

export interface NodeStatus {
  text: string;
  /** SlapOS's fields: its dates are RFC 1123 (`Tue, 19 May 2020 00:00:00 GMT`). */
  reference: string;
  portal_type: 'Compute Node';
  /** When the status was last written (the last contact); now when there is none. */
  created_at: string;
  /** When the status took its current kind; now when there is none. */
  since: string;
  state: '';
  /** Who wrote the status: the node itself, or `SlapOS Master` when there is none. */
  user: string;
  no_data?: 1;
  no_data_since_15_minutes?: 0 | 1;
  no_data_since_5_minutes?: 0 | 1;
  /** Ours (ISO 8601). */
  computer_guid: string;
  title: string;
  registered_at: string;
  last_contact_at: string | null;
  partition_count: number;
  free_partition_count: number;
}

const MINUTE_MS = 60_000;
/** RFC 1123 in GMT, as SlapOS's master writes its dates (Zope's `rfc1123_date`). */
export const rfc1123 = (ms: number): string => new Date(ms).toUTCString();

export async function nodeStatus(ctx: OpContext, nodeId: string): Promise<NodeStatus> {
  const node = await loadNode(ctx, nodeId);
  const partitions = await ctx.tx.listPartitions(nodeId);
  const now = ctx.clock.nowMs();
  const last = node.lastContactAtMs;
  const slapos =
    last === null
      ? { created_at: rfc1123(now), since: rfc1123(now), user: 'SlapOS Master', no_data: 1 as const }
      : {
          created_at: rfc1123(last),
          since: rfc1123(node.statusSinceMs ?? last),
          user: node.id,
          no_data_since_15_minutes: now - last > 15 * MINUTE_MS ? (1 as const) : (0 as const),
          no_data_since_5_minutes: now - last > 5 * MINUTE_MS ? (1 as const) : (0 as const),
        };
  return {
    text: node.statusText,
    reference: node.id,
    portal_type: 'Compute Node',
    state: '',
    ...slapos,
    computer_guid: node.id,
    title: node.title,
    registered_at: new Date(node.createdAtMs).toISOString(),
    last_contact_at: last === null ? null : new Date(last).toISOString(),
    partition_count: partitions.length,
    free_partition_count: partitions.filter((p) => p.state === 'free').length,
  };
}

/** Bangs every instance on the node: each gets a new processing timestamp. */
export async function bangNode(ctx: OpContext, nodeId: string, message: string): Promise<void> {
  const node = await loadNode(ctx, nodeId);
  const now = ctx.clock.nowMs();
  await ctx.tx.updateNode(nodeId, {
    bangTimestamp: nextTimestamp(ctx.clock, node.bangTimestamp),
    statusText: `#error bang: ${message}`,
    ...(statusKind(node.statusText) === '#error' ? {} : { statusSinceMs: now }),
  });
  for (const instance of await ctx.tx.listNodeInstances(nodeId)) {
    await ctx.tx.updateInstance(instance.id, {
      processingTimestamp: nextTimestamp(ctx.clock, instance.processingTimestamp),
    });
  }
  await ctx.tx.appendChange({ nodeId, treeId: null, atMs: now });
}

export async function reportUsage(ctx: OpContext, nodeId: string, tioxml: string): Promise<void> {
  const node = await loadNode(ctx, nodeId);
  checkTioXml(tioxml);
  await ctx.tx.insertUsage({ nodeId, atMs: ctx.clock.nowMs(), tioxml });
  await touchNode(ctx, node);
}

export interface NodeSummary {
  computer_guid: string;
  title: string;
  network_guid: string | null;
  status_text: string;
  last_contact_at: string | null;
  partition_count: number;
  free_partition_count: number;
  software_installation_count: number;
}

export async function listNodes(ctx: OpContext): Promise<NodeSummary[]> {
  requireAdmin(ctx.principal);
  const out: NodeSummary[] = [];
  for (const node of await ctx.tx.listNodes()) {
    const partitions = await ctx.tx.listPartitions(node.id);
    const software = await ctx.tx.listSoftwareInstallations(node.id);
    out.push({
      computer_guid: node.id,
      title: node.title,
      network_guid: node.networkGuid,
      status_text: node.statusText,
      last_contact_at: node.lastContactAtMs === null ? null : new Date(node.lastContactAtMs).toISOString(),
      partition_count: partitions.length,
      free_partition_count: partitions.filter((p) => p.state === 'free').length,
      software_installation_count: software.length,
    });
  }
  return out;
}

/**
 * The instance one item of a node's per-instance report (partition usage, promise results) is about: one the
 * master allocated on that node's partition `compute_partition_id`, named once in the report. Anything else
 * refuses the whole report — `HOX_INSTANCE_NOT_FOUND` on `FIELD.instance_guid` for an instance not on this node
 * (the agent drops that item and reports the others), so that no node writes what another node's tenant reads.
 */
export async function reportedInstance(
  ctx: OpContext,
  nodeId: string,
  item: { instance_guid: string; compute_partition_id: string },
  field: string,
  seen: Set<string>,
): Promise<InstanceRow> {
  if (seen.has(item.instance_guid))
    throw badRequest(`${field}.instance_guid`, `instance '${item.instance_guid}' is reported twice`);
  seen.add(item.instance_guid);
  const instance = await ctx.tx.getInstance(item.instance_guid);
  if (instance === undefined || instance.shared || instance.nodeId !== nodeId)
    throw new HoxError(
      'HOX_INSTANCE_NOT_FOUND',
      `instance '${item.instance_guid}' not found on compute node '${nodeId}'`,
      {
        field: `${field}.instance_guid`,
      },
    );
  if (instance.partitionId !== item.compute_partition_id)
    throw badRequest(
      `${field}.compute_partition_id`,
      `instance '${item.instance_guid}' is on partition '${instance.partitionId ?? 'none'}' of compute node '${nodeId}', not '${item.compute_partition_id}'`,
    );
  return instance;
}
