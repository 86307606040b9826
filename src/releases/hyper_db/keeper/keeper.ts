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
 */
import { randomInt } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import type { Server } from 'node:http';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  lsnToBigInt,
  type HeartbeatAnswer,
  type HeartbeatBody,
  type KeeperConfig,
  type MemberAddress,
  type MemberEvent,
  type MemberRole,
  type MemberStatus,
  type SwitchoverRequest,
  type SwitchoverResult,
  type TakeoverBody,
  type VoteAnswer,
  type VoteBody,
} from '../protocol.js';
import { formatBytes } from '../../../shared/bytes.js';
// The keeper's constants and rules live in election-rules.ts, which the election model runs too.
import {
  decideVote,
  mayRejoin,
  mayRenewLease,
  mayStand,
  type MemberHealth,
  mustFenceUnresponsive,
  notStreamingTooLong,
  primaryServerDown,
  STAND_JITTER_MS,
  unfitToLead,
  FENCE_CHECK_MS,
  FENCE_MARGIN_MS,
  MAX_PG_RESTARTS,
  MIN_FREE_BYTES,
  CLONE_ROOM_BYTES,
  NOT_STREAMING_REJOIN_MS,
  PG_RESTART_WINDOW_MS,
  PROBE_EVERY_MS,
  PROBE_TIMEOUT_MS,
  promotionBackoffMs,
  resumedLeaseUntil,
  STAND_BLOCK_MS,
  stillFreeToStand,
  TICK_MS,
  unresponsiveMsFor,
} from './election-rules.js';
import { callPeer, startPeerServer } from './peer-api.js';
import { KeeperState } from './keeper-state.js';
import { firstLine, NOT_RUNNING, PostgresControl, type PgObservation } from './postgres-control.js';
import { ServerCertificate } from './server-certificate.js';
import { pauseRouter } from './router-pause.js';

const now = (): number => performance.now();
interface KnownLeader {
  name: string;
  term: number;
  lsn: string | null;
  timeline: number | null;
}

export class Keeper {
  private config: KeeperConfig;
  private configMtimeMs = 0;
  private readonly pg: PostgresControl;
  private readonly state: KeeperState;
  private readonly certificate: ServerCertificate;
  private role: MemberRole = 'empty';
  private obs: PgObservation = NOT_RUNNING;
  private server: Server | undefined;
  private timers: NodeJS.Timeout[] = [];
  private ticking = false;
  private stopped = false;
  // Follower side.
  private promisedUntil = 0;
  private promisedTo: string | null = null;
  private lastHeartbeatAt = 0;
  private knownLeader: KnownLeader | null = null;
  private followingSince = 0;
  private electionBackoffUntil = 0;
  /** A switchover in progress: the old leader allowed votes for `to` only. */
  private handover: { to: string; until: number } | null = null;
  // Leader side.
  private leaseUntil = 0;
  private forcedLeader = false;
  private readonly grants = new Map<string, number>();
  private readonly inFlight = new Set<string>();
  private pgRestarts: number[] = [];
  private lastPublished = '';
  private restoreStartedAt = 0;
  /** Rewinds since this member last streamed: after two that did not lead to streaming, clone instead. */
  private rewindsWithoutStreaming = 0;
  /** Rolling restart: whether this member's PostgreSQL waits for a restart, and what each peer said. */
  private pendingRestart = false;
  private readonly peerPendingRestart = new Map<string, boolean>();
  private readonly peerSettings = new Map<string, string>();
  /** What each standby said in its last heartbeat answer about its fitness to lead. */
  private readonly peerProblems = new Map<string, string | null>();
  /** The settings this member's PostgreSQL has read (what a heartbeat answer reports), and ones about to be. */
  private appliedSettings: string;
  private settingsToAnnounce: string | null = null;
  private restartAllowedForMe = false;
  private lastRestartHandover = -Infinity;
  // Health: judged by answers, not by the postmaster's pid.
  /** When PostgreSQL last answered a probe (or finished starting). */
  private pgAnsweredAt = now();
  /** Why the last probe failed (null: it answered). */
  private pgProblem: string | null = null;
  private probing = false;
  /** PostgreSQL is being stopped or started on purpose (switchover, restart in place): not hung, and bounded. */
  private serverTransition: string | null = null;
  /** The server being killed by a fence (a restart waits for it). */
  private killing: Promise<void> | null = null;
  /** The leader's last heartbeat said its PostgreSQL answers. */
  private leaderPgHealthy = true;
  /** A member that just failed to lead (promotion failed, PostgreSQL kept dying) does not stand before this. */
  private standBlockedUntil = 0;
  private standBlockedReason = '';
  private promotionFailures = 0;
  /** The health problem last reported as an event (one event per change, not per tick). */
  private reportedProblem: string | null = null;
  private lastDiskHandover = -Infinity;

  constructor(
    private readonly configPath: string,
    private readonly log: (line: string) => void = (line) => process.stdout.write(`${line}\n`),
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
  }

  private readConfig(): KeeperConfig {
    this.configMtimeMs = statSync(this.configPath).mtimeMs;
    return JSON.parse(readFileSync(this.configPath, 'utf8')) as KeeperConfig;
  }

  private get majority(): number {
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
      routes: {
        'GET /status': () => ({ json: this.status() }),
        'GET /metrics': () => ({ text: this.metrics() }),
        'POST /heartbeat': (body) => ({ json: this.onHeartbeat(body as HeartbeatBody) }),
        'POST /vote': async (body) => ({ json: await this.onVote(body as VoteBody) }),
        'POST /release': (body) => ({
          json: this.onRelease(body as { term: number; from: string; to: string | null }),
        }),
        'POST /takeover': async (body) => ({ json: await this.onTakeover(body as TakeoverBody) }),
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
        await this.heartbeatRound();
        this.log(`resumed as primary of term ${st.term}: ${this.leaseValid() ? 'lease renewed' : 'no majority'}`);
      } else this.fence('PostgreSQL runs as a primary this keeper did not elect');
    } else if (this.obs.running) this.role = 'standby';
    else this.role = this.pg.hasData() ? 'stopped' : 'empty';
    this.timers.push(setInterval(() => void this.tick(), TICK_MS));
    this.timers.push(setInterval(() => this.fenceCheck(), FENCE_CHECK_MS));
    this.timers.push(setInterval(() => void this.probe(), PROBE_EVERY_MS));
    this.timers.push(setInterval(() => void this.heartbeatRound(), this.config.heartbeatMs));
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

  // ───────────────────────────── the loop ─────────────────────────────

  private async tick(): Promise<void> {
    if (this.ticking || this.stopped) return;
    this.ticking = true;
    try {
      await this.reloadConfigIfChanged();
      this.maintainCertificate();
      this.obs = await this.pg.observe();
      this.reportHealth();
      this.pendingRestart = this.obs.pendingRestart;
      if (this.settingsToAnnounce !== null) {
        this.appliedSettings = this.settingsToAnnounce;
        this.settingsToAnnounce = null;
      }
      if (this.role === 'primary') await this.actAsPrimary();
      else await this.actAsFollower();
      await this.publish();
    } catch (error) {
      // Rate-limited: a server that cannot start (a full disk) fails every tick.
      this.logElection(`tick: ${(error as Error).stack ?? String(error)}`);
    } finally {
      this.ticking = false;
    }
  }

  /**
   * No answer from PostgreSQL for this long and the primary fences itself (and kills its server). Long
   * enough that a loaded machine (a slow fork, a slow fsync) is not taken for a hung server: a needless
   * failover costs every session.
   */
  private get unresponsiveMs(): number {
    return unresponsiveMsFor(this.config.leaseMs);
  }

  /**
   * Asks PostgreSQL for an answer (a bounded query; on a primary, whether WAL still advances while
   * sessions wait for it). A primary whose server stops answering stops renewing its lease and fences
   * itself, killing the server (it may be frozen), and does not stand again for a while: a live keeper
   * beside a hung server must not hold the cluster without a primary.
   */
  private async probe(): Promise<void> {
    if (this.probing || this.stopped) return;
    if (this.pg.postmasterPid() === null) {
      // Not running is not hung: the tick restarts it (in place on the primary, up to MAX_PG_RESTARTS).
      this.pgProblem = 'PostgreSQL is not running';
      this.pgAnsweredAt = now();
      return;
    }
    this.probing = true;
    try {
      const t0 = now();
      const answer = await this.pg.probe(PROBE_TIMEOUT_MS, this.unresponsiveMs);
      const tookMs = now() - t0;
      if (answer.ok) {
        this.pgAnsweredAt = now();
        this.pgProblem = null;
      } else if (tookMs > PROBE_TIMEOUT_MS * 2 + 1000) {
        // The keeper itself was stalled (its timers fired late): this says nothing about the server.
        return;
      } else this.pgProblem = answer.reason;
      if (this.serverTransition !== null) this.pgAnsweredAt = now();
      if (mustFenceUnresponsive(now(), this.role, this.health(), this.unresponsiveMs)) await this.fenceHung();
    } finally {
      this.probing = false;
    }
  }

  /** A primary whose server has not answered for unresponsiveMs: fenced, its server killed, not standing for 30 s. */
  private async fenceHung(): Promise<void> {
    if (this.role !== 'primary' || this.stopped) return;
    const silentMs = now() - this.pgAnsweredAt;
    const why = `PostgreSQL does not answer for ${Math.round(silentMs)} ms (${this.pgProblem ?? 'no answer'})`;
    this.fence(why, { kill: true });
    // Once the hung server is dead the peers' promises may end: it can accept nothing any more.
    await this.killing;
    this.blockStanding(why, STAND_BLOCK_MS.unresponsive);
  }

  /**
   * Why this member must not lead now (null: it may stand). It needs a server that answers, room on its
   * disk, and no recent failure to lead.
   */
  private unfitToLead(): string | null {
    return unfitToLead(now(), this.health());
  }

  /** What this member knows of its own fitness, as the rules in election-rules.ts read it. */
  private health(): MemberHealth {
    return {
      pgAnsweredAt: this.pgAnsweredAt,
      pgProblem: this.pgProblem,
      freeBytes: this.pg.freeBytes(),
      standBlockedUntil: this.standBlockedUntil,
      standBlockedReason: this.standBlockedReason,
    };
  }

  /** One `health` event per change of this member's problem (and one when it is fit again). */
  private reportHealth(): void {
    const free = this.pg.freeBytes();
    const problem =
      free !== null && free < MIN_FREE_BYTES
        ? `disk nearly full: ${formatBytes(free)} free on ${this.config.name}'s data filesystem`
        : now() < this.standBlockedUntil
          ? this.standBlockedReason
          : null;
    if (problem === this.reportedProblem) return;
    this.addEvent('health', problem ?? `fit again${this.reportedProblem ? ` (was: ${this.reportedProblem})` : ''}`);
    this.log(`health: ${problem ?? 'fit again'}`);
    this.reportedProblem = problem;
  }

  /** Not standing for a while after failing to lead; the peers' promises end at once so another may stand. */
  private blockStanding(reason: string, ms: number): void {
    this.standBlockedUntil = now() + ms;
    this.standBlockedReason = reason;
    void this.releasePeers(null);
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

  /** A new server certificate when one is due (in the background); PostgreSQL reloads it for new sessions. */
  private maintainCertificate(): void {
    const tls = this.config.tls;
    if (tls === null) return;
    this.certificate.maintain(tls, this.config.peerToken, async () => {
      if (this.pg.postmasterPid() !== null) await this.pg.reload();
    });
  }

  private async actAsPrimary(): Promise<void> {
    if (!this.obs.running) {
      const t = now();
      this.pgRestarts = this.pgRestarts.filter((at) => t - at < PG_RESTART_WINDOW_MS);
      const free = this.pg.freeBytes();
      const verdict = primaryServerDown(t, this.pgRestarts, free);
      if (verdict.action === 'step-down') {
        // Restarting in place on a full disk only crashes again, and a server that keeps crashing is
        // no primary: a healthy standby takes over instead.
        const inLog = this.pg.diskFullInLog();
        const why =
          verdict.reason === 'disk-full'
            ? `PostgreSQL stopped and the disk is full: ${formatBytes(free ?? 0)} free${inLog === null ? '' : ` (${inLog})`}`
            : `PostgreSQL died again after ${MAX_PG_RESTARTS} restarts in place within ${PG_RESTART_WINDOW_MS / 1000} s${this.diskNote()}`;
        this.stepDown(why);
        this.blockStanding(why, verdict.blockMs);
        return;
      }
      this.pgRestarts.push(t);
      this.log('PostgreSQL is down on the primary: restarting it in place');
      await this.pg.writeDynamic({ primaryConninfo: '', syncStandbyNames: this.syncStandbyNames() });
      this.serverTransition = 'restarting in place';
      try {
        await this.pg.start({ standby: false });
      } finally {
        this.serverTransition = null;
      }
      this.pgAnsweredAt = now();
      if (this.role !== 'primary') {
        this.fence('lease lost while restarting');
        return;
      }
      this.addEvent('restart', `PostgreSQL restarted in place`, { total: Math.round(now() - t) });
      return;
    }
    if (this.obs.inRecovery === true) return; // promotion in progress
    if (await this.handOverIfDiskFull()) return;
    if (await this.pg.writeDynamic({ primaryConninfo: '', syncStandbyNames: this.syncStandbyNames() }))
      await this.pg.reload();
    const sw = this.config.switchover;
    if (sw && sw.id !== this.state.get().handledSwitchover) {
      this.state.update({ handledSwitchover: sw.id });
      const result = await this.switchover(sw);
      this.state.update({ lastSwitchover: result });
      this.log(`switchover ${sw.id}: ${result.result}${result.reason ? ` (${result.reason})` : ''}`);
      return;
    }
    // Rolling restart, last step: every standby runs the new settings; hand over, then restart as a standby.
    if (this.pendingRestart && this.standbysReadyForPrimaryRestart() && now() - this.lastRestartHandover > 30_000) {
      this.lastRestartHandover = now();
      this.log('settings need a restart: switching over first');
      const result = await this.switchover({ id: `restart-${this.state.get().term}`, to: null });
      this.log(`rolling restart switchover: ${result.result}${result.reason ? ` (${result.reason})` : ''}`);
    }
  }

  /**
   * A primary whose disk is nearly full hands over to a healthy standby while it still can shut down
   * cleanly (a planned switchover: nothing lost, sessions through the router carried over), rather than
   * wait for PostgreSQL to fail on its next WAL segment. Once every 30 s at most.
   */
  private async handOverIfDiskFull(): Promise<boolean> {
    const free = this.pg.freeBytes();
    if (free === null || free >= MIN_FREE_BYTES || now() - this.lastDiskHandover < 30_000) return false;
    this.lastDiskHandover = now();
    const why = `disk nearly full: ${formatBytes(free)} free on ${this.config.name}'s data filesystem`;
    this.log(`${why}: handing the primary role over`);
    const result = await this.switchover({ id: `disk-full-${this.state.get().term}`, to: null });
    this.addEvent(
      'health',
      `${why}: switchover ${result.result}${result.to ? ` to ${result.to}` : ''}${result.reason ? ` (${result.reason})` : ''}`,
    );
    return result.result === 'done';
  }

  /** The one standby that may restart now: it waits for a restart, and every other standby streams. */
  private pickStandbyToRestart(): string | null {
    const waiting = this.config.peers.filter((p) => this.peerPendingRestart.get(p.name) === true).map((p) => p.name);
    if (waiting.length === 0) return null;
    const streaming = new Set(this.obs.replicas.filter((r) => r.state === 'streaming').map((r) => r.name));
    const candidate = waiting.sort()[0] as string;
    const othersStreaming = this.config.peers.every((p) => p.name === candidate || streaming.has(p.name));
    return othersStreaming ? candidate : null;
  }

  /** Standbys first: every standby has the same settings as this member, needs no restart, and streams. */
  private standbysReadyForPrimaryRestart(): boolean {
    const mine = this.appliedSettings;
    const streaming = new Set(this.obs.replicas.filter((r) => r.state === 'streaming').map((r) => r.name));
    return this.config.peers.every(
      (p) =>
        this.peerSettings.get(p.name) === mine &&
        this.peerPendingRestart.get(p.name) === false &&
        streaming.has(p.name),
    );
  }

  private async actAsFollower(): Promise<void> {
    const c = this.config;
    if (this.killing !== null) await this.killing;
    const leader = this.liveLeader();
    if (!this.pg.hasData()) {
      this.role = 'empty';
      if (leader) await this.rejoin(leader, 'clone');
      else if (
        c.bootstrap &&
        c.restore !== null &&
        c.peers.length + 1 >= c.memberCount &&
        (await this.nobodyHasData())
      ) {
        const t = now();
        this.log(`restoring from ${c.restore.url} to just before ${c.restore.targetTime}`);
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
        await this.pg.start({ standby: true, targetedRecovery: true });
        this.role = 'standby';
        this.addEvent('restore', `base backup ${backup} restored; replaying WAL to ${c.restore.targetTime}`, {
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
        await this.rejoin(leader, 'rewind');
        return;
      }
      if (await this.followLeader(leader)) this.followingSince = now();
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
        this.rewindsWithoutStreaming = 0;
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
        await this.rejoin(leader, 'rewind');
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
    await this.maybeAcceptDataLoss();
    await this.maybeStandForElection();
  }

  private liveLeader(): MemberAddress | null {
    if (this.knownLeader === null || now() > this.promisedUntil) return null;
    if (this.knownLeader.name === this.config.name) return null;
    return this.config.peers.find((p) => p.name === this.knownLeader?.name) ?? null;
  }

  private async nobodyHasData(): Promise<boolean> {
    const answers = await Promise.allSettled(
      this.config.peers.map((p) =>
        callPeer<MemberStatus>(p, this.config.peerToken, '/status', undefined, 1000, this.config.host),
      ),
    );
    return answers.every((a) => a.status === 'fulfilled' && a.value.role === 'empty' && a.value.term === 0);
  }

  // ──────────────────────────── elections ────────────────────────────

  private async maybeStandForElection(): Promise<void> {
    const c = this.config;
    const decision = mayStand({
      now: now(),
      paused: c.paused,
      inMaintenance: c.maintenance.includes(c.name),
      promisedUntil: this.promisedUntil,
      jitterMs: randomInt(0, STAND_JITTER_MS),
      electionBackoffUntil: this.electionBackoffUntil,
      // What it RECEIVED counts here, not what it replayed: a standby with every acknowledged commit
      // must be able to stand (promotion replays the rest first), or a replay-paused standby holding the
      // newest WAL — which must refuse its vote to anyone less advanced — would block every failover.
      position:
        this.obs.lsn === null || this.obs.timeline === null ? null : { lsn: this.obs.lsn, timeline: this.obs.timeline },
      leaderLsn: this.knownLeader?.lsn ?? null,
      maxLagBytes: c.maxLagBytes,
      // A point-in-time restore stands only once replay has reached its target (promoting earlier would stop short).
      restoreNotReady: this.state.get().restoring && (await this.pg.replayPauseState()) !== 'paused',
      health: this.health(),
    });
    if (!decision.stand) {
      if (decision.backoffUntil !== undefined) this.electionBackoffUntil = decision.backoffUntil;
      if (decision.quiet !== true) this.logElection(decision.reason);
      return;
    }
    await this.runElection({ planned: false, forced: false });
  }

  private async runElection(options: { planned: boolean; forced: boolean }): Promise<boolean> {
    const c = this.config;
    const tStart = now();
    const detectMs = this.lastHeartbeatAt > 0 ? tStart - this.lastHeartbeatAt : 0;
    const obs = await this.pg.observe();
    if (obs.lsn === null || obs.timeline === null || obs.inRecovery !== true) return false;
    const position = { lsn: obs.lsn, timeline: obs.timeline, planned: options.planned, candidate: c.name };
    if (!options.forced) {
      // Pre-vote: a member that could not win (isolated, behind, or facing a live leader) never raises
      // the term, so it cannot disrupt a healthy primary when it comes back.
      const pre = await this.collectVotes({ ...position, term: this.state.get().term + 1, preVote: true });
      if (pre.votes < this.majority) {
        // A voter still bound by a promise says when it ends: try again just after (a failover's critical path).
        this.electionBackoffUntil =
          now() +
          (pre.retryInMs !== null && pre.retryInMs < 1000 ? pre.retryInMs + randomInt(5, 60) : 300 + randomInt(0, 500));
        this.logElection(`pre-vote lost: ${pre.votes}/${c.memberCount} (${pre.refusals.join('; ')})`);
        return false;
      }
    }
    // Promised another a lease while the pre-vote ran: this round is lost (election-rules.ts stillFreeToStand).
    const bound = options.forced
      ? null
      : stillFreeToStand({ now: now(), self: c.name, promisedUntil: this.promisedUntil, promisedTo: this.promisedTo });
    if (bound !== null) {
      this.logElection(`not standing: ${bound}`);
      return false;
    }
    const t0 = now();
    const term = this.state.get().term + 1;
    this.state.update({ term, votedFor: c.name });
    const { votes, refusals } = await this.collectVotes({ ...position, term, preVote: false });
    if (votes < this.majority && !options.forced) {
      this.electionBackoffUntil = now() + 300 + randomInt(0, 500);
      this.logElection(`election for term ${term} lost: ${votes}/${c.memberCount} votes (${refusals.join('; ')})`);
      return false;
    }
    if (this.state.get().term !== term) return false;
    const tElected = now();
    this.role = 'primary';
    this.forcedLeader = options.forced;
    this.leaseUntil = options.forced ? Infinity : t0 + c.leaseMs;
    this.grants.clear();
    this.knownLeader = { name: c.name, term, lsn: obs.lsn, timeline: obs.timeline };
    this.state.update({ leaderOfTerm: term, mayHaveDiverged: false });
    try {
      // The quorum is in force before the first commit the new primary can acknowledge.
      await this.pg.writeDynamic({ primaryConninfo: '', syncStandbyNames: this.syncStandbyNames() });
      await this.pg.reload();
      this.serverTransition = 'promoting';
      try {
        await this.pg.promote();
      } finally {
        this.serverTransition = null;
      }
      if ((this.role as MemberRole) !== 'primary') throw new Error('fenced while promoting');
    } catch (error) {
      this.promotionFailures++;
      const backoff = promotionBackoffMs(this.promotionFailures);
      const why = `promotion failed: ${firstLine((error as Error).message)}${this.diskNote()}`;
      this.log(`${why}; not standing for ${backoff / 1000} s`);
      this.stepDown(why);
      this.blockStanding(why, backoff);
      return false;
    }
    this.promotionFailures = 0;
    void this.heartbeatRound();
    const tPromoted = now();
    // The end-of-recovery checkpoint is spread out by default; pg_rewind against this member needs it done.
    void this.pg.checkpoint().catch(() => {});
    if (this.state.get().restoring) {
      this.state.update({ restoring: false });
      await this.pg.writeDynamic({ primaryConninfo: '', syncStandbyNames: this.syncStandbyNames() });
      await this.pg.reload().catch(() => {});
      this.addEvent('restore', 'restore complete: promoted at the target', {
        total: Math.round(tPromoted - this.restoreStartedAt),
      });
    }
    await this.pg.ensureRoles().catch((e: unknown) => this.log(`roles: ${(e as Error).message}`));
    const kind = options.forced
      ? 'forced-promotion'
      : options.planned
        ? 'switchover'
        : this.lastHeartbeatAt > 0
          ? 'failover'
          : 'bootstrap';
    const timings = {
      detect: Math.round(detectMs),
      election: Math.round(tElected - tStart),
      promote: Math.round(tPromoted - tElected),
      total: Math.round(tPromoted - tStart + detectMs),
    };
    this.addEvent(kind, `promoted in term ${term} with ${votes}/${c.memberCount} votes`, timings, {
      failovers: this.state.get().failovers + (kind === 'failover' ? 1 : 0),
    });
    this.log(`promoted: term ${term}, ${JSON.stringify(timings)}`);
    return true;
  }

  /** Asks every peer; settles as soon as a majority granted (stragglers do not slow a failover) or all answered. */
  private collectVotes(body: VoteBody): Promise<{ votes: number; refusals: string[]; retryInMs: number | null }> {
    const c = this.config;
    return new Promise((resolve) => {
      let votes = 1;
      let answered = 0;
      let retryInMs: number | null = null;
      const refusals: string[] = [];
      const settle = (): void => {
        if (votes >= this.majority || answered === c.peers.length) resolve({ votes, refusals, retryInMs });
      };
      settle();
      for (const p of c.peers) {
        // 2 s: a voter reads its own WAL position first, which a loaded machine may take a while to answer.
        callPeer<VoteAnswer>(p, c.peerToken, '/vote', body, 2000, c.host).then(
          (a) => {
            if (a.granted) votes++;
            else {
              refusals.push(`${p.name}: ${a.reason ?? 'refused'}`);
              if (typeof a.retryInMs === 'number') retryInMs = Math.min(retryInMs ?? Infinity, a.retryInMs);
              if (!body.preVote && a.term > this.state.get().term) this.state.update({ term: a.term, votedFor: null });
            }
            answered++;
            settle();
          },
          () => {
            refusals.push(`${p.name}: unreachable`);
            answered++;
            settle();
          },
        );
      }
    });
  }

  private lastElectionLog = { text: '', at: 0 };

  private logElection(text: string): void {
    const t = now();
    const key = text.replace(/\d+/g, '#');
    if (key === this.lastElectionLog.text && t - this.lastElectionLog.at < 10_000) return;
    this.lastElectionLog = { text: key, at: t };
    this.log(text);
  }

  /**
   * The rules are election-rules.ts `decideVote`, applied to the state as it is once this member's
   * position is known (never to the state before an await: one voter granted two candidates the same
   * term that way). A granted vote is fsynced, then this member stops streaming from the leader it
   * followed before it answers (election-rules.ts `VoteChange`).
   */
  private async onVote(body: VoteBody): Promise<VoteAnswer> {
    const c = this.config;
    if (!isVoteBody(body)) return { granted: false, term: this.state.get().term, reason: 'malformed vote request' };
    const position = await this.position();
    const st = this.state.get();
    const { answer, change } = decideVote(
      {
        now: now(),
        term: st.term,
        votedFor: st.votedFor,
        primaryWithValidLease: this.role === 'primary' && this.leaseValid(),
        promisedUntil: this.promisedUntil,
        promisedTo: this.promisedTo,
        handover: this.handover,
        paused: c.paused,
        maintenance: c.maintenance,
        peerNames: c.peers.map((p) => p.name),
        leaseMs: c.leaseMs,
        position,
      },
      body,
    );
    if (change === null) return answer;
    this.state.update({ term: change.term, votedFor: change.votedFor });
    this.promisedUntil = change.promisedUntil;
    this.promisedTo = change.promisedTo;
    await this.stopFollowing();
    return answer;
  }

  /**
   * Stops receiving WAL from the leader this member followed (primary_conninfo emptied, the WAL
   * receiver gone, ≤ 1 s) and forgets it until a heartbeat names the next one: a primary whose keeper
   * is frozen must not get commits confirmed by a voter that judged the candidate as advanced as itself.
   */
  private async stopFollowing(): Promise<void> {
    this.knownLeader = null;
    if (!(await this.pg.writeDynamic({ primaryConninfo: '', syncStandbyNames: '' }))) return;
    if (this.pg.postmasterPid() === null) return;
    try {
      await this.pg.reload();
      const deadline = now() + 1000;
      while ((await this.pg.observe()).upstream !== null && now() < deadline) await sleep(20);
    } catch (error) {
      this.log(`stop following: ${firstLine((error as Error).message)}`);
    }
  }

  /**
   * Points this standby at `leader` — unless, by the time the server has read it, this member no
   * longer follows that leader (a vote granted meanwhile): then it stops following again.
   */
  private async followLeader(leader: MemberAddress): Promise<boolean> {
    const changed = await this.pg.writeDynamic({ primaryConninfo: this.pg.conninfoFor(leader), syncStandbyNames: '' });
    if (changed && this.pg.postmasterPid() !== null) await this.pg.reload();
    if (this.liveLeader()?.name !== leader.name) {
      await this.stopFollowing();
      return false;
    }
    return changed;
  }

  /** This member's WAL position; null when it has no data; 'unknown' when it cannot be known safely. */
  private async position(): Promise<{ timeline: number; lsn: string } | null | 'unknown'> {
    if (!this.pg.hasData()) return this.state.get().positionBeforeClone ?? null;
    const obs = await this.pg.observe();
    if (obs.running)
      return obs.lsn !== null && obs.timeline !== null ? { lsn: obs.lsn, timeline: obs.timeline } : 'unknown';
    return (await this.pg.cleanShutdownPosition().catch(() => null)) ?? 'unknown';
  }

  private onHeartbeat(body: HeartbeatBody): HeartbeatAnswer {
    const st = this.state.get();
    if (!isHeartbeatBody(body)) return { ok: false, term: st.term, reason: 'malformed heartbeat' };
    if (body.term < st.term) return { ok: false, term: st.term, reason: `stale term ${body.term} < ${st.term}` };
    if (body.term > st.term) this.state.update({ term: body.term, votedFor: null });
    if (this.role === 'primary' && body.leader !== this.config.name)
      this.stepDown(`${body.leader} leads term ${body.term}`);
    if (this.knownLeader?.name !== body.leader || this.knownLeader.term !== body.term)
      this.log(`following ${body.leader} (term ${body.term})`);
    this.knownLeader = { name: body.leader, term: body.term, lsn: body.lsn, timeline: body.timeline };
    if (typeof body.switchoverId === 'string' && body.switchoverId !== this.state.get().handledSwitchover)
      this.state.update({ handledSwitchover: body.switchoverId });
    this.promisedUntil = now() + body.leaseMs;
    this.promisedTo = body.leader;
    this.lastHeartbeatAt = now();
    this.restartAllowedForMe = body.restartAllowed === this.config.name;
    this.leaderPgHealthy = body.pgHealthy !== false;
    return {
      ok: true,
      term: body.term,
      pendingRestart: this.pendingRestart,
      settings: this.appliedSettings,
      problem: this.unfitToLead(),
    };
  }

  /**
   * The leader gives its lease back. With a target (switchover), the promise stays for everyone
   * else — only the target may now be voted for, and nobody else stands — so the handover does not
   * turn into a race; without one (the leader is stopping), the promise simply ends.
   */
  private onRelease(body: { term: number; from: string; to: string | null }): { ok: boolean } {
    if (typeof body?.term !== 'number' || typeof body.from !== 'string') return { ok: false };
    if (body.term !== this.state.get().term || this.promisedTo !== body.from) return { ok: true };
    if (typeof body.to === 'string') this.handover = { to: body.to, until: now() + this.config.leaseMs };
    else {
      this.promisedUntil = 0;
      this.knownLeader = null;
    }
    return { ok: true };
  }

  // ─────────────────────────── leadership ───────────────────────────

  private leaseValid(): boolean {
    return this.role === 'primary' && (this.forcedLeader || now() < this.leaseUntil - FENCE_MARGIN_MS);
  }

  private fenceCheck(): void {
    if (this.role === 'primary' && !this.leaseValid()) this.fence('lease lost: no majority of peers renewed it');
  }

  private async heartbeatRound(): Promise<void> {
    if (this.role !== 'primary' || this.stopped) return;
    const c = this.config;
    const need = this.majority - 1;
    const term = this.state.get().term;
    const body: HeartbeatBody = {
      term,
      leader: c.name,
      lsn: this.obs.lsn,
      timeline: this.obs.timeline,
      leaseMs: c.leaseMs,
      switchoverId: this.state.get().handledSwitchover,
      restartAllowed: this.pickStandbyToRestart(),
      pgHealthy: this.pgProblem === null,
    };
    // A server that does not answer gets no lease (the probe fences it; this is the belt and braces).
    if (!mayRenewLease(now(), this.health(), this.unresponsiveMs, this.serverTransition !== null)) {
      await this.fenceHung();
      return;
    }
    if (need <= 0) this.leaseUntil = Infinity;
    await Promise.allSettled(
      c.peers.map(async (p) => {
        if (this.inFlight.has(p.name)) return;
        this.inFlight.add(p.name);
        const sentAt = now();
        try {
          const answer = await callPeer<HeartbeatAnswer>(
            p,
            c.peerToken,
            '/heartbeat',
            body,
            c.leaseMs / 2,
            this.config.host,
          );
          if (answer.ok && this.state.get().term === term) {
            this.peerPendingRestart.set(p.name, answer.pendingRestart === true);
            this.peerSettings.set(p.name, answer.settings ?? '');
            this.peerProblems.set(p.name, answer.problem ?? null);
            this.grants.set(p.name, sentAt + c.leaseMs);
            const best = [...this.grants.values()].sort((a, b) => b - a);
            const until = best[need - 1];
            if (until !== undefined && need > 0 && until > this.leaseUntil) this.leaseUntil = until;
            if (this.forcedLeader && best.length >= need) this.forcedLeader = false;
          } else if (answer.term > term) {
            this.state.update({ term: answer.term, votedFor: null });
            this.stepDown(`${p.name} is in term ${answer.term}`);
          }
        } catch {
          // An unreachable peer simply does not renew; the lease arithmetic decides.
        } finally {
          this.inFlight.delete(p.name);
        }
      }),
    );
  }

  /**
   * Stop being the primary NOW: the postmaster gets SIGQUIT (immediate stop); it restarts as a standby.
   * A server that did not answer (`kill`), or still runs a second later (frozen: a stopped process
   * does not act on SIGQUIT), is killed with every process it started.
   */
  private fence(reason: string, options: { kill?: boolean } = {}): void {
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

  private stepDown(reason: string): void {
    if (this.role === 'primary') this.fence(reason);
  }

  private syncStandbyNames(): string {
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

  // ─────────────────────────── switchover ───────────────────────────

  private async switchover(request: SwitchoverRequest): Promise<SwitchoverResult> {
    const c = this.config;
    const refuse = (reason: string): SwitchoverResult => ({ id: request.id, result: 'refused', reason, from: c.name });
    const replicas = this.obs.replicas;
    let targetName = request.to;
    if (targetName === null) {
      const best = replicas
        .filter((r) => r.state === 'streaming' && !c.maintenance.includes(r.name) && !this.peerProblems.get(r.name))
        .sort((a, b) => a.lagBytes - b.lagBytes)[0];
      if (best === undefined) return refuse('no standby is streaming, eligible and fit to lead');
      targetName = best.name;
    }
    if (targetName === c.name) return refuse(`${targetName} is already the primary`);
    const target = c.peers.find((p) => p.name === targetName);
    if (target === undefined) return refuse(`${targetName} is not a member of this cluster`);
    if (c.maintenance.includes(targetName)) return refuse(`${targetName} is in maintenance`);
    // Asked before this member stops: a target that cannot lead (a full disk) would leave nobody writable.
    const problem = this.peerProblems.get(targetName);
    if (problem) return refuse(`${targetName} cannot lead: ${problem}`);
    const replica = replicas.find((r) => r.name === targetName);
    if (replica?.state !== 'streaming') return refuse(`${targetName} is not streaming from the primary`);
    if (replica.lagBytes > c.maxLagBytes)
      return refuse(`${targetName} lags ${replica.lagBytes} bytes behind in replay (limit ${c.maxLagBytes})`);
    const t0 = now();
    await this.pg.checkpoint().catch(() => {});
    // The router holds new transactions and lets running ones end before this server stops (bounded).
    if (this.config.router) await pauseRouter(this.config, request.id, this.log);
    const tStop = now();
    const term = this.state.get().term;
    // The lease is renewed while PostgreSQL shuts down (it accepts no writes meanwhile, and the
    // shutdown waits for the last WAL to be sent and archived): the standbys must not see a dead
    // primary and start a failover in the middle of the handover.
    this.serverTransition = 'switchover';
    try {
      await this.pg.stop('fast');
    } finally {
      this.serverTransition = null;
      this.role = 'demoted';
      this.leaseUntil = 0;
    }
    const position = await this.pg.cleanShutdownPosition();
    this.state.update({ leaderOfTerm: null, mayHaveDiverged: position === null });
    await this.releasePeers(targetName);
    this.knownLeader = null;
    this.promisedUntil = 0;
    const tStopped = now();
    let answer: { ok: boolean; reason?: string };
    try {
      answer = await callPeer(
        target,
        c.peerToken,
        '/takeover',
        { term, from: c.name, lsn: position?.lsn ?? '0/0', switchoverId: request.id },
        20_000,
        c.host,
      );
    } catch (error) {
      answer = { ok: false, reason: (error as Error).message };
    }
    const tDone = now();
    this.role = 'standby';
    if (!answer.ok && (this.knownLeader as KnownLeader | null)?.name === targetName) answer = { ok: true }; // elected meanwhile
    if (!answer.ok) {
      this.addEvent('switchover', `switchover to ${targetName} failed: ${answer.reason ?? 'unknown'}`);
      return {
        id: request.id,
        result: 'failed',
        reason: answer.reason ?? 'takeover refused',
        from: c.name,
        to: targetName,
      };
    }
    this.addEvent('switchover', `handed over to ${targetName}`, {
      checkpoint: Math.round(tStop - t0),
      stop: Math.round(tStopped - tStop),
      takeover: Math.round(tDone - tStopped),
      total: Math.round(tDone - tStop),
    });
    return { id: request.id, result: 'done', from: c.name, to: targetName, durationMs: Math.round(tDone - tStop) };
  }

  private async releasePeers(to: string | null): Promise<void> {
    const c = this.config;
    const term = this.state.get().term;
    await Promise.allSettled(
      c.peers.map((p) => callPeer(p, c.peerToken, '/release', { term, from: c.name, to }, 500, this.config.host)),
    );
  }

  private async onTakeover(body: TakeoverBody): Promise<{ ok: boolean; reason?: string }> {
    if (typeof body?.lsn !== 'string' || typeof body.from !== 'string') return { ok: false, reason: 'malformed' };
    if (this.role !== 'standby') return { ok: false, reason: `${this.config.name} is ${this.role}, not a standby` };
    const unfit = this.unfitToLead();
    if (unfit !== null) return { ok: false, reason: `${this.config.name} cannot lead: ${unfit}` };
    const deadline = now() + 10_000;
    for (;;) {
      const obs = await this.pg.observe();
      if (obs.lsn !== null && lsnToBigInt(obs.lsn) > lsnToBigInt(body.lsn)) break;
      if (now() > deadline) return { ok: false, reason: `did not receive WAL beyond ${body.lsn} within 10 s` };
      await sleep(10);
    }
    if (this.promisedTo === body.from) this.promisedUntil = 0;
    if (typeof body.switchoverId === 'string') this.state.update({ handledSwitchover: body.switchoverId });
    while (this.ticking) await sleep(5);
    this.ticking = true;
    try {
      // The release may already have let this member win an ordinary election.
      if ((this.role as MemberRole) === 'primary') return { ok: true };
      const ok = await this.runElection({ planned: true, forced: false });
      return ok ? { ok } : { ok, reason: 'election lost' };
    } finally {
      this.ticking = false;
    }
  }

  // ───────────────────────────── rejoin ─────────────────────────────

  /**
   * Makes this member a standby of `leader` again: pg_rewind (when there is data and a rewind is
   * asked for), else — or when the rewind, or starting after it, fails — a fresh clone.
   */
  private async rejoin(leader: MemberAddress, how: 'rewind' | 'clone'): Promise<void> {
    const t0 = now();
    const free = this.pg.freeBytes();
    // A rewind or a clone needs room: on a full disk it only fails. When this member's own files are what
    // fills it (WAL it kept as a primary, what a failed pg_rewind copied), a clone that throws them away
    // first gets it streaming again; otherwise wait for space.
    let emptyFirst = false;
    if (free !== null && free < MIN_FREE_BYTES) {
      const room = this.pg.freeBytesWithoutOwnData();
      if (room === null || room < CLONE_ROOM_BYTES) {
        this.logElection(`not rejoining ${leader.name}: disk nearly full (${formatBytes(free)} free)`);
        this.followingSince = now();
        return;
      }
      how = 'clone';
      emptyFirst = true;
    }
    try {
      // The leader must answer before this member gives anything up (a hung leader made standbys stop
      // their servers and clone in a loop, while nobody could be elected).
      await this.pg.checkpointOn(leader);
    } catch (error) {
      this.logElection(`not rejoining ${leader.name}: it does not answer (${firstLine((error as Error).message)})`);
      this.followingSince = now();
      return;
    }
    this.role = 'rejoining';
    await this.pg.stop('fast');
    const follow = async (): Promise<void> => {
      await this.pg.writeDynamic({ primaryConninfo: this.pg.conninfoFor(leader), syncStandbyNames: '' });
      await this.pg.start({ standby: true });
      // A vote granted while this rejoin ran: the leader it rejoined is no longer the one to follow.
      if (this.liveLeader()?.name !== leader.name) await this.stopFollowing();
    };
    let kind: MemberEvent['kind'] = 'rejoin';
    let detail = `rewound from ${leader.name}`;
    let rewound = false;
    const timings: Record<string, number> = {};
    if (how === 'rewind' && this.pg.hasData() && this.rewindsWithoutStreaming < 2) {
      try {
        this.rewindsWithoutStreaming++;
        const tRewind = now();
        await this.pg.rewindFrom(leader);
        timings.rewind = Math.round(now() - tRewind);
        await follow();
        timings.start = Math.round(now() - tRewind) - timings.rewind;
        rewound = true;
      } catch (error) {
        this.log(`rejoin by pg_rewind failed, cloning instead: ${firstLine((error as Error).message)}`);
        detail = `pg_rewind failed (${firstLine((error as Error).message)}); cloned from ${leader.name}`;
        await this.pg.stop('immediate').catch(() => {});
      }
    } else
      detail = emptyFirst
        ? `cloned from ${leader.name}: disk nearly full (${formatBytes(free!)} free), its own files thrown away first`
        : `cloned from ${leader.name}`;
    if (!rewound) {
      kind = 'reclone';
      // The clone empties the data directory: until it is complete this member votes with the position
      // it had (it may hold commits it confirmed), never as an empty member.
      if (this.pg.hasData() && this.state.get().positionBeforeClone == null)
        this.state.update({
          positionBeforeClone:
            (await this.pg.cleanShutdownPosition().catch(() => null)) ??
            (this.obs.lsn !== null && this.obs.timeline !== null
              ? { lsn: this.obs.lsn, timeline: this.obs.timeline }
              : 'unknown'),
        });
      // What a failed rewind copied may have filled the disk.
      const left = this.pg.freeBytes();
      try {
        await this.pg.cloneFrom(leader, { emptyFirst: emptyFirst || (left !== null && left < MIN_FREE_BYTES) });
      } catch (error) {
        this.role = this.pg.hasData() ? 'stopped' : 'empty';
        this.followingSince = now();
        this.addEvent('reclone', `clone from ${leader.name} failed: ${firstLine((error as Error).message)}`, {
          total: Math.round(now() - t0),
        });
        return;
      }
      this.state.update({ positionBeforeClone: null });
      await follow();
      this.rewindsWithoutStreaming = 0;
    }
    this.state.update({ mayHaveDiverged: false });
    this.role = 'standby';
    this.followingSince = now();
    this.addEvent(
      kind,
      detail,
      rewound ? { ...timings, total: Math.round(now() - t0) } : { total: Math.round(now() - t0) },
    );
  }

  private async maybeAcceptDataLoss(): Promise<void> {
    const request = this.config.acceptDataLoss;
    const st = this.state.get();
    if (request === null || request.id === st.handledAcceptDataLoss) return;
    this.state.update({ handledAcceptDataLoss: request.id });
    if (request.member !== this.config.name) return;
    if (now() < this.promisedUntil) {
      this.log(`accept-data-loss ${request.id} ignored: a leader is alive`);
      return;
    }
    this.log(`accept-data-loss ${request.id} by ${request.by}: promoting without a majority`);
    this.addEvent('forced-promotion', `requested by ${request.by} (request ${request.id}); commits may be lost`);
    await this.runElection({ planned: false, forced: true });
  }

  // ─────────────────────────── reporting ───────────────────────────

  private addEvent(
    kind: MemberEvent['kind'],
    detail: string,
    timings?: Record<string, number>,
    change: Parameters<KeeperState['update']>[0] = {},
  ): void {
    this.state.addEvent(
      { at: new Date().toISOString(), kind, term: this.state.get().term, detail, ...(timings ? { timings } : {}) },
      change,
    );
  }

  status(): MemberStatus {
    const c = this.config;
    const st = this.state.get();
    const leaderLsn = this.knownLeader?.lsn;
    let lagBytes: number | null = null;
    if (this.role === 'primary') lagBytes = 0;
    else if (leaderLsn && this.obs.lsn)
      lagBytes = Math.max(0, Number(lsnToBigInt(leaderLsn) - lsnToBigInt(this.obs.lsn)));
    return {
      name: c.name,
      role: this.role,
      term: st.term,
      leader: this.role === 'primary' ? c.name : (this.liveLeader()?.name ?? null),
      leaseValid: this.leaseValid(),
      pgRunning: this.obs.running,
      timeline: this.obs.timeline,
      lsn: this.obs.lsn,
      lagBytes,
      streaming: this.obs.streaming,
      maintenance: c.maintenance.includes(c.name),
      paused: c.paused,
      syncStandbys: this.role === 'primary' ? this.syncStandbyNames() : null,
      replicas: this.obs.replicas,
      events: st.events.slice(-10),
      switchover: st.lastSwitchover,
      failovers: st.failovers,
      tls: this.certificate.status(),
      problem: this.unfitToLead(),
    };
  }

  /** `; disk full: 3 MiB free` when the disk explains a failure. */
  private diskNote(): string {
    const free = this.pg.freeBytes();
    const full = this.pg.diskFullInLog();
    if (free !== null && (free < MIN_FREE_BYTES || full !== null)) return `; disk full: ${formatBytes(free)} free`;
    return full !== null ? `; ${full}` : '';
  }

  private metrics(): string {
    const s = this.status();
    const m = `member="${s.name}"`;
    const roles = ['primary', 'standby', 'demoted', 'rejoining', 'empty', 'stopped'];
    const lastFailover = [...this.state.get().events].reverse().find((e) => e.kind === 'failover');
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
  private async publish(): Promise<void> {
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
    const dir = join(this.config.partitionPath, '.hox');
    if (!existsSync(dir)) await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'publish.json.tmp'), text);
    await rename(join(dir, 'publish.json.tmp'), join(dir, 'publish.json'));
    this.lastPublished = text;
  }
}

function isVoteBody(b: unknown): b is VoteBody {
  const v = b as VoteBody;
  return (
    typeof v === 'object' &&
    v !== null &&
    Number.isInteger(v.term) &&
    typeof v.candidate === 'string' &&
    typeof v.lsn === 'string' &&
    Number.isInteger(v.timeline) &&
    typeof v.planned === 'boolean' &&
    typeof v.preVote === 'boolean'
  );
}

function isHeartbeatBody(b: unknown): b is HeartbeatBody {
  const v = b as HeartbeatBody;
  return (
    typeof v === 'object' &&
    v !== null &&
    Number.isInteger(v.term) &&
    typeof v.leader === 'string' &&
    typeof v.leaseMs === 'number' &&
    v.leaseMs > 0 &&
    v.leaseMs <= 60_000
  );
}
