/**
 * The keeper: one per member, running as the partition's user beside its
 * PostgreSQL. It decides, with its peers and without the master, which
 * member is the primary (see docs/hyper-db.md for the argument):
 *
 * - The primary holds a LEASE: every `heartbeatMs` it asks each peer for a
 *   promise "I will not vote for anyone else for `leaseMs`". It counts a grant
 *   from the moment it SENT the request, so its own view of the lease always
 *   ends before the peers' promises do. With no majority of grants for
 *   `leaseMs - fenceMarginMs` it fences itself: SIGQUIT to the postmaster,
 *   then it restarts as a standby. An isolated or frozen primary is fenced
 *   before any standby may be elected.
 * - A standby whose promise expired stands for election in a new TERM. A
 *   peer votes at most once per term, only when its own promise expired,
 *   only for a candidate whose (timeline, LSN) is at least its own, and
 *   never while paused. A candidate with a majority promotes. With quorum
 *   replication (`ANY k`, k = members − majority) every acknowledged commit
 *   is on k+1 members, so any majority includes one that has it, and that one
 *   only votes for a candidate at least as advanced: the winner has every
 *   acknowledged commit.
 * - Terms and votes are fsynced before answering.
 *
 * This file holds the loop and the wiring: start/stop, the tick, configuration reload, acting as
 * primary or follower, the fence. The parts each decide one thing and see this class only as the
 * `KeeperCore` they pick (keeper-core.ts): postgres-supervisor.ts (health, the probe, the stand block,
 * restarts in place), lease.ts (heartbeats), election.ts (standing, votes, promotion), switchover.ts,
 * rejoin.ts (pg_rewind or clone), keeper-report.ts (status, metrics, published parameters).
 */
import { readFileSync, statSync } from 'node:fs';
import type { Server } from 'node:http';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  type HeartbeatBody,
  type KeeperConfig,
  type MemberAddress,
  type MemberEvent,
  type MemberRole,
  type MemberStatus,
  type TakeoverBody,
  type VoteBody,
} from '../protocol.js';
// The keeper's constants and rules live in election-rules.ts, which the election model runs too.
import {
  mayRejoin,
  notStreamingTooLong,
  FENCE_CHECK_MS,
  FENCE_MARGIN_MS,
  NOT_STREAMING_REJOIN_MS,
  PROBE_EVERY_MS,
  resumedLeaseUntil,
  TICK_MS,
} from './election-rules.js';
import { callPeer, startPeerServer, type PeerAuth } from './peer-api.js';
import { renewTlsServer, type TlsIdentity } from '../cluster-tls.js';
import { KeeperState } from './keeper-state.js';
import { firstLine, NOT_RUNNING, PostgresControl, type PgObservation, type PgStats } from './postgres-control.js';
import { ServerCertificate } from './server-certificate.js';
import { now, type KeeperCore, type KnownLeader } from './keeper-core.js';
import { PostgresSupervisor } from './postgres-supervisor.js';
import { releasePeers, Switchover } from './switchover.js';
import { Rejoin } from './rejoin.js';
import { Lease } from './lease.js';
import { Election } from './election.js';
import { KeeperReport } from './keeper-report.js';

/** How often the member's metrics are read and written for the node agent (`.hox/metrics.prom`). */
const METRICS_EVERY_MS = 5000;

export class Keeper implements KeeperCore {
  config: KeeperConfig;
  private configMtimeMs = 0;
  readonly pg: PostgresControl;
  readonly state: KeeperState;
  private readonly certificate: ServerCertificate;
  private readonly supervisor: PostgresSupervisor;
  private readonly lease: Lease;
  private readonly election: Election;
  private readonly switchover: Switchover;
  private readonly report: KeeperReport;
  private readonly rejoiner: Rejoin;
  role: MemberRole = 'empty';
  obs: PgObservation = NOT_RUNNING;
  private server: Server | undefined;
  private timers: NodeJS.Timeout[] = [];
  ticking = false;
  stopped = false;
  /** The server's activity as last read for the metrics (null: not known). */
  private lastStats: PgStats | null = null;
  private writingMetrics = false;
  // Follower side.
  promisedUntil = 0;
  promisedTo: string | null = null;
  lastHeartbeatAt = 0;
  knownLeader: KnownLeader | null = null;
  followingSince = 0;
  electionBackoffUntil = 0;
  /** A switchover in progress: the old leader allowed votes for `to` only. */
  handover: { to: string; until: number } | null = null;
  // Leader side.
  leaseUntil = 0;
  forcedLeader = false;
  rolesPending = false;
  restoreStartedAt = 0;
  /** Rolling restart: whether this member's PostgreSQL waits for a restart. */
  pendingRestart = false;
  /** The settings this member's PostgreSQL has read (what a heartbeat answer reports), and ones about to be. */
  appliedSettings: string;
  private settingsToAnnounce: string | null = null;
  restartAllowedForMe = false;
  private lastRestartHandover = -Infinity;
  /** The server being killed by a fence (a restart waits for it). */
  killing: Promise<void> | null = null;
  /** The leader's last heartbeat said its PostgreSQL answers. */
  leaderPgHealthy = true;

  constructor(
    private readonly configPath: string,
    readonly log: (line: string) => void = (line) => process.stdout.write(`${line}\n`),
  ) {
    this.config = this.readConfig();
    this.pg = new PostgresControl(this.config);
    this.appliedSettings = JSON.stringify(this.config.settings);
    this.state = new KeeperState(join(this.config.partitionPath, 'keeper-state.json'));
    this.certificate = new ServerCertificate({
      confDir: this.pg.confDir,
      member: this.config.name,
      host: this.config.host,
      log: this.log,
    });
    this.supervisor = new PostgresSupervisor(this);
    this.lease = new Lease(this, this.supervisor);
    this.election = new Election(this, this.supervisor, this.lease);
    this.switchover = new Switchover(this, this.supervisor, {
      peerProblems: this.lease.peerProblems,
      runElection: (options) => this.election.runElection(options),
    });
    this.report = new KeeperReport(this, this.supervisor, this.certificate);
    this.rejoiner = new Rejoin(this, { stopFollowing: () => this.election.stopFollowing() });
  }

  private readConfig(): KeeperConfig {
    this.configMtimeMs = statSync(this.configPath).mtimeMs;
    return JSON.parse(readFileSync(this.configPath, 'utf8')) as KeeperConfig;
  }

  get majority(): number {
    return Math.floor(this.config.memberCount / 2) + 1;
  }

  async start(): Promise<void> {
    await this.pg.prepareDirs();
    await this.pg.writeStaticConfig();
    this.obs = await this.pg.observe();
    const st = this.state.get();
    this.lastHeartbeatAt = now();
    // We may have promised a leader before a crash: keep that promise for one lease.
    this.promisedUntil = now() + this.config.leaseMs;
    this.server = await startPeerServer({
      host: this.config.host,
      port: this.config.keeperPort,
      token: () => this.config.peerToken,
      tls: await this.firstPeerTls(),
      routes: {
        'GET /status': () => ({ json: this.report.status() }),
        'GET /metrics': async () => ({ text: await this.report.metrics(this.lastStats) }),
        'POST /heartbeat': (body) => ({ json: this.lease.onHeartbeat(body as HeartbeatBody) }),
        'POST /vote': async (body) => ({ json: await this.election.onVote(body as VoteBody) }),
        'POST /release': (body) => ({
          json: this.lease.onRelease(body as { term: number; from: string; to: string | null }),
        }),
        'POST /takeover': async (body) => ({ json: await this.switchover.onTakeover(body as TakeoverBody) }),
      },
    });
    if (!this.obs.running && this.pg.hasData() && (st.leaderOfTerm !== null || !this.pg.wasStandby()))
      this.state.update({ mayHaveDiverged: true, leaderOfTerm: null });
    if (this.obs.running && this.obs.inRecovery === false) {
      if (st.leaderOfTerm === st.term && st.term > 0) {
        // A restarted keeper whose PostgreSQL kept running as primary: resume the lease if the peers still grant it.
        this.role = 'primary';
        // No lease of its own making: only the peers' grants give one (election-rules.ts resumedLeaseUntil).
        this.leaseUntil = resumedLeaseUntil(now(), this.config.heartbeatMs, true);
        await this.lease.heartbeatRound();
        this.log(`resumed as primary of term ${st.term}: ${this.leaseValid() ? 'lease renewed' : 'no majority'}`);
      } else this.fence('PostgreSQL runs as a primary this keeper did not elect');
    } else if (this.obs.running) this.role = 'standby';
    else this.role = this.pg.hasData() ? 'stopped' : 'empty';
    this.timers.push(setInterval(() => void this.tick(), TICK_MS));
    this.timers.push(setInterval(() => this.fenceCheck(), FENCE_CHECK_MS));
    this.timers.push(setInterval(() => void this.supervisor.probe(), PROBE_EVERY_MS));
    this.timers.push(setInterval(() => void this.lease.heartbeatRound(), this.config.heartbeatMs));
    this.timers.push(setInterval(() => void this.writeMetrics(), METRICS_EVERY_MS));
    this.log(`keeper ${this.config.name} started: role ${this.role}, term ${st.term}`);
  }

  /** SIGTERM: a primary hands its lease back so a standby takes over at once; PostgreSQL stops cleanly. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers) clearInterval(t);
    const wasPrimary = this.role === 'primary';
    this.role = 'stopped';
    await this.pg.stop('fast').catch((e: unknown) => this.log(`stop: ${(e as Error).message}`));
    if (wasPrimary) {
      this.state.update({ mayHaveDiverged: true, leaderOfTerm: null });
      await this.releasePeers(null);
    }
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  /** Every METRICS_EVERY_MS: the server's activity, and `.hox/metrics.prom` for the node agent to relay. */
  private async writeMetrics(): Promise<void> {
    if (this.writingMetrics || this.stopped) return;
    this.writingMetrics = true;
    try {
      this.lastStats = await this.pg.stats();
      await this.report.writeMetricsFile(this.lastStats);
    } catch (error) {
      this.logElection(`metrics: ${(error as Error).message}`);
    } finally {
      this.writingMetrics = false;
    }
  }

  // ───────────────────────────── the loop ─────────────────────────────

  private async tick(): Promise<void> {
    if (this.ticking || this.stopped) return;
    this.ticking = true;
    try {
      await this.reloadConfigIfChanged();
      this.maintainCertificate();
      this.obs = await this.pg.observe();
      this.supervisor.reportHealth();
      this.pendingRestart = this.obs.pendingRestart;
      if (this.settingsToAnnounce !== null) {
        this.appliedSettings = this.settingsToAnnounce;
        this.settingsToAnnounce = null;
      }
      if (this.role === 'primary') await this.actAsPrimary();
      else await this.actAsFollower();
      await this.report.publish();
    } catch (error) {
      // Rate-limited: a server that cannot start (a full disk) fails every tick.
      this.logElection(`tick: ${(error as Error).stack ?? String(error)}`);
    } finally {
      this.ticking = false;
    }
  }

  private async reloadConfigIfChanged(): Promise<void> {
    let mtime: number;
    try {
      mtime = statSync(this.configPath).mtimeMs;
    } catch {
      return;
    }
    if (mtime === this.configMtimeMs) return;
    const before = this.config;
    this.config = this.readConfig();
    this.pg.setConfig(this.config);
    const rendered = (c: KeeperConfig) =>
      JSON.stringify([c.peers, c.adminHosts, c.archive, c.settings, c.tls?.caCertificate, c.tls?.clientTls]);
    // Settings that need a restart wait for the next one (docs/hyper-db.md, "Not done yet").
    if (rendered(before) !== rendered(this.config)) {
      await this.pg.writeStaticConfig();
      if (this.obs.running) await this.pg.reloadAndWait().catch(() => {});
      // Announced to the primary only once this tick's observation saw what the reload left pending.
      this.settingsToAnnounce = JSON.stringify(this.config.settings);
    }
    const sw = this.config.switchover;
    if (sw && sw.id !== this.state.get().handledSwitchover && this.role !== 'primary')
      this.state.update({ handledSwitchover: sw.id });
    this.log('configuration reloaded');
  }

  /**
   * A new certificate when one is due (in the background). PostgreSQL reloads it for new sessions, and
   * the peer API serves it to new connections; calls to peers present it from then on.
   */
  private maintainCertificate(): void {
    const tls = this.config.tls;
    if (tls === null) return;
    this.certificate.maintain(tls, this.config.peerToken, async () => {
      const identity = this.certificate.identity();
      if (this.server !== undefined && identity !== null)
        renewTlsServer(this.server, { ca: tls.caCertificate, identity });
      if (this.pg.postmasterPid() !== null) await this.pg.reload();
    });
  }

  /** The peer token, and TLS with this member's certificate: how this keeper calls its peers. */
  peerAuth(): PeerAuth {
    const tls = this.config.tls;
    return {
      token: this.config.peerToken,
      tls: tls === null ? null : { ca: tls.caCertificate, identity: this.certificate.clientIdentity() },
    };
  }

  /**
   * What the peer API serves: this member's certificate, asked of the router first when it has none (a
   * new member): until then it cannot prove to its peers that it is one, so it waits (and says so).
   */
  private async firstPeerTls(): Promise<{ ca: string; identity: TlsIdentity } | null> {
    let said = false;
    for (;;) {
      const tls = this.config.tls;
      if (tls === null) return null;
      const identity = this.certificate.identity();
      if (identity !== null) return { ca: tls.caCertificate, identity };
      if (this.stopped) throw new Error('stopped before it had a certificate');
      if (!said) this.log("waiting for this member's certificate from the router before serving peers");
      said = true;
      this.certificate.maintain(tls, this.config.peerToken, async () => {});
      await sleep(200);
      await this.reloadConfigIfChanged().catch(() => {});
    }
  }

  private async actAsPrimary(): Promise<void> {
    if (!this.obs.running) {
      await this.supervisor.restartPrimary();
      return;
    }
    if (this.obs.inRecovery === true) return; // promotion in progress
    // Until the roles are set, no standby can clone or stream and the router cannot connect: a failure
    // right after the promotion (a statement timeout on a loaded machine) must not leave the cluster so.
    if (this.rolesPending) {
      try {
        await this.pg.ensureRoles();
        this.rolesPending = false;
        this.log('roles: set');
      } catch (error) {
        this.logElection(`roles: ${(error as Error).message} (retried at the next tick)`);
      }
    }
    if (await this.switchover.handOverIfDiskFull()) return;
    if (await this.pg.writeDynamic({ primaryConninfo: '', syncStandbyNames: this.syncStandbyNames() }))
      await this.pg.reload();
    const sw = this.config.switchover;
    if (sw && sw.id !== this.state.get().handledSwitchover) {
      const refused = this.switchover.refusal(sw);
      if (refused === null && !this.switchover.archiveDrained(sw.id)) return;
      this.state.update({ handledSwitchover: sw.id });
      const result = refused ?? (await this.switchover.switchover(sw));
      this.state.update({ lastSwitchover: result });
      this.log(`switchover ${sw.id}: ${result.result}${result.reason ? ` (${result.reason})` : ''}`);
      return;
    }
    // Rolling restart, last step: every standby runs the new settings; hand over, then restart as a standby.
    if (
      this.pendingRestart &&
      this.lease.standbysReadyForPrimaryRestart() &&
      now() - this.lastRestartHandover > 30_000
    ) {
      const id = `restart-${this.state.get().term}`;
      if (!this.switchover.archiveDrained(id)) return;
      this.lastRestartHandover = now();
      this.log('settings need a restart: switching over first');
      const result = await this.switchover.switchover({ id, to: null });
      this.log(`rolling restart switchover: ${result.result}${result.reason ? ` (${result.reason})` : ''}`);
    }
  }

  private async actAsFollower(): Promise<void> {
    const c = this.config;
    if (this.killing !== null) await this.killing;
    const leader = this.liveLeader();
    if (!this.pg.hasData()) {
      this.role = 'empty';
      if (leader) await this.rejoiner.rejoin(leader, 'clone');
      else if (
        c.bootstrap &&
        c.restore !== null &&
        c.peers.length + 1 >= c.memberCount &&
        (await this.nobodyHasData())
      ) {
        const t = now();
        const to = restoreTargetText(c.restore.targetTime);
        this.log(`restoring from ${c.restore.url} to ${to}`);
        const backup = await this.pg.restoreBaseBackup(c.restore).catch((error: unknown) => {
          // Published (hox db status / restore --wait) instead of only retried in silence.
          this.addEvent('restore', `restore failed: ${firstLine((error as Error).message)}`);
          throw error;
        });
        await this.pg.writeRestoreCredentials(c.restore);
        await this.pg.writeDynamic({
          primaryConninfo: '',
          syncStandbyNames: '',
          recovery: this.pg.recoverySettings(c.restore),
        });
        this.state.update({ restoring: true });
        // To a time: recovery pauses at the target. Latest: a standby with no upstream replays the whole
        // archive, then keeps asking it for more; it stands once the archive has nothing more to give.
        await this.pg.start({ standby: true, targetedRecovery: c.restore.targetTime !== null });
        this.role = 'standby';
        this.addEvent('restore', `base backup ${backup} restored; replaying WAL to ${to}`, {
          baseBackup: Math.round(now() - t),
        });
        this.restoreStartedAt = t;
        this.lastHeartbeatAt = 0;
        this.promisedUntil = 0;
      } else if (
        c.bootstrap &&
        c.restore === null &&
        c.peers.length + 1 >= c.memberCount &&
        (await this.nobodyHasData())
      ) {
        const t = now();
        this.log('bootstrapping the cluster: initdb');
        await this.pg.initdb();
        await this.pg.writeDynamic({ primaryConninfo: '', syncStandbyNames: '' });
        await this.pg.start({ standby: true });
        this.role = 'standby';
        this.addEvent('bootstrap', 'initialised a new cluster', { initdb: Math.round(now() - t) });
        this.lastHeartbeatAt = 0;
        this.promisedUntil = 0;
      }
      return;
    }
    if (this.obs.running && this.obs.inRecovery === false) {
      this.fence('PostgreSQL runs as a primary but this member is not the leader');
      return;
    }
    const st = this.state.get();
    if (leader && leader.name !== c.name) {
      if (st.mayHaveDiverged) {
        await this.rejoiner.rejoin(leader, 'rewind');
        return;
      }
      if (await this.election.followLeader(leader)) this.followingSince = now();
      if (this.liveLeader()?.name !== leader.name) return;
      if (!this.obs.running) {
        try {
          await this.pg.start({ standby: true });
        } catch (error) {
          // E.g. "requested timeline N does not contain minimum recovery point": rejoin at the next tick.
          this.state.update({ mayHaveDiverged: true });
          throw error;
        }
        this.role = 'standby';
        this.followingSince = now();
        return;
      }
      this.role = 'standby';
      if (this.pendingRestart && this.restartAllowedForMe && this.obs.streaming) {
        const t = now();
        this.restartAllowedForMe = false;
        await this.pg.stop('fast');
        await this.pg.start({ standby: true });
        this.pendingRestart = false;
        this.followingSince = now();
        this.addEvent('restart', 'restarted for settings that need a restart', { total: Math.round(now() - t) });
        return;
      }
      if (this.obs.streaming) {
        this.followingSince = now();
        this.rejoiner.streaming();
      } else if (
        notStreamingTooLong({ now: now(), streaming: this.obs.streaming, followingSince: this.followingSince })
      ) {
        if (
          !mayRejoin({
            now: now(),
            streaming: false,
            followingSince: this.followingSince,
            leaderPgHealthy: this.leaderPgHealthy,
          })
        ) {
          // A hung leader is its own keeper's to fence; tearing this standby down would leave nobody to elect.
          this.logElection(`not streaming from ${leader.name}, whose PostgreSQL does not answer: waiting`);
          return;
        }
        this.log(`not streaming from ${leader.name} for ${NOT_STREAMING_REJOIN_MS} ms: rejoining`);
        await this.rejoiner.rejoin(leader, 'rewind');
      }
      return;
    }
    if (!this.obs.running) {
      // No leader known: run as a standby without upstream so this member can stand for election.
      await this.pg.writeDynamic({ primaryConninfo: '', syncStandbyNames: '' });
      await this.pg.start({ standby: true });
      this.role = 'standby';
      return;
    }
    this.role = 'standby';
    await this.election.maybeAcceptDataLoss();
    await this.election.maybeStandForElection();
  }

  liveLeader(): MemberAddress | null {
    if (this.knownLeader === null || now() > this.promisedUntil) return null;
    if (this.knownLeader.name === this.config.name) return null;
    return this.config.peers.find((p) => p.name === this.knownLeader?.name) ?? null;
  }

  private async nobodyHasData(): Promise<boolean> {
    const answers = await Promise.allSettled(
      this.config.peers.map((p) =>
        callPeer<MemberStatus>(p, this.peerAuth(), '/status', undefined, 1000, this.config.host),
      ),
    );
    return answers.every((a) => a.status === 'fulfilled' && a.value.role === 'empty' && a.value.term === 0);
  }

  private lastElectionLog = { text: '', at: 0 };

  logElection(text: string): void {
    const t = now();
    const key = text.replace(/\d+/g, '#');
    if (key === this.lastElectionLog.text && t - this.lastElectionLog.at < 10_000) return;
    this.lastElectionLog = { text: key, at: t };
    this.log(text);
  }

  // ─────────────────────────── leadership ───────────────────────────

  leaseValid(): boolean {
    return this.role === 'primary' && (this.forcedLeader || now() < this.leaseUntil - FENCE_MARGIN_MS);
  }

  private fenceCheck(): void {
    if (this.role === 'primary' && !this.leaseValid()) this.fence('lease lost: no majority of peers renewed it');
  }

  /**
   * Stop being the primary NOW: the postmaster gets SIGQUIT (immediate stop); it restarts as a standby.
   * A server that did not answer (`kill`), or still runs a second later (frozen: a stopped process
   * does not act on SIGQUIT), is killed with every process it started.
   */
  fence(reason: string, options: { kill?: boolean } = {}): void {
    const wasPrimary = this.role === 'primary';
    this.role = 'demoted';
    this.leaseUntil = 0;
    this.forcedLeader = false;
    const pid = this.pg.postmasterPid();
    if (pid !== null) {
      try {
        process.kill(pid, 'SIGQUIT');
      } catch {
        // already gone
      }
      const kill = async (): Promise<void> => {
        if (options.kill !== true) await sleep(1000);
        if (this.pg.postmasterPid() === pid) await this.pg.killServer();
      };
      this.killing = kill()
        .catch((error: unknown) => this.log(`killing PostgreSQL: ${(error as Error).message}`))
        .finally(() => (this.killing = null));
    }
    this.state.update({ mayHaveDiverged: true, leaderOfTerm: null });
    if (this.knownLeader?.name === this.config.name) this.knownLeader = null;
    this.addEvent('fenced', `${reason}${wasPrimary ? '' : ' (was not the leader)'}`);
    this.log(`fenced: ${reason}`);
  }

  stepDown(reason: string): void {
    if (this.role === 'primary') this.fence(reason);
  }

  syncStandbyNames(): string {
    const c = this.config;
    // A forced promotion (accept data loss) writes at once; the quorum returns with the majority.
    if (c.syncMode === 'async' || c.peers.length === 0 || this.forcedLeader) return '';
    const k =
      c.syncMode === 'strict' ? c.peers.length : Math.max(1, c.memberCount - (Math.floor(c.memberCount / 2) + 1));
    const eligible = c.peers.filter((p) => !c.maintenance.includes(p.name)).map((p) => p.name);
    const fill = c.peers.filter((p) => c.maintenance.includes(p.name)).map((p) => p.name);
    const names = [...eligible];
    while (names.length < k && fill.length > 0) names.push(fill.shift() as string);
    return `ANY ${Math.min(k, c.peers.length)} (${names.map((n) => `"${n}"`).join(', ')})`;
  }

  /** The leader gives its lease back to every peer: to `to` only (a switchover), or to nobody (it stops). */
  releasePeers(to: string | null): Promise<void> {
    return releasePeers(this, to);
  }

  // ───────────────────────────── events ─────────────────────────────

  /** Records an event in the keeper's state (published by keeper-report.ts); `change` is applied with it. */
  addEvent(
    kind: MemberEvent['kind'],
    detail: string,
    timings?: Record<string, number>,
    change: Parameters<KeeperState['update']>[0] = {},
    extra: Pick<MemberEvent, 'recovered_to'> = {},
  ): void {
    this.state.addEvent(
      {
        at: new Date().toISOString(),
        kind,
        term: this.state.get().term,
        detail,
        ...(timings ? { timings } : {}),
        ...extra,
      },
      change,
    );
  }
}

/** `just before 2026-11-27T10:00:00Z`, or `the end of the archived WAL (latest)`. */
export function restoreTargetText(targetTime: string | null): string {
  return targetTime === null ? 'the end of the archived WAL (latest)' : `just before ${targetTime}`;
}
