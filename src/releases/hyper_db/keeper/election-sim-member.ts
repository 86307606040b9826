/**
 * One member of the election simulation (election-sim.ts): the keeper's loop over a model of its
 * PostgreSQL. Every decision comes from election-rules.ts, the functions the keeper calls; the loop
 * mirrors keeper.ts, and each method says which Keeper method it stands for. Where the keeper awaits
 * (a PostgreSQL command, a peer's answer) the model continues in a callback the world runs later in
 * virtual time, so interleavings the keeper's awaits allow are the ones explored here.
 *
 * The PostgreSQL model: a process that is down or running, possibly SIGSTOPped (`hung`: it exists and
 * answers nothing), in recovery (a standby) or not (a primary), with a WAL position (timeline, lsn) in
 * the world's timeline tree. A standby streams from the member named in its conninfo when that one runs
 * as a primary, both answer, the link is up both ways and the standby's WAL is a prefix of the
 * upstream's; it then has everything the upstream has (replication is instantaneous over a live link).
 */
import type { VoteAnswer, VoteBody } from '../protocol.js';
import {
  FENCE_CHECK_MS,
  MAX_PG_RESTARTS,
  NOTHING_OBSERVED,
  PG_RESTART_WINDOW_MS,
  STAND_JITTER_MS,
  TICK_MS,
  decideHeartbeat,
  decideRelease,
  decideVote,
  electionRetryAt,
  grantUntil,
  leaderRefusal,
  leaseUntilFromGrants,
  leaseValid,
  mayRejoin,
  mayRenewLease,
  mayStand,
  notStreamingTooLong,
  pgResponsive,
  preVoteRetryAt,
  stillFreeToStand,
  type HealthConfig,
  type MemberHealth,
  type VoterState,
  type WalPosition,
} from './election-rules.js';

/** `issue-12`: the rules of election-rules.ts as the keeper will use them; `before-issue-12`: the keeper as it was. */
export type SimRules = 'issue-12' | 'before-issue-12';

/** Durations of the world's operations, in virtual ms ([min, max] are drawn uniformly). */
export interface SimTiming {
  leaseMs: number;
  heartbeatMs: number;
  health: HealthConfig;
  /** A probe of a server that does not answer gives up after this long. */
  probeTimeoutMs: number;
  /** The keeper's observe() of a server that does not answer (its connection timeout). */
  observeTimeoutMs: number;
  /** observe() of a server that answers. */
  observeMs: number;
  pgStartMs: [number, number];
  pgStopMs: number;
  promoteMs: [number, number];
  /** pg_ctl promote against a server that does not answer gives up after this long. */
  promoteTimeoutMs: number;
  rewindMs: [number, number];
  cloneMs: [number, number];
  /** pg_rewind / pg_basebackup against a source that does not answer give up after this long. */
  sourceTimeoutMs: number;
  maxLagBytes: number;
  /** WAL bytes one commit adds. */
  commitBytes: number;
}

export interface SimPosition {
  timeline: number;
  lsn: number;
}

export type PeerMessage =
  | {
      kind: 'heartbeat';
      body: {
        term: number;
        leader: string;
        lsn: string | null;
        timeline: number | null;
        leaseMs: number;
        pgHealthy: boolean;
      };
    }
  | { kind: 'vote'; body: VoteBody }
  | { kind: 'release'; body: { term: number; from: string; to: string | null } };

export interface HeartbeatReply {
  ok: boolean;
  term: number;
}

/** What a member needs from the world it lives in (implemented by election-sim.ts). */
export interface SimWorld {
  readonly now: number;
  readonly rules: SimRules;
  readonly timing: SimTiming;
  readonly memberCount: number;
  /** Uniform in [0, 1), from the run's seeded generator. */
  random(): number;
  /** Runs `fn` on `member`'s keeper after `ms` (deferred while the keeper is paused, dropped once it crashed). */
  after(member: SimMember, ms: number, fn: () => void): void;
  /** Runs `fn` after `ms` whatever the keeper does (PostgreSQL's own life). */
  later(ms: number, fn: () => void): void;
  /** A peer call: `onAnswer(null)` when it times out or is lost. */
  call(from: SimMember, to: string, message: PeerMessage, timeoutMs: number, onAnswer: (answer: unknown) => void): void;
  member(name: string): SimMember;
  /** The link is up both ways (replication, pg_rewind, pg_basebackup). */
  linked(a: string, b: string): boolean;
  /** A standby's upstream when it streams now (and it then has the upstream's WAL), else null. */
  upstreamOf(member: SimMember): SimMember | null;
  /** A promotion: the new timeline forking from `at`. */
  newTimeline(at: SimPosition): number;
  /** The last position `pos` shares with `source` (what pg_rewind keeps). */
  forkPoint(pos: SimPosition, source: SimPosition): SimPosition;
  /** A promotion succeeded (durability check, statistics). */
  promoted(member: SimMember, timings: { detect: number; total: number }): void;
  trace(member: SimMember, text: string): void;
}

export interface PgModel {
  proc: 'down' | 'running';
  /** SIGSTOPped: the processes exist and answer nothing. */
  hung: boolean;
  /** SIGQUIT while stopped: it dies when thawed. */
  quitPending: boolean;
  /** standby.signal: runs in recovery. */
  inRecovery: boolean;
  conninfo: string | null;
  hasData: boolean;
  pos: SimPosition;
  /** Stopped by pg_ctl stop (a clean shutdown checkpoint tells its position). */
  cleanShutdown: boolean;
  /** It exited without being asked to (the keeper's next observation counts a crash). */
  exitedUnexpectedly: boolean;
  /** Bumped at every start, so that a crash scheduled for an earlier run does nothing. */
  generation: number;
}

/** Faults the world injects into this member. */
export interface MemberFaults {
  crashed: boolean;
  keeperPaused: boolean;
  diskFull: boolean;
  /** PostgreSQL crashes this long after each start (null: it does not). */
  crashLoopMs: number | null;
}

interface Observation {
  running: boolean;
  inRecovery: boolean | null;
  timeline: number | null;
  lsn: number | null;
  streaming: boolean;
}

const NOT_RUNNING: Observation = { running: false, inRecovery: null, timeline: null, lsn: null, streaming: false };
const UNKNOWN: Observation = { ...NOT_RUNNING, running: true };
const VOTE_TIMEOUT_MS = 1000;
const RELEASE_TIMEOUT_MS = 500;
const FREE_BYTES = 10 * 2 ** 30;

export function lsnText(lsn: number, commitBytes: number): string {
  const bytes = lsn * commitBytes;
  return `${Math.floor(bytes / 2 ** 32).toString(16)}/${(bytes % 2 ** 32).toString(16).toUpperCase()}`;
}

export class SimMember {
  /** Bumped at each crash: the world drops events of an earlier life. */
  incarnation = 0;
  readonly faults: MemberFaults = { crashed: false, keeperPaused: false, diskFull: false, crashLoopMs: null };
  readonly pg: PgModel = {
    proc: 'running',
    hung: false,
    quitPending: false,
    inRecovery: true,
    conninfo: null,
    hasData: true,
    pos: { timeline: 1, lsn: 0 },
    cleanShutdown: false,
    exitedUnexpectedly: false,
    generation: 0,
  };
  /** KeeperState: fsynced, survives crashes. */
  readonly disk = {
    term: 0,
    votedFor: null as string | null,
    leaderOfTerm: null as number | null,
    mayHaveDiverged: false,
    /** Issue 12: the position before a clone emptied the data directory, until the clone is complete. */
    positionBeforeClone: null as SimPosition | null,
  };
  role: 'empty' | 'standby' | 'primary' | 'demoted' | 'rejoining' | 'stopped' = 'stopped';
  leaseUntil = 0;
  promisedUntil = 0;
  promisedTo: string | null = null;
  knownLeader: { name: string; term: number; lsn: string | null; pgHealthy: boolean } | null = null;
  health: MemberHealth = { ...NOTHING_OBSERVED, pgCrashes: [] };
  private obs: Observation = NOT_RUNNING;
  private ticking = false;
  private lastHeartbeatAt = 0;
  private followingSince = 0;
  private electionBackoffUntil = 0;
  private grants = new Map<string, number>();
  private inFlight = new Set<string>();
  private pgRestarts: number[] = [];
  private rewindsWithoutStreaming = 0;

  constructor(
    readonly name: string,
    readonly peers: readonly string[],
    private readonly world: SimWorld,
  ) {}

  private get majority(): number {
    return Math.floor(this.world.memberCount / 2) + 1;
  }

  private get newRules(): boolean {
    return this.world.rules === 'issue-12';
  }

  private draw([min, max]: [number, number]): number {
    return min + Math.floor(this.world.random() * (max - min + 1));
  }

  /** Keeper.start: keep any promise made before a crash for one lease; start the three timers. */
  start(): void {
    const w = this.world;
    this.obs = this.observeNow();
    this.lastHeartbeatAt = w.now;
    this.promisedUntil = w.now + w.timing.leaseMs;
    if (!this.obs.running && this.pg.hasData && (this.disk.leaderOfTerm !== null || !this.pg.inRecovery)) {
      this.disk.mayHaveDiverged = true;
      this.disk.leaderOfTerm = null;
    }
    if (this.obs.running && this.obs.inRecovery === false)
      this.fence('PostgreSQL runs as a primary this keeper did not elect');
    else if (this.obs.running) this.role = 'standby';
    else this.role = this.pg.hasData ? 'stopped' : 'empty';
    this.every(TICK_MS, () => this.tick());
    this.every(FENCE_CHECK_MS, () => this.fenceCheck());
    this.every(w.timing.heartbeatMs, () => this.heartbeatRound());
  }

  /** The member's machine dies: keeper and PostgreSQL at once; only `disk` and the data survive. */
  crash(): void {
    this.incarnation++;
    this.faults.crashed = true;
    this.killPg('SIGKILL');
    this.role = 'stopped';
    this.ticking = false;
    this.leaseUntil = 0;
    this.knownLeader = null;
    this.grants = new Map();
    this.inFlight = new Set();
    this.pgRestarts = [];
    this.rewindsWithoutStreaming = 0;
    this.electionBackoffUntil = 0;
    this.health = { ...NOTHING_OBSERVED, pgCrashes: [] };
  }

  private every(ms: number, fn: () => void): void {
    this.world.after(this, ms, () => {
      fn();
      this.every(ms, fn);
    });
  }

  // ───────────────────────────── the loop ─────────────────────────────

  /** Keeper.tick (+ the probe of issue 12): observe, then act as primary or follower. */
  private tick(): void {
    if (this.ticking) return;
    this.ticking = true;
    const done = (): void => {
      this.ticking = false;
    };
    this.probe((answered) =>
      this.observe(answered, (obs) => {
        this.obs = obs;
        if (this.role === 'primary') this.actAsPrimary(done);
        else this.actAsFollower(done);
      }),
    );
  }

  /** PostgresControl.probe and freeBytes: a bounded query; a server that does not answer costs the timeout. */
  private probe(then: (answered: boolean) => void): void {
    if (!this.newRules) return then(true);
    this.health = { ...this.health, freeBytes: this.faults.diskFull ? 0 : FREE_BYTES };
    if (this.pg.proc === 'down') return then(false);
    if (this.pg.hung) return this.world.after(this, this.world.timing.probeTimeoutMs, () => then(false));
    this.health = { ...this.health, lastProbeOkAt: this.world.now };
    then(true);
  }

  /** PostgresControl.observe; an unexpected exit is counted as a crash (issue 12's repeated crashes). */
  private observe(answered: boolean, then: (obs: Observation) => void): void {
    if (this.pg.exitedUnexpectedly) {
      this.pg.exitedUnexpectedly = false;
      const t = this.world.now;
      this.health = {
        ...this.health,
        pgCrashes: [...this.health.pgCrashes.filter((at) => t - at < PG_RESTART_WINDOW_MS), t],
      };
    }
    if (this.pg.proc === 'running' && this.pg.hung) {
      // Before issue 12 the keeper waited for the connection timeout; with the probe it knows already.
      if (!answered) return then(UNKNOWN);
      return this.world.after(this, this.world.timing.observeTimeoutMs, () => then(this.observeNow()));
    }
    then(this.observeNow());
  }

  private observeNow(): Observation {
    const pg = this.pg;
    if (pg.proc === 'down') return NOT_RUNNING;
    if (pg.hung) return UNKNOWN;
    const streaming = pg.inRecovery && this.world.upstreamOf(this) !== null;
    return { running: true, inRecovery: pg.inRecovery, timeline: pg.pos.timeline, lsn: pg.pos.lsn, streaming };
  }

  /** Keeper.actAsPrimary: restart PostgreSQL in place, at most MAX_PG_RESTARTS a window, else step down. */
  private actAsPrimary(done: () => void): void {
    if (this.obs.running) return done();
    const t = this.world.now;
    this.pgRestarts = this.pgRestarts.filter((at) => t - at < PG_RESTART_WINDOW_MS);
    if (this.pgRestarts.length >= MAX_PG_RESTARTS) {
      this.stepDown(`PostgreSQL died ${MAX_PG_RESTARTS} times in ${PG_RESTART_WINDOW_MS / 1000} s`);
      return done();
    }
    this.pgRestarts.push(t);
    this.world.trace(this, 'PostgreSQL is down on the primary: restarting it in place');
    this.pg.conninfo = null;
    this.pgStart(false, () => {
      if (this.role !== 'primary') this.fence('lease lost while restarting');
      done();
    });
  }

  /** Keeper.actAsFollower: clone, fence a stray primary, follow the leader, rejoin, or stand. */
  private actAsFollower(done: () => void): void {
    const leader = this.liveLeader();
    const w = this.world;
    if (!this.pg.hasData) {
      this.role = 'empty';
      return leader !== null ? this.rejoin(leader, 'clone', done) : done();
    }
    if (this.obs.running && this.obs.inRecovery === false) {
      this.fence('PostgreSQL runs as a primary but this member is not the leader');
      return done();
    }
    if (leader !== null) {
      if (this.disk.mayHaveDiverged) return this.rejoin(leader, 'rewind', done);
      if (this.pg.conninfo !== leader) {
        this.pg.conninfo = leader;
        this.followingSince = w.now;
      }
      if (!this.obs.running)
        return this.pgStart(true, (ok) => {
          if (ok) {
            this.role = 'standby';
            this.followingSince = w.now;
          } else this.disk.mayHaveDiverged = true;
          done();
        });
      this.role = 'standby';
      const streaming = { now: w.now, streaming: this.obs.streaming, followingSince: this.followingSince };
      if (this.obs.streaming) {
        this.followingSince = w.now;
        this.rewindsWithoutStreaming = 0;
      } else if (
        this.newRules
          ? mayRejoin({ ...streaming, leaderPgHealthy: this.knownLeader?.pgHealthy === true })
          : notStreamingTooLong(streaming)
      ) {
        w.trace(this, `not streaming from ${leader}: rejoining`);
        return this.rejoin(leader, 'rewind', done);
      }
      return done();
    }
    if (!this.obs.running) {
      this.pg.conninfo = null;
      return this.pgStart(true, (ok) => {
        if (ok) this.role = 'standby';
        done();
      });
    }
    this.role = 'standby';
    this.maybeStandForElection(done);
  }

  /** Keeper.liveLeader. */
  private liveLeader(): string | null {
    if (this.knownLeader === null || this.world.now > this.promisedUntil) return null;
    if (this.knownLeader.name === this.name) return null;
    return this.knownLeader.name;
  }

  // ──────────────────────────── elections ────────────────────────────

  /** Keeper.maybeStandForElection: mayStand (before issue 12: leaderRefusal only). */
  private maybeStandForElection(done: () => void): void {
    const w = this.world;
    const input = {
      now: w.now,
      paused: false,
      inMaintenance: false,
      promisedUntil: this.promisedUntil,
      jitterMs: Math.floor(w.random() * STAND_JITTER_MS),
      electionBackoffUntil: this.electionBackoffUntil,
      position: this.walPosition(this.obs),
      leaderLsn: this.knownLeader?.lsn ?? null,
      maxLagBytes: w.timing.maxLagBytes,
      restoreNotReady: false,
      health: this.health,
      healthConfig: w.timing.health,
    };
    const decision = this.newRules ? mayStand(input) : leaderRefusal(input);
    if (!decision.stand) {
      if (decision.backoffUntil !== undefined) this.electionBackoffUntil = decision.backoffUntil;
      if (decision.quiet !== true) this.logElection(decision.reason);
      return done();
    }
    this.runElection(done);
  }

  private lastElectionLog = { key: '', at: -Infinity };

  /** Keeper.logElection: the same line (numbers aside) at most once per 10 s. */
  private logElection(text: string): void {
    const key = text.replace(/\d+/g, '#');
    if (key === this.lastElectionLog.key && this.world.now - this.lastElectionLog.at < 10_000) return;
    this.lastElectionLog = { key, at: this.world.now };
    this.world.trace(this, text);
  }

  private walPosition(obs: { lsn: number | null; timeline: number | null }): WalPosition | null {
    if (obs.lsn === null || obs.timeline === null) return null;
    return { timeline: obs.timeline, lsn: lsnText(obs.lsn, this.world.timing.commitBytes) };
  }

  /** Keeper.runElection (not planned, not forced): pre-vote, vote in term + 1, promote. */
  private runElection(done: () => void): void {
    const w = this.world;
    const tStart = w.now;
    const detect = this.lastHeartbeatAt > 0 ? tStart - this.lastHeartbeatAt : 0;
    const obs = this.observeNow();
    const position = this.walPosition(obs);
    if (position === null || obs.inRecovery !== true) return done();
    const request = { ...position, planned: false, candidate: this.name };
    this.collectVotes({ ...request, term: this.disk.term + 1, preVote: true }, (pre) => {
      if (pre.votes < this.majority) {
        this.electionBackoffUntil = preVoteRetryAt(w.now, pre.retryInMs, w.random());
        this.logElection(`pre-vote lost: ${pre.votes}/${w.memberCount} (${pre.refusals.join('; ')})`);
        return done();
      }
      const bound = this.newRules
        ? stillFreeToStand({
            now: w.now,
            self: this.name,
            promisedUntil: this.promisedUntil,
            promisedTo: this.promisedTo,
          })
        : null;
      if (bound !== null) {
        w.trace(this, `not standing: ${bound}`);
        return done();
      }
      const t0 = w.now;
      const term = this.disk.term + 1;
      this.disk.term = term;
      this.disk.votedFor = this.name;
      this.collectVotes({ ...request, term, preVote: false }, (vote) => {
        if (vote.votes < this.majority) {
          this.electionBackoffUntil = electionRetryAt(w.now, w.random());
          this.logElection(
            `election for term ${term} lost: ${vote.votes}/${w.memberCount} (${vote.refusals.join('; ')})`,
          );
          return done();
        }
        if (this.disk.term !== term) return done();
        this.role = 'primary';
        this.leaseUntil = t0 + w.timing.leaseMs;
        this.grants.clear();
        this.knownLeader = { name: this.name, term, lsn: request.lsn, pgHealthy: true };
        this.disk.leaderOfTerm = term;
        this.disk.mayHaveDiverged = false;
        w.trace(this, `elected in term ${term} with ${vote.votes}/${w.memberCount} votes: promoting`);
        this.pgPromote((ok) => {
          if (!ok) {
            w.trace(this, 'promotion failed');
            this.stepDown('promotion failed');
            if (this.newRules) {
              this.health = {
                ...this.health,
                promotionFailures: this.health.promotionFailures + 1,
                lastPromotionFailureAt: w.now,
              };
              this.releasePeers();
            }
            return done();
          }
          this.health = { ...this.health, promotionFailures: 0 };
          this.heartbeatRound();
          w.promoted(this, { detect, total: w.now - tStart + detect });
          done();
        });
      });
    });
  }

  /** Keeper.collectVotes: settles once a majority granted or every peer answered (or timed out). */
  private collectVotes(
    body: VoteBody,
    then: (result: { votes: number; refusals: string[]; retryInMs: number | null }) => void,
  ): void {
    let votes = 1;
    let answered = 0;
    let retryInMs: number | null = null;
    let settled = false;
    const refusals: string[] = [];
    const settle = (): void => {
      if (settled || (votes < this.majority && answered < this.peers.length)) return;
      settled = true;
      then({ votes, refusals, retryInMs });
    };
    for (const peer of this.peers)
      this.world.call(this, peer, { kind: 'vote', body }, VOTE_TIMEOUT_MS, (raw) => {
        const a = raw as VoteAnswer | null;
        if (a === null) refusals.push(`${peer}: unreachable`);
        else if (a.granted) votes++;
        else {
          refusals.push(`${peer}: ${a.reason ?? 'refused'}`);
          if (typeof a.retryInMs === 'number') retryInMs = Math.min(retryInMs ?? Infinity, a.retryInMs);
          if (!body.preVote && a.term > this.disk.term) {
            this.disk.term = a.term;
            this.disk.votedFor = null;
          }
        }
        answered++;
        settle();
      });
  }

  /**
   * Keeper.onVote. With issue 12's rules the position is read first and decideVote runs on the state
   * as it is then. Before, the keeper checked term and vote on arrival, awaited the position, and then
   * recorded the vote without looking again: modelled as it was.
   */
  onVote(body: VoteBody, reply: (answer: VoteAnswer) => void): void {
    const w = this.world;
    const voter = (position: VoterState['position']): VoterState => ({
      now: w.now,
      term: this.disk.term,
      votedFor: this.disk.votedFor,
      primaryWithValidLease: this.leaseValidNow(),
      promisedUntil: this.promisedUntil,
      promisedTo: this.promisedTo,
      handover: null,
      paused: false,
      maintenance: [],
      peerNames: this.peers,
      leaseMs: w.timing.leaseMs,
      position,
    });
    const onArrival = this.newRules ? null : voter(null);
    if (onArrival !== null) {
      const early = decideVote(onArrival, body);
      if (!early.answer.granted) return reply(early.answer);
    }
    this.position((position) => {
      const decision = decideVote(onArrival === null ? voter(position) : { ...onArrival, now: w.now, position }, body);
      const change = decision.change;
      if (change !== null) {
        this.disk.term = change.term;
        this.disk.votedFor = change.votedFor;
        this.promisedUntil = change.promisedUntil;
        this.promisedTo = change.promisedTo;
        // Before issue 12 the voter went on streaming from the leader it followed until a heartbeat.
        if (this.newRules && change.stopFollowing) {
          this.pg.conninfo = null;
          this.knownLeader = null;
        }
        w.trace(this, `voted for ${change.votedFor} in term ${change.term}`);
      }
      reply(decision.answer);
    });
  }

  /** Keeper.position: observe (the connection timeout when hung), else the clean shutdown checkpoint. */
  private position(then: (position: VoterState['position']) => void): void {
    const w = this.world;
    const pg = this.pg;
    if (!pg.hasData) return then(this.disk.positionBeforeClone && this.walPosition(this.disk.positionBeforeClone));
    if (pg.proc === 'running') {
      if (pg.hung) return w.after(this, w.timing.observeTimeoutMs, () => then('unknown'));
      return w.after(this, w.timing.observeMs, () => then(this.walPosition(this.observeNow()) ?? 'unknown'));
    }
    then(pg.cleanShutdown ? (this.walPosition(pg.pos) ?? 'unknown') : 'unknown');
  }

  /** Keeper.onHeartbeat. */
  onHeartbeat(body: Extract<PeerMessage, { kind: 'heartbeat' }>['body']): HeartbeatReply {
    const now = this.world.now;
    const d = decideHeartbeat({ now, self: this.name, term: this.disk.term, role: this.role }, body);
    if (!d.ok) return { ok: false, term: d.term };
    if (d.newTerm !== null) {
      this.disk.term = d.newTerm;
      this.disk.votedFor = null;
    }
    if (d.stepDown) this.stepDown(`${body.leader} leads term ${body.term}`);
    if (this.knownLeader?.name !== body.leader || this.knownLeader.term !== body.term)
      this.world.trace(this, `following ${body.leader} (term ${body.term})`);
    this.knownLeader = { name: body.leader, term: body.term, lsn: body.lsn, pgHealthy: body.pgHealthy };
    this.promisedUntil = d.promisedUntil ?? now;
    this.promisedTo = body.leader;
    this.lastHeartbeatAt = now;
    return { ok: true, term: d.term };
  }

  /** Keeper.onRelease (no switchover in the model: the promise ends). */
  onRelease(body: { term: number; from: string; to: string | null }): { ok: boolean } {
    const w = this.world;
    const d = decideRelease(
      { now: w.now, term: this.disk.term, promisedTo: this.promisedTo, leaseMs: w.timing.leaseMs },
      body,
    );
    if (d.kind === 'end-promise') {
      this.promisedUntil = 0;
      this.knownLeader = null;
    }
    return { ok: true };
  }

  // ─────────────────────────── leadership ───────────────────────────

  leaseValidNow(): boolean {
    return leaseValid({ role: this.role, forcedLeader: false, leaseUntil: this.leaseUntil, now: this.world.now });
  }

  /** Keeper.fenceCheck. */
  private fenceCheck(): void {
    if (this.role === 'primary' && !this.leaseValidNow()) this.fence('lease lost: no majority of peers renewed it');
  }

  /** Keeper.heartbeatRound; with issue 12's rules only while PostgreSQL answers (mayRenewLease). */
  private heartbeatRound(): void {
    const w = this.world;
    if (this.role !== 'primary') return;
    if (this.newRules && !mayRenewLease(w.now, this.health, w.timing.health)) return;
    const need = this.majority - 1;
    const term = this.disk.term;
    const position = this.walPosition(this.obs);
    const body = {
      term,
      leader: this.name,
      lsn: position?.lsn ?? null,
      timeline: position?.timeline ?? null,
      leaseMs: w.timing.leaseMs,
      pgHealthy: this.newRules ? pgResponsive(w.now, this.health, w.timing.health) : true,
    };
    for (const peer of this.peers) {
      if (this.inFlight.has(peer)) continue;
      this.inFlight.add(peer);
      const sentAt = w.now;
      w.call(this, peer, { kind: 'heartbeat', body }, w.timing.leaseMs / 2, (raw) => {
        this.inFlight.delete(peer);
        const a = raw as HeartbeatReply | null;
        if (a === null) return;
        if (a.ok && this.disk.term === term) {
          this.grants.set(peer, grantUntil(sentAt, w.timing.leaseMs));
          this.leaseUntil = leaseUntilFromGrants(this.grants.values(), need, this.leaseUntil);
        } else if (a.term > term) {
          this.disk.term = a.term;
          this.disk.votedFor = null;
          this.stepDown(`${peer} is in term ${a.term}`);
        }
      });
    }
  }

  /** Keeper.fence: the postmaster is killed (SIGKILL with issue 12: a frozen server dies too; SIGQUIT before). */
  private fence(reason: string): void {
    this.role = 'demoted';
    this.leaseUntil = 0;
    this.killPg(this.newRules ? 'SIGKILL' : 'SIGQUIT');
    this.disk.mayHaveDiverged = true;
    this.disk.leaderOfTerm = null;
    if (this.knownLeader?.name === this.name) this.knownLeader = null;
    this.world.trace(this, `fenced: ${reason}`);
  }

  /** Keeper.stepDown. */
  private stepDown(reason: string): void {
    if (this.role === 'primary') this.fence(reason);
  }

  /** Keeper.releasePeers (to nobody): issue 12 calls it after a failed promotion. */
  private releasePeers(): void {
    const body = { term: this.disk.term, from: this.name, to: null };
    for (const peer of this.peers) this.world.call(this, peer, { kind: 'release', body }, RELEASE_TIMEOUT_MS, () => {});
  }

  // ───────────────────────────── rejoin ─────────────────────────────

  /** Keeper.rejoin: pg_rewind (at most twice without streaming in between), else a fresh clone. */
  private rejoin(leader: string, how: 'rewind' | 'clone', done: () => void): void {
    const w = this.world;
    this.role = 'rejoining';
    const finish = (): void => {
      this.disk.mayHaveDiverged = false;
      this.role = 'standby';
      this.followingSince = w.now;
      done();
    };
    const follow = (then: (ok: boolean) => void): void => {
      // Issue 12: a vote granted meanwhile cut replication from `leader`; a rejoin must not restore it.
      this.pg.conninfo = !this.newRules || this.liveLeader() === leader ? leader : null;
      this.pgStart(true, then);
    };
    const clone = (): void =>
      this.pgClone(leader, (ok) => {
        if (!ok) return done();
        follow((started) => {
          if (!started) return done();
          this.rewindsWithoutStreaming = 0;
          finish();
        });
      });
    this.pgStop(() => {
      if (how === 'rewind' && this.pg.hasData && this.rewindsWithoutStreaming < 2) {
        this.rewindsWithoutStreaming++;
        this.pgRewind(leader, (ok) => {
          if (!ok) {
            w.trace(this, `rejoin by pg_rewind from ${leader} failed, cloning instead`);
            return clone();
          }
          follow((started) => (started ? finish() : clone()));
        });
      } else clone();
    });
  }

  // ─────────────────────── the PostgreSQL model ───────────────────────

  /** pg_ctl start: a primary needs disk space for its end-of-recovery checkpoint; a standby does not. */
  private pgStart(standby: boolean, then: (ok: boolean) => void): void {
    const w = this.world;
    w.after(this, this.draw(w.timing.pgStartMs), () => {
      const pg = this.pg;
      if (pg.proc === 'running') return then(!pg.hung && pg.inRecovery === standby);
      if (!pg.hasData || (!standby && this.faults.diskFull)) return then(false);
      pg.proc = 'running';
      pg.hung = false;
      pg.quitPending = false;
      pg.inRecovery = standby;
      pg.cleanShutdown = false;
      const generation = ++pg.generation;
      const crashAfter = this.faults.crashLoopMs;
      if (crashAfter !== null)
        w.later(crashAfter, () => {
          if (pg.generation === generation && pg.proc === 'running' && !this.faults.crashed) this.pgCrash();
        });
      then(true);
    });
  }

  /** pg_ctl stop -m fast (a stopped server is killed after a while, as the keeper's stop escalates). */
  private pgStop(then: () => void): void {
    const w = this.world;
    w.after(this, this.pg.hung ? w.timing.sourceTimeoutMs : w.timing.pgStopMs, () => {
      if (this.pg.proc === 'running') {
        const clean = !this.pg.hung;
        this.killPg('SIGKILL');
        this.pg.cleanShutdown = clean;
      }
      then();
    });
  }

  /** pg_ctl promote: a new timeline; fails on a server that is down or hung, and on a full disk (PANIC). */
  private pgPromote(then: (ok: boolean) => void): void {
    const w = this.world;
    const pg = this.pg;
    if (pg.proc === 'down') return then(false);
    if (pg.hung) return w.after(this, w.timing.promoteTimeoutMs, () => then(false));
    const generation = pg.generation;
    w.after(this, this.draw(w.timing.promoteMs), () => {
      if (pg.proc === 'down' || pg.hung || pg.generation !== generation) return then(false);
      if (this.faults.diskFull) {
        this.pgCrash();
        return then(false);
      }
      pg.inRecovery = false;
      pg.conninfo = null;
      pg.pos = { timeline: w.newTimeline(pg.pos), lsn: pg.pos.lsn };
      then(true);
    });
  }

  /** pg_rewind from the leader: back to the last shared position (it streams the rest). */
  private pgRewind(leader: string, then: (ok: boolean) => void): void {
    const w = this.world;
    const source = w.member(leader);
    if (!this.sourceAnswers(source)) return w.after(this, w.timing.sourceTimeoutMs, () => then(false));
    w.after(this, this.draw(w.timing.rewindMs), () => {
      if (!this.sourceAnswers(source)) return then(false);
      this.pg.pos = w.forkPoint(this.pg.pos, source.pg.pos);
      then(true);
    });
  }

  /** pg_basebackup from the leader: the data directory is emptied first. */
  private pgClone(leader: string, then: (ok: boolean) => void): void {
    const w = this.world;
    const source = w.member(leader);
    if (this.newRules && this.pg.hasData) this.disk.positionBeforeClone = this.pg.pos;
    this.pg.hasData = false;
    if (!this.sourceAnswers(source)) return w.after(this, w.timing.sourceTimeoutMs, () => then(false));
    w.after(this, this.draw(w.timing.cloneMs), () => {
      if (!this.sourceAnswers(source) || this.faults.diskFull) return then(false);
      this.pg.hasData = true;
      this.disk.positionBeforeClone = null;
      this.pg.inRecovery = true;
      this.pg.pos = { ...source.pg.pos };
      then(true);
    });
  }

  private sourceAnswers(source: SimMember): boolean {
    return (
      source.pg.proc === 'running' && !source.pg.hung && source.pg.hasData && this.world.linked(this.name, source.name)
    );
  }

  /** The server dies on its own (a crash loop, a PANIC on a full disk). */
  pgCrash(): void {
    this.killPg('SIGKILL');
    this.pg.exitedUnexpectedly = true;
  }

  killPg(signal: 'SIGQUIT' | 'SIGKILL'): void {
    const pg = this.pg;
    if (pg.proc === 'down') return;
    if (signal === 'SIGQUIT' && pg.hung) {
      pg.quitPending = true;
      return;
    }
    pg.proc = 'down';
    pg.hung = false;
    pg.quitPending = false;
    pg.cleanShutdown = false;
  }

  /** SIGSTOP / SIGCONT of the PostgreSQL processes. */
  setHung(hung: boolean): void {
    const pg = this.pg;
    if (pg.proc === 'down') return;
    pg.hung = hung;
    if (!hung && pg.quitPending) this.killPg('SIGKILL');
  }
}
