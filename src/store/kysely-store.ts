/**
 * The one implementation of {@link StoreTx} over Kysely, shared by the SQLite
 * and PostgreSQL stores: they differ only in how they connect, run
 * transactions and hear about other processes' changes.
 */
import type { Kysely, Selectable, Transaction } from 'kysely';
import { HoxError } from '../shared/errors.js';
import type { Database } from './database.js';
import type { SecretBox } from './secret-box.js';
import { appendAudit, listAudit } from './audit-log-store.js';
import type {
  AuditEntry,
  AuditQuery,
  AuditRow,
  ChangeRow,
  ComputeNodeRow,
  FreePartitionQuery,
  InstanceRow,
  InstanceTreeRow,
  JsonObject,
  LogRequestRow,
  PartitionRow,
  PartitionUsageRow,
  RetainedSetRow,
  IssuedCertificateRow,
  NodeMetricsRow,
  AlertRow,
  PkiStateId,
  PromiseResultRow,
  SoftwareInstallationRow,
  StoreTx,
  TokenRow,
  UserRow,
} from './store.js';
import type {
  PartitionState,
  ReportedInstanceState,
  RequestedState,
  SoftwareReportedState,
  SoftwareRequestedState,
  TokenKind,
} from '../shared/states.js';

export type Db = Kysely<Database> | Transaction<Database>;

const num = (v: number | string | bigint): number => Number(v);
const numOrNull = (v: number | string | bigint | null): number | null => (v === null ? null : Number(v));

function toNode(r: Selectable<Database['compute_node']>): ComputeNodeRow {
  return {
    id: r.id,
    title: r.title,
    networkGuid: r.network_guid,
    statusText: r.status_text,
    createdAtMs: num(r.created_at_ms),
    lastContactAtMs: numOrNull(r.last_contact_at_ms),
    statusSinceMs: numOrNull(r.status_since_ms),
    bangTimestamp: num(r.bang_timestamp),
  };
}

function toPartition(r: Selectable<Database['partition']>): PartitionRow {
  return {
    nodeId: r.node_id,
    partitionId: r.partition_id,
    state: r.state as PartitionState,
    ipList: JSON.parse(r.ip_list) as PartitionRow['ipList'],
    instanceId: r.instance_id,
  };
}

function toSoftware(r: Selectable<Database['software_installation']>): SoftwareInstallationRow {
  return {
    nodeId: r.node_id,
    url: r.url,
    requestedState: r.requested_state as SoftwareRequestedState,
    reportedState: r.reported_state as SoftwareReportedState | null,
    errorMessage: r.error_message,
    updatedAtMs: num(r.updated_at_ms),
  };
}

function toTree(r: Selectable<Database['instance_tree']>): InstanceTreeRow {
  return {
    id: r.id,
    ownerId: r.owner_id,
    title: r.title,
    rootInstanceId: r.root_instance_id,
    createdAtMs: num(r.created_at_ms),
  };
}

/**
 * The instance columns sealed at rest: parameters and connection parameters carry cluster secrets, passwords and
 * backup tokens. Nothing queries their contents (they are read and written whole), so sealing them costs no query.
 */
export const SEALED_INSTANCE_COLUMNS = ['parameters', 'connection_parameters'] as const;

/** What a sealed instance column's value is bound to: it opens only in that column of that row. */
export function instanceSealContext(column: (typeof SEALED_INSTANCE_COLUMNS)[number], id: string): string {
  return `instance.${column}:${id}`;
}

function toInstance(r: Selectable<Database['instance']>, box: SecretBox): InstanceRow {
  return {
    id: r.id,
    treeId: r.tree_id,
    title: r.title,
    shared: num(r.shared) === 1,
    releaseUrl: r.release_url,
    softwareType: r.software_type,
    parameters: JSON.parse(
      box.open(r.parameters, instanceSealContext('parameters', r.id)),
    ) as InstanceRow['parameters'],
    sla: JSON.parse(r.sla) as InstanceRow['sla'],
    requestedState: r.requested_state as RequestedState,
    reportedState: r.reported_state as ReportedInstanceState | null,
    requesterId: r.requester_id,
    nodeId: r.node_id,
    partitionId: r.partition_id,
    hostInstanceId: r.host_instance_id,
    processingTimestamp: num(r.processing_timestamp),
    connectionParameters: JSON.parse(
      box.open(r.connection_parameters, instanceSealContext('connection_parameters', r.id)),
    ) as InstanceRow['connectionParameters'],
    errorMessage: r.error_message,
    statusAtMs: numOrNull(r.status_at_ms),
    createdAtMs: num(r.created_at_ms),
  };
}

function instanceColumns(
  id: string,
  p: Partial<Omit<InstanceRow, 'id'>>,
  box: SecretBox,
): Partial<Database['instance']> {
  const out: Record<string, unknown> = {};
  if (p.treeId !== undefined) out.tree_id = p.treeId;
  if (p.title !== undefined) out.title = p.title;
  if (p.shared !== undefined) out.shared = p.shared ? 1 : 0;
  if (p.releaseUrl !== undefined) out.release_url = p.releaseUrl;
  if (p.softwareType !== undefined) out.software_type = p.softwareType;
  if (p.parameters !== undefined)
    out.parameters = box.seal(JSON.stringify(p.parameters), instanceSealContext('parameters', id));
  if (p.sla !== undefined) out.sla = JSON.stringify(p.sla);
  if (p.requestedState !== undefined) out.requested_state = p.requestedState;
  if (p.reportedState !== undefined) out.reported_state = p.reportedState;
  if (p.requesterId !== undefined) out.requester_id = p.requesterId;
  if (p.nodeId !== undefined) out.node_id = p.nodeId;
  if (p.partitionId !== undefined) out.partition_id = p.partitionId;
  if (p.hostInstanceId !== undefined) out.host_instance_id = p.hostInstanceId;
  if (p.processingTimestamp !== undefined) out.processing_timestamp = p.processingTimestamp;
  if (p.connectionParameters !== undefined)
    out.connection_parameters = box.seal(
      JSON.stringify(p.connectionParameters),
      instanceSealContext('connection_parameters', id),
    );
  if (p.errorMessage !== undefined) out.error_message = p.errorMessage;
  if (p.statusAtMs !== undefined) out.status_at_ms = p.statusAtMs;
  if (p.createdAtMs !== undefined) out.created_at_ms = p.createdAtMs;
  return out;
}

/** Binds a sealed log answer to its request: it cannot be moved to another row. */
function logAnswerSealContext(id: string): string {
  return `log_request.answer:${id}`;
}

/**
 * Row-level operations inside one transaction. `onChangeAppended` lets the
 * owning store know it must wake watchers once the transaction commits.
 */
export class KyselyStoreTx implements StoreTx {
  changed = false;

  /**
   * @param box seals and opens the secret columns
   * @param beforeFirstChange dialect hook run once before the transaction's
   *   first change record (PostgreSQL: lock so sequence numbers commit in order, and NOTIFY).
   */
  constructor(
    private readonly db: Db,
    private readonly box: SecretBox,
    private readonly beforeFirstChange?: (db: Db) => Promise<void>,
  ) {}

  async insertNode(row: ComputeNodeRow): Promise<void> {
    await this.db
      .insertInto('compute_node')
      .values({
        id: row.id,
        title: row.title,
        network_guid: row.networkGuid,
        status_text: row.statusText,
        created_at_ms: row.createdAtMs,
        last_contact_at_ms: row.lastContactAtMs,
        status_since_ms: row.statusSinceMs,
        bang_timestamp: row.bangTimestamp,
      })
      .execute();
  }

  async getNode(id: string): Promise<ComputeNodeRow | undefined> {
    const r = await this.db.selectFrom('compute_node').selectAll().where('id', '=', id).executeTakeFirst();
    return r && toNode(r);
  }

  async listNodes(): Promise<ComputeNodeRow[]> {
    const rows = await this.db.selectFrom('compute_node').selectAll().orderBy('id').execute();
    return rows.map(toNode);
  }

  async updateNode(id: string, p: Partial<Omit<ComputeNodeRow, 'id'>>): Promise<void> {
    const set: Record<string, unknown> = {};
    if (p.title !== undefined) set.title = p.title;
    if (p.networkGuid !== undefined) set.network_guid = p.networkGuid;
    if (p.statusText !== undefined) set.status_text = p.statusText;
    if (p.lastContactAtMs !== undefined) set.last_contact_at_ms = p.lastContactAtMs;
    if (p.statusSinceMs !== undefined) set.status_since_ms = p.statusSinceMs;
    if (p.bangTimestamp !== undefined) set.bang_timestamp = p.bangTimestamp;
    if (Object.keys(set).length === 0) return;
    await this.db.updateTable('compute_node').set(set).where('id', '=', id).execute();
  }

  async listPartitions(nodeId: string): Promise<PartitionRow[]> {
    const rows = await this.db
      .selectFrom('partition')
      .selectAll()
      .where('node_id', '=', nodeId)
      .orderBy('partition_id')
      .execute();
    return rows.map(toPartition);
  }

  async getPartition(nodeId: string, partitionId: string): Promise<PartitionRow | undefined> {
    const r = await this.db
      .selectFrom('partition')
      .selectAll()
      .where('node_id', '=', nodeId)
      .where('partition_id', '=', partitionId)
      .executeTakeFirst();
    return r && toPartition(r);
  }

  async insertPartition(row: PartitionRow): Promise<void> {
    await this.db
      .insertInto('partition')
      .values({
        node_id: row.nodeId,
        partition_id: row.partitionId,
        state: row.state,
        ip_list: JSON.stringify(row.ipList),
        instance_id: row.instanceId,
      })
      .execute();
    if (row.state === 'free') await this.adjustFree(row.nodeId, 1);
  }

  /** Keeps compute_node.free_partition_count true: incremental, so no scan of the partition table (no wide predicate locks). */
  private async adjustFree(nodeId: string, delta: number): Promise<void> {
    if (delta === 0) return;
    await this.db
      .updateTable('compute_node')
      .set((eb) => ({ free_partition_count: eb('free_partition_count', '+', delta) }))
      .where('id', '=', nodeId)
      .execute();
  }

  async updatePartition(
    nodeId: string,
    partitionId: string,
    p: Partial<Pick<PartitionRow, 'state' | 'ipList' | 'instanceId'>>,
  ): Promise<void> {
    const set: Record<string, unknown> = {};
    if (p.state !== undefined) set.state = p.state;
    if (p.ipList !== undefined) set.ip_list = JSON.stringify(p.ipList);
    if (p.instanceId !== undefined) set.instance_id = p.instanceId;
    if (Object.keys(set).length === 0) return;
    const before = p.state === undefined ? undefined : await this.getPartition(nodeId, partitionId);
    await this.db
      .updateTable('partition')
      .set(set)
      .where('node_id', '=', nodeId)
      .where('partition_id', '=', partitionId)
      .execute();
    if (before !== undefined && p.state !== undefined && before.state !== p.state)
      await this.adjustFree(nodeId, p.state === 'free' ? 1 : -1);
  }

  async deletePartition(nodeId: string, partitionId: string): Promise<void> {
    const before = await this.getPartition(nodeId, partitionId);
    await this.db
      .deleteFrom('partition')
      .where('node_id', '=', nodeId)
      .where('partition_id', '=', partitionId)
      .execute();
    if (before?.state === 'free') await this.adjustFree(nodeId, -1);
  }

  async findFreePartition(q: FreePartitionQuery): Promise<PartitionRow | undefined> {
    // 1. The node: the release is supplied there, it has a free partition, filters hold; emptiest first.
    let nodes = this.db
      .selectFrom('compute_node as n')
      .innerJoin('software_installation as s', (j) =>
        j.onRef('s.node_id', '=', 'n.id').on('s.url', '=', q.releaseUrl).on('s.requested_state', '=', 'available'),
      )
      .select('n.id')
      .where('n.free_partition_count', '>', 0);
    if (q.nodeId !== undefined) nodes = nodes.where('n.id', '=', q.nodeId);
    if (q.networkGuid !== undefined) nodes = nodes.where('n.network_guid', '=', q.networkGuid);
    if (q.excludeNodeIds !== undefined && q.excludeNodeIds.length > 0)
      nodes = nodes.where('n.id', 'not in', q.excludeNodeIds);
    if (q.excludeNetworkGuids !== undefined && q.excludeNetworkGuids.length > 0) {
      const excluded = q.excludeNetworkGuids;
      nodes = nodes.where((eb) => eb.or([eb('n.network_guid', 'is', null), eb('n.network_guid', 'not in', excluded)]));
    }
    const node = await nodes.orderBy('n.free_partition_count', 'desc').orderBy('n.id').limit(1).executeTakeFirst();
    if (node === undefined) return undefined;
    // 2. Its first free partition.
    const r = await this.db
      .selectFrom('partition')
      .selectAll()
      .where('node_id', '=', node.id)
      .where('state', '=', 'free')
      .orderBy('partition_id')
      .limit(1)
      .executeTakeFirst();
    return r && toPartition(r);
  }

  async getSoftwareInstallation(nodeId: string, url: string): Promise<SoftwareInstallationRow | undefined> {
    const r = await this.db
      .selectFrom('software_installation')
      .selectAll()
      .where('node_id', '=', nodeId)
      .where('url', '=', url)
      .executeTakeFirst();
    return r && toSoftware(r);
  }

  async listSoftwareInstallations(nodeId: string): Promise<SoftwareInstallationRow[]> {
    const rows = await this.db
      .selectFrom('software_installation')
      .selectAll()
      .where('node_id', '=', nodeId)
      .orderBy('url')
      .execute();
    return rows.map(toSoftware);
  }

  async upsertSoftwareInstallation(row: SoftwareInstallationRow): Promise<void> {
    const values = {
      node_id: row.nodeId,
      url: row.url,
      requested_state: row.requestedState,
      reported_state: row.reportedState,
      error_message: row.errorMessage,
      updated_at_ms: row.updatedAtMs,
    };
    await this.db
      .insertInto('software_installation')
      .values(values)
      .onConflict((oc) =>
        oc.columns(['node_id', 'url']).doUpdateSet({
          requested_state: values.requested_state,
          reported_state: values.reported_state,
          error_message: values.error_message,
          updated_at_ms: values.updated_at_ms,
        }),
      )
      .execute();
  }

  async deleteSoftwareInstallation(nodeId: string, url: string): Promise<void> {
    await this.db.deleteFrom('software_installation').where('node_id', '=', nodeId).where('url', '=', url).execute();
  }

  async insertTree(row: InstanceTreeRow): Promise<void> {
    await this.db
      .insertInto('instance_tree')
      .values({
        id: row.id,
        owner_id: row.ownerId,
        title: row.title,
        root_instance_id: row.rootInstanceId,
        created_at_ms: row.createdAtMs,
      })
      .execute();
  }

  async getTree(id: string): Promise<InstanceTreeRow | undefined> {
    const r = await this.db.selectFrom('instance_tree').selectAll().where('id', '=', id).executeTakeFirst();
    return r && toTree(r);
  }

  async findTree(ownerId: string, title: string): Promise<InstanceTreeRow | undefined> {
    const r = await this.db
      .selectFrom('instance_tree')
      .selectAll()
      .where('owner_id', '=', ownerId)
      .where('title', '=', title)
      .executeTakeFirst();
    return r && toTree(r);
  }

  async listTrees(ownerId?: string): Promise<InstanceTreeRow[]> {
    let q = this.db.selectFrom('instance_tree').selectAll();
    if (ownerId !== undefined) q = q.where('owner_id', '=', ownerId);
    const rows = await q.orderBy('title').execute();
    return rows.map(toTree);
  }

  async updateTree(id: string, p: Partial<Pick<InstanceTreeRow, 'title'>>): Promise<void> {
    if (p.title === undefined) return;
    await this.db.updateTable('instance_tree').set({ title: p.title }).where('id', '=', id).execute();
  }

  async deleteTree(id: string): Promise<void> {
    await this.db.deleteFrom('instance_tree').where('id', '=', id).execute();
  }

  async insertInstance(row: InstanceRow): Promise<void> {
    const values = { id: row.id, ...instanceColumns(row.id, row, this.box) } as Database['instance'];
    await this.db.insertInto('instance').values(values).execute();
  }

  async getInstance(id: string): Promise<InstanceRow | undefined> {
    const r = await this.db.selectFrom('instance').selectAll().where('id', '=', id).executeTakeFirst();
    return r && toInstance(r, this.box);
  }

  async findInstance(treeId: string, title: string): Promise<InstanceRow | undefined> {
    const r = await this.db
      .selectFrom('instance')
      .selectAll()
      .where('tree_id', '=', treeId)
      .where('title', '=', title)
      .executeTakeFirst();
    return r && toInstance(r, this.box);
  }

  async listTreeInstances(treeId: string): Promise<InstanceRow[]> {
    const rows = await this.db
      .selectFrom('instance')
      .selectAll()
      .where('tree_id', '=', treeId)
      .orderBy('created_at_ms')
      .orderBy('id')
      .execute();
    return rows.map((r) => toInstance(r, this.box));
  }

  async listNodeInstances(nodeId: string): Promise<InstanceRow[]> {
    const rows = await this.db
      .selectFrom('instance')
      .selectAll()
      .where('node_id', '=', nodeId)
      .orderBy('partition_id')
      .orderBy('id')
      .execute();
    return rows.map((r) => toInstance(r, this.box));
  }

  async listHostedInstances(hostInstanceId: string): Promise<InstanceRow[]> {
    const rows = await this.db
      .selectFrom('instance')
      .selectAll()
      .where('host_instance_id', '=', hostInstanceId)
      .orderBy('created_at_ms')
      .orderBy('id')
      .execute();
    return rows.map((r) => toInstance(r, this.box));
  }

  async listWaitingInstances(limit: number, after?: Pick<InstanceRow, 'createdAtMs' | 'id'>): Promise<InstanceRow[]> {
    let q = this.db
      .selectFrom('instance')
      .selectAll()
      .where('node_id', 'is', null)
      .where('requested_state', '!=', 'destroyed');
    if (after !== undefined)
      q = q.where((eb) =>
        eb.or([
          eb('created_at_ms', '>', after.createdAtMs),
          eb.and([eb('created_at_ms', '=', after.createdAtMs), eb('id', '>', after.id)]),
        ]),
      );
    const rows = await q.orderBy('created_at_ms').orderBy('id').limit(limit).execute();
    return rows.map((r) => toInstance(r, this.box));
  }

  async listLiveSharedInstances(): Promise<InstanceRow[]> {
    const rows = await this.db
      .selectFrom('instance')
      .selectAll()
      .where('shared', '=', 1)
      .where('requested_state', '!=', 'destroyed')
      .orderBy('created_at_ms')
      .orderBy('id')
      .execute();
    return rows.map((r) => toInstance(r, this.box));
  }

  async listHostCandidates(releaseUrl: string, nodeId?: string): Promise<InstanceRow[]> {
    let q = this.db
      .selectFrom('instance')
      .selectAll()
      .where('release_url', '=', releaseUrl)
      .where('shared', '=', 0)
      .where('partition_id', 'is not', null)
      .where('requested_state', '!=', 'destroyed');
    if (nodeId !== undefined) q = q.where('node_id', '=', nodeId);
    const rows = await q.orderBy('created_at_ms').orderBy('id').execute();
    return rows.map((r) => toInstance(r, this.box));
  }

  async updateInstance(id: string, patch: Partial<Omit<InstanceRow, 'id'>>): Promise<void> {
    const set = instanceColumns(id, patch, this.box);
    if (Object.keys(set).length === 0) return;
    await this.db.updateTable('instance').set(set).where('id', '=', id).execute();
  }

  async deleteInstance(id: string): Promise<void> {
    await this.db.deleteFrom('partition_usage').where('instance_id', '=', id).execute();
    await this.db.deleteFrom('promise_result').where('instance_id', '=', id).execute();
    await this.db.deleteFrom('instance').where('id', '=', id).execute();
  }

  async insertUser(row: UserRow): Promise<void> {
    await this.db
      .insertInto('hox_user')
      .values({ id: row.id, name: row.name, created_at_ms: row.createdAtMs })
      .execute();
  }

  async getUser(id: string): Promise<UserRow | undefined> {
    const r = await this.db.selectFrom('hox_user').selectAll().where('id', '=', id).executeTakeFirst();
    return r && { id: r.id, name: r.name, createdAtMs: num(r.created_at_ms) };
  }

  async findUserByName(name: string): Promise<UserRow | undefined> {
    const r = await this.db.selectFrom('hox_user').selectAll().where('name', '=', name).executeTakeFirst();
    return r && { id: r.id, name: r.name, createdAtMs: num(r.created_at_ms) };
  }

  async listUsers(): Promise<UserRow[]> {
    const rows = await this.db.selectFrom('hox_user').selectAll().orderBy('name').execute();
    return rows.map((r) => ({ id: r.id, name: r.name, createdAtMs: num(r.created_at_ms) }));
  }

  async insertToken(row: TokenRow): Promise<void> {
    await this.db
      .insertInto('token')
      .values({
        hash: row.hash,
        kind: row.kind,
        subject: row.subject,
        created_at_ms: row.createdAtMs,
        expires_at_ms: row.expiresAtMs,
        used_at_ms: row.usedAtMs,
      })
      .execute();
  }

  async getToken(hash: string): Promise<TokenRow | undefined> {
    const r = await this.db.selectFrom('token').selectAll().where('hash', '=', hash).executeTakeFirst();
    return (
      r && {
        hash: r.hash,
        kind: r.kind as TokenKind,
        subject: r.subject,
        createdAtMs: num(r.created_at_ms),
        expiresAtMs: numOrNull(r.expires_at_ms),
        usedAtMs: numOrNull(r.used_at_ms),
      }
    );
  }

  async updateToken(hash: string, p: Partial<Pick<TokenRow, 'usedAtMs' | 'expiresAtMs'>>): Promise<void> {
    const set: Record<string, unknown> = {};
    if (p.usedAtMs !== undefined) set.used_at_ms = p.usedAtMs;
    if (p.expiresAtMs !== undefined) set.expires_at_ms = p.expiresAtMs;
    if (Object.keys(set).length === 0) return;
    await this.db.updateTable('token').set(set).where('hash', '=', hash).execute();
  }

  async deleteTokens(kind: TokenKind, subject: string): Promise<void> {
    await this.db.deleteFrom('token').where('kind', '=', kind).where('subject', '=', subject).execute();
  }

  async insertUsage(row: { nodeId: string; atMs: number; tioxml: string }): Promise<void> {
    await this.db
      .insertInto('compute_node_usage')
      .values({ node_id: row.nodeId, at_ms: row.atMs, tioxml: row.tioxml })
      .execute();
  }

  async putPartitionUsage(row: PartitionUsageRow): Promise<void> {
    const values = {
      instance_id: row.instanceId,
      node_id: row.nodeId,
      partition_id: row.partitionId,
      limits: JSON.stringify(row.limits),
      usage: JSON.stringify(row.usage),
      not_enforced: JSON.stringify(row.notEnforced),
      not_enforced_reason: row.notEnforcedReason,
      measured_at_ms: row.measuredAtMs,
      disk_measured_at_ms: row.diskMeasuredAtMs,
      reported_at_ms: row.reportedAtMs,
    };
    await this.db
      .insertInto('partition_usage')
      .values(values)
      .onConflict((oc) =>
        oc.column('instance_id').doUpdateSet({
          node_id: values.node_id,
          partition_id: values.partition_id,
          limits: values.limits,
          usage: values.usage,
          not_enforced: values.not_enforced,
          not_enforced_reason: values.not_enforced_reason,
          measured_at_ms: values.measured_at_ms,
          disk_measured_at_ms: values.disk_measured_at_ms,
          reported_at_ms: values.reported_at_ms,
        }),
      )
      .execute();
  }

  async putNodeMetrics(row: NodeMetricsRow): Promise<void> {
    const values = { node_id: row.nodeId, metrics: JSON.stringify(row.metrics), reported_at_ms: row.reportedAtMs };
    await this.db
      .insertInto('node_metrics')
      .values(values)
      .onConflict((oc) =>
        oc.column('node_id').doUpdateSet({ metrics: values.metrics, reported_at_ms: values.reported_at_ms }),
      )
      .execute();
  }

  async listNodeMetrics(): Promise<NodeMetricsRow[]> {
    const rows = await this.db.selectFrom('node_metrics').selectAll().orderBy('node_id').execute();
    return rows.map((r) => ({
      nodeId: r.node_id,
      metrics: JSON.parse(r.metrics) as JsonObject,
      reportedAtMs: num(r.reported_at_ms),
    }));
  }

  async listAlerts(filter: {
    open?: boolean;
    sourceInstanceId?: string;
    ownerId?: string;
    resolvedSinceMs?: number;
    limit: number;
  }): Promise<AlertRow[]> {
    let q = this.db.selectFrom('alert').selectAll();
    if (filter.open === true) q = q.where('resolved_at_ms', 'is', null);
    else if (filter.resolvedSinceMs !== undefined) {
      const since = filter.resolvedSinceMs;
      q = q.where((eb) => eb.or([eb('resolved_at_ms', 'is', null), eb('resolved_at_ms', '>=', since)]));
    }
    if (filter.sourceInstanceId !== undefined) q = q.where('source_instance_id', '=', filter.sourceInstanceId);
    if (filter.ownerId !== undefined) q = q.where('owner_id', '=', filter.ownerId);
    const rows = await q.orderBy('opened_at_ms', 'desc').orderBy('id').limit(filter.limit).execute();
    return rows.map((r) => ({
      id: r.id,
      sourceInstanceId: r.source_instance_id,
      key: r.key,
      rule: r.rule,
      severity: r.severity === 'critical' ? 'critical' : 'warning',
      nodeId: r.node_id,
      partitionId: r.partition_id,
      path: r.path,
      instanceId: r.instance_id,
      treeId: r.tree_id,
      ownerId: r.owner_id,
      summary: r.summary,
      etaMs: numOrNull(r.eta_ms),
      etaEarliestMs: numOrNull(r.eta_earliest_ms),
      etaLatestMs: numOrNull(r.eta_latest_ms),
      evidence: JSON.parse(r.evidence) as JsonObject,
      openedAtMs: num(r.opened_at_ms),
      updatedAtMs: num(r.updated_at_ms),
      resolvedAtMs: numOrNull(r.resolved_at_ms),
      action: r.action === null ? null : (JSON.parse(r.action) as JsonObject),
    }));
  }

  async putAlert(row: AlertRow): Promise<void> {
    const values = {
      id: row.id,
      source_instance_id: row.sourceInstanceId,
      key: row.key,
      rule: row.rule,
      severity: row.severity,
      node_id: row.nodeId,
      partition_id: row.partitionId,
      path: row.path,
      instance_id: row.instanceId,
      tree_id: row.treeId,
      owner_id: row.ownerId,
      summary: row.summary,
      eta_ms: row.etaMs,
      eta_earliest_ms: row.etaEarliestMs,
      eta_latest_ms: row.etaLatestMs,
      evidence: JSON.stringify(row.evidence),
      opened_at_ms: row.openedAtMs,
      updated_at_ms: row.updatedAtMs,
      resolved_at_ms: row.resolvedAtMs,
      action: row.action === null ? null : JSON.stringify(row.action),
    };
    const { id, ...updates } = values;
    await this.db
      .insertInto('alert')
      .values({ id, ...updates })
      .onConflict((oc) => oc.column('id').doUpdateSet(updates))
      .execute();
  }

  async deleteResolvedAlerts(beforeMs: number): Promise<number> {
    const result = await this.db
      .deleteFrom('alert')
      .where('resolved_at_ms', 'is not', null)
      .where('resolved_at_ms', '<', beforeMs)
      .executeTakeFirst();
    return Number(result.numDeletedRows);
  }

  async putPromiseResults(row: PromiseResultRow): Promise<void> {
    const values = {
      instance_id: row.instanceId,
      node_id: row.nodeId,
      partition_id: row.partitionId,
      results: JSON.stringify(row.results),
      reported_at_ms: row.reportedAtMs,
    };
    await this.db
      .insertInto('promise_result')
      .values(values)
      .onConflict((oc) =>
        oc.column('instance_id').doUpdateSet({
          node_id: values.node_id,
          partition_id: values.partition_id,
          results: values.results,
          reported_at_ms: values.reported_at_ms,
        }),
      )
      .execute();
  }

  async listPromiseResults(instanceIds: readonly string[]): Promise<PromiseResultRow[]> {
    if (instanceIds.length === 0) return [];
    const rows = await this.db
      .selectFrom('promise_result')
      .selectAll()
      .where('instance_id', 'in', [...instanceIds])
      .execute();
    return rows.map((r) => ({
      instanceId: r.instance_id,
      nodeId: r.node_id,
      partitionId: r.partition_id,
      results: JSON.parse(r.results) as PromiseResultRow['results'],
      reportedAtMs: num(r.reported_at_ms),
    }));
  }

  async listPartitionUsage(instanceIds: readonly string[]): Promise<PartitionUsageRow[]> {
    if (instanceIds.length === 0) return [];
    const rows = await this.db
      .selectFrom('partition_usage')
      .selectAll()
      .where('instance_id', 'in', [...instanceIds])
      .execute();
    return rows.map((r) => ({
      instanceId: r.instance_id,
      nodeId: r.node_id,
      partitionId: r.partition_id,
      limits: JSON.parse(r.limits) as PartitionUsageRow['limits'],
      usage: JSON.parse(r.usage) as PartitionUsageRow['usage'],
      notEnforced: JSON.parse(r.not_enforced) as string[],
      notEnforcedReason: r.not_enforced_reason,
      measuredAtMs: num(r.measured_at_ms),
      diskMeasuredAtMs: numOrNull(r.disk_measured_at_ms),
      reportedAtMs: num(r.reported_at_ms),
    }));
  }

  async loadPkiState(id: PkiStateId = 'platform'): Promise<string | undefined> {
    const row = await this.db.selectFrom('pki_state').select('state').where('id', '=', id).executeTakeFirst();
    return row?.state;
  }

  async savePkiState(state: string, options: { create: boolean; atMs: number; id?: PkiStateId }): Promise<void> {
    const id = options.id ?? 'platform';
    if (options.create) {
      const result = await this.db
        .insertInto('pki_state')
        .values({ id, state, updated_at_ms: options.atMs })
        .onConflict((oc) => oc.column('id').doNothing())
        .executeTakeFirst();
      if (Number(result.numInsertedOrUpdatedRows ?? 0n) === 0)
        throw new HoxError('HOX_CONFLICT', `another master created the ${id} CA first: open it again`);
      return;
    }
    await this.db.updateTable('pki_state').set({ state, updated_at_ms: options.atMs }).where('id', '=', id).execute();
  }

  async recordCertificate(row: IssuedCertificateRow): Promise<void> {
    await this.db
      .insertInto('issued_certificate')
      .values({ serial: row.serial, kind: row.kind, subject: row.subject, not_after_ms: row.notAfterMs })
      .execute();
  }

  async getCertificate(serial: string): Promise<IssuedCertificateRow | undefined> {
    const r = await this.db
      .selectFrom('issued_certificate')
      .selectAll()
      .where('serial', '=', serial)
      .executeTakeFirst();
    return r === undefined
      ? undefined
      : {
          serial: r.serial,
          kind: r.kind as IssuedCertificateRow['kind'],
          subject: r.subject,
          notAfterMs: num(r.not_after_ms),
        };
  }

  async listCertificates(kind: IssuedCertificateRow['kind'], subject: string): Promise<IssuedCertificateRow[]> {
    const rows = await this.db
      .selectFrom('issued_certificate')
      .selectAll()
      .where('kind', '=', kind)
      .where('subject', '=', subject)
      .orderBy('not_after_ms')
      .execute();
    return rows.map((r) => ({
      serial: r.serial,
      kind: r.kind as IssuedCertificateRow['kind'],
      subject: r.subject,
      notAfterMs: num(r.not_after_ms),
    }));
  }

  async forgetCertificates(filter: { serials?: readonly string[]; expiredBeforeMs?: number }): Promise<void> {
    if (filter.serials !== undefined && filter.serials.length > 0)
      await this.db
        .deleteFrom('issued_certificate')
        .where('serial', 'in', [...filter.serials])
        .execute();
    if (filter.expiredBeforeMs !== undefined)
      await this.db.deleteFrom('issued_certificate').where('not_after_ms', '<', filter.expiredBeforeMs).execute();
  }

  async putRetainedSet(row: RetainedSetRow): Promise<void> {
    const values = {
      instance_id: row.instanceId,
      node_id: row.nodeId,
      partition_id: row.partitionId,
      owner_id: row.ownerId,
      tree_title: row.treeTitle,
      instance_title: row.instanceTitle,
      release_url: row.releaseUrl,
      software_type: row.softwareType,
      paths: JSON.stringify(row.paths),
      destroyed_at_ms: row.destroyedAtMs,
      expires_at_ms: row.expiresAtMs,
      reported_at_ms: row.reportedAtMs,
    };
    const update: Partial<typeof values> = { ...values };
    delete update.instance_id;
    await this.db
      .insertInto('retained_set')
      .values(values)
      .onConflict((oc) => oc.column('instance_id').doUpdateSet(update))
      .execute();
  }

  async listRetainedSets(filter: { ownerId?: string; nodeId?: string }): Promise<RetainedSetRow[]> {
    let query = this.db.selectFrom('retained_set').selectAll();
    if (filter.ownerId !== undefined) query = query.where('owner_id', '=', filter.ownerId);
    if (filter.nodeId !== undefined) query = query.where('node_id', '=', filter.nodeId);
    const rows = await query.orderBy('destroyed_at_ms').orderBy('instance_id').execute();
    return rows.map((r) => ({
      instanceId: r.instance_id,
      nodeId: r.node_id,
      partitionId: r.partition_id,
      ownerId: r.owner_id,
      treeTitle: r.tree_title,
      instanceTitle: r.instance_title,
      releaseUrl: r.release_url,
      softwareType: r.software_type,
      paths: JSON.parse(r.paths) as RetainedSetRow['paths'],
      destroyedAtMs: num(r.destroyed_at_ms),
      expiresAtMs: num(r.expires_at_ms),
      reportedAtMs: num(r.reported_at_ms),
    }));
  }

  async updateRetainedSet(
    instanceId: string,
    patch: Pick<RetainedSetRow, 'expiresAtMs' | 'reportedAtMs'>,
  ): Promise<void> {
    await this.db
      .updateTable('retained_set')
      .set({ expires_at_ms: patch.expiresAtMs, reported_at_ms: patch.reportedAtMs })
      .where('instance_id', '=', instanceId)
      .execute();
  }

  async deleteRetainedSets(instanceIds: readonly string[]): Promise<void> {
    if (instanceIds.length === 0) return;
    await this.db
      .deleteFrom('retained_set')
      .where('instance_id', 'in', [...instanceIds])
      .execute();
  }

  async insertLogRequest(row: Pick<LogRequestRow, 'id' | 'nodeId' | 'spec' | 'createdAtMs'>): Promise<void> {
    await this.db
      .insertInto('log_request')
      .values({
        id: row.id,
        node_id: row.nodeId,
        spec: JSON.stringify(row.spec),
        answer: null,
        created_at_ms: row.createdAtMs,
        answered_at_ms: null,
      })
      .execute();
  }

  private toLogRequest(r: Selectable<Database['log_request']>): LogRequestRow {
    return {
      id: r.id,
      nodeId: r.node_id,
      spec: JSON.parse(r.spec) as JsonObject,
      answer:
        r.answer === null ? null : (JSON.parse(this.box.open(r.answer, logAnswerSealContext(r.id))) as JsonObject),
      createdAtMs: num(r.created_at_ms),
      answeredAtMs: numOrNull(r.answered_at_ms),
    };
  }

  async getLogRequest(id: string): Promise<LogRequestRow | undefined> {
    const r = await this.db.selectFrom('log_request').selectAll().where('id', '=', id).executeTakeFirst();
    return r && this.toLogRequest(r);
  }

  async listPendingLogRequests(nodeId: string, sinceMs: number): Promise<LogRequestRow[]> {
    const rows = await this.db
      .selectFrom('log_request')
      .selectAll()
      .where('node_id', '=', nodeId)
      .where('created_at_ms', '>=', sinceMs)
      .where('answered_at_ms', 'is', null)
      .orderBy('created_at_ms')
      .limit(100)
      .execute();
    return rows.map((r) => this.toLogRequest(r));
  }

  async answerLogRequest(id: string, nodeId: string, answer: JsonObject, atMs: number): Promise<boolean> {
    const result = await this.db
      .updateTable('log_request')
      .set({ answer: this.box.seal(JSON.stringify(answer), logAnswerSealContext(id)), answered_at_ms: atMs })
      .where('id', '=', id)
      .where('node_id', '=', nodeId)
      .where('answered_at_ms', 'is', null)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  async deleteLogRequests(ids: readonly string[]): Promise<void> {
    if (ids.length === 0) return;
    await this.db
      .deleteFrom('log_request')
      .where('id', 'in', [...ids])
      .execute();
  }

  async purgeLogRequests(beforeMs: number): Promise<number> {
    const result = await this.db.deleteFrom('log_request').where('created_at_ms', '<', beforeMs).executeTakeFirst();
    return Number(result.numDeletedRows);
  }

  appendAudit(entry: AuditEntry): Promise<void> {
    return appendAudit(this.db, entry);
  }

  listAudit(query: AuditQuery): Promise<AuditRow[]> {
    return listAudit(this.db, query);
  }

  async appendChange(change: { nodeId: string | null; treeId: string | null; atMs: number }): Promise<void> {
    if (!this.changed && this.beforeFirstChange) await this.beforeFirstChange(this.db);
    await this.db
      .insertInto('change_log')
      .values({ node_id: change.nodeId, tree_id: change.treeId, at_ms: change.atMs })
      .execute();
    this.changed = true;
  }
}

export async function latestChangeSeq(db: Kysely<Database>): Promise<number> {
  const r = await db
    .selectFrom('change_log')
    .select((eb) => eb.fn.max('seq').as('m'))
    .executeTakeFirst();
  return r?.m == null ? 0 : Number(r.m);
}

export async function changesAfter(
  db: Kysely<Database>,
  afterSeq: number,
  filter: { nodeId?: string; treeIds?: string[] },
): Promise<ChangeRow[]> {
  let q = db.selectFrom('change_log').selectAll().where('seq', '>', afterSeq);
  const { nodeId, treeIds } = filter;
  if (nodeId !== undefined || treeIds !== undefined) {
    q = q.where((eb) => {
      const ors = [];
      if (nodeId !== undefined) ors.push(eb('node_id', '=', nodeId));
      if (treeIds !== undefined && treeIds.length > 0) ors.push(eb('tree_id', 'in', treeIds));
      return eb.or(ors);
    });
  }
  const rows = await q.orderBy('seq').limit(100).execute();
  return rows.map((r) => ({ seq: Number(r.seq), nodeId: r.node_id, treeId: r.tree_id, atMs: Number(r.at_ms) }));
}

export async function pruneChanges(db: Kysely<Database>, beforeMs: number): Promise<number> {
  const res = await db.deleteFrom('change_log').where('at_ms', '<', beforeMs).executeTakeFirst();
  return Number(res.numDeletedRows);
}
