/**
 * What this member tells others about itself: its status (GET /status, `hox db status`), Prometheus
 * metrics (GET /metrics, and `.hox/metrics.prom`, which the node agent relays to the master), and the runtime connection parameters it publishes for the master
 * (`.hox/publish.json`, rewritten only when something a person cares about changed). Events are
 * recorded by the keeper (KeeperCore.addEvent) and read here from the keeper's state.
 */
import { existsSync } from 'node:fs';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Counter, Gauge, Registry } from 'prom-client';
import { writeMetricsFile } from '../../../release-kit/metrics-file.js';
import { lsnToBigInt, type MemberStatus } from '../protocol.js';
import type { KeeperCore } from './keeper-core.js';
import type { PgStats } from './postgres-control.js';
import type { PostgresSupervisor } from './postgres-supervisor.js';
import type { ServerCertificate } from './server-certificate.js';

/** What the report reads of the keeper. */
export type ReportCore = Pick<
  KeeperCore,
  'config' | 'state' | 'role' | 'obs' | 'knownLeader' | 'leaseValid' | 'liveLeader' | 'syncStandbyNames'
>;

export class KeeperReport {
  private lastPublished = '';

  constructor(
    private readonly core: ReportCore,
    private readonly supervisor: Pick<PostgresSupervisor, 'unfitToLead'>,
    private readonly certificate: Pick<ServerCertificate, 'status'>,
  ) {}

  status(): MemberStatus {
    const c = this.core.config;
    const st = this.core.state.get();
    const leaderLsn = this.core.knownLeader?.lsn;
    let lagBytes: number | null = null;
    if (this.core.role === 'primary') lagBytes = 0;
    else if (leaderLsn && this.core.obs.lsn)
      lagBytes = Math.max(0, Number(lsnToBigInt(leaderLsn) - lsnToBigInt(this.core.obs.lsn)));
    return {
      name: c.name,
      role: this.core.role,
      term: st.term,
      leader: this.core.role === 'primary' ? c.name : (this.core.liveLeader()?.name ?? null),
      leaseValid: this.core.leaseValid(),
      pgRunning: this.core.obs.running,
      timeline: this.core.obs.timeline,
      lsn: this.core.obs.lsn,
      lagBytes,
      streaming: this.core.obs.streaming,
      maintenance: c.maintenance.includes(c.name),
      paused: c.paused,
      syncStandbys: this.core.role === 'primary' ? this.core.syncStandbyNames() : null,
      replicas: this.core.obs.replicas,
      events: st.events.slice(-10),
      switchover: st.lastSwitchover,
      failovers: st.failovers,
      tls: this.certificate.status(),
      problem: this.supervisor.unfitToLead(),
    };
  }

  /** The member's metrics in the Prometheus text format; `stats` from PostgresControl.stats (null: not known). */
  async metrics(stats: PgStats | null): Promise<string> {
    const s = this.status();
    const registry = new Registry();
    registry.setDefaultLabels({ member: s.name });
    // A figure not known now (no lag without a leader, never archived) is left out rather than made up.
    const known = (value: number | null | undefined): value is number =>
      value !== null && value !== undefined && Number.isFinite(value);
    const gauge = (name: string, help: string, value: number | null | undefined) => {
      if (known(value)) new Gauge({ name, help, registers: [registry] }).set(value);
    };
    const counter = (name: string, help: string, value: number | null | undefined) => {
      if (known(value)) new Counter({ name, help, registers: [registry] }).inc(value);
    };
    const role = new Gauge({
      name: 'hyperdb_member_role',
      help: '1 for the role this member has.',
      labelNames: ['role'],
      registers: [registry],
    });
    for (const r of ['primary', 'standby', 'demoted', 'rejoining', 'empty', 'stopped'])
      role.set({ role: r }, s.role === r ? 1 : 0);
    gauge('hyperdb_term', 'Election term this member is in.', s.term);
    gauge('hyperdb_replication_lag_bytes', 'WAL bytes behind the primary (last heartbeat).', s.lagBytes);
    gauge('hyperdb_streaming', '1 when the WAL receiver streams.', s.streaming ? 1 : 0);
    counter('hyperdb_failovers_total', 'Failovers this member won.', s.failovers);
    const lastFailover = [...this.core.state.get().events].reverse().find((e) => e.kind === 'failover');
    gauge(
      'hyperdb_last_failover_duration_seconds',
      'Detection to writable, of the last failover this member won.',
      lastFailover?.timings?.total === undefined ? null : lastFailover.timings.total / 1000,
    );
    gauge(
      'hyperdb_wal_position_bytes',
      'WAL position (written on a primary, received or replayed on a standby): its rate is the WAL generated.',
      this.core.obs.lsn === null ? null : Number(lsnToBigInt(this.core.obs.lsn)),
    );
    if (this.core.role === 'primary' && this.core.obs.replicas.length > 0) {
      const replay = new Gauge({
        name: 'hyperdb_standby_replay_lag_bytes',
        help: "On the primary: how far each standby's replay is behind.",
        labelNames: ['standby'],
        registers: [registry],
      });
      for (const r of this.core.obs.replicas) replay.set({ standby: r.name }, r.lagBytes);
    }
    if (stats !== null) {
      counter('hyperdb_commits_total', 'Transactions committed, all databases.', stats.commits);
      counter('hyperdb_rollbacks_total', 'Transactions rolled back, all databases.', stats.rollbacks);
      gauge('hyperdb_connections', 'Client connections now.', stats.connections);
      gauge('hyperdb_max_connections', "The server's max_connections.", stats.maxConnections);
      gauge('hyperdb_wal_directory_bytes', 'Size of pg_wal.', stats.walBytes);
      gauge('hyperdb_wal_files', 'WAL segments in pg_wal.', stats.walFiles);
      counter('hyperdb_wal_archived_total', 'WAL segments archived.', stats.archived);
      counter('hyperdb_wal_archive_failed_total', 'Failed attempts to archive a WAL segment.', stats.archiveFailed);
      gauge('hyperdb_wal_last_archived_timestamp_seconds', 'When a segment was last archived.', stats.lastArchivedS);
      gauge(
        'hyperdb_wal_last_archive_failure_timestamp_seconds',
        'When archiving last failed.',
        stats.lastArchiveFailedS,
      );
      gauge('hyperdb_database_bytes', 'Size of the databases.', stats.databaseBytes);
      gauge(
        'hyperdb_wal_keep_bytes',
        'WAL kept for standbys (wal_keep_size): a standby further behind cannot stream and must be cloned again.',
        stats.walKeepBytes,
      );
    }
    return await registry.metrics();
  }

  /**
   * Writes the metrics to `.hox/metrics.prom`, which the node agent relays to the master (and Prometheus) with
   * the node's own: a temporary file renamed over it, never a half-written one.
   */
  async writeMetricsFile(stats: PgStats | null): Promise<void> {
    await writeMetricsFile(this.core.config.partitionPath, await this.metrics(stats));
  }

  /** Runtime connection parameters for the master (only when something a person cares about changed). */
  async publish(): Promise<void> {
    const s = this.status();
    const doc = {
      role: s.role,
      term: s.term,
      leader: s.leader,
      timeline: s.timeline,
      streaming: s.streaming,
      maintenance: s.maintenance,
      lag_mib: s.lagBytes === null ? null : Math.floor(s.lagBytes / 1048576),
      failovers: s.failovers,
      last_event: s.events.at(-1) ?? null,
      switchover: s.switchover,
      tls_serial: s.tls?.serial ?? null,
    };
    const text = JSON.stringify(doc);
    if (text === this.lastPublished) return;
    const dir = join(this.core.config.partitionPath, '.hox');
    if (!existsSync(dir)) await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'publish.json.tmp'), text);
    await rename(join(dir, 'publish.json.tmp'), join(dir, 'publish.json'));
    this.lastPublished = text;
  }
}
