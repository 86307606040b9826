/**
 * The master's persistence boundary. The domain (src/master) talks only to
 * this interface; SQLite and PostgreSQL implement it (src/store/sqlite,
 * src/store/postgres) and pass one contract suite.
 *
 * Every domain operation runs in {@link Store.transaction}: it sees a
 * consistent snapshot and its writes land all together or not at all. The
 * PostgreSQL store runs transactions SERIALIZABLE and retries serialization
 * failures, so several master processes on one database cannot hand the same
 * partition to two instances.
 */
import type { SecretBox } from './secret-box.js';
import type { ArtifactStore } from './artifact-store.js';
import type {
  PartitionState,
  ReportedInstanceState,
  RequestedState,
  SoftwareReportedState,
  SoftwareRequestedState,
  TokenKind,
} from '../shared/states.js';

export type JsonObject = Record<string, unknown>;

export interface IpAddress {
  'ip-address': string;
  'network-interface'?: string;
  'gateway-ip-address'?: string;
  netmask?: string;
  'network-address'?: string;
}

export interface ComputeNodeRow {
  id: string;
  title: string;
  networkGuid: string | null;
  statusText: string;
  createdAtMs: number;
  lastContactAtMs: number | null;
  /** When `statusText` took its current kind (its first word); null on stores older than the column. */
  statusSinceMs: number | null;
  /** Bumped by a compute node bang; the node reprocesses everything. */
  bangTimestamp: number;
}

export interface PartitionRow {
  nodeId: string;
  partitionId: string;
  state: PartitionState;
  ipList: IpAddress[];
  instanceId: string | null;
}

export interface SoftwareInstallationRow {
  nodeId: string;
  url: string;
  requestedState: SoftwareRequestedState;
  reportedState: SoftwareReportedState | null;
  errorMessage: string | null;
  updatedAtMs: number;
}

export interface InstanceTreeRow {
  id: string;
  ownerId: string;
  /** Title of the root instance: the tree's name in its owner's scope. */
  title: string;
  rootInstanceId: string;
  createdAtMs: number;
}

/** A compute node's own metrics as it last reported them (see `src/agent/node-metrics.ts`). */
export interface NodeMetricsRow {
  nodeId: string;
  metrics: JsonObject;
  reportedAtMs: number;
}

/**
 * An alert a monitor instance reported (`hox.put.v1.alerts`): open while the monitor keeps reporting its key,
 * resolved (kept, with the time) once it stops. The resource is resolved by the master: the instance is the one on
 * the partition when the alert was last reported.
 */
export interface AlertRow {
  id: string;
  sourceInstanceId: string;
  key: string;
  rule: string;
  severity: 'warning' | 'critical';
  nodeId: string;
  partitionId: string | null;
  path: string | null;
  instanceId: string | null;
  treeId: string | null;
  ownerId: string | null;
  summary: string;
  etaMs: number | null;
  etaEarliestMs: number | null;
  etaLatestMs: number | null;
  evidence: JsonObject;
  openedAtMs: number;
  updatedAtMs: number;
  resolvedAtMs: number | null;
  /** What the master did about it (a remediation), or why it did nothing; null: nothing was tried. */
  action: JsonObject | null;
}

/** Which CA a `pki_state` row holds. */
export type PkiStateId = 'platform' | 'sites';

export interface InstanceRow {
  id: string;
  treeId: string;
  title: string;
  shared: boolean;
  releaseUrl: string;
  softwareType: string;
  parameters: JsonObject;
  sla: Record<string, string | number>;
  requestedState: RequestedState;
  reportedState: ReportedInstanceState | null;
  /** Instance that requested this one; `null` for a tree's root. */
  requesterId: string | null;
  nodeId: string | null;
  partitionId: string | null;
  /** For a shared instance: the instance whose partition hosts it. */
  hostInstanceId: string | null;
  processingTimestamp: number;
  connectionParameters: JsonObject;
  /** Last error a node reported, cleared by a successful state report. */
  errorMessage: string | null;
  statusAtMs: number | null;
  createdAtMs: number;
}

export interface UserRow {
  id: string;
  name: string;
  createdAtMs: number;
}

export interface TokenRow {
  /** SHA-256 of the token, hex. The token itself is never stored. */
  hash: string;
  kind: TokenKind;
  /** user id, node id or instance id; `null` for registration tokens. */
  subject: string | null;
  createdAtMs: number;
  expiresAtMs: number | null;
  usedAtMs: number | null;
}

/**
 * A partition's limits and usage as its node last reported them, one row per instance with a partition
 * (replaced by each report, deleted with the instance). Plain JSON, not sealed: nothing in it is secret.
 */
export interface PartitionUsageRow {
  instanceId: string;
  nodeId: string;
  partitionId: string;
  /** `memory_bytes`, `cpus`, `pids`, `disk_bytes`, `log_bytes`. */
  limits: Record<string, number>;
  /** `memory_bytes`, `pids`, `oom_kills`, `disk_bytes`; null where the node cannot count it. */
  usage: Record<string, number | null>;
  /** Limits set but not enforced on the node, and why. */
  notEnforced: string[];
  notEnforcedReason: string | null;
  /** When memory and processes were read, in the master's clock. */
  measuredAtMs: number;
  /** When the disk was measured, in the master's clock; null before the first measurement. */
  diskMeasuredAtMs: number | null;
  reportedAtMs: number;
}

/** One promise's latest result in a {@link PromiseResultRow}: times in the master's clock. */
export interface StoredPromiseResult {
  name: string;
  result: 'ok' | 'failed' | 'never_run';
  message: string | null;
  /** When its latest check ended; null when it never ran. */
  checkedAtMs: number | null;
}

/**
 * An instance's promises as its node last reported them, one row per instance with a partition (replaced by each
 * report, deleted with the instance). Plain JSON, not sealed: the agent masks credentials in messages.
 */
export interface PromiseResultRow {
  instanceId: string;
  nodeId: string;
  partitionId: string;
  results: StoredPromiseResult[];
  reportedAtMs: number;
}

/**
 * A request for log lines, addressed to one compute node (`hox logs` through the master): the master writes it,
 * the node's agent reads `spec`, answers with `answer`, the master reads that and deletes the row. Rows live
 * seconds; those left behind (a master that stopped while waiting) are purged.
 */
export interface LogRequestRow {
  id: string;
  nodeId: string;
  /** What to read: partitions, services, lines, byte cap, offsets (the protocol's `logRequest`). */
  spec: JsonObject;
  /** The node's answer; null until it answers. Sealed at rest: logs may carry secrets. */
  answer: JsonObject | null;
  createdAtMs: number;
  answeredAtMs: number | null;
}

/** Who made an audited call: a token kind, or `unauthenticated` when no token was accepted. */
export type AuditActorKind = 'admin' | 'user' | 'node' | 'instance' | 'registration' | 'unauthenticated';

/**
 * One audited API call. `target` holds only names and ids (never a parameter value, a token or a message):
 * see src/master/audit-trail.ts.
 */
export interface AuditEntry {
  atMs: number;
  actorKind: AuditActorKind;
  /** User id, compute node id or instance id; null for the admin, a registration token or no token. */
  actor: string | null;
  /** The caller's IP address as the master saw it. */
  address: string;
  /** The route's name (`requestInstance`) or `uploadArtifact`. */
  action: string;
  target: Record<string, string | boolean | string[]>;
  /** HTTP status answered. */
  status: number;
  /** `ok` or the error code answered. */
  result: string;
}

export interface AuditRow extends AuditEntry {
  seq: number;
}

export interface AuditQuery {
  sinceMs?: number;
  actorKind?: AuditActorKind;
  actor?: string;
  limit: number;
}

/** A certificate the platform CA issued to a compute node or an instance (`slapos.*.v0.*_certificate`). */
export interface IssuedCertificateRow {
  serial: string;
  kind: 'compute-node' | 'instance' | 'user';
  /** The node id or instance guid. */
  subject: string;
  notAfterMs: number;
}

/** One path of a {@link RetainedSetRow}: what it holds, its size and its small index (as the node reported). */
export interface RetainedPathRow {
  path: string;
  kind: string;
  bytes: number;
  catalog: Record<string, unknown>[];
}

/**
 * What a node keeps of a destroyed instance (`retain` of its software type: a cluster's backups), from the
 * node's report at destroy time until the node stops listing it. Who owns it and what it was come from the
 * master's own records of the instance when it was reported, never from the node. Plain JSON, not sealed:
 * backup names, times and sizes are no secret.
 */
export interface RetainedSetRow {
  instanceId: string;
  nodeId: string;
  partitionId: string;
  ownerId: string;
  treeTitle: string;
  instanceTitle: string;
  releaseUrl: string;
  softwareType: string;
  paths: RetainedPathRow[];
  destroyedAtMs: number;
  /** In the master's clock (the node says how long is left). */
  expiresAtMs: number;
  reportedAtMs: number;
}

export interface ChangeRow {
  seq: number;
  nodeId: string | null;
  treeId: string | null;
  atMs: number;
}

/** Filters for picking a free partition; all must hold. */
export interface FreePartitionQuery {
  releaseUrl: string;
  nodeId?: string;
  networkGuid?: string;
  /** Nodes that must not be chosen (anti-affinity). */
  excludeNodeIds?: string[];
  /** Networks that must not be chosen (`mode=unique_by_network`). */
  excludeNetworkGuids?: string[];
}

export interface StoreTx {
  insertNode(row: ComputeNodeRow): Promise<void>;
  getNode(id: string): Promise<ComputeNodeRow | undefined>;
  listNodes(): Promise<ComputeNodeRow[]>;
  updateNode(id: string, patch: Partial<Omit<ComputeNodeRow, 'id'>>): Promise<void>;

  listPartitions(nodeId: string): Promise<PartitionRow[]>;
  getPartition(nodeId: string, partitionId: string): Promise<PartitionRow | undefined>;
  insertPartition(row: PartitionRow): Promise<void>;
  updatePartition(
    nodeId: string,
    partitionId: string,
    patch: Partial<Pick<PartitionRow, 'state' | 'ipList' | 'instanceId'>>,
  ): Promise<void>;
  deletePartition(nodeId: string, partitionId: string): Promise<void>;
  /** The free partition the allocator should take, or undefined. Spreads: emptiest node first. */
  findFreePartition(query: FreePartitionQuery): Promise<PartitionRow | undefined>;

  getSoftwareInstallation(nodeId: string, url: string): Promise<SoftwareInstallationRow | undefined>;
  listSoftwareInstallations(nodeId: string): Promise<SoftwareInstallationRow[]>;
  upsertSoftwareInstallation(row: SoftwareInstallationRow): Promise<void>;
  deleteSoftwareInstallation(nodeId: string, url: string): Promise<void>;

  insertTree(row: InstanceTreeRow): Promise<void>;
  getTree(id: string): Promise<InstanceTreeRow | undefined>;
  findTree(ownerId: string, title: string): Promise<InstanceTreeRow | undefined>;
  /** Trees of one owner, or of everyone when `ownerId` is undefined. */
  listTrees(ownerId?: string): Promise<InstanceTreeRow[]>;
  updateTree(id: string, patch: Partial<Pick<InstanceTreeRow, 'title'>>): Promise<void>;
  deleteTree(id: string): Promise<void>;

  insertInstance(row: InstanceRow): Promise<void>;
  getInstance(id: string): Promise<InstanceRow | undefined>;
  findInstance(treeId: string, title: string): Promise<InstanceRow | undefined>;
  listTreeInstances(treeId: string): Promise<InstanceRow[]>;
  listNodeInstances(nodeId: string): Promise<InstanceRow[]>;
  listHostedInstances(hostInstanceId: string): Promise<InstanceRow[]>;
  /** Allocated, not-destroyed, non-shared instances of a release: candidate hosts for shared instances. */
  listHostCandidates(releaseUrl: string, nodeId?: string): Promise<InstanceRow[]>;
  /**
   * Instances not requested destroyed and placed nowhere yet (they wait: placement.ts), oldest first; `after`, the
   * last one of the previous page.
   */
  listWaitingInstances(limit: number, after?: Pick<InstanceRow, 'createdAtMs' | 'id'>): Promise<InstanceRow[]>;
  /** Shared instances not requested destroyed, oldest first (host names' first claims: `site-certificates.ts`). */
  listLiveSharedInstances(): Promise<InstanceRow[]>;
  updateInstance(id: string, patch: Partial<Omit<InstanceRow, 'id'>>): Promise<void>;
  /** Deletes the instance and its partition usage row. */
  deleteInstance(id: string): Promise<void>;

  insertUser(row: UserRow): Promise<void>;
  getUser(id: string): Promise<UserRow | undefined>;
  findUserByName(name: string): Promise<UserRow | undefined>;
  listUsers(): Promise<UserRow[]>;

  insertToken(row: TokenRow): Promise<void>;
  getToken(hash: string): Promise<TokenRow | undefined>;
  updateToken(hash: string, patch: Partial<Pick<TokenRow, 'usedAtMs' | 'expiresAtMs'>>): Promise<void>;
  deleteTokens(kind: TokenKind, subject: string): Promise<void>;

  insertUsage(row: { nodeId: string; atMs: number; tioxml: string }): Promise<void>;

  /** Replaces the usage row of `row.instanceId`. Appends no change record: usage is no event to wake watchers for. */
  putPartitionUsage(row: PartitionUsageRow): Promise<void>;
  /** Usage rows of these instances (those that have one). */
  listPartitionUsage(instanceIds: readonly string[]): Promise<PartitionUsageRow[]>;

  /** Replaces a node's metrics row (`hox.put.v1.node_metrics`). Appends no change record. */
  putNodeMetrics(row: NodeMetricsRow): Promise<void>;
  /** Every node's last metrics. */
  listNodeMetrics(): Promise<NodeMetricsRow[]>;
  /**
   * Alerts, newest opened first: `open` only those not resolved; `sourceInstanceId` one monitor's; `ownerId` those
   * on that owner's trees; `resolvedSinceMs` also those resolved since then (with `open: false`).
   */
  listAlerts(filter: {
    open?: boolean;
    sourceInstanceId?: string;
    ownerId?: string;
    resolvedSinceMs?: number;
    limit: number;
  }): Promise<AlertRow[]>;
  /** Inserts or replaces (by id) an alert. Appends no change record. */
  putAlert(row: AlertRow): Promise<void>;
  /** Forgets alerts resolved before `beforeMs`; returns how many. */
  deleteResolvedAlerts(beforeMs: number): Promise<number>;
  /** Replaces the promise row of `row.instanceId`. Appends no change record (see `reportPromiseResults`). */
  putPromiseResults(row: PromiseResultRow): Promise<void>;
  /** Promise rows of these instances (those that have one). */
  listPromiseResults(instanceIds: readonly string[]): Promise<PromiseResultRow[]>;

  /**
   * A CA's state text (its keys sealed), or undefined before the CA exists: the platform CA (`platform`, the
   * default) or the sites CA (`sites`).
   */
  loadPkiState(id?: PkiStateId): Promise<string | undefined>;
  /**
   * Saves a CA's state. `create`: only if none exists yet (two masters starting on one empty store make one CA, not
   * two): throws `HOX_CONFLICT` when another master created it first (open it again).
   */
  savePkiState(state: string, options: { create: boolean; atMs: number; id?: PkiStateId }): Promise<void>;
  /** Remembers a node's or instance's certificate, to revoke it when its holder goes away. */
  recordCertificate(row: IssuedCertificateRow): Promise<void>;
  /** A remembered certificate by serial: undefined once revoked (or expired and pruned). */
  getCertificate(serial: string): Promise<IssuedCertificateRow | undefined>;
  /** The certificates of one holder still remembered (not revoked, not pruned). */
  listCertificates(kind: IssuedCertificateRow['kind'], subject: string): Promise<IssuedCertificateRow[]>;
  /** Forgets certificates: revoked, or expired (`notAfterMs` before `beforeMs`). */
  forgetCertificates(filter: { serials?: readonly string[]; expiredBeforeMs?: number }): Promise<void>;

  /** Inserts or replaces the set of `row.instanceId`. */
  putRetainedSet(row: RetainedSetRow): Promise<void>;
  /** Sets of one owner (or all), of one node (or all), oldest destruction first. */
  listRetainedSets(filter: { ownerId?: string; nodeId?: string }): Promise<RetainedSetRow[]>;
  updateRetainedSet(instanceId: string, patch: Pick<RetainedSetRow, 'expiresAtMs' | 'reportedAtMs'>): Promise<void>;
  deleteRetainedSets(instanceIds: readonly string[]): Promise<void>;

  insertLogRequest(row: Pick<LogRequestRow, 'id' | 'nodeId' | 'spec' | 'createdAtMs'>): Promise<void>;
  getLogRequest(id: string): Promise<LogRequestRow | undefined>;
  /** The node's unanswered requests created at or after `sinceMs`, oldest first. */
  listPendingLogRequests(nodeId: string, sinceMs: number): Promise<LogRequestRow[]>;
  /** Records the answer of `nodeId` to its own unanswered request; false when there is no such request. */
  answerLogRequest(id: string, nodeId: string, answer: JsonObject, atMs: number): Promise<boolean>;
  deleteLogRequests(ids: readonly string[]): Promise<void>;
  /** Deletes requests created before `beforeMs`; returns how many. */
  purgeLogRequests(beforeMs: number): Promise<number>;

  /** Appends one audit entry (the HTTP edge, for every mutating call). */
  appendAudit(entry: AuditEntry): Promise<void>;
  /** The newest `query.limit` audit entries matching, oldest first. */
  listAudit(query: AuditQuery): Promise<AuditRow[]>;

  /** Records that something concerning a node and/or a tree changed; wakes watchers after commit. */
  appendChange(change: { nodeId: string | null; treeId: string | null; atMs: number }): Promise<void>;
}

export interface TransactionOptions {
  exclusive?: 'allocation';
}

export interface Store {
  readonly dialect: 'sqlite' | 'postgres';
  /** The store key: seals the store's secrets, and the platform CA's keys (`src/master/pki/platform-ca.ts`). */
  readonly box: SecretBox;
  /** Creates tables / runs pending migrations. Idempotent. */
  migrate(): Promise<void>;
  /**
   * Runs `work` in one transaction. With `exclusive`, transactions naming the
   * same key run one at a time across every master process (PostgreSQL: a
   * session advisory lock taken before BEGIN, so the snapshot already sees the
   * previous holder's commit and allocation does not storm on serialization
   * retries). SQLite transactions are always one at a time.
   */
  transaction<T>(work: (tx: StoreTx) => Promise<T>, options?: TransactionOptions): Promise<T>;
  /** Highest change sequence number committed so far. */
  latestChangeSeq(): Promise<number>;
  /** First committed change after `afterSeq` concerning the node or the tree (either filter may be omitted). */
  changesAfter(afterSeq: number, filter: { nodeId?: string; treeIds?: string[] }): Promise<ChangeRow[]>;
  /** Drops change records older than `beforeMs`. */
  pruneChanges(beforeMs: number): Promise<number>;
  /** Drops audit entries older than `beforeMs`, then all but the newest `keepRows`; returns how many. */
  pruneAudit(beforeMs: number, keepRows: number): Promise<number>;
  /** Called after any committed change (in this process, or another master on the same database). */
  onChange(listener: () => void): () => void;
  /** Uploaded artifacts: the content once, a claim per owner who uploaded it. */
  readonly artifacts: ArtifactStore;
  close(): Promise<void>;
}
