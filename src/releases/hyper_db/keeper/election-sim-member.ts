/**
 * One member of the election simulation (election-sim.ts): the keeper's loop over a model of its
 * PostgreSQL (election-sim-postgres.ts). Every decision comes from election-rules.ts, the functions
 * the keeper calls; the loop mirrors keeper.ts, and each method names the Keeper method it stands for.
 * Where the keeper awaits (a PostgreSQL command, a peer's answer) the model continues in a callback the
 * world runs later in virtual time, so the interleavings the keeper's awaits allow are explored here.
 *
 * Long because it follows keeper.ts method for method, so that one can be read against the other.
 *
 * Two rule sets: `issue-12`, the keeper with issue 12's health rules and the five safety fixes the
 * simulation called for (each can be left out, `SafetyFix`, to show it is needed); `before-issue-12`,
 * the keeper as it was before commit 118f9cf.
 */
import type { VoteAnswer, VoteBody } from '../protocol.js';
import {
  FENCE_CHECK_MS,
  FIT,
  MAX_PG_RESTARTS,
  PG_RESTART_WINDOW_MS,
  PROBE_EVERY_MS,
  PROBE_TIMEOUT_MS,
  STAND_BLOCK_MS,
  STAND_JITTER_MS,
  TICK_MS,
  VOTE_TIMEOUT_BEFORE_MS,
  VOTE_TIMEOUT_MS,
  decideHeartbeat,
  decideRelease,
  decideVote,
  electionRetryAt,
  grantUntil,
  leaseUntilFromGrants,
  leaseValid,
  mayRejoin,
  mayRenewLease,
  mayStand,
  mustFenceUnresponsive,
  notStreamingTooLong,
  preVoteRetryAt,
  primaryServerDown,
  promotionBackoffMs,
  resumedLeaseUntil,
  stillFreeToStand,
  type MemberHealth,
  type VoterState,
  type WalPosition,
} from './election-rules.js';
import { SimPostgres } from './election-sim-postgres.js';

/** `issue-12`: the rules of election-rules.ts as the keeper is to use them; `before-issue-12`: the keeper as it was. */
export type SimRules = 'issue-12' | 'before-issue-12';

/**
 * The safety rules the simulation found missing (each documented in election-rules.ts):
 * `vote-after-position` (decideVote once the position is known), `free-to-stand` (stillFreeToStand),
 * `stop-following` (VoteChange.stopFollowing), `position-before-clone` (VoterState.position),
 * `lease-from-grants` (resumedLeaseUntil).
 */
export const SAFETY_FIXES = [
  'vote-after-position',
  'free-to-stand',
  'stop-following',
  'position-before-clone',
  'lease-from-grants',
] as const;
export type SafetyFix = (typeof SAFETY_FIXES)[number];

/** Durations of the world's operations, in virtual ms ([min, max] are drawn uniformly). */
export interface SimTiming {
  leaseMs: number;
  heartbeatMs: number;
  /** The primary fences itself after this long without an answer from its PostgreSQL. */
  unresponsiveMs: number;
  /** The keeper's observe() of a server that does not answer (its connection timeout). */
  observeTimeoutMs: number;
  /** A query to a server that answers. */
  observeMs: number;
  pgStartMs: [number, number];
  pgStopMs: number;
  promoteMs: [number, number];
  /** pg_ctl promote against a server that does not answer gives up after this long. */
  promoteTimeoutMs: number;
  rewindMs: [number, number];
  cloneMs: [number, number];
  /** CHECKPOINT, pg_rewind, pg_basebackup against a source that does not answer give up after this long. */
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
  readonly timing: SimTiming;
  readonly memberCount: number;
  /** Issue 12's health rules are in force. */
  readonly healthRules: boolean;
  /** This safety fix is in force. */
  fixed(fix: SafetyFix): boolean;
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
const RELEASE_TIMEOUT_MS = 500;
const FREE_BYTES = 10 * 2 ** 30;
/** Keeper.fence: SIGQUIT, then SIGKILL this much later if the postmaster is still there (at once when asked). */
const KILL_AFTER_MS = 1000;

export function lsnText(lsn: number, commitBytes: number): string {
  const bytes = lsn * commitBytes;
  return `${Math.floor(bytes / 2 ** 32).toString(16)}/${(bytes % 2 ** 32).toString(16).toUpperCase()}`;
}

export class SimMember {
  /** Bumped at each crash: the world drops events of an earlier life. */
  incarnation = 0;
  readonly faults: MemberFaults = { crashed: false, keeperPaused: false, diskFull: false, crashLoopMs: null };
  readonly pg: SimPostgres;
  /** KeeperState: fsynced, survives crashes. */
  readonly disk = {
    term: 0,
    votedFor: null as string | null,
    leaderOfTerm: null as number | null,
    mayHaveDiverged: false,
    /** The position before a clone emptied the data directory, until the clone is complete. */
    positionBeforeClone: null as SimPosition | null,
  };
  role: 'empty' | 'standby' | 'primary' | 'demoted' | 'rejoining' | 'stopped' = 'stopped';
  leaseUntil = 0;
  promisedUntil = 0;
  promisedTo: string | null = null;
  knownLeader: { name: string; term: number; lsn: string | null } | null = null;
  health: MemberHealth = { ...FIT };
  private leaderPgHealthy = true;
  private obs: Observation = NOT_RUNNING;
  private ticking = false;
  private probing = false;
  /** The keeper is starting or promoting its server: a probe's silence says nothing. */
  private inTransition = false;
  private lastHeartbeatAt = 0;
  private followingSince = 0;
  private electionBackoffUntil = 0;
  private promotionFailures = 0;
  private grants = new Map<string, number>();
  private inFlight = new Set<string>();
  private pgRestarts: number[] = [];
  private rewindsWithoutStreaming = 0;
  private lastElectionLog = { key: '', at: -Infinity };

  constructor(
    readonly name: string,
    readonly peers: readonly string[],
    private readonly world: SimWorld,
  ) {
    this.pg = new SimPostgres(world, this, this.faults);
  }

  private get majority(): number {
    return Math.floor(this.world.memberCount / 2) + 1;
  }

  /** Keeper.start: keep any promise made before a crash for one lease; start the timers. */
  start(): void {
    const w = this.world;
    this.obs = this.observeNow();
    this.lastHeartbeatAt = w.now;
    this.promisedUntil = w.now + w.timing.leaseMs;
    this.health = { ...FIT, pgAnsweredAt: w.now };
    if (!this.obs.running && this.pg.hasData && (this.disk.leaderOfTerm !== null || !this.pg.inRecovery)) {
      this.disk.mayHaveDiverged = true;
      this.disk.leaderOfTerm = null;
    }
    const timers = (): void => {
      this.every(TICK_MS, () => this.tick());
      this.every(FENCE_CHECK_MS, () => this.fenceCheck());
      this.every(w.timing.heartbeatMs, () => this.heartbeatRound());
      if (w.healthRules) this.every(PROBE_EVERY_MS, () => this.probe());
    };
    if (this.obs.running && this.obs.inRecovery === false) {
      if (this.disk.leaderOfTerm === this.disk.term && this.disk.term > 0) {
        // A restarted keeper whose PostgreSQL kept running as primary resumes if the peers still grant it.
        this.role = 'primary';
        this.leaseUntil = resumedLeaseUntil(w.now, w.timing.heartbeatMs, w.fixed('lease-from-grants'));
        w.trace(this, `resuming as primary of term ${this.disk.term}`);
        return this.heartbeatRound(timers);
      }
      this.fence('PostgreSQL runs as a primary this keeper did not elect');
    } else if (this.obs.running) this.role = 'standby';
    else this.role = this.pg.hasData ? 'stopped' : 'empty';
    timers();
  }

  /** The member's machine dies (keeper and PostgreSQL), or its keeper alone; `disk` and the data survive. */
  crash(options: { keeperOnly?: boolean } = {}): void {
    this.incarnation++;
    this.faults.crashed = true;
    if (options.keeperOnly !== true) this.pg.kill('SIGKILL');
    this.role = 'stopped';
    this.ticking = false;
    this.probing = false;
    this.inTransition = false;
    this.leaseUntil = 0;
    this.knownLeader = null;
    this.grants = new Map();
    this.inFlight = new Set();
    this.pgRestarts = [];
    this.rewindsWithoutStreaming = 0;
    this.electionBackoffUntil = 0;
    this.promotionFailures = 0;
  }

  private every(ms: number, fn: () => void): void {
    this.world.after(this, ms, () => {
      fn();
      this.every(ms, fn);
    });
  }

  private freeBytes(): number {
    return this.faults.diskFull ? 0 : FREE_BYTES;
  }

  // ───────────────────────────── the loop ─────────────────────────────

  /** Keeper.tick: observe, then act as primary or follower. */
  private tick(): void {
    if (this.ticking) return;
    this.ticking = true;
    this.observe((obs) => {
      this.obs = obs;
      const done = (): void => {
        this.ticking = false;
      };
      if (this.role === 'primary') this.actAsPrimary(done);
      else this.actAsFollower(done);
    });
  }

  /** PostgresControl.observe: a server that does not answer costs the connection timeout. */
  private observe(then: (obs: Observation) => void): void {
    if (this.pg.proc === 'running' && this.pg.hung)
      return this.world.after(this, this.world.timing.observeTimeoutMs, () => then(this.observeNow()));
    then(this.observeNow());
  }

  private observeNow(): Observation {
    const pg = this.pg;
    if (pg.proc === 'down') return NOT_RUNNING;
    if (pg.proc === 'starting' || pg.hung) return UNKNOWN;
    const streaming = pg.inRecovery && this.world.upstreamOf(this) !== null;
    return { running: true, inRecovery: pg.inRecovery, timeline: pg.pos.timeline, lsn: pg.pos.lsn, streaming };
  }

  /**
   * Keeper.probe (issue 12): a bounded query every PROBE_EVERY_MS. A primary whose server has not
   * answered for `unresponsiveMs` fences itself, killing the server, and does not stand for a while.
   */
  private probe(): void {
    const w = this.world;
    if (this.probing) return;
    if (this.pg.proc === 'down') {
      // Not running is not hung: the tick restarts it.
      this.health = { ...this.health, pgProblem: 'PostgreSQL is not running', pgAnsweredAt: w.now };
      return;
    }
    this.probing = true;
    const t0 = w.now;
    const hung = this.pg.proc === 'running' && this.pg.hung;
    w.after(this, hung ? PROBE_TIMEOUT_MS : w.timing.observeMs, () => {
      this.probing = false;
      if (!hung && this.pg.answers) this.health = { ...this.health, pgAnsweredAt: w.now, pgProblem: null };
      else if (w.now - t0 > PROBE_TIMEOUT_MS * 2 + 1000)
        return; // the keeper itself was stalled
      else this.health = { ...this.health, pgProblem: 'no answer within the probe timeout' };
      if (this.inTransition) this.health = { ...this.health, pgAnsweredAt: w.now };
      if (mustFenceUnresponsive(w.now, this.role, this.health, w.timing.unresponsiveMs)) this.fenceHung();
    });
  }

  /** Keeper.fenceHung: fenced, its server killed, then (the server dead) not standing for 30 s. */
  private fenceHung(): void {
    if (this.role !== 'primary') return;
    const why = `PostgreSQL does not answer for ${this.world.now - this.health.pgAnsweredAt} ms`;
    this.fence(why, { kill: true });
    this.blockStanding(why, STAND_BLOCK_MS.unresponsive);
  }

  /** Keeper.blockStanding: not standing for a while; the voters' promises end at once. */
  private blockStanding(reason: string, ms: number): void {
    this.health = { ...this.health, standBlockedUntil: this.world.now + ms, standBlockedReason: reason };
    this.releasePeers();
  }

  /** Keeper.actAsPrimary: restart PostgreSQL in place, or step down (full disk, too many crashes). */
  private actAsPrimary(done: () => void): void {
    const w = this.world;
    if (this.obs.running) return done();
    const t = w.now;
    this.pgRestarts = this.pgRestarts.filter((at) => t - at < PG_RESTART_WINDOW_MS);
    if (w.healthRules) {
      const verdict = primaryServerDown(t, this.pgRestarts, this.freeBytes());
      if (verdict.action === 'step-down') {
        const why =
          verdict.reason === 'disk-full'
            ? 'PostgreSQL stopped and the disk is full'
            : 'PostgreSQL died 3 times in 60 s';
        this.stepDown(why);
        this.blockStanding(why, verdict.blockMs);
        return done();
      }
    } else if (this.pgRestarts.length >= MAX_PG_RESTARTS) {
      this.stepDown(
        `PostgreSQL died again after ${MAX_PG_RESTARTS} restarts in place within ${PG_RESTART_WINDOW_MS / 1000} s`,
      );
      return done();
    }
    this.pgRestarts.push(t);
    w.trace(this, 'PostgreSQL is down on the primary: restarting it in place');
    this.pg.conninfo = null;
    this.inTransition = true;
    this.pg.start(false, () => {
      this.inTransition = false;
      this.health = { ...this.health, pgAnsweredAt: w.now };
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
        return this.pg.start(true, (ok) => {
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
      } else if (notStreamingTooLong(streaming)) {
        if (w.healthRules && !mayRejoin({ ...streaming, leaderPgHealthy: this.leaderPgHealthy })) {
          this.logElection(`not streaming from ${leader}, whose PostgreSQL does not answer: waiting`);
          return done();
        }
        w.trace(this, `not streaming from ${leader}: rejoining`);
        return this.rejoin(leader, 'rewind', done);
      }
      return done();
    }
    if (!this.obs.running) {
      this.pg.conninfo = null;
      return this.pg.start(true, (ok) => {
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

  /** Keeper.maybeStandForElection (before issue 12: without the health rules). */
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
      health: { ...this.health, freeBytes: this.freeBytes() },
    };
    const decision = mayStand(input, { healthRules: w.healthRules });
    if (!decision.stand) {
      if (decision.backoffUntil !== undefined) this.electionBackoffUntil = decision.backoffUntil;
      if (decision.quiet !== true) this.logElection(decision.reason);
      return done();
    }
    this.runElection(done);
  }

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
      const promised = w.fixed('free-to-stand')
        ? stillFreeToStand({
            now: w.now,
            self: this.name,
            promisedUntil: this.promisedUntil,
            promisedTo: this.promisedTo,
          })
        : null;
      if (promised !== null) {
        w.trace(this, `not standing: ${promised}`);
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
        this.knownLeader = { name: this.name, term, lsn: request.lsn };
        this.disk.leaderOfTerm = term;
        this.disk.mayHaveDiverged = false;
        w.trace(this, `elected in term ${term} with ${vote.votes}/${w.memberCount} votes: promoting`);
        this.inTransition = true;
        this.pg.promote((promotedOk) => {
          this.inTransition = false;
          const ok = promotedOk && this.role === 'primary';
          if (!ok) return this.promotionFailed(done);
          this.promotionFailures = 0;
          this.heartbeatRound();
          w.promoted(this, { detect, total: w.now - tStart + detect });
          done();
        });
      });
    });
  }

  /** Keeper.runElection's catch: step down; with issue 12, back off (2 s doubling to 60 s) and release the voters. */
  private promotionFailed(done: () => void): void {
    const w = this.world;
    w.trace(this, 'promotion failed');
    this.stepDown('promotion failed');
    if (w.healthRules) {
      this.promotionFailures++;
      this.blockStanding('promotion failed', promotionBackoffMs(this.promotionFailures));
    }
    done();
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
    const timeoutMs = this.world.healthRules ? VOTE_TIMEOUT_MS : VOTE_TIMEOUT_BEFORE_MS;
    for (const peer of this.peers)
      this.world.call(this, peer, { kind: 'vote', body }, timeoutMs, (raw) => {
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
   * Keeper.onVote. Fixed: the position is read first and decideVote runs on the state as it is then.
   * Before, the keeper checked term and vote on arrival, awaited the position, and then recorded the
   * vote without looking again: modelled as it was.
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
    const onArrival = w.fixed('vote-after-position') ? null : voter(null);
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
        if (change.stopFollowing && w.fixed('stop-following')) {
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
    if (!pg.hasData) {
      const before = w.fixed('position-before-clone') ? this.disk.positionBeforeClone : null;
      return then(before === null ? null : this.walPosition(before));
    }
    if (pg.proc === 'starting') return w.after(this, w.timing.observeMs, () => then('unknown'));
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
    this.knownLeader = { name: body.leader, term: body.term, lsn: body.lsn };
    this.promisedUntil = d.promisedUntil ?? now;
    this.promisedTo = body.leader;
    this.lastHeartbeatAt = now;
    this.leaderPgHealthy = body.pgHealthy;
    return { ok: true, term: d.term };
  }

  /** Keeper.onRelease (no switchover in the model: the promise ends). */
  onRelease(body: { term: number; from: string; to: string | null }): { ok: boolean } {
    const w = this.world;
    const follower = { now: w.now, term: this.disk.term, promisedTo: this.promisedTo, leaseMs: w.timing.leaseMs };
    if (decideRelease(follower, body).kind === 'end-promise') {
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

  /** Keeper.heartbeatRound; with issue 12 only while PostgreSQL answers (mayRenewLease), saying whether it does. */
  private heartbeatRound(settled: () => void = () => {}): void {
    const w = this.world;
    if (this.role !== 'primary') return settled();
    if (w.healthRules && !mayRenewLease(w.now, this.health, w.timing.unresponsiveMs, this.inTransition)) {
      this.fenceHung();
      return settled();
    }
    const need = this.majority - 1;
    const term = this.disk.term;
    const position = this.walPosition(this.obs);
    const body = {
      term,
      leader: this.name,
      lsn: position?.lsn ?? null,
      timeline: position?.timeline ?? null,
      leaseMs: w.timing.leaseMs,
      pgHealthy: !w.healthRules || this.health.pgProblem === null,
    };
    let waiting = 1;
    const one = (): void => {
      if (--waiting === 0) settled();
    };
    for (const peer of this.peers) {
      if (this.inFlight.has(peer)) continue;
      this.inFlight.add(peer);
      waiting++;
      const sentAt = w.now;
      w.call(this, peer, { kind: 'heartbeat', body }, w.timing.leaseMs / 2, (raw) => {
        this.inFlight.delete(peer);
        one();
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
    one();
  }

  /**
   * Keeper.fence: SIGQUIT to the postmaster; with issue 12 a SIGKILL follows (at once with `kill`, else
   * after KILL_AFTER_MS if it is still there): a frozen server acts on nothing else.
   */
  private fence(reason: string, options: { kill?: boolean } = {}): void {
    const w = this.world;
    this.role = 'demoted';
    this.leaseUntil = 0;
    const pg = this.pg;
    if (pg.proc !== 'down') {
      pg.kill(options.kill === true ? 'SIGKILL' : 'SIGQUIT');
      const generation = pg.generation;
      if (w.healthRules)
        w.after(this, options.kill === true ? 0 : KILL_AFTER_MS, () => {
          if (pg.proc !== 'down' && pg.generation === generation) pg.kill('SIGKILL');
        });
    }
    this.disk.mayHaveDiverged = true;
    this.disk.leaderOfTerm = null;
    if (this.knownLeader?.name === this.name) this.knownLeader = null;
    w.trace(this, `fenced: ${reason}`);
  }

  /** Keeper.stepDown. */
  private stepDown(reason: string): void {
    if (this.role === 'primary') this.fence(reason);
  }

  /** Keeper.releasePeers (to nobody). */
  private releasePeers(): void {
    const body = { term: this.disk.term, from: this.name, to: null };
    for (const peer of this.peers) this.world.call(this, peer, { kind: 'release', body }, RELEASE_TIMEOUT_MS, () => {});
  }

  // ───────────────────────────── rejoin ─────────────────────────────

  /**
   * Keeper.rejoin: with issue 12 only once the leader answered a CHECKPOINT; pg_rewind (at most twice
   * without streaming in between), else a fresh clone.
   */
  private rejoin(leader: string, how: 'rewind' | 'clone', done: () => void): void {
    const w = this.world;
    const source = w.member(leader);
    if (w.healthRules)
      return this.pg.checkpointOn(source, (ok) => {
        if (ok) return this.rejoinNow(leader, how, done);
        this.logElection(`not rejoining ${leader}: it does not answer`);
        this.followingSince = w.now;
        done();
      });
    this.rejoinNow(leader, how, done);
  }

  private rejoinNow(leader: string, how: 'rewind' | 'clone', done: () => void): void {
    const w = this.world;
    const source = w.member(leader);
    this.role = 'rejoining';
    const finish = (): void => {
      this.disk.mayHaveDiverged = false;
      this.role = 'standby';
      this.followingSince = w.now;
      done();
    };
    const follow = (then: (ok: boolean) => void): void => {
      // A vote granted meanwhile cut replication from `leader` (stop-following): a rejoin must not restore it.
      this.pg.conninfo = !w.fixed('stop-following') || this.liveLeader() === leader ? leader : null;
      this.pg.start(true, then);
    };
    const clone = (): void => {
      if (w.fixed('position-before-clone') && this.pg.hasData) this.disk.positionBeforeClone = this.pg.pos;
      this.pg.cloneFrom(source, (ok) => {
        if (!ok) return done();
        this.disk.positionBeforeClone = null;
        follow((started) => {
          if (!started) return done();
          this.rewindsWithoutStreaming = 0;
          finish();
        });
      });
    };
    this.pg.stop(() => {
      if (how === 'rewind' && this.pg.hasData && this.rewindsWithoutStreaming < 2) {
        this.rewindsWithoutStreaming++;
        this.pg.rewindFrom(source, (ok) => {
          if (!ok) {
            w.trace(this, `rejoin by pg_rewind from ${leader} failed, cloning instead`);
            return clone();
          }
          follow((started) => (started ? finish() : clone()));
        });
      } else clone();
    });
  }
}
