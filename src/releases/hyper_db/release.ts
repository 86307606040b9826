/**
 * `hyper_db`: clustered PostgreSQL 15 as a service. See docs/hyper-db.md.
 *
 * - `cluster` (the root): requests `members` member instances (spread over
 *   distinct nodes when there are several), runs the router (read-write and
 *   read-only endpoints, databases of the shared instances), publishes the
 *   cluster's endpoints and status. Hosts shared instances: each one is a
 *   database with its own least-privilege role.
 * - `member`: one PostgreSQL and its keeper (elections, fencing, rejoin).
 *
 * Every secret derives from the root partition's stable secret
 * (`input.secret('cluster')`), handed to the members as a parameter. The
 * cluster's TLS certificate authority is generated once by the node agent
 * (`input.certificateAuthority('cluster-ca')`, kept with the root partition's
 * secret); its key never leaves the root partition: members get their server
 * certificates from the router.
 */
import { createHash, createHmac } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import {
  defineRelease,
  type InstanceRequestSpec,
  type PartitionPlan,
  type ProfileInput,
  type SharedInstanceEntry,
} from '../../release-kit/types.js';
import { releaseProgram } from '../../release-kit/program.js';
import {
  ALLOWED_SETTINGS,
  allowedSettings,
  databaseNameProblem,
  SETTING_VALUE,
  type ClientTls,
  type KeeperConfig,
  type MemberAddress,
  type RestoreSpec,
  type RouterConfig,
  type RouterDatabase,
  type SyncMode,
  SUPERUSER,
} from './protocol.js';
import { PROBE_DATABASE, PROBE_ROLE, type WriteProbeConfig } from './probe/write-probe.js';

const PG_BIN_DIR = '/usr/lib/postgresql/15/bin';
const MEMBER_TYPE = 'member';

/** argv running one of this release's programs with the agent's Node.js (through tsx when run from source). */
function program(input: ProfileInput, relative: string, args: string[]): string[] {
  return releaseProgram(import.meta.url, input.tools.node, relative, args);
}

function derive(secret: string, purpose: string): string {
  return createHmac('sha256', secret).update(purpose).digest('base64url');
}

const requestObject = {
  type: 'object',
  additionalProperties: false,
  required: ['id'],
  properties: {
    id: { type: 'string', minLength: 1, maxLength: 64 },
    to: { type: ['string', 'null'], maxLength: 64 },
  },
} as const;

const clusterParameters = {
  type: 'object',
  additionalProperties: false,
  properties: {
    members: { type: 'integer', minimum: 1, maximum: 7, default: 3, description: 'How many PostgreSQL members' },
    sync_mode: {
      enum: ['quorum', 'strict', 'async'],
      default: 'quorum',
      description:
        'quorum: ANY k standbys confirm each commit (k = members − majority); strict: every standby; async: none',
    },
    max_lag_bytes: {
      type: 'integer',
      minimum: 0,
      default: 16777216,
      description: 'A standby further behind is never promoted',
    },
    spread: {
      enum: ['preferred', 'required'],
      default: 'preferred',
      description:
        'Members on distinct nodes: required fails when there are too few nodes; preferred falls back to any node',
    },
    lease_ms: { type: 'integer', minimum: 1000, maximum: 30000, default: 2500 },
    heartbeat_ms: { type: 'integer', minimum: 50, maximum: 5000, default: 250 },
    paused: { type: 'boolean', default: false, description: 'No automatic failover while paused' },
    disk_mib: {
      type: 'integer',
      minimum: 64,
      maximum: 16777216,
      description: "Each member's disk quota (its data, WAL and backups) in MiB; the node's default otherwise",
    },
    maintenance: { type: 'array', items: { type: 'string', maxLength: 64 }, maxItems: 7, uniqueItems: true },
    switchover: requestObject,
    accept_data_loss: {
      type: 'object',
      additionalProperties: false,
      required: ['id', 'member', 'by'],
      properties: {
        id: { type: 'string', minLength: 1, maxLength: 64 },
        member: { type: 'string', minLength: 1, maxLength: 64 },
        by: { type: 'string', minLength: 1, maxLength: 200 },
      },
    },
    backup_interval_h: {
      type: 'number',
      minimum: 0,
      maximum: 720,
      default: 24,
      description: 'Hours between base backups (0: only the first one)',
    },
    wal_archive_timeout_s: {
      type: 'integer',
      // Each timeout with writes ends a whole 16 MB segment: at 1 s that is 16 MB/s of WAL to archive, more than
      // one archive_command at a time keeps up with on a loaded machine, and every switchover's stop then waits
      // for the backlog (the long test 19 failed so: a stop beyond pg_ctl's 60 s).
      minimum: 10,
      maximum: 3600,
      default: 60,
      description:
        'Longest time a finished transaction waits to reach the WAL archive (10 s at least: each timeout with writes archives a whole 16 MB segment)',
    },
    backup_now: {
      type: 'object',
      additionalProperties: false,
      required: ['id'],
      description: 'Take a base backup now (once per id)',
      properties: { id: { type: 'string', minLength: 1, maxLength: 64 } },
    },
    restore: {
      type: 'object',
      additionalProperties: false,
      required: ['backup_url', 'backup_token'],
      description:
        'Point-in-time restore into this new cluster, from another cluster’s published backup_url/backup_token: to just before target_time, or without it to the end of the archived WAL (latest)',
      properties: {
        backup_url: { type: 'string', pattern: '^https?://', maxLength: 200 },
        backup_token: { type: 'string', minLength: 20, maxLength: 100 },
        backup_ca: {
          type: 'string',
          pattern: '^-----BEGIN CERTIFICATE-----',
          maxLength: 8192,
          description:
            'The source cluster’s published ca_cert: its backup API’s certificate chains to it (needed for an https backup_url)',
        },
        backup: { type: 'string', pattern: '^\\d{8}T\\d{6}Z$' },
        target_time: { type: 'string', format: 'date-time' },
      },
    },
    client_tls: {
      enum: ['required', 'optional'],
      default: 'required',
      description:
        'required: every login must use TLS; optional: the databases’ roles may also log in without it (replication and the superuser always use TLS)',
    },
    tls_rotate: {
      type: 'object',
      additionalProperties: false,
      required: ['id'],
      description: 'Every member gets a new server certificate (once per id); sessions already open are not affected',
      properties: { id: { type: 'string', minLength: 1, maxLength: 64 } },
    },
    tls_certificate_days: {
      type: 'integer',
      minimum: 1,
      maximum: 825,
      default: 90,
      description: 'Lifetime of the members’ server certificates (renewed when two thirds of it have passed)',
    },
    settings: {
      type: 'object',
      additionalProperties: false,
      properties: Object.fromEntries(
        ALLOWED_SETTINGS.map((k) => [k, { type: ['string', 'integer'], maxLength: 32, pattern: SETTING_VALUE.source }]),
      ),
    },
  },
} as const;

const memberParameters = { type: 'object' } as const;

interface ClusterParams {
  members: number;
  syncMode: SyncMode;
  maxLagBytes: number;
  spread: 'preferred' | 'required';
  leaseMs: number;
  heartbeatMs: number;
  paused: boolean;
  diskMib: number | null;
  maintenance: string[];
  switchover: { id: string; to: string | null } | null;
  acceptDataLoss: { id: string; member: string; by: string } | null;
  settings: Record<string, string | number>;
  backupIntervalH: number;
  walArchiveTimeoutS: number;
  restore: {
    backup_url: string;
    backup_token: string;
    backup_ca?: string;
    backup?: string;
    target_time?: string;
  } | null;
  backupNow: string | null;
  clientTls: ClientTls;
  tlsRotation: string | null;
  tlsCertificateDays: number;
}

function clusterParams(p: Record<string, unknown>): ClusterParams {
  const sw = p.switchover as { id: string; to?: string | null } | undefined;
  return {
    members: (p.members as number | undefined) ?? 3,
    syncMode: (p.sync_mode as SyncMode | undefined) ?? 'quorum',
    maxLagBytes: (p.max_lag_bytes as number | undefined) ?? 16 * 1024 * 1024,
    spread: (p.spread as 'preferred' | 'required' | undefined) ?? 'preferred',
    leaseMs: (p.lease_ms as number | undefined) ?? 2500,
    heartbeatMs: (p.heartbeat_ms as number | undefined) ?? 250,
    paused: (p.paused as boolean | undefined) ?? false,
    diskMib: (p.disk_mib as number | undefined) ?? null,
    maintenance: (p.maintenance as string[] | undefined) ?? [],
    switchover: sw ? { id: sw.id, to: sw.to ?? null } : null,
    acceptDataLoss: (p.accept_data_loss as ClusterParams['acceptDataLoss'] | undefined) ?? null,
    settings: (p.settings as Record<string, string | number> | undefined) ?? {},
    backupIntervalH: (p.backup_interval_h as number | undefined) ?? 24,
    walArchiveTimeoutS: (p.wal_archive_timeout_s as number | undefined) ?? 60,
    restore: restoreParameter(p.restore),
    backupNow: (p.backup_now as { id: string } | undefined)?.id ?? null,
    clientTls: (p.client_tls as ClientTls | undefined) ?? 'required',
    tlsRotation: (p.tls_rotate as { id: string } | undefined)?.id ?? null,
    tlsCertificateDays: (p.tls_certificate_days as number | undefined) ?? 90,
  };
}

/** The restore request; an https source needs its CA (the CLI passes the source's published ca_cert). */
function restoreParameter(value: unknown): ClusterParams['restore'] {
  const r = (value as ClusterParams['restore'] | undefined) ?? null;
  if (r !== null && r.backup_url.startsWith('https:') && r.backup_ca === undefined)
    throw new Error(
      "restore: backup_ca is needed with an https backup_url (the source cluster's published ca_cert, which its backup API's certificate chains to)",
    );
  return r;
}

export const memberName = (i: number): string => `member-${i}`;

function memberAddress(name: string, published: Record<string, unknown>): MemberAddress | null {
  const { host, port, keeper_port: keeperPort } = published;
  if (typeof host !== 'string' || typeof port !== 'number' || typeof keeperPort !== 'number') return null;
  return { name, host, pgPort: port, keeperPort };
}

/** A database name from a shared instance: its `database` parameter, or its title made an identifier. */
function databaseName(entry: SharedInstanceEntry): string {
  const given = entry.parameters.database;
  if (typeof given === 'string') return given;
  const base = entry.slave_title
    .toLowerCase()
    .replace(/[^a-z0-9_]+/g, '_')
    .replace(/^[^a-z_]+/, '')
    .slice(0, 40);
  return base === ''
    ? `db_${entry.slave_reference
        .toLowerCase()
        .replace(/[^a-z0-9]/g, '')
        .slice(-8)}`
    : base;
}

/**
 * The databases of the shared instances this cluster hosts, and why others get none.
 *
 * A name belongs to the shared instance that asked for it first: the list comes in request order (the
 * master's, oldest first, stable), so a later request for a taken name is refused — published as its
 * `error` — for as long as the first one exists, whatever its reference. The router records the owner on
 * the database itself and never hands a database to another shared instance either (router.ts).
 */
function sharedDatabases(
  entries: readonly SharedInstanceEntry[],
  secret: string,
): { databases: RouterDatabase[]; problems: Record<string, string> } {
  const taken = new Set<string>();
  const databases: RouterDatabase[] = [];
  const problems: Record<string, string> = {};
  for (const entry of entries) {
    const name = databaseName(entry);
    const problem = databaseNameProblem(name);
    if (problem !== null) {
      problems[entry.slave_reference] = problem;
      continue;
    }
    if (taken.has(name)) {
      problems[entry.slave_reference] =
        `database '${name}' is taken: it belongs to another shared instance of this cluster; choose another name`;
      continue;
    }
    taken.add(name);
    const rotation = typeof entry.parameters.password_rotation === 'number' ? entry.parameters.password_rotation : 0;
    databases.push({
      owner: entry.slave_reference,
      name,
      role: name,
      password: derive(secret, `database:${entry.slave_reference}:${rotation}`),
      state: entry.state === 'destroyed' ? 'absent' : 'present',
    });
  }
  return { databases, problems };
}

/** The cluster's CA (signs its members' and its router's server certificates). */
const CLUSTER_CA = 'cluster-ca';

/** The file name the published URLs give the cluster's CA: its SHA-256 fingerprint, shortened. */
function caFileName(certificatePem: string): string {
  return `hyper_db-ca-${createHash('sha256').update(certificatePem).digest('hex').slice(0, 16)}.crt`;
}

function clusterProfile(input: ProfileInput): PartitionPlan {
  const p = clusterParams(input.parameters);
  const secret = input.secret('cluster');
  const ip = input.partition.ip;
  const rwPort = input.partition.portBase;
  const roPort = input.partition.portBase + 1;
  const backupPort = input.partition.portBase + 2;
  // The router's API speaks HTTPS with its certificate from the cluster CA (cluster-tls.ts).
  const backupUrl = `https://${ip}:${backupPort}`;
  const backupToken = derive(secret, 'backup-read');
  // Generated once by the node agent, kept with the root partition's secret: the same at every convergence.
  const ca = input.certificateAuthority(CLUSTER_CA);
  const certificateValidityMs = p.tlsCertificateDays * 86_400_000;
  const names = Array.from({ length: p.members }, (_, i) => memberName(i + 1));
  const addresses = names
    .map((n) => {
      const r = input.requested[n];
      return r?.ready ? memberAddress(n, r.connectionParameters) : null;
    })
    .filter((a): a is MemberAddress => a !== null);
  const requests: InstanceRequestSpec[] = names.map((name, i) => {
    const previous = input.requested[name];
    const noRoom = previous?.error !== undefined && /no free partition/i.test(previous.error);
    const sla: Record<string, string> = p.spread === 'required' || !noRoom ? { anti_affinity: 'hyper_db-member' } : {};
    return {
      title: name,
      softwareReleaseUrl: input.slap_software_release_url,
      softwareType: MEMBER_TYPE,
      sla,
      state: input.state,
      parameters: {
        cluster_secret: secret,
        name,
        bootstrap: i === 0,
        member_count: p.members,
        ...(p.diskMib === null ? {} : { disk_mib: p.diskMib }),
        peers: addresses.filter((a) => a.name !== name),
        admin_hosts: [ip],
        sync_mode: p.syncMode,
        max_lag_bytes: p.maxLagBytes,
        lease_ms: p.leaseMs,
        heartbeat_ms: p.heartbeatMs,
        paused: p.paused,
        maintenance: p.maintenance,
        switchover: p.switchover,
        accept_data_loss: p.acceptDataLoss,
        settings: p.settings,
        archive: { url: backupUrl, timeout_s: p.walArchiveTimeoutS },
        // The router's API: the primary asks it to pause the read-write endpoint before a switchover.
        router_url: backupUrl,
        // The CA certificate is public; its key is not handed out (members ask the router to sign).
        tls: {
          ca_cert: ca.certificatePem,
          issuer_url: backupUrl,
          client_tls: p.clientTls,
          rotation: p.tlsRotation,
          validity_ms: certificateValidityMs,
        },
        restore:
          i === 0 && p.restore !== null
            ? {
                url: p.restore.backup_url,
                token: p.restore.backup_token,
                ca: p.restore.backup_ca ?? null,
                backup: p.restore.backup ?? null,
                targetTime: p.restore.target_time ?? null,
              }
            : null,
      },
    };
  });

  const { databases, problems } = sharedDatabases(input.slave_instance_list, secret);
  const routerConfig: RouterConfig = {
    clusterId: derive(secret, 'cluster-id').slice(0, 22),
    host: ip,
    rwPort,
    roPort,
    members: addresses,
    memberCount: p.members,
    peerToken: derive(secret, 'peer'),
    superuserPassword: derive(secret, 'superuser'),
    databases,
    switchover: p.switchover,
    backupPort,
    backupToken,
    backupIntervalMs: p.backupIntervalH * 3_600_000,
    backupRequest: p.backupNow,
    binDir: PG_BIN_DIR,
    tls: {
      caCertificate: ca.certificatePem,
      caPrivateKey: ca.privateKeyPem,
      certificateValidityMs,
      clientTls: p.clientTls,
    },
    // The rw-endpoint promise's role logs in through PgBouncer too (probe/write-probe.ts).
    endpointLogins: [{ role: PROBE_ROLE, password: derive(secret, 'probe') }],
  };
  const hosts = addresses.map((a) => `${a.host}:${a.pgPort}`).join(',');
  // Every URL asks for TLS with the server verified against the cluster's CA (published as ca_cert),
  // named by its fingerprint: save ca_cert under that name, or point sslrootcert at where you saved it.
  const tls = `sslmode=verify-full&sslrootcert=${caFileName(ca.certificatePem)}`;
  const query = (...items: string[]) => `?${[...items, tls].join('&')}`;
  const publishShared: Record<string, Record<string, unknown>> = {};
  for (const db of databases) {
    if (db.state === 'absent') continue;
    const reference = db.owner;
    const user = encodeURIComponent(db.role);
    const pass = encodeURIComponent(db.password);
    publishShared[reference] = {
      database_url: `postgresql://${user}:${pass}@${hosts}/${db.name}${query('target_session_attrs=read-write', 'connect_timeout=3')}`,
      rw_url: `postgresql://${user}:${pass}@${ip}:${rwPort}/${db.name}${query()}`,
      ro_url: `postgresql://${user}:${pass}@${ip}:${roPort}/${db.name}${query()}`,
      host: ip,
      port: rwPort,
      ro_port: roPort,
      dbname: db.name,
      user: db.role,
      password: db.password,
      ca_cert: ca.certificatePem,
    };
  }
  for (const [reference, problem] of Object.entries(problems)) publishShared[reference] = { error: problem };
  // The rw-endpoint promise: a write committed through the endpoint now (probe/write-probe.ts).
  const probeConfig: WriteProbeConfig = {
    host: ip,
    port: rwPort,
    role: PROBE_ROLE,
    password: derive(secret, 'probe'),
    database: PROBE_DATABASE,
    caCertificate: ca.certificatePem,
    setup: {
      members: addresses.map((a) => ({ host: a.host, port: a.pgPort })),
      superuser: SUPERUSER,
      superuserPassword: routerConfig.superuserPassword,
    },
    connectTimeoutMs: 2500,
    writeTimeoutMs: 2500,
  };
  const running = input.state === 'started';
  return {
    requests,
    files: [
      { path: 'router.json', content: `${JSON.stringify(routerConfig, null, 2)}\n`, mode: 0o600, reload: true },
      { path: 'cluster-ca.crt', content: ca.certificatePem, mode: 0o644, reload: true },
      { path: 'probe.json', content: `${JSON.stringify(probeConfig, null, 2)}\n`, mode: 0o600, reload: true },
    ],
    services: running
      ? [
          {
            name: 'router',
            command: program(input, 'router/main', ['router.json', input.partition.path]),
            stopTimeoutMs: 5000,
          },
        ]
      : [],
    promises: running
      ? [
          {
            name: 'rw-endpoint',
            kind: 'command',
            command: program(input, 'probe/main', ['probe.json']),
            periodMs: 5000,
            timeoutMs: 10_000,
          },
        ]
      : [],
    publish: {
      members_expected: p.members,
      members_ready: addresses.length,
      rw_host: ip,
      rw_port: rwPort,
      ro_port: roPort,
      sync_mode: p.syncMode,
      backup_url: backupUrl,
      backup_token: backupToken,
      paused: p.paused,
      maintenance: p.maintenance,
      client_tls: p.clientTls,
      ca_cert: ca.certificatePem,
    },
    publishShared,
  };
}

function archiveOf(value: unknown, token: string): KeeperConfig['archive'] {
  const a = value as { url?: unknown; timeout_s?: unknown } | undefined;
  if (typeof a?.url !== 'string') return null;
  return { url: a.url, token, timeoutS: typeof a.timeout_s === 'number' ? a.timeout_s : 60 };
}

function restoreOf(value: unknown): KeeperConfig['restore'] {
  const r = value as Partial<RestoreSpec> | null | undefined;
  if (r === undefined || r === null) return null;
  return { ...(r as RestoreSpec), ca: typeof r.ca === 'string' ? r.ca : null };
}

function tlsOf(value: unknown): KeeperConfig['tls'] {
  const t = value as
    | { ca_cert?: unknown; issuer_url?: unknown; client_tls?: unknown; rotation?: unknown; validity_ms?: unknown }
    | undefined;
  if (typeof t?.ca_cert !== 'string' || typeof t.issuer_url !== 'string') return null;
  return {
    caCertificate: t.ca_cert,
    issuerUrl: t.issuer_url,
    clientTls: t.client_tls === 'optional' ? 'optional' : 'required',
    rotation: typeof t.rotation === 'string' ? t.rotation : null,
    validityMs: typeof t.validity_ms === 'number' ? t.validity_ms : 90 * 86_400_000,
  };
}

/** A member's settings: the allow-listed ones only; anything else is an error, never written. */
function memberSettings(value: unknown): KeeperConfig['settings'] {
  if (value === undefined) return {};
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new Error('member: parameter settings must be an object');
  const { kept, refused } = allowedSettings(value as Record<string, unknown>);
  if (refused.length > 0)
    throw new Error(
      `member: settings ${refused.map((n) => `'${n.slice(0, 64)}'`).join(', ')} are not allowed (allowed, with a number and an optional unit: ${ALLOWED_SETTINGS.join(', ')})`,
    );
  return kept;
}

function memberProfile(input: ProfileInput): PartitionPlan {
  const q = input.parameters;
  const secret = typeof q.cluster_secret === 'string' ? q.cluster_secret : '';
  if (secret.length < 20)
    throw new Error('member: parameter cluster_secret is missing (members are requested by a cluster)');
  const ip = input.partition.ip;
  const pgPort = input.partition.portBase;
  const keeperPort = input.partition.portBase + 1;
  const config: KeeperConfig = {
    name: String(q.name),
    host: ip,
    pgPort,
    keeperPort,
    partitionPath: input.partition.path,
    binDir: PG_BIN_DIR,
    bootstrap: q.bootstrap === true,
    memberCount: Number(q.member_count ?? 3),
    peers: (q.peers as MemberAddress[] | undefined) ?? [],
    adminHosts: (q.admin_hosts as string[] | undefined) ?? [],
    syncMode: (q.sync_mode as SyncMode | undefined) ?? 'quorum',
    maxLagBytes: Number(q.max_lag_bytes ?? 16 * 1024 * 1024),
    leaseMs: Number(q.lease_ms ?? 2500),
    heartbeatMs: Number(q.heartbeat_ms ?? 250),
    maintenance: (q.maintenance as string[] | undefined) ?? [],
    paused: q.paused === true,
    switchover: (q.switchover as KeeperConfig['switchover'] | undefined) ?? null,
    acceptDataLoss: (q.accept_data_loss as KeeperConfig['acceptDataLoss'] | undefined) ?? null,
    settings: memberSettings(q.settings),
    archive: archiveOf(q.archive, derive(secret, 'peer')),
    restore: restoreOf(q.restore),
    tls: tlsOf(q.tls),
    router: typeof q.router_url === 'string' ? { url: q.router_url } : null,
    peerToken: derive(secret, 'peer'),
    replicationPassword: derive(secret, 'replication'),
    superuserPassword: derive(secret, 'superuser'),
  };
  const running = input.state === 'started';
  return {
    files: [{ path: 'keeper.json', content: `${JSON.stringify(config, null, 2)}\n`, mode: 0o600, reload: true }],
    services: running
      ? [{ name: 'keeper', command: program(input, 'keeper/main', ['keeper.json']), stopTimeoutMs: 60_000 }]
      : [],
    promises: running ? [{ name: 'keeper', kind: 'tcp', host: ip, port: keeperPort, periodMs: 5000 }] : [],
    ...(typeof q.disk_mib === 'number' ? { limits: { diskBytes: q.disk_mib * 1024 * 1024 } } : {}),
    publish: { name: config.name, host: ip, port: pgPort, keeper_port: keeperPort },
  };
}

export default defineRelease({
  softwareTypes: {
    cluster: {
      parameters: clusterParameters,
      connection: { type: 'object' },
      certificateAuthorities: { [CLUSTER_CA]: { commonName: 'hyper_db cluster CA', organization: 'hyper_db' } },
      profile: clusterProfile,
      // The router's backup location (base backups and WAL archive) outlives a destroyed cluster.
      retain: [{ path: 'backups', kind: 'hyper_db-backups', catalog: { dir: 'base', file: 'hyper_db-backup.json' } }],
    },
    member: {
      parameters: memberParameters,
      connection: { type: 'object' },
      profile: memberProfile,
    },
  },
});

/** Whether this machine has the PostgreSQL 15 server binaries the members need. */
export function postgresInstalled(): boolean {
  return existsSync(join(PG_BIN_DIR, 'postgres')) && existsSync(join(PG_BIN_DIR, 'pg_rewind'));
}
