/**
 * Elections: when a standby stands (election-rules.ts mayStand), the pre-vote that keeps a member that
 * could not win from raising the term, the vote, the promotion and what it reports; the voter's side
 * (election-rules.ts decideVote: fsynced, then it stops following the leader it followed); a forced
 * promotion when a person accepts data loss. The argument the votes uphold is at the top of keeper.ts.
 */
import { randomInt } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { MemberAddress, MemberRole, VoteAnswer, VoteBody } from '../protocol.js';
import { decideVote, mayStand, promotionBackoffMs, STAND_JITTER_MS, stillFreeToStand } from './election-rules.js';
import { now, type KeeperCore } from './keeper-core.js';
import type { Lease } from './lease.js';
import { callPeer } from './peer-api.js';
import { firstLine } from './postgres-control.js';
import type { PostgresSupervisor } from './postgres-supervisor.js';

/** What an election reads and changes of the keeper. */
export type ElectionCore = Pick<
  KeeperCore,
  | 'config'
  | 'peerAuth'
  | 'pg'
  | 'state'
  | 'obs'
  | 'role'
  | 'majority'
  | 'promisedUntil'
  | 'promisedTo'
  | 'knownLeader'
  | 'lastHeartbeatAt'
  | 'electionBackoffUntil'
  | 'handover'
  | 'leaseUntil'
  | 'forcedLeader'
  | 'rolesPending'
  | 'restoreStartedAt'
  | 'log'
  | 'logElection'
  | 'addEvent'
  | 'stepDown'
  | 'leaseValid'
  | 'liveLeader'
  | 'syncStandbyNames'
>;

export class Election {
  private promotionFailures = 0;

  constructor(
    private readonly core: ElectionCore,
    private readonly supervisor: PostgresSupervisor,
    private readonly lease: Pick<Lease, 'grants' | 'heartbeatRound'>,
  ) {}

  async maybeStandForElection(): Promise<void> {
    const c = this.core.config;
    const decision = mayStand({
      now: now(),
      paused: c.paused,
      inMaintenance: c.maintenance.includes(c.name),
      promisedUntil: this.core.promisedUntil,
      jitterMs: randomInt(0, STAND_JITTER_MS),
      electionBackoffUntil: this.core.electionBackoffUntil,
      // What it RECEIVED counts here, not what it replayed: a standby with every acknowledged commit
      // must be able to stand (promotion replays the rest first), or a replay-paused standby holding the
      // newest WAL — which must refuse its vote to anyone less advanced — would block every failover.
      position:
        this.core.obs.lsn === null || this.core.obs.timeline === null
          ? null
          : { lsn: this.core.obs.lsn, timeline: this.core.obs.timeline },
      leaderLsn: this.core.knownLeader?.lsn ?? null,
      maxLagBytes: c.maxLagBytes,
      // A point-in-time restore stands only once replay has reached its target (promoting earlier would stop
      // short); a restore to latest, once the archive has nothing more to give.
      restoreNotReady:
        this.core.state.get().restoring &&
        (c.restore !== null && c.restore.targetTime === null
          ? !this.core.pg.archiveExhausted()
          : (await this.core.pg.replayPauseState()) !== 'paused'),
      health: this.supervisor.health(),
    });
    if (!decision.stand) {
      if (decision.backoffUntil !== undefined) this.core.electionBackoffUntil = decision.backoffUntil;
      if (decision.quiet !== true) this.core.logElection(decision.reason);
      return;
    }
    await this.runElection({ planned: false, forced: false });
  }

  async runElection(options: { planned: boolean; forced: boolean }): Promise<boolean> {
    const c = this.core.config;
    const tStart = now();
    const detectMs = this.core.lastHeartbeatAt > 0 ? tStart - this.core.lastHeartbeatAt : 0;
    const obs = await this.core.pg.observe();
    if (obs.lsn === null || obs.timeline === null || obs.inRecovery !== true) return false;
    const position = { lsn: obs.lsn, timeline: obs.timeline, planned: options.planned, candidate: c.name };
    if (!options.forced) {
      // Pre-vote: a member that could not win (isolated, behind, or facing a live leader) never raises
      // the term, so it cannot disrupt a healthy primary when it comes back.
      const pre = await this.collectVotes({ ...position, term: this.core.state.get().term + 1, preVote: true });
      if (pre.votes < this.core.majority) {
        // A voter still bound by a promise says when it ends: try again just after (a failover's critical path).
        this.core.electionBackoffUntil =
          now() +
          (pre.retryInMs !== null && pre.retryInMs < 1000 ? pre.retryInMs + randomInt(5, 60) : 300 + randomInt(0, 500));
        this.core.logElection(`pre-vote lost: ${pre.votes}/${c.memberCount} (${pre.refusals.join('; ')})`);
        return false;
      }
    }
    // Promised another a lease while the pre-vote ran: this round is lost (election-rules.ts stillFreeToStand).
    const bound = options.forced
      ? null
      : stillFreeToStand({
          now: now(),
          self: c.name,
          promisedUntil: this.core.promisedUntil,
          promisedTo: this.core.promisedTo,
        });
    if (bound !== null) {
      this.core.logElection(`not standing: ${bound}`);
      return false;
    }
    const t0 = now();
    const term = this.core.state.get().term + 1;
    this.core.state.update({ term, votedFor: c.name });
    const { votes, refusals } = await this.collectVotes({ ...position, term, preVote: false });
    if (votes < this.core.majority && !options.forced) {
      this.core.electionBackoffUntil = now() + 300 + randomInt(0, 500);
      this.core.logElection(`election for term ${term} lost: ${votes}/${c.memberCount} votes (${refusals.join('; ')})`);
      return false;
    }
    if (this.core.state.get().term !== term) return false;
    const tElected = now();
    this.core.role = 'primary';
    this.core.forcedLeader = options.forced;
    this.core.leaseUntil = options.forced ? Infinity : t0 + c.leaseMs;
    this.lease.grants.clear();
    this.core.knownLeader = { name: c.name, term, lsn: obs.lsn, timeline: obs.timeline };
    this.core.state.update({ leaderOfTerm: term, mayHaveDiverged: false });
    try {
      // The quorum is in force before the first commit the new primary can acknowledge.
      await this.core.pg.writeDynamic({ primaryConninfo: '', syncStandbyNames: this.core.syncStandbyNames() });
      await this.core.pg.reload();
      this.supervisor.serverTransition = 'promoting';
      try {
        await this.core.pg.promote();
      } finally {
        this.supervisor.serverTransition = null;
      }
      if ((this.core.role as MemberRole) !== 'primary') throw new Error('fenced while promoting');
    } catch (error) {
      this.promotionFailures++;
      const backoff = promotionBackoffMs(this.promotionFailures);
      const why = `promotion failed: ${firstLine((error as Error).message)}${this.supervisor.diskNote()}`;
      this.core.log(`${why}; not standing for ${backoff / 1000} s`);
      this.core.stepDown(why);
      this.supervisor.blockStanding(why, backoff);
      return false;
    }
    this.promotionFailures = 0;
    void this.lease.heartbeatRound();
    const tPromoted = now();
    // The end-of-recovery checkpoint is spread out by default; pg_rewind against this member needs it done.
    void this.core.pg.checkpoint().catch(() => {});
    if (this.core.state.get().restoring) {
      this.core.state.update({ restoring: false });
      await this.core.pg.writeDynamic({ primaryConninfo: '', syncStandbyNames: this.core.syncStandbyNames() });
      await this.core.pg.reload().catch(() => {});
      const point = await this.core.pg.recoveredTo().catch(() => ({ lsn: null, last_transaction_at: null }));
      const where = c.restore?.targetTime === null ? 'at the end of the archived WAL' : 'at the target';
      const last =
        point.last_transaction_at === null
          ? 'no transaction replayed'
          : `last transaction ${point.last_transaction_at}`;
      this.core.addEvent(
        'restore',
        `restore complete: promoted ${where} (${last}, LSN ${point.lsn ?? '?'})`,
        { total: Math.round(tPromoted - this.core.restoreStartedAt) },
        {},
        { recovered_to: point },
      );
    }
    this.core.rolesPending = true;
    await this.core.pg
      .ensureRoles()
      .then(() => (this.core.rolesPending = false))
      .catch((e: unknown) => this.core.log(`roles: ${(e as Error).message} (retried at the next tick)`));
    const kind = options.forced
      ? 'forced-promotion'
      : options.planned
        ? 'switchover'
        : this.core.lastHeartbeatAt > 0
          ? 'failover'
          : 'bootstrap';
    const timings = {
      detect: Math.round(detectMs),
      election: Math.round(tElected - tStart),
      promote: Math.round(tPromoted - tElected),
      total: Math.round(tPromoted - tStart + detectMs),
    };
    this.core.addEvent(kind, `promoted in term ${term} with ${votes}/${c.memberCount} votes`, timings, {
      failovers: this.core.state.get().failovers + (kind === 'failover' ? 1 : 0),
    });
    this.core.log(`promoted: term ${term}, ${JSON.stringify(timings)}`);
    return true;
  }

  /** Asks every peer; settles as soon as a majority granted (stragglers do not slow a failover) or all answered. */
  private collectVotes(body: VoteBody): Promise<{ votes: number; refusals: string[]; retryInMs: number | null }> {
    const c = this.core.config;
    return new Promise((resolve) => {
      let votes = 1;
      let answered = 0;
      let retryInMs: number | null = null;
      const refusals: string[] = [];
      const settle = (): void => {
        if (votes >= this.core.majority || answered === c.peers.length) resolve({ votes, refusals, retryInMs });
      };
      settle();
      for (const p of c.peers) {
        // 2 s: a voter reads its own WAL position first, which a loaded machine may take a while to answer.
        callPeer<VoteAnswer>(p, this.core.peerAuth(), '/vote', body, 2000, c.host).then(
          (a) => {
            if (a.granted) votes++;
            else {
              refusals.push(`${p.name}: ${a.reason ?? 'refused'}`);
              if (typeof a.retryInMs === 'number') retryInMs = Math.min(retryInMs ?? Infinity, a.retryInMs);
              if (!body.preVote && a.term > this.core.state.get().term)
                this.core.state.update({ term: a.term, votedFor: null });
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

  /**
   * The rules are election-rules.ts `decideVote`, applied to the state as it is once this member's
   * position is known (never to the state before an await: one voter granted two candidates the same
   * term that way). A granted vote is fsynced, then this member stops streaming from the leader it
   * followed before it answers (election-rules.ts `VoteChange`).
   */
  async onVote(body: VoteBody): Promise<VoteAnswer> {
    const c = this.core.config;
    if (!isVoteBody(body))
      return { granted: false, term: this.core.state.get().term, reason: 'malformed vote request' };
    const position = await this.position();
    const st = this.core.state.get();
    const { answer, change } = decideVote(
      {
        now: now(),
        term: st.term,
        votedFor: st.votedFor,
        primaryWithValidLease: this.core.role === 'primary' && this.core.leaseValid(),
        promisedUntil: this.core.promisedUntil,
        promisedTo: this.core.promisedTo,
        handover: this.core.handover,
        paused: c.paused,
        maintenance: c.maintenance,
        peerNames: c.peers.map((p) => p.name),
        leaseMs: c.leaseMs,
        position,
      },
      body,
    );
    if (change === null) return answer;
    this.core.state.update({ term: change.term, votedFor: change.votedFor });
    this.core.promisedUntil = change.promisedUntil;
    this.core.promisedTo = change.promisedTo;
    await this.stopFollowing();
    return answer;
  }

  /**
   * Stops receiving WAL from the leader this member followed (primary_conninfo emptied, the WAL
   * receiver gone, ≤ 1 s) and forgets it until a heartbeat names the next one: a primary whose keeper
   * is frozen must not get commits confirmed by a voter that judged the candidate as advanced as itself.
   */
  async stopFollowing(): Promise<void> {
    this.core.knownLeader = null;
    if (!(await this.core.pg.writeDynamic({ primaryConninfo: '', syncStandbyNames: '' }))) return;
    if (this.core.pg.postmasterPid() === null) return;
    try {
      await this.core.pg.reload();
      const deadline = now() + 1000;
      while ((await this.core.pg.observe()).upstream !== null && now() < deadline) await sleep(20);
    } catch (error) {
      this.core.log(`stop following: ${firstLine((error as Error).message)}`);
    }
  }

  /**
   * Points this standby at `leader` — unless, by the time the server has read it, this member no
   * longer follows that leader (a vote granted meanwhile): then it stops following again.
   */
  async followLeader(leader: MemberAddress): Promise<boolean> {
    const changed = await this.core.pg.writeDynamic({
      primaryConninfo: this.core.pg.conninfoFor(leader),
      syncStandbyNames: '',
    });
    if (changed && this.core.pg.postmasterPid() !== null) await this.core.pg.reload();
    if (this.core.liveLeader()?.name !== leader.name) {
      await this.stopFollowing();
      return false;
    }
    return changed;
  }

  /** This member's WAL position; null when it has no data; 'unknown' when it cannot be known safely. */
  private async position(): Promise<{ timeline: number; lsn: string } | null | 'unknown'> {
    if (!this.core.pg.hasData()) return this.core.state.get().positionBeforeClone ?? null;
    const obs = await this.core.pg.observe();
    if (obs.running)
      return obs.lsn !== null && obs.timeline !== null ? { lsn: obs.lsn, timeline: obs.timeline } : 'unknown';
    return (await this.core.pg.cleanShutdownPosition().catch(() => null)) ?? 'unknown';
  }

  async maybeAcceptDataLoss(): Promise<void> {
    const request = this.core.config.acceptDataLoss;
    const st = this.core.state.get();
    if (request === null || request.id === st.handledAcceptDataLoss) return;
    this.core.state.update({ handledAcceptDataLoss: request.id });
    if (request.member !== this.core.config.name) return;
    if (now() < this.core.promisedUntil) {
      this.core.log(`accept-data-loss ${request.id} ignored: a leader is alive`);
      return;
    }
    this.core.log(`accept-data-loss ${request.id} by ${request.by}: promoting without a majority`);
    this.core.addEvent('forced-promotion', `requested by ${request.by} (request ${request.id}); commits may be lost`);
    await this.runElection({ planned: false, forced: true });
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
