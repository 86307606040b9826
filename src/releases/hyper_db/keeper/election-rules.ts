/**
 * The keeper's election decisions as pure functions: state and time in, answer and state change out.
 * No I/O, no clock, no randomness (the caller draws jitter and passes it in). The keeper calls them
 * (keeper.ts); the deterministic simulation (election-sim.ts) calls the very same functions, so what
 * the simulation explores is what the keeper decides.
 *
 * The argument they uphold is the one at the top of keeper.ts and in docs/hyper-db.md:
 *
 * - Lease: a grant counts from the moment the primary SENT its heartbeat, so the primary's lease
 *   (`leaseUntilFromGrants`) ends before any peer's promise does, and the primary stops believing in
 *   it `FENCE_MARGIN_MS` earlier still (`leaseValid`).
 * - Vote (`decideVote`): at most one vote per term, none while a promise to another leader runs, none
 *   for a candidate behind the voter. Any two majorities share a voter, so two candidates cannot both
 *   win a term, and nobody wins while the primary's lease can still be valid.
 * - Safety found missing by election-sim.ts (see each rule): decide after the position is known;
 *   a candidate that promised another during its pre-vote gives up the round (`stillFreeToStand`); a
 *   voter stops streaming from the old leader before it answers (`VoteChange.stopFollowing`); a member
 *   that emptied its data to clone votes with the position it had; a keeper that resumes as primary
 *   after a restart has no lease until its peers grant one (`resumedLeaseUntil`).
 * - Health (`unfitToLead`, issue 12): a member whose PostgreSQL does not answer, whose disk is nearly
 *   full or that failed to lead lately (`STAND_BLOCK_MS`, `promotionBackoffMs`) does not stand; a
 *   primary whose PostgreSQL has not answered for `unresponsiveMsFor(leaseMs)` stops renewing its
 *   lease (`mayRenewLease`) and fences itself, killing the server (`mustFenceUnresponsive`), so its
 *   peers' promises lapse and a healthy standby takes over; a standby rejoins (rewind / clone) only a
 *   leader that says its PostgreSQL answers (`mayRejoin`).
 *
 * The constants and health rules are those of keeper.ts at commit 31cbf17 (issue 12, items 1-3).
 */
import { formatBytes } from '../../../shared/bytes.js';
import { comparePosition, lsnToBigInt, type VoteAnswer, type VoteBody } from '../protocol.js';

/** The keeper's loop period. */
export const TICK_MS = 100;
/** How often the primary checks its lease. */
export const FENCE_CHECK_MS = 25;
/** How long before the end of its lease the primary fences itself. */
export const FENCE_MARGIN_MS = 500;
/** A standby that is not streaming from the leader this long is rejoined (rewind / clone). */
export const NOT_STREAMING_REJOIN_MS = 6000;
/** PostgreSQL restarts in place on the primary, at most this many per window, then it steps down. */
export const MAX_PG_RESTARTS = 3;
export const PG_RESTART_WINDOW_MS = 60_000;
/** How long a candidate waits for each vote (a voter reads its own WAL position first). */
export const VOTE_TIMEOUT_MS = 2000;
/** The same before commit 31cbf17. */
export const VOTE_TIMEOUT_BEFORE_MS = 1000;
/** Upper bound of the random delay a standby adds after its promise expired before it stands. */
export const STAND_JITTER_MS = 150;
/** A standby too far behind the leader's last announced position waits this long before looking again. */
export const LAG_BACKOFF_MS = 1000;
/** After a failed promotion: 2 s, 4 s, 8 s … per consecutive failure, capped at 60 s. */
export const PROMOTION_BACKOFF_BASE_MS = 2000;
export const PROMOTION_BACKOFF_MAX_MS = 60_000;

export interface WalPosition {
  timeline: number;
  lsn: string;
}

// ────────────────────────────────── votes ──────────────────────────────────

/** What a voter knows when a vote request arrives (Keeper.onVote). */
export interface VoterState {
  now: number;
  /** Persistent (fsynced) term and vote. */
  term: number;
  votedFor: string | null;
  /** This member is the primary and `leaseValid` holds now. */
  primaryWithValidLease: boolean;
  /** The promise this member made to a leader (heartbeat or vote) and to whom. */
  promisedUntil: number;
  promisedTo: string | null;
  /** A switchover in progress: the old leader allowed votes for `to` only, until `until`. */
  handover: { to: string; until: number } | null;
  paused: boolean;
  maintenance: readonly string[];
  /** The other members' names (a candidate must be one of them). */
  peerNames: readonly string[];
  leaseMs: number;
  /**
   * This member's WAL position; 'unknown' when it cannot be known safely; null only when it never had
   * data. A member that emptied its data directory to clone again votes with the position it had
   * before (kept on disk until the clone is complete): it may have confirmed commits the candidate
   * lacks, and voting as if empty let a candidate without them win (two standbys whose clone failed
   * elected a member missing an acknowledged commit: election-sim.ts `--without position-before-clone`).
   */
  position: WalPosition | null | 'unknown';
}

/**
 * What granting a real vote changes: fsynced (term, votedFor) before answering, then the promise.
 * `stopFollowing`: before it answers, the voter also stops receiving WAL from the leader it followed
 * (primary_conninfo emptied, the WAL receiver gone) and forgets that leader until a heartbeat names
 * the next one. Otherwise a primary whose keeper is frozen keeps a running PostgreSQL that still
 * acknowledges commits confirmed by a voter that has already judged the new candidate at least as
 * advanced as itself: those commits are not on the new primary (election-sim.ts `--without
 * stop-following`). With every voter cut off, the old primary has at most k − 1 standbys besides the
 * candidate, so whatever it still acknowledges the candidate has too. Nothing in flight may restore
 * it: a rejoin that ends after the vote connects to its leader only if that is still the leader this
 * member follows.
 */
export interface VoteChange {
  term: number;
  votedFor: string;
  promisedUntil: number;
  promisedTo: string;
  stopFollowing: true;
}

export interface VoteDecision {
  answer: VoteAnswer;
  /** null: nothing changes (a refusal, or a pre-vote). */
  change: VoteChange | null;
}

/**
 * The answer to a (pre-)vote request, in the order Keeper.onVote checks: stale term, already voted in
 * this term, primary with a valid lease, promise to another leader (unless handed over to this
 * candidate), cluster paused (unless planned), candidate in maintenance, candidate not a member, own
 * position unknown, candidate behind. A pre-vote records nothing; a real vote moves to the request's
 * term, records the vote and promises the candidate `leaseMs`. The request must have been validated.
 *
 * Call it once the position is known, on the state as it is then, and apply the change before any
 * await: keeper.ts checked the term and the vote on arrival, awaited the position, then recorded the
 * vote without looking again, so one voter granted two candidates the same term and two members held
 * a valid lease at once (election-sim.ts `--without vote-after-position`).
 */
export function decideVote(voter: VoterState, request: VoteBody): VoteDecision {
  const refuse = (reason: string, retryInMs?: number): VoteDecision => ({
    answer: { granted: false, term: voter.term, reason, ...(retryInMs === undefined ? {} : { retryInMs }) },
    change: null,
  });
  if (request.term < voter.term) return refuse(`stale term ${request.term} < ${voter.term}`);
  if (request.term === voter.term && voter.votedFor !== null && voter.votedFor !== request.candidate)
    return refuse(`already voted for ${voter.votedFor} in term ${voter.term}`);
  if (voter.primaryWithValidLease) return refuse('I am the primary and my lease is valid');
  const handedOver =
    voter.handover !== null && voter.handover.to === request.candidate && voter.now < voter.handover.until;
  if (voter.now < voter.promisedUntil && voter.promisedTo !== request.candidate && !handedOver)
    return refuse(
      `lease promised to ${voter.promisedTo ?? 'a previous leader'}`,
      Math.ceil(voter.promisedUntil - voter.now),
    );
  if (voter.paused && !request.planned) return refuse('the cluster is paused');
  if (voter.maintenance.includes(request.candidate)) return refuse(`${request.candidate} is in maintenance`);
  if (!voter.peerNames.includes(request.candidate)) return refuse(`${request.candidate} is not a member`);
  const mine = voter.position;
  if (mine === 'unknown') return refuse('my WAL position is unknown (PostgreSQL down after a crash)');
  if (mine !== null && comparePosition(request, mine) < 0)
    return refuse(`candidate is behind me (${request.timeline}/${request.lsn} < ${mine.timeline}/${mine.lsn})`);
  if (request.preVote) return { answer: { granted: true, term: voter.term }, change: null };
  return {
    answer: { granted: true, term: request.term },
    change: {
      term: request.term,
      votedFor: request.candidate,
      promisedUntil: voter.now + voter.leaseMs,
      promisedTo: request.candidate,
      stopFollowing: true,
    },
  };
}

/**
 * When a candidate that lost a pre-vote tries again: just after the earliest promise a voter said it is
 * still bound by, when that is under a second away (a failover's critical path), else in 300–800 ms.
 * `random` is uniform in [0, 1).
 */
export function preVoteRetryAt(now: number, retryInMs: number | null, random: number): number {
  if (retryInMs !== null && retryInMs < 1000) return now + retryInMs + 5 + Math.floor(random * 55);
  return now + 300 + Math.floor(random * 500);
}

/** After a lost real vote: 300–800 ms. */
export function electionRetryAt(now: number, random: number): number {
  return now + 300 + Math.floor(random * 500);
}

// ────────────────────────────────── lease ──────────────────────────────────

/** A peer's grant to a heartbeat SENT at `sentAt` holds until then + `leaseMs` (never from the answer). */
export function grantUntil(sentAt: number, leaseMs: number): number {
  return sentAt + leaseMs;
}

/**
 * The primary's lease after a grant: the `need`-th latest grant among its peers (need = majority − 1,
 * the primary counting for itself), if that extends the current lease. With no peer needed (a single
 * member) the lease never ends.
 */
export function leaseUntilFromGrants(grants: Iterable<number>, need: number, current: number): number {
  if (need <= 0) return Infinity;
  const best = [...grants].sort((a, b) => b - a);
  const until = best[need - 1];
  return until !== undefined && until > current ? until : current;
}

/**
 * The lease of a keeper that restarts beside a PostgreSQL still running as the primary it was elected
 * for (Keeper.start): none until its first heartbeat round brings grants. keeper.ts gave itself
 * `FENCE_MARGIN_MS + 2 × heartbeatMs` at once; a keeper down longer than a lease, whose peers had
 * meanwhile elected another, then held a valid lease beside the new primary's (`fromGrantsOnly:
 * false`, as it was).
 */
export function resumedLeaseUntil(now: number, heartbeatMs: number, fromGrantsOnly: boolean): number {
  return fromGrantsOnly ? 0 : now + FENCE_MARGIN_MS + 2 * heartbeatMs;
}

/** Whether the primary may act as one now: its lease ends more than the fence margin from now. */
export function leaseValid(lease: { role: string; forcedLeader: boolean; leaseUntil: number; now: number }): boolean {
  return lease.role === 'primary' && (lease.forcedLeader || lease.now < lease.leaseUntil - FENCE_MARGIN_MS);
}

// ───────────────────────────────── heartbeats ─────────────────────────────────

/** What a follower knows when a heartbeat arrives (Keeper.onHeartbeat). */
export interface FollowerState {
  now: number;
  self: string;
  term: number;
  role: string;
}

export interface HeartbeatDecision {
  ok: boolean;
  /** The term the answer carries. */
  term: number;
  reason?: string;
  /** A higher term to record (votedFor cleared); null when unchanged. */
  newTerm: number | null;
  /** This member is the primary and another leads a term at least as high: it steps down. */
  stepDown: boolean;
  /** Accepted: promise the leader until then. */
  promisedUntil: number | null;
}

/** Keeper.onHeartbeat: a stale term is refused; otherwise the leader is followed and promised `leaseMs`. */
export function decideHeartbeat(
  follower: FollowerState,
  body: { term: number; leader: string; leaseMs: number },
): HeartbeatDecision {
  if (body.term < follower.term)
    return {
      ok: false,
      term: follower.term,
      reason: `stale term ${body.term} < ${follower.term}`,
      newTerm: null,
      stepDown: false,
      promisedUntil: null,
    };
  return {
    ok: true,
    term: body.term,
    newTerm: body.term > follower.term ? body.term : null,
    stepDown: follower.role === 'primary' && body.leader !== follower.self,
    promisedUntil: follower.now + body.leaseMs,
  };
}

/**
 * Keeper.onRelease: the leader of the current term gives its lease back. With a target (switchover)
 * only that target may now be voted for; without one (stopping, or a failed promotion) the promise ends.
 */
export function decideRelease(
  follower: { now: number; term: number; promisedTo: string | null; leaseMs: number },
  body: { term: number; from: string; to: string | null },
): { kind: 'ignore' } | { kind: 'handover'; to: string; until: number } | { kind: 'end-promise' } {
  if (body.term !== follower.term || follower.promisedTo !== body.from) return { kind: 'ignore' };
  if (body.to !== null) return { kind: 'handover', to: body.to, until: follower.now + follower.leaseMs };
  return { kind: 'end-promise' };
}

// ───────────────────────────────── health ─────────────────────────────────

/** How often the keeper probes its PostgreSQL, and how long one probe may wait for an answer. */
export const PROBE_EVERY_MS = 1000;
export const PROBE_TIMEOUT_MS = 3000;
/** A member stands only with this much free on its data (and pg_wal) filesystem. */
export const MIN_FREE_BYTES = 32 * 2 ** 20;
/**
 * A standby with a nearly full disk clones afresh, throwing its own files away first, when that leaves
 * this much free: its own WAL filled the disk, and a copy of the primary is what gets it streaming again.
 */
export const CLONE_ROOM_BYTES = 4 * MIN_FREE_BYTES;

/**
 * With no answer from its PostgreSQL for this long the primary stops renewing its lease and fences
 * itself, killing the server. Long enough that a loaded machine (a slow fork, a slow fsync) is not
 * taken for a hung server: a needless failover costs every session.
 */
export function unresponsiveMsFor(leaseMs: number): number {
  return Math.max(8000, 3 * leaseMs);
}

/** What a member knows of its own fitness (Keeper: pgAnsweredAt, pgProblem, freeBytes, standBlockedUntil). */
export interface MemberHealth {
  /** When its PostgreSQL last answered a probe (or was found not running, or finished a start/promotion). */
  pgAnsweredAt: number;
  /** Why the last probe failed (null: it answered). */
  pgProblem: string | null;
  /** Bytes free on its data filesystem (null: unknown, not held against it). */
  freeBytes: number | null;
  /** After failing to lead: no standing before then (`blockStanding`). */
  standBlockedUntil: number;
  standBlockedReason: string;
}

export const FIT: MemberHealth = {
  pgAnsweredAt: 0,
  pgProblem: null,
  freeBytes: null,
  standBlockedUntil: -Infinity,
  standBlockedReason: '',
};

/** How long a member does not stand after a failure to lead; every block also releases the voters' promises. */
export const STAND_BLOCK_MS = {
  /** Fenced because its PostgreSQL did not answer for `unresponsiveMsFor(leaseMs)` (the server is killed). */
  unresponsive: PROMOTION_BACKOFF_MAX_MS / 2,
  /** Stepped down after MAX_PG_RESTARTS crashes in PG_RESTART_WINDOW_MS. */
  crashes: PROMOTION_BACKOFF_MAX_MS / 2,
  /** Stepped down because its PostgreSQL stopped on a full disk (the disk rule keeps it out meanwhile). */
  diskFull: PROMOTION_BACKOFF_BASE_MS,
} as const;

/** The wait after `failures` consecutive failed promotions: 0, then 2 s, 4 s, 8 s … capped at 60 s. */
export function promotionBackoffMs(failures: number): number {
  if (failures <= 0) return 0;
  return Math.min(PROMOTION_BACKOFF_MAX_MS, PROMOTION_BACKOFF_BASE_MS * 2 ** Math.min(failures - 1, 30));
}

/**
 * The primary renews its lease only while its PostgreSQL answered within `unresponsiveMs` (or is being
 * started or promoted by the keeper itself): a hung server with a live keeper must not keep the lease,
 * or no standby is ever elected (issue 12, item 1).
 */
export function mayRenewLease(
  now: number,
  health: MemberHealth,
  unresponsiveMs: number,
  inTransition: boolean,
): boolean {
  return inTransition || now - health.pgAnsweredAt <= unresponsiveMs;
}

/** The probe's verdict on a primary: fence itself and kill its server (it may be frozen). */
export function mustFenceUnresponsive(
  now: number,
  role: string,
  health: MemberHealth,
  unresponsiveMs: number,
): boolean {
  return role === 'primary' && now - health.pgAnsweredAt > unresponsiveMs;
}

/**
 * Why this member must not lead now, or null (Keeper.unfitToLead, issue 12 items 1 and 2): a block
 * after failing to lead, a nearly full disk, a server that does not answer.
 */
export function unfitToLead(now: number, health: MemberHealth): string | null {
  if (now < health.standBlockedUntil)
    return `${health.standBlockedReason} (may stand again in ${Math.ceil((health.standBlockedUntil - now) / 1000)} s)`;
  if (health.freeBytes !== null && health.freeBytes < MIN_FREE_BYTES)
    return `disk nearly full: ${formatBytes(health.freeBytes)} free on its data filesystem (needs ${formatBytes(MIN_FREE_BYTES)})`;
  if (health.pgProblem !== null) return `its PostgreSQL does not answer: ${health.pgProblem}`;
  return null;
}

/**
 * The primary found its PostgreSQL stopped (Keeper.actAsPrimary): on a full disk it steps down at once
 * (restarting in place only crashes again); after MAX_PG_RESTARTS restarts within PG_RESTART_WINDOW_MS
 * it steps down; else it restarts it in place. `restarts`: the times of earlier restarts in the window.
 */
export function primaryServerDown(
  now: number,
  restarts: readonly number[],
  freeBytes: number | null,
): { action: 'restart' } | { action: 'step-down'; reason: 'disk-full' | 'crashes'; blockMs: number } {
  if (freeBytes !== null && freeBytes < MIN_FREE_BYTES)
    return { action: 'step-down', reason: 'disk-full', blockMs: STAND_BLOCK_MS.diskFull };
  if (restarts.filter((at) => now - at < PG_RESTART_WINDOW_MS).length >= MAX_PG_RESTARTS)
    return { action: 'step-down', reason: 'crashes', blockMs: STAND_BLOCK_MS.crashes };
  return { action: 'restart' };
}

// ──────────────────────────────── standing ────────────────────────────────

/** What a standby knows when it considers standing (Keeper.maybeStandForElection). */
export interface StandInput {
  now: number;
  paused: boolean;
  inMaintenance: boolean;
  promisedUntil: number;
  /** Drawn by the caller in [0, STAND_JITTER_MS): standbys whose promises end together do not collide. */
  jitterMs: number;
  electionBackoffUntil: number;
  /** Own position (what it received counts), null while unknown. */
  position: WalPosition | null;
  /** The last position the leader announced, if any. */
  leaderLsn: string | null;
  maxLagBytes: number;
  /** A point-in-time restore not yet at its target must not stand (false otherwise). */
  restoreNotReady: boolean;
  health: MemberHealth;
}

export type StandDecision =
  | { stand: true }
  /** `backoffUntil`: the caller records it as its election backoff. `quiet`: nothing worth a log line. */
  | { stand: false; reason: string; backoffUntil?: number; quiet?: boolean };

/**
 * Whether a standby stands for election now, in the keeper's order: not while paused or in
 * maintenance, not while a promise runs (plus jitter) or the election backoff does; not while unfit to
 * lead (then look again in 500 ms; issue 12 — `healthRules: false` leaves this out, as the keeper was
 * before); not without a position, not during an unfinished restore, not more than `maxLagBytes`
 * behind the leader's last announced position (then wait LAG_BACKOFF_MS).
 */
export function mayStand(input: StandInput, options: { healthRules: boolean } = { healthRules: true }): StandDecision {
  const quiet = (reason: string): StandDecision => ({ stand: false, reason, quiet: true });
  if (input.paused) return quiet('the cluster is paused');
  if (input.inMaintenance) return quiet('in maintenance');
  if (input.now < input.promisedUntil + input.jitterMs) return quiet('a promise to a leader runs');
  if (input.now < input.electionBackoffUntil) return quiet('election backoff');
  const unfit = options.healthRules ? unfitToLead(input.now, input.health) : null;
  if (unfit !== null)
    return { stand: false, reason: `not standing for election: ${unfit}`, backoffUntil: input.now + UNFIT_RECHECK_MS };
  if (input.position === null) return quiet('WAL position unknown');
  if (input.restoreNotReady) return quiet('restore has not reached its target');
  if (input.leaderLsn !== null) {
    const lag = lsnToBigInt(input.leaderLsn) - lsnToBigInt(input.position.lsn);
    if (lag > BigInt(input.maxLagBytes))
      return {
        stand: false,
        reason: `not standing for election: ${lag} bytes behind the last known primary position (limit ${input.maxLagBytes})`,
        backoffUntil: input.now + LAG_BACKOFF_MS,
      };
  }
  return { stand: true };
}

/** An unfit member looks at itself again this much later. */
export const UNFIT_RECHECK_MS = 500;

/**
 * Checked after a won pre-vote, right before the candidate raises the term and votes for itself: it
 * may have granted another candidate's vote (and promised it a lease) while its own pre-vote ran. It
 * must then give up this round — keeper.ts went on, won the next term with voters that had promised
 * nothing, and two members held a valid lease at once (election-sim.ts `--without free-to-stand`).
 */
export function stillFreeToStand(input: {
  now: number;
  self: string;
  promisedUntil: number;
  promisedTo: string | null;
}): string | null {
  if (input.now < input.promisedUntil && input.promisedTo !== null && input.promisedTo !== input.self)
    return `promised ${input.promisedTo} a lease during the pre-vote`;
  return null;
}

// ──────────────────────────────── rejoining ────────────────────────────────

/**
 * A standby that has not streamed from its leader for `NOT_STREAMING_REJOIN_MS` rejoins it (rewind,
 * else clone) — only when the leader's last heartbeat said its PostgreSQL answers: a silent or hung
 * leader is no source, and tearing the standby down would leave nobody to take over.
 */
export function mayRejoin(input: {
  now: number;
  streaming: boolean;
  followingSince: number;
  leaderPgHealthy: boolean;
}): boolean {
  return notStreamingTooLong(input) && input.leaderPgHealthy;
}

/** The rule before issue 12: not streaming for `NOT_STREAMING_REJOIN_MS`, whatever the leader's state. */
export function notStreamingTooLong(input: { now: number; streaming: boolean; followingSince: number }): boolean {
  return !input.streaming && input.now - input.followingSince > NOT_STREAMING_REJOIN_MS;
}
