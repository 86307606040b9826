/**
 * What this member tells others about itself: its status (GET /status, `hox db status`), Prometheus
 * metrics (GET /metrics), and the runtime connection parameters it publishes for the master
 * (`.hox/publish.json`, rewritten only when something a person cares about changed). Events are
 * recorded by the keeper (KeeperCore.addEvent) and read here from the keeper's state.
 */
import { existsSync } from 'node:fs';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { lsnToBigInt, type MemberStatus } from '../protocol.js';
import type { KeeperCore } from './keeper-core.js';
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

  metrics(): string {
    const s = this.status();
    const m = `member="${s.name}"`;
    const roles = ['primary', 'standby', 'demoted', 'rejoining', 'empty', 'stopped'];
    const lastFailover = [...this.core.state.get().events].reverse().find((e) => e.kind === 'failover');
    return [
      '# HELP hyperdb_member_role 1 for the role this member has.',
      '# TYPE hyperdb_member_role gauge',
      ...roles.map((r) => `hyperdb_member_role{${m},role="${r}"} ${s.role === r ? 1 : 0}`),
      '# HELP hyperdb_term Election term this member is in.',
      '# TYPE hyperdb_term gauge',
      `hyperdb_term{${m}} ${s.term}`,
      '# HELP hyperdb_replication_lag_bytes WAL bytes behind the primary (last heartbeat).',
      '# TYPE hyperdb_replication_lag_bytes gauge',
      `hyperdb_replication_lag_bytes{${m}} ${s.lagBytes ?? 'NaN'}`,
      '# HELP hyperdb_streaming 1 when the WAL receiver streams.',
      '# TYPE hyperdb_streaming gauge',
      `hyperdb_streaming{${m}} ${s.streaming ? 1 : 0}`,
      '# HELP hyperdb_failovers_total Failovers this member won.',
      '# TYPE hyperdb_failovers_total counter',
      `hyperdb_failovers_total{${m}} ${s.failovers}`,
      '# HELP hyperdb_last_failover_duration_seconds Detection to writable, of the last failover this member won.',
      '# TYPE hyperdb_last_failover_duration_seconds gauge',
      `hyperdb_last_failover_duration_seconds{${m}} ${lastFailover?.timings?.total !== undefined ? lastFailover.timings.total / 1000 : 'NaN'}`,
      '',
    ].join('\n');
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
