/**
 * The PostgreSQL of one simulated member (election-sim-member.ts): what the keeper's PostgresControl
 * does to it, in virtual time.
 *
 * A process that is down or running, possibly SIGSTOPped (`hung`: it exists and answers nothing), in
 * recovery (a standby) or not (a primary), with a WAL position (timeline, lsn) in the world's timeline
 * tree. A standby streams from the member named in its conninfo when that one runs as a primary, both
 * answer, the link is up both ways and the standby's WAL is a prefix of the upstream's; it then has
 * everything the upstream has (replication is instantaneous over a live link: the world decides).
 * A full disk: a primary PANICs on its next WAL write and cannot start as a primary nor promote; a
 * standby runs but receives nothing.
 */
import type { MemberFaults, SimMember, SimPosition, SimWorld } from './election-sim-member.js';

export class SimPostgres {
  /** 'starting': the postmaster exists (a fence kills it) but accepts no connection yet. */
  proc: 'down' | 'starting' | 'running' = 'running';
  /** SIGSTOPped: the processes exist and answer nothing. */
  hung = false;
  /** SIGQUIT while stopped: it dies when thawed. */
  quitPending = false;
  /** standby.signal: runs in recovery. */
  inRecovery = true;
  conninfo: string | null = null;
  hasData = true;
  pos: SimPosition = { timeline: 1, lsn: 0 };
  /** Stopped by pg_ctl stop: its shutdown checkpoint tells its position. */
  cleanShutdown = false;
  /** Bumped at every start, so that what was scheduled for an earlier run does nothing. */
  generation = 0;

  constructor(
    private readonly world: SimWorld,
    private readonly owner: SimMember,
    private readonly faults: MemberFaults,
  ) {}

  /** Runs and answers queries. */
  get answers(): boolean {
    return this.proc === 'running' && !this.hung;
  }

  private draw([min, max]: [number, number]): number {
    return min + Math.floor(this.world.random() * (max - min + 1));
  }

  /**
   * A command the keeper runs (pg_ctl, pg_rewind…): its effect happens after `ms` whatever the keeper
   * does (a frozen keeper's child goes on), unless the machine crashed meanwhile; the keeper hears of
   * the outcome when it runs.
   */
  private command(ms: number, effect: () => boolean, then: (ok: boolean) => void): void {
    const incarnation = this.owner.incarnation;
    this.world.later(ms, () => {
      if (this.owner.incarnation !== incarnation) return;
      const ok = effect();
      this.world.after(this.owner, 0, () => then(ok));
    });
  }

  /** pg_ctl start: a primary needs room for its end-of-recovery checkpoint; a standby does not. */
  start(standby: boolean, then: (ok: boolean) => void): void {
    const w = this.world;
    if (this.proc !== 'down') return this.command(0, () => this.answers && this.inRecovery === standby, then);
    if (!this.hasData) return this.command(0, () => false, then);
    this.proc = 'starting';
    this.hung = false;
    this.quitPending = false;
    this.inRecovery = standby;
    this.cleanShutdown = false;
    const generation = ++this.generation;
    this.command(
      this.draw(w.timing.pgStartMs),
      () => {
        // Killed while starting (a fence), or no room for a primary's end-of-recovery checkpoint.
        if (this.proc !== 'starting' || this.generation !== generation) return false;
        if (!standby && this.faults.diskFull) {
          this.proc = 'down';
          return false;
        }
        this.proc = 'running';
        const crashAfter = this.faults.crashLoopMs;
        if (crashAfter !== null)
          w.later(crashAfter, () => {
            if (this.generation === generation && this.proc === 'running' && !this.faults.crashed) this.crash();
          });
        return true;
      },
      then,
    );
  }

  /** pg_ctl stop -m fast; a stopped server does not shut down: it is killed after a while. */
  stop(then: () => void): void {
    const w = this.world;
    this.command(
      this.hung ? w.timing.sourceTimeoutMs : w.timing.pgStopMs,
      () => {
        if (this.proc !== 'down') {
          const clean = this.proc === 'running' && !this.hung;
          this.kill('SIGKILL');
          this.cleanShutdown = clean;
        }
        return true;
      },
      then,
    );
  }

  /** pg_ctl promote: a new timeline; fails on a server that is down or hung, and on a full disk (PANIC). */
  promote(then: (ok: boolean) => void): void {
    const w = this.world;
    if (this.proc !== 'running') return this.command(0, () => false, then);
    if (this.hung) return this.command(w.timing.promoteTimeoutMs, () => false, then);
    const generation = this.generation;
    this.command(
      this.draw(w.timing.promoteMs),
      () => {
        if (!this.answers || this.generation !== generation) return false;
        if (this.faults.diskFull) {
          this.crash();
          return false;
        }
        this.inRecovery = false;
        this.conninfo = null;
        this.pos = { timeline: w.newTimeline(this.pos), lsn: this.pos.lsn };
        return true;
      },
      then,
    );
  }

  /** A CHECKPOINT on `source` (the keeper asks a leader for one before rejoining it). */
  checkpointOn(source: SimMember, then: (ok: boolean) => void): void {
    const w = this.world;
    if (!this.reaches(source)) return this.command(w.timing.sourceTimeoutMs, () => false, then);
    this.command(w.timing.observeMs, () => this.reaches(source), then);
  }

  /** pg_rewind from `source`: back to the last position both share (streaming brings the rest). */
  rewindFrom(source: SimMember, then: (ok: boolean) => void): void {
    const w = this.world;
    if (!this.reaches(source)) return this.command(w.timing.sourceTimeoutMs, () => false, then);
    this.command(
      this.draw(w.timing.rewindMs),
      () => {
        if (!this.reaches(source)) return false;
        this.pos = w.forkPoint(this.pos, source.pg.pos);
        return true;
      },
      then,
    );
  }

  /** pg_basebackup from `source`: the data directory is emptied first. */
  cloneFrom(source: SimMember, then: (ok: boolean) => void): void {
    const w = this.world;
    this.hasData = false;
    if (!this.reaches(source)) return this.command(w.timing.sourceTimeoutMs, () => false, then);
    this.command(
      this.draw(w.timing.cloneMs),
      () => {
        if (!this.reaches(source) || this.faults.diskFull) return false;
        this.hasData = true;
        this.inRecovery = true;
        this.pos = source.pg.pos;
        return true;
      },
      then,
    );
  }

  private reaches(source: SimMember): boolean {
    return source.pg.answers && source.pg.hasData && this.world.linked(this.owner.name, source.name);
  }

  /** The server dies on its own (a crash loop, a PANIC on a full disk). */
  crash(): void {
    this.kill('SIGKILL');
  }

  /** SIGQUIT (immediate shutdown; a stopped process acts on it when thawed) or SIGKILL. */
  kill(signal: 'SIGQUIT' | 'SIGKILL'): void {
    if (this.proc === 'down') return;
    if (signal === 'SIGQUIT' && this.hung) {
      this.quitPending = true;
      return;
    }
    this.proc = 'down';
    this.hung = false;
    this.quitPending = false;
    this.cleanShutdown = false;
  }

  /** SIGSTOP / SIGCONT of the PostgreSQL processes. */
  setHung(hung: boolean): void {
    if (this.proc !== 'running') return;
    this.hung = hung;
    if (!hung && this.quitPending) this.kill('SIGKILL');
  }
}
