/**
 * Planned handovers of the primary role: a switchover asked through the master (or for a rolling
 * restart, or because the primary's disk is nearly full) and its other half, the takeover on the
 * target. The primary checks the target first (a member, not in maintenance, streaming, fit to lead,
 * not lagging), pauses the router, stops its PostgreSQL cleanly while still renewing its lease,
 * releases the peers' promises to the target only, and asks the target to take over; the target waits
 * for the last WAL, then runs a planned election (docs/hyper-db.md, "Switchover").
 */
import { setTimeout as sleep } from 'node:timers/promises';
import {
  lsnToBigInt,
  type MemberAddress,
  type MemberRole,
  type SwitchoverRequest,
  type SwitchoverResult,
  type TakeoverBody,
} from '../protocol.js';
import { formatBytes } from '../../../shared/bytes.js';
import { MIN_FREE_BYTES } from './election-rules.js';
import { now, type KeeperCore, type KnownLeader } from './keeper-core.js';
import { callPeer } from './peer-api.js';
import type { PostgresSupervisor } from './postgres-supervisor.js';
import { pauseRouter } from './router-pause.js';

/** What a switchover reads and changes of the keeper. */
export type SwitchoverCore = Pick<
  KeeperCore,
  | 'config'
  | 'peerAuth'
  | 'pg'
  | 'state'
  | 'obs'
  | 'role'
  | 'ticking'
  | 'leaseUntil'
  | 'knownLeader'
  | 'promisedUntil'
  | 'promisedTo'
  | 'log'
  | 'addEvent'
  | 'releasePeers'
>;

/** What a switchover needs of the election: the standbys' last word on their fitness, and a planned election. */
export interface ElectionForSwitchover {
  /** What each standby said in its last heartbeat answer about its fitness to lead. */
  readonly peerProblems: ReadonlyMap<string, string | null>;
  runElection(options: { planned: boolean; forced: boolean }): Promise<boolean>;
}

/** How long a switchover waits for the WAL archive to catch up before it stops the primary anyway. */
export const ARCHIVE_DRAIN_MS = 60_000;

export class Switchover {
  private lastDiskHandover = -Infinity;
  /** The switchover waiting for the archive to catch up: since when, and how many files waited then. */
  private drain: { id: string; since: number; files: number } | null = null;

  constructor(
    private readonly core: SwitchoverCore,
    private readonly supervisor: PostgresSupervisor,
    private readonly election: ElectionForSwitchover,
  ) {}

  /**
   * A primary whose disk is nearly full hands over to a healthy standby while it still can shut down
   * cleanly (a planned switchover: nothing lost, sessions through the router carried over), rather than
   * wait for PostgreSQL to fail on its next WAL segment. Once every 30 s at most.
   */
  async handOverIfDiskFull(): Promise<boolean> {
    const free = this.core.pg.freeBytes();
    if (free === null || free >= MIN_FREE_BYTES || now() - this.lastDiskHandover < 30_000) return false;
    this.lastDiskHandover = now();
    const why = `disk nearly full: ${formatBytes(free)} free on ${this.core.config.name}'s data filesystem`;
    this.core.log(`${why}: handing the primary role over`);
    const result = await this.switchover({ id: `disk-full-${this.core.state.get().term}`, to: null });
    this.core.addEvent(
      'health',
      `${why}: switchover ${result.result}${result.to ? ` to ${result.to}` : ''}${result.reason ? ` (${result.reason})` : ''}`,
    );
    return result.result === 'done';
  }

  /**
   * Whether switchover `id` may stop this primary now, as far as the WAL archive goes. PostgreSQL
   * archives every WAL file still waiting before it finishes a shutdown, one archive_command at a time:
   * a backlog (WAL this member wrote as a primary before, never archived while it was a standby, or an
   * archive slower than the writes) would lengthen the stop — and so the pause of writes — by all of
   * it (a minute under load in CI). So an asked switchover waits, tick after tick with writes going on,
   * until at most one file waits, for up to ARCHIVE_DRAIN_MS; then the stop waits for what is left. The
   * rolling restart's handover waits the same way: its stop once outlasted pg_ctl's 60 s on a loaded machine
   * ("the database system is shutting down" all along), and the handover failed into a failover.
   */
  archiveDrained(id: string): boolean {
    if (this.core.config.archive === null) return true;
    const left = this.core.pg.archiveBacklog();
    if (this.drain?.id !== id) {
      if (left <= 1) return true;
      this.drain = { id, since: now(), files: left };
      this.core.log(`switchover ${id}: ${left} WAL files to archive first, while writes go on`);
      return false;
    }
    const waited = Math.round(now() - this.drain.since);
    if (left <= 1) {
      this.core.log(`switchover ${id}: archive caught up (${this.drain.files} WAL files) in ${waited} ms`);
      return true;
    }
    if (waited < ARCHIVE_DRAIN_MS) return false;
    this.core.log(`switchover ${id}: ${left} WAL files still to archive after ${waited} ms: the stop waits for them`);
    return true;
  }

  /** Why switchover `request` cannot happen now (a refusal to publish), or null. */
  refusal(request: SwitchoverRequest): SwitchoverResult | null {
    const checked = this.check(request);
    return 'refused' in checked ? checked.refused : null;
  }

  /** The target of `request`, or why there is none. Reads only: asked again right before the stop. */
  private check(request: SwitchoverRequest): { refused: SwitchoverResult } | { target: MemberAddress } {
    const c = this.core.config;
    const refuse = (reason: string) => ({
      refused: { id: request.id, result: 'refused' as const, reason, from: c.name },
    });
    const replicas = this.core.obs.replicas;
    let targetName = request.to;
    if (targetName === null) {
      const best = replicas
        .filter(
          (r) => r.state === 'streaming' && !c.maintenance.includes(r.name) && !this.election.peerProblems.get(r.name),
        )
        .sort((a, b) => a.lagBytes - b.lagBytes)[0];
      if (best === undefined) return refuse('no standby is streaming, eligible and fit to lead');
      targetName = best.name;
    }
    if (targetName === c.name) return refuse(`${targetName} is already the primary`);
    const target = c.peers.find((p) => p.name === targetName);
    if (target === undefined) return refuse(`${targetName} is not a member of this cluster`);
    if (c.maintenance.includes(targetName)) return refuse(`${targetName} is in maintenance`);
    // Asked before this member stops: a target that cannot lead (a full disk) would leave nobody writable.
    const problem = this.election.peerProblems.get(targetName);
    if (problem) return refuse(`${targetName} cannot lead: ${problem}`);
    const replica = replicas.find((r) => r.name === targetName);
    if (replica?.state !== 'streaming') return refuse(`${targetName} is not streaming from the primary`);
    if (replica.lagBytes > c.maxLagBytes)
      return refuse(`${targetName} lags ${replica.lagBytes} bytes behind in replay (limit ${c.maxLagBytes})`);
    return { target };
  }

  async switchover(request: SwitchoverRequest): Promise<SwitchoverResult> {
    const c = this.core.config;
    const checked = this.check(request);
    if ('refused' in checked) return checked.refused;
    const target = checked.target;
    const targetName = target.name;
    const t0 = now();
    await this.core.pg.checkpoint().catch(() => {});
    // The router holds new transactions and lets running ones end before this server stops (bounded).
    if (this.core.config.router) await pauseRouter(this.core.config, this.core.peerAuth(), request.id, this.core.log);
    const tStop = now();
    const term = this.core.state.get().term;
    // The lease is renewed while PostgreSQL shuts down (it accepts no writes meanwhile, and the
    // shutdown waits for the last WAL to be sent and archived): the standbys must not see a dead
    // primary and start a failover in the middle of the handover.
    this.supervisor.serverTransition = 'switchover';
    try {
      await this.core.pg.stop('fast');
    } catch (error) {
      // Said in the events (what `hox db status` shows), not only in the keeper's log: a failover follows.
      this.core.addEvent(
        'switchover',
        `switchover to ${targetName} failed: the stop did not finish: ${(error as Error).message.split('\n')[0]}`,
      );
      throw error;
    } finally {
      this.supervisor.serverTransition = null;
      this.core.role = 'demoted';
      this.core.leaseUntil = 0;
    }
    const position = await this.core.pg.cleanShutdownPosition();
    this.core.state.update({ leaderOfTerm: null, mayHaveDiverged: position === null });
    await this.core.releasePeers(targetName);
    this.core.knownLeader = null;
    this.core.promisedUntil = 0;
    const tStopped = now();
    let answer: { ok: boolean; reason?: string };
    try {
      answer = await callPeer(
        target,
        this.core.peerAuth(),
        '/takeover',
        { term, from: c.name, lsn: position?.lsn ?? '0/0', switchoverId: request.id },
        20_000,
        c.host,
      );
    } catch (error) {
      answer = { ok: false, reason: (error as Error).message };
    }
    const tDone = now();
    this.core.role = 'standby';
    if (!answer.ok && (this.core.knownLeader as KnownLeader | null)?.name === targetName) answer = { ok: true }; // elected meanwhile
    if (!answer.ok) {
      this.core.addEvent('switchover', `switchover to ${targetName} failed: ${answer.reason ?? 'unknown'}`);
      return {
        id: request.id,
        result: 'failed',
        reason: answer.reason ?? 'takeover refused',
        from: c.name,
        to: targetName,
      };
    }
    this.core.addEvent('switchover', `handed over to ${targetName}`, {
      checkpoint: Math.round(tStop - t0),
      stop: Math.round(tStopped - tStop),
      takeover: Math.round(tDone - tStopped),
      total: Math.round(tDone - tStop),
    });
    return { id: request.id, result: 'done', from: c.name, to: targetName, durationMs: Math.round(tDone - tStop) };
  }

  async onTakeover(body: TakeoverBody): Promise<{ ok: boolean; reason?: string }> {
    if (typeof body?.lsn !== 'string' || typeof body.from !== 'string') return { ok: false, reason: 'malformed' };
    if (this.core.role !== 'standby')
      return { ok: false, reason: `${this.core.config.name} is ${this.core.role}, not a standby` };
    const unfit = this.supervisor.unfitToLead();
    if (unfit !== null) return { ok: false, reason: `${this.core.config.name} cannot lead: ${unfit}` };
    const deadline = now() + 10_000;
    for (;;) {
      const obs = await this.core.pg.observe();
      if (obs.lsn !== null && lsnToBigInt(obs.lsn) > lsnToBigInt(body.lsn)) break;
      if (now() > deadline) return { ok: false, reason: `did not receive WAL beyond ${body.lsn} within 10 s` };
      await sleep(10);
    }
    if (this.core.promisedTo === body.from) this.core.promisedUntil = 0;
    if (typeof body.switchoverId === 'string') this.core.state.update({ handledSwitchover: body.switchoverId });
    while (this.core.ticking) await sleep(5);
    this.core.ticking = true;
    try {
      // The release may already have let this member win an ordinary election.
      if ((this.core.role as MemberRole) === 'primary') return { ok: true };
      const ok = await this.election.runElection({ planned: true, forced: false });
      return ok ? { ok } : { ok, reason: 'election lost' };
    } finally {
      this.core.ticking = false;
    }
  }
}

/** The leader gives its lease back to every peer: to `to` only (a switchover), or to nobody (it stops). */
export async function releasePeers(
  core: Pick<KeeperCore, 'config' | 'state' | 'peerAuth'>,
  to: string | null,
): Promise<void> {
  const c = core.config;
  const term = core.state.get().term;
  await Promise.allSettled(
    c.peers.map((p) => callPeer(p, core.peerAuth(), '/release', { term, from: c.name, to }, 500, c.host)),
  );
}
