/**
 * What the parts of a keeper share: the member's configuration, its PostgreSQL, its durable state, and
 * the little it knows of the leader and of its own lease. `Keeper` (keeper.ts) owns these and runs the
 * loop; each part — `PostgresSupervisor`, `Election`, `Switchover`, `Rejoin`, `KeeperReport` — is given
 * this core through a `Pick` of the fields and methods it actually uses, so each file says what it
 * reads and what it changes.
 */
import { performance } from 'node:perf_hooks';
import type { KeeperConfig, MemberAddress, MemberEvent, MemberRole } from '../protocol.js';
import type { KeeperState } from './keeper-state.js';
import type { PeerAuth } from './peer-api.js';
import type { PgObservation, PostgresControl } from './postgres-control.js';

/** The keeper's clock: monotonic milliseconds (leases and promises are measured on it, never on wall time). */
export const now = (): number => performance.now();

/** The leader this member last heard of (a heartbeat), or itself once elected. */
export interface KnownLeader {
  name: string;
  term: number;
  lsn: string | null;
  timeline: number | null;
}

export interface KeeperCore {
  readonly config: KeeperConfig;
  readonly pg: PostgresControl;
  readonly state: KeeperState;
  role: MemberRole;
  /** PostgreSQL as this tick's observation saw it. */
  readonly obs: PgObservation;
  readonly stopped: boolean;
  /** A tick is running (a takeover waits for it, then holds it while it runs its election). */
  ticking: boolean;
  /** The server being killed by a fence (a restart waits for it). */
  readonly killing: Promise<void> | null;
  readonly majority: number;
  // Follower side.
  promisedUntil: number;
  promisedTo: string | null;
  lastHeartbeatAt: number;
  knownLeader: KnownLeader | null;
  followingSince: number;
  electionBackoffUntil: number;
  /** A switchover in progress: the old leader allowed votes for `to` only. */
  handover: { to: string; until: number } | null;
  /** The leader's last heartbeat said its PostgreSQL answers. */
  leaderPgHealthy: boolean;
  // Leader side.
  leaseUntil: number;
  forcedLeader: boolean;
  /** The roles (and their passwords) are not yet ensured since this member's last promotion: every primary tick retries. */
  rolesPending: boolean;
  /** Rolling restart: whether this member's PostgreSQL waits for a restart, and whether the leader allows it now. */
  readonly pendingRestart: boolean;
  restartAllowedForMe: boolean;
  /** The settings this member's PostgreSQL has read (what a heartbeat answer reports). */
  readonly appliedSettings: string;
  /** When a point-in-time restore started (its promotion reports the total). */
  readonly restoreStartedAt: number;

  log(line: string): void;
  /** Rate-limited log: the same line (digits aside) at most every 10 s. */
  logElection(text: string): void;
  addEvent(
    kind: MemberEvent['kind'],
    detail: string,
    timings?: Record<string, number>,
    change?: Parameters<KeeperState['update']>[0],
    extra?: Pick<MemberEvent, 'recovered_to'>,
  ): void;
  fence(reason: string, options?: { kill?: boolean }): void;
  stepDown(reason: string): void;
  leaseValid(): boolean;
  liveLeader(): MemberAddress | null;
  syncStandbyNames(): string;
  /** The leader gives its lease back to every peer (to `to` only, for a switchover). */
  releasePeers(to: string | null): Promise<void>;
  /** How to call a peer: the peer token, the cluster CA and this member's certificate. */
  peerAuth(): PeerAuth;
}
