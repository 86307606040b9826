/**
 * What a keeper must not forget across restarts: the highest term it has
 * seen, whom it voted for in that term, whether it was the leader of that
 * term, and its recent events. Written atomically and fsynced before any
 * answer that depends on it (a vote, a promotion).
 */
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import type { MemberEvent, SwitchoverResult } from '../protocol.js';

export interface PersistentState {
  term: number;
  votedFor: string | null;
  /** The term this member won (it may resume leadership of that term after a keeper restart). */
  leaderOfTerm: number | null;
  /** This member's data ran as a primary of a timeline others may have left: rewind before following. */
  mayHaveDiverged: boolean;
  events: MemberEvent[];
  failovers: number;
  handledSwitchover: string | null;
  handledAcceptDataLoss: string | null;
  lastSwitchover: SwitchoverResult | null;
  /** A point-in-time restore in progress on this member (cleared when it is promoted). */
  restoring: boolean;
  /**
   * The WAL position this member had before a clone emptied its data directory ('unknown' when it could
   * not be read), until the clone is complete: it votes with it (election-rules.ts VoterState.position).
   */
  positionBeforeClone?: { timeline: number; lsn: string } | 'unknown' | null;
}

const INITIAL: PersistentState = {
  term: 0,
  votedFor: null,
  leaderOfTerm: null,
  mayHaveDiverged: false,
  events: [],
  failovers: 0,
  handledSwitchover: null,
  handledAcceptDataLoss: null,
  lastSwitchover: null,
  restoring: false,
};

const MAX_EVENTS = 50;

export class KeeperState {
  private state: PersistentState;

  constructor(private readonly path: string) {
    let loaded: Partial<PersistentState> = {};
    try {
      loaded = JSON.parse(readFileSync(path, 'utf8')) as Partial<PersistentState>;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
    this.state = { ...INITIAL, ...loaded };
  }

  get(): Readonly<PersistentState> {
    return this.state;
  }

  update(change: Partial<PersistentState>): void {
    this.state = { ...this.state, ...change };
    const tmp = `${this.path}.tmp`;
    const fd = openSync(tmp, 'w', 0o600);
    try {
      writeSync(fd, JSON.stringify(this.state));
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, this.path);
  }

  addEvent(event: MemberEvent, change: Partial<PersistentState> = {}): void {
    this.update({ ...change, events: [...this.state.events, event].slice(-MAX_EVENTS) });
  }
}
