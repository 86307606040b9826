/**
 * The lease, both sides of it. The primary's heartbeat round asks every peer, every `heartbeatMs`, for
 * a promise not to vote for anyone else for `leaseMs`; it counts a grant from the moment it SENT the
 * request, and its lease runs to the `majority − 1`-th latest grant (the argument is at the top of
 * keeper.ts). A follower's heartbeat answer makes that promise and reports what the primary needs for
 * a rolling restart and a switchover (pending restart, settings, fitness to lead); a release gives the
 * promise back. What each peer last answered is kept here.
 */
import type { HeartbeatAnswer, HeartbeatBody } from '../protocol.js';
import { mayRenewLease } from './election-rules.js';
import { now, type KeeperCore } from './keeper-core.js';
import { callPeer } from './peer-api.js';
import type { PostgresSupervisor } from './postgres-supervisor.js';

/** What the lease reads and changes of the keeper. */
export type LeaseCore = Pick<
  KeeperCore,
  | 'config'
  | 'peerAuth'
  | 'state'
  | 'obs'
  | 'role'
  | 'stopped'
  | 'majority'
  | 'leaseUntil'
  | 'forcedLeader'
  | 'knownLeader'
  | 'promisedUntil'
  | 'promisedTo'
  | 'lastHeartbeatAt'
  | 'handover'
  | 'leaderPgHealthy'
  | 'pendingRestart'
  | 'restartAllowedForMe'
  | 'appliedSettings'
  | 'log'
  | 'stepDown'
>;

export class Lease {
  /** Leader side: until when each peer promised (counted from when the request was sent). */
  readonly grants = new Map<string, number>();
  private readonly inFlight = new Set<string>();
  /** Rolling restart: what each peer said of its pending restart and its settings. */
  private readonly peerPendingRestart = new Map<string, boolean>();
  private readonly peerSettings = new Map<string, string>();
  /** What each standby said in its last heartbeat answer about its fitness to lead. */
  readonly peerProblems = new Map<string, string | null>();

  constructor(
    private readonly core: LeaseCore,
    private readonly supervisor: PostgresSupervisor,
  ) {}

  async heartbeatRound(): Promise<void> {
    if (this.core.role !== 'primary' || this.core.stopped) return;
    const c = this.core.config;
    const need = this.core.majority - 1;
    const term = this.core.state.get().term;
    const body: HeartbeatBody = {
      term,
      leader: c.name,
      lsn: this.core.obs.lsn,
      timeline: this.core.obs.timeline,
      leaseMs: c.leaseMs,
      switchoverId: this.core.state.get().handledSwitchover,
      restartAllowed: this.pickStandbyToRestart(),
      pgHealthy: this.supervisor.pgHealthy,
    };
    // A server that does not answer gets no lease (the probe fences it; this is the belt and braces).
    if (
      !mayRenewLease(
        now(),
        this.supervisor.health(),
        this.supervisor.unresponsiveMs,
        this.supervisor.serverTransition !== null,
      )
    ) {
      await this.supervisor.fenceHung();
      return;
    }
    if (need <= 0) this.core.leaseUntil = Infinity;
    await Promise.allSettled(
      c.peers.map(async (p) => {
        if (this.inFlight.has(p.name)) return;
        this.inFlight.add(p.name);
        const sentAt = now();
        try {
          const answer = await callPeer<HeartbeatAnswer>(
            p,
            this.core.peerAuth(),
            '/heartbeat',
            body,
            c.leaseMs / 2,
            this.core.config.host,
          );
          if (answer.ok && this.core.state.get().term === term) {
            this.peerPendingRestart.set(p.name, answer.pendingRestart === true);
            this.peerSettings.set(p.name, answer.settings ?? '');
            this.peerProblems.set(p.name, answer.problem ?? null);
            this.grants.set(p.name, sentAt + c.leaseMs);
            const best = [...this.grants.values()].sort((a, b) => b - a);
            const until = best[need - 1];
            if (until !== undefined && need > 0 && until > this.core.leaseUntil) this.core.leaseUntil = until;
            if (this.core.forcedLeader && best.length >= need) this.core.forcedLeader = false;
          } else if (answer.term > term) {
            this.core.state.update({ term: answer.term, votedFor: null });
            this.core.stepDown(`${p.name} is in term ${answer.term}`);
          }
        } catch {
          // An unreachable peer simply does not renew; the lease arithmetic decides.
        } finally {
          this.inFlight.delete(p.name);
        }
      }),
    );
  }

  onHeartbeat(body: HeartbeatBody): HeartbeatAnswer {
    const st = this.core.state.get();
    if (!isHeartbeatBody(body)) return { ok: false, term: st.term, reason: 'malformed heartbeat' };
    if (body.term < st.term) return { ok: false, term: st.term, reason: `stale term ${body.term} < ${st.term}` };
    if (body.term > st.term) this.core.state.update({ term: body.term, votedFor: null });
    if (this.core.role === 'primary' && body.leader !== this.core.config.name)
      this.core.stepDown(`${body.leader} leads term ${body.term}`);
    if (this.core.knownLeader?.name !== body.leader || this.core.knownLeader.term !== body.term)
      this.core.log(`following ${body.leader} (term ${body.term})`);
    this.core.knownLeader = { name: body.leader, term: body.term, lsn: body.lsn, timeline: body.timeline };
    if (typeof body.switchoverId === 'string' && body.switchoverId !== this.core.state.get().handledSwitchover)
      this.core.state.update({ handledSwitchover: body.switchoverId });
    this.core.promisedUntil = now() + body.leaseMs;
    this.core.promisedTo = body.leader;
    this.core.lastHeartbeatAt = now();
    this.core.restartAllowedForMe = body.restartAllowed === this.core.config.name;
    this.core.leaderPgHealthy = body.pgHealthy !== false;
    return {
      ok: true,
      term: body.term,
      pendingRestart: this.core.pendingRestart,
      settings: this.core.appliedSettings,
      problem: this.supervisor.unfitToLead(),
    };
  }

  /**
   * The leader gives its lease back. With a target (switchover), the promise stays for everyone
   * else — only the target may now be voted for, and nobody else stands — so the handover does not
   * turn into a race; without one (the leader is stopping), the promise simply ends.
   */
  onRelease(body: { term: number; from: string; to: string | null }): { ok: boolean } {
    if (typeof body?.term !== 'number' || typeof body.from !== 'string') return { ok: false };
    if (body.term !== this.core.state.get().term || this.core.promisedTo !== body.from) return { ok: true };
    if (typeof body.to === 'string') this.core.handover = { to: body.to, until: now() + this.core.config.leaseMs };
    else {
      this.core.promisedUntil = 0;
      this.core.knownLeader = null;
    }
    return { ok: true };
  }

  /** The one standby that may restart now: it waits for a restart, and every other standby streams. */
  pickStandbyToRestart(): string | null {
    const waiting = this.core.config.peers
      .filter((p) => this.peerPendingRestart.get(p.name) === true)
      .map((p) => p.name);
    if (waiting.length === 0) return null;
    const streaming = new Set(this.core.obs.replicas.filter((r) => r.state === 'streaming').map((r) => r.name));
    const candidate = waiting.sort()[0] as string;
    const othersStreaming = this.core.config.peers.every((p) => p.name === candidate || streaming.has(p.name));
    return othersStreaming ? candidate : null;
  }

  /** Standbys first: every standby has the same settings as this member, needs no restart, and streams. */
  standbysReadyForPrimaryRestart(): boolean {
    const mine = this.core.appliedSettings;
    const streaming = new Set(this.core.obs.replicas.filter((r) => r.state === 'streaming').map((r) => r.name));
    return this.core.config.peers.every(
      (p) =>
        this.peerSettings.get(p.name) === mine &&
        this.peerPendingRestart.get(p.name) === false &&
        streaming.has(p.name),
    );
  }
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
