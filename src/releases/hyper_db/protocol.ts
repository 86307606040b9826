/**
 * What hyper_db's processes say to each other: the keeper's configuration
 * (rendered by the `member` profile), the router's (rendered by the `cluster`
 * profile), and the JSON bodies of the keeper's peer API.
 *
 * Member roles (transitions):
 *   empty ──bootstrap/clone──▶ standby ──election won──▶ primary
 *   primary ──lease lost / higher term / switchover──▶ demoted ──rejoin──▶ standby
 *   standby ──diverged timeline──▶ rejoining (pg_rewind, else fresh clone) ──▶ standby
 */

export type MemberRole = 'empty' | 'standby' | 'primary' | 'demoted' | 'rejoining' | 'stopped';
export type SyncMode = 'quorum' | 'strict' | 'async';

export interface MemberAddress {
  name: string;
  host: string;
  pgPort: number;
  keeperPort: number;
}

/** A request carried by parameters, handled once per id. */
export interface SwitchoverRequest {
  id: string;
  /** Target member, or null for "the most advanced eligible standby". */
  to: string | null;
}

export interface AcceptDataLossRequest {
  id: string;
  member: string;
  /** Who asked (recorded in the event log). */
  by: string;
}

export interface KeeperConfig {
  name: string;
  host: string;
  pgPort: number;
  keeperPort: number;
  partitionPath: string;
  /** Directory of the PostgreSQL binaries (initdb, postgres, pg_ctl…). */
  binDir: string;
  /** This member initialises the cluster when no member has data. */
  bootstrap: boolean;
  /** How many members the cluster has (this one included). */
  memberCount: number;
  /** The other members known so far. */
  peers: MemberAddress[];
  /** Addresses allowed to log in as the cluster superuser (the router's). */
  adminHosts: string[];
  syncMode: SyncMode;
  maxLagBytes: number;
  leaseMs: number;
  heartbeatMs: number;
  /** Members in maintenance (never promoted, out of the synchronous quorum). */
  maintenance: string[];
  paused: boolean;
  switchover: SwitchoverRequest | null;
  acceptDataLoss: AcceptDataLossRequest | null;
  /** Extra postgresql.conf settings: only {@link ALLOWED_SETTINGS} are written. */
  settings: Record<string, string | number | boolean>;
  /** Where WAL is archived (the router's backup API), or null for no archiving. */
  archive: { url: string; token: string; timeoutS: number } | null;
  /** Point-in-time restore: the bootstrap member starts from this backup location instead of initdb. */
  restore: RestoreSpec | null;
  /** TLS for clients and replication (null: PostgreSQL without TLS). */
  tls: KeeperTls | null;
  /** The router's API (`POST /pause` before a switchover stops this primary; peer token), or null when unknown. */
  router: { url: string } | null;
  peerToken: string;
  replicationPassword: string;
  superuserPassword: string;
}

/**
 * `required`: every remote login uses TLS (`hostssl`); `optional`: the databases' roles may also log in
 * without it. Replication and the cluster superuser always need TLS.
 */
export type ClientTls = 'required' | 'optional';

export interface KeeperTls {
  /** The cluster CA (PEM): replication and pg_rewind/pg_basebackup sources are verified against it. */
  caCertificate: string;
  /** The router's API that signs this member's server certificate (`POST /tls/certificate`, peer token). */
  issuerUrl: string;
  clientTls: ClientTls;
  /** A rotation request: the member gets a new certificate once per id. */
  rotation: string | null;
  /** Lifetime of a server certificate; a new one is requested once two thirds of it have passed. */
  validityMs: number;
}

/** The server certificate a member's PostgreSQL presents. */
export interface MemberTlsStatus {
  /** Hexadecimal serial number, as Node's X509Certificate and OpenSSL print it. */
  serial: string;
  notAfter: string;
  /** The rotation request it was issued for. */
  rotation: string | null;
}

/** POST /tls/certificate on the router's API. */
export interface CertificateRequestBody {
  member: string;
  /** SPKI PEM of the key the member generated (the private key never leaves the member). */
  publicKey: string;
}

/** One role change or notable action, with its timing breakdown. */
export interface MemberEvent {
  at: string;
  kind:
    | 'bootstrap'
    | 'restore'
    | 'failover'
    | 'switchover'
    | 'fenced'
    | 'rejoin'
    | 'reclone'
    | 'restart'
    | 'forced-promotion'
    /** This member cannot serve as it should (PostgreSQL hung, disk nearly full, a failed promotion), or is fit again. */
    | 'health';
  term: number;
  detail: string;
  /** Milliseconds per phase, e.g. {detect, election, promote, total}. */
  timings?: Record<string, number>;
  /** A finished restore: the last WAL position it replayed and its last transaction's commit time. */
  recovered_to?: { lsn: string | null; last_transaction_at: string | null };
}

export interface SwitchoverResult {
  id: string;
  result: 'done' | 'refused' | 'failed';
  reason?: string;
  from?: string;
  to?: string;
  durationMs?: number;
}

export interface MemberStatus {
  name: string;
  role: MemberRole;
  term: number;
  /** Leader this member follows or is (null when none is known). */
  leader: string | null;
  leaseValid: boolean;
  pgRunning: boolean;
  timeline: number | null;
  /** Highest WAL position this member has (received or written), as a number of bytes. */
  lsn: string | null;
  lagBytes: number | null;
  streaming: boolean;
  maintenance: boolean;
  paused: boolean;
  /** On the primary: the synchronous_standby_names in force. */
  syncStandbys: string | null;
  /** On the primary: standbys currently streaming, with their sync state. */
  replicas: { name: string; state: string; syncState: string; lagBytes: number }[];
  events: MemberEvent[];
  switchover: SwitchoverResult | null;
  failovers: number;
  /** The certificate PostgreSQL presents (null before the first one arrives, or without TLS). */
  tls?: MemberTlsStatus | null;
  /** Why this member cannot serve or lead now (null: nothing wrong seen), e.g. `disk nearly full: 3 MiB free`. */
  problem?: string | null;
}

export interface HeartbeatBody {
  term: number;
  leader: string;
  lsn: string | null;
  timeline: number | null;
  leaseMs: number;
  /** The last switchover request the leader handled: followers will not handle it when they lead. */
  switchoverId: string | null;
  /** Rolling restart: the one standby allowed to restart now for settings that need it (null: none). */
  restartAllowed: string | null;
  /** Whether the leader's PostgreSQL answers its probes: a standby rejoins a leader only when it does. */
  pgHealthy?: boolean;
}

export interface HeartbeatAnswer {
  ok: boolean;
  term: number;
  reason?: string;
  /** This member's PostgreSQL has settings waiting for a restart. */
  pendingRestart?: boolean;
  /** The `settings` this member's configuration has (JSON): a rolling restart waits until all agree. */
  settings?: string;
  /** Why this member cannot lead now (null: it can): a switchover never picks it. */
  problem?: string | null;
}

export interface VoteBody {
  term: number;
  candidate: string;
  lsn: string;
  timeline: number;
  /** A planned switchover: allowed while the cluster is paused. */
  planned: boolean;
  /** Would you vote for me? (nothing is recorded; the term does not change) */
  preVote: boolean;
}

export interface VoteAnswer {
  granted: boolean;
  term: number;
  reason?: string;
  /** Refused only because a lease promise is still running: it ends in this many ms. */
  retryInMs?: number;
}

export interface TakeoverBody {
  term: number;
  from: string;
  /** The old primary's shutdown checkpoint: the target must have WAL beyond it. */
  lsn: string;
  /** The switchover request being carried out (the target must not carry it out again). */
  switchoverId: string;
}

export interface RestoreSpec {
  /** The source cluster's backup API and a token that may read it. */
  url: string;
  token: string;
  /** The source cluster's CA (PEM), which its API's certificate chains to; null for an `http:` url. */
  ca: string | null;
  /** A backup id; by default the newest one finished before the target time (the newest one for latest). */
  backup: string | null;
  /** ISO 8601: replay stops just before this time; null: replay the whole archive (latest). */
  targetTime: string | null;
}

export interface RouterDatabase {
  /** The shared instance whose database this is: recorded on the database, it is never handed to another. */
  owner: string;
  name: string;
  role: string;
  password: string;
  state: 'present' | 'absent';
}

export interface RouterConfig {
  /** This cluster's identity (not a secret): recorded on its databases, told apart from restored ones. */
  clusterId: string;
  host: string;
  rwPort: number;
  roPort: number;
  members: MemberAddress[];
  memberCount: number;
  peerToken: string;
  superuserPassword: string;
  databases: RouterDatabase[];
  switchover: SwitchoverRequest | null;
  /** The backup API (base backups, WAL archive) on host:backupPort. */
  backupPort: number;
  backupToken: string;
  backupIntervalMs: number;
  /** A base backup asked for now (`backup_now` parameter), handled once per id. */
  backupRequest: string | null;
  binDir: string;
  /**
   * The cluster CA (its key stays in this partition) and how long the server certificates it signs last;
   * `clientTls` applies to the read-write endpoint (PgBouncer) too (default required).
   */
  tls: { caCertificate: string; caPrivateKey: string; certificateValidityMs: number; clientTls?: ClientTls } | null;
  /** Roles besides the databases' that may log in through the read-write endpoint (PgBouncer's auth file). */
  endpointLogins?: { role: string; password: string }[];
}

/** POST /pause on the router's API: the primary's keeper, before it stops PostgreSQL for a switchover. */
export interface PauseRequestBody {
  switchoverId: string;
  /** The primary about to stop. */
  from: string;
}

/** Answered once the read-write endpoint is paused (no transaction runs on `from`), or after its bound. */
export interface PauseAnswer {
  paused: boolean;
  waitedMs: number;
  /** Why not paused within the bound (transactions still running: they are cut when the primary stops). */
  reason?: string;
}

/**
 * The PostgreSQL settings a cluster's owner may set (`settings` parameter), and nothing else: a setting such
 * as `archive_command` runs a shell, `data_directory` or `hba_file` move what the keeper guards. The profile
 * validates against this list and {@link SETTING_VALUE}, and the keeper filters again before writing
 * postgresql.conf (a member requested by anything but its cluster never gets further).
 */
export const ALLOWED_SETTINGS: readonly string[] = [
  'max_connections',
  'shared_buffers',
  'work_mem',
  'maintenance_work_mem',
  'effective_cache_size',
  'checkpoint_timeout',
  'max_wal_size',
  'log_min_duration_statement',
  'statement_timeout',
  'idle_in_transaction_session_timeout',
];

/** A setting's value: a number, optionally with a unit (`128MB`, `5min`, `-1`). No quotes, no newlines. */
export const SETTING_VALUE = /^-?[0-9]{1,12}(\.[0-9]{1,6})?\s?[A-Za-z]{0,3}$/;

/** The allowed settings of `settings` with a valid value; the names of the others. */
export function allowedSettings(settings: Record<string, unknown>): {
  kept: Record<string, string | number>;
  refused: string[];
} {
  const kept: Record<string, string | number> = {};
  const refused: string[] = [];
  for (const [name, value] of Object.entries(settings)) {
    const valid =
      (typeof value === 'number' && Number.isFinite(value)) || (typeof value === 'string' && SETTING_VALUE.test(value));
    if (ALLOWED_SETTINGS.includes(name) && valid) kept[name] = value;
    else refused.push(name);
  }
  return { kept, refused };
}

/** A database name (its role has the same name): a PostgreSQL identifier that needs no quoting. */
export const DATABASE_NAME = /^[a-z_][a-z0-9_]{0,62}$/;
/** Names hyper_db itself uses (roles and databases; `hyperdb_probe`: the rw-endpoint promise's, probe/write-probe.ts). */
const RESERVED_DATABASES = [
  'postgres',
  'template0',
  'template1',
  'hox_super',
  'hox_replicator',
  'hyperdb_probe',
  'public',
];

/** Why `name` cannot name a database of a shared instance (null: it can). One rule for profile and CLI. */
export function databaseNameProblem(name: string): string | null {
  if (!DATABASE_NAME.test(name))
    return `database name '${name.slice(0, 80)}' must be lowercase letters, digits and _ (not starting with a digit, at most 63)`;
  if (name.startsWith('pg_'))
    return `database name '${name}' is reserved: names starting with pg_ belong to PostgreSQL`;
  if (RESERVED_DATABASES.includes(name))
    return `database name '${name}' is reserved (${RESERVED_DATABASES.join(', ')}, pg_*)`;
  return null;
}

export const SUPERUSER = 'hox_super';
export const REPLICATION_USER = 'hox_replicator';

/** LSNs are compared as 64-bit numbers: "16/B374D848" → 0x16B374D848. */
export function lsnToBigInt(lsn: string): bigint {
  const [hi, lo] = lsn.split('/');
  if (hi === undefined || lo === undefined || !/^[0-9A-Fa-f]+$/.test(hi) || !/^[0-9A-Fa-f]+$/.test(lo))
    throw new Error(`invalid LSN '${lsn}'`);
  return (BigInt(`0x${hi}`) << 32n) + BigInt(`0x${lo}`);
}

/** (timeline, lsn) order: a higher timeline is more advanced; then the higher LSN. */
export function comparePosition(a: { timeline: number; lsn: string }, b: { timeline: number; lsn: string }): number {
  if (a.timeline !== b.timeline) return a.timeline - b.timeline;
  const d = lsnToBigInt(a.lsn) - lsnToBigInt(b.lsn);
  return d === 0n ? 0 : d > 0n ? 1 : -1;
}
