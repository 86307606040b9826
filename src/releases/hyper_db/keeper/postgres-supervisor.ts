/**
 * Watches this member's PostgreSQL and judges its fitness to lead. Health is judged by answers, not by
 * the postmaster's pid: a bounded probe every PROBE_EVERY_MS; a primary whose server stops answering
 * fences itself and kills the server. A member that just failed to lead (a hung server, a failed
 * promotion, a server that keeps dying, a full disk) does not stand for a while: the stand block. A
 * primary whose server stopped is restarted in place, at most MAX_PG_RESTARTS times in
 * PG_RESTART_WINDOW_MS. The rules themselves are election-rules.ts's; this class holds what they read.
 */
import { formatBytes } from '../../../shared/bytes.js';
import {
  MAX_PG_RESTARTS,
  MIN_FREE_BYTES,
  mustFenceUnresponsive,
  PG_RESTART_WINDOW_MS,
  primaryServerDown,
  PROBE_TIMEOUT_MS,
  STAND_BLOCK_MS,
  unfitToLead,
  unresponsiveMsFor,
  type MemberHealth,
} from './election-rules.js';
import { now, type KeeperCore } from './keeper-core.js';

/** What the supervisor reads and changes of the keeper. */
export type SupervisorCore = Pick<
  KeeperCore,
  | 'config'
  | 'pg'
  | 'role'
  | 'stopped'
  | 'killing'
  | 'log'
  | 'addEvent'
  | 'fence'
  | 'stepDown'
  | 'syncStandbyNames'
  | 'releasePeers'
>;

export class PostgresSupervisor {
  /** When PostgreSQL last answered a probe (or finished starting). */
  private pgAnsweredAt = now();
  /** Why the last probe failed (null: it answered). */
  private pgProblem: string | null = null;
  private probing = false;
  /** PostgreSQL is being stopped or started on purpose (switchover, restart in place): not hung, and bounded. */
  serverTransition: string | null = null;
  /** A member that just failed to lead (promotion failed, PostgreSQL kept dying) does not stand before this. */
  private standBlockedUntil = 0;
  private standBlockedReason = '';
  /** The health problem last reported as an event (one event per change, not per tick). */
  private reportedProblem: string | null = null;
  private pgRestarts: number[] = [];

  constructor(private readonly core: SupervisorCore) {}

  /** The last probe found the server answering. */
  get pgHealthy(): boolean {
    return this.pgProblem === null;
  }

  /**
   * No answer from PostgreSQL for this long and the primary fences itself (and kills its server). Long
   * enough that a loaded machine (a slow fork, a slow fsync) is not taken for a hung server: a needless
   * failover costs every session.
   */
  get unresponsiveMs(): number {
    return unresponsiveMsFor(this.core.config.leaseMs);
  }

  /**
   * Asks PostgreSQL for an answer (a bounded query; on a primary, whether WAL still advances while
   * sessions wait for it). A primary whose server stops answering stops renewing its lease and fences
   * itself, killing the server (it may be frozen), and does not stand again for a while: a live keeper
   * beside a hung server must not hold the cluster without a primary.
   */
  async probe(): Promise<void> {
    const core = this.core;
    if (this.probing || core.stopped) return;
    if (core.pg.postmasterPid() === null) {
      // Not running is not hung: the tick restarts it (in place on the primary, up to MAX_PG_RESTARTS).
      this.pgProblem = 'PostgreSQL is not running';
      this.pgAnsweredAt = now();
      return;
    }
    this.probing = true;
    try {
      const t0 = now();
      const answer = await core.pg.probe(PROBE_TIMEOUT_MS, this.unresponsiveMs);
      const tookMs = now() - t0;
      if (answer.ok) {
        this.pgAnsweredAt = now();
        this.pgProblem = null;
      } else if (tookMs > PROBE_TIMEOUT_MS * 2 + 1000) {
        // The keeper itself was stalled (its timers fired late): this says nothing about the server.
        return;
      } else this.pgProblem = answer.reason;
      if (this.serverTransition !== null) this.pgAnsweredAt = now();
      if (mustFenceUnresponsive(now(), core.role, this.health(), this.unresponsiveMs)) await this.fenceHung();
    } finally {
      this.probing = false;
    }
  }

  /** A primary whose server has not answered for unresponsiveMs: fenced, its server killed, not standing for 30 s. */
  async fenceHung(): Promise<void> {
    const core = this.core;
    if (core.role !== 'primary' || core.stopped) return;
    const silentMs = now() - this.pgAnsweredAt;
    const why = `PostgreSQL does not answer for ${Math.round(silentMs)} ms (${this.pgProblem ?? 'no answer'})`;
    core.fence(why, { kill: true });
    // Once the hung server is dead the peers' promises may end: it can accept nothing any more.
    await core.killing;
    this.blockStanding(why, STAND_BLOCK_MS.unresponsive);
  }

  /**
   * Why this member must not lead now (null: it may stand). It needs a server that answers, room on its
   * disk, and no recent failure to lead.
   */
  unfitToLead(): string | null {
    return unfitToLead(now(), this.health());
  }

  /** What this member knows of its own fitness, as the rules in election-rules.ts read it. */
  health(): MemberHealth {
    return {
      pgAnsweredAt: this.pgAnsweredAt,
      pgProblem: this.pgProblem,
      freeBytes: this.core.pg.freeBytes(),
      standBlockedUntil: this.standBlockedUntil,
      standBlockedReason: this.standBlockedReason,
    };
  }

  /** One `health` event per change of this member's problem (and one when it is fit again). */
  reportHealth(): void {
    const free = this.core.pg.freeBytes();
    const problem =
      free !== null && free < MIN_FREE_BYTES
        ? `disk nearly full: ${formatBytes(free)} free on ${this.core.config.name}'s data filesystem`
        : now() < this.standBlockedUntil
          ? this.standBlockedReason
          : null;
    if (problem === this.reportedProblem) return;
    this.core.addEvent(
      'health',
      problem ?? `fit again${this.reportedProblem ? ` (was: ${this.reportedProblem})` : ''}`,
    );
    this.core.log(`health: ${problem ?? 'fit again'}`);
    this.reportedProblem = problem;
  }

  /** Not standing for a while after failing to lead; the peers' promises end at once so another may stand. */
  blockStanding(reason: string, ms: number): void {
    this.standBlockedUntil = now() + ms;
    this.standBlockedReason = reason;
    void this.core.releasePeers(null);
  }

  /**
   * The primary's server is down: restart it in place, or — on a full disk, or after MAX_PG_RESTARTS
   * in PG_RESTART_WINDOW_MS — step down and block standing (election-rules.ts primaryServerDown).
   */
  async restartPrimary(): Promise<void> {
    const core = this.core;
    const t = now();
    this.pgRestarts = this.pgRestarts.filter((at) => t - at < PG_RESTART_WINDOW_MS);
    const free = core.pg.freeBytes();
    const verdict = primaryServerDown(t, this.pgRestarts, free);
    if (verdict.action === 'step-down') {
      // Restarting in place on a full disk only crashes again, and a server that keeps crashing is
      // no primary: a healthy standby takes over instead.
      const inLog = core.pg.diskFullInLog();
      const why =
        verdict.reason === 'disk-full'
          ? `PostgreSQL stopped and the disk is full: ${formatBytes(free ?? 0)} free${inLog === null ? '' : ` (${inLog})`}`
          : `PostgreSQL died again after ${MAX_PG_RESTARTS} restarts in place within ${PG_RESTART_WINDOW_MS / 1000} s${this.diskNote()}`;
      core.stepDown(why);
      this.blockStanding(why, verdict.blockMs);
      return;
    }
    this.pgRestarts.push(t);
    core.log('PostgreSQL is down on the primary: restarting it in place');
    await core.pg.writeDynamic({ primaryConninfo: '', syncStandbyNames: core.syncStandbyNames() });
    this.serverTransition = 'restarting in place';
    try {
      await core.pg.start({ standby: false });
    } finally {
      this.serverTransition = null;
    }
    this.pgAnsweredAt = now();
    if (core.role !== 'primary') {
      core.fence('lease lost while restarting');
      return;
    }
    core.addEvent('restart', `PostgreSQL restarted in place`, { total: Math.round(now() - t) });
  }

  /** `; disk full: 3 MiB free` when the disk explains a failure. */
  diskNote(): string {
    const free = this.core.pg.freeBytes();
    const full = this.core.pg.diskFullInLog();
    if (free !== null && (free < MIN_FREE_BYTES || full !== null)) return `; disk full: ${formatBytes(free)} free`;
    return full !== null ? `; ${full}` : '';
  }
}
