/**
 * Brings a member that may have diverged, or has no data, back as a standby of the leader: pg_rewind
 * when there is data and a rewind is asked for (at most twice without streaming in between), else —
 * or when the rewind, or starting after it, fails — a fresh clone. Only from a leader that answers,
 * and only with room on the disk (a clone that throws this member's own files away first when they
 * are what fills it).
 */
import type { MemberAddress, MemberEvent } from '../protocol.js';
import { formatBytes } from '../../../shared/bytes.js';
import { CLONE_ROOM_BYTES, MIN_FREE_BYTES } from './election-rules.js';
import { now, type KeeperCore } from './keeper-core.js';
import { firstLine } from './postgres-control.js';

/** What a rejoin reads and changes of the keeper. */
export type RejoinCore = Pick<
  KeeperCore,
  'config' | 'pg' | 'state' | 'obs' | 'role' | 'followingSince' | 'log' | 'logElection' | 'addEvent' | 'liveLeader'
>;

/** What a rejoin needs of the election: to stop following a leader it no longer follows. */
export interface ElectionForRejoin {
  stopFollowing(): Promise<void>;
}

export class Rejoin {
  /** Rewinds since this member last streamed: after two that did not lead to streaming, clone instead. */
  private rewindsWithoutStreaming = 0;

  constructor(
    private readonly core: RejoinCore,
    private readonly election: ElectionForRejoin,
  ) {}

  /** This member streams from its leader: the next rejoin may rewind again. */
  streaming(): void {
    this.rewindsWithoutStreaming = 0;
  }

  /**
   * Makes this member a standby of `leader` again: pg_rewind (when there is data and a rewind is
   * asked for), else — or when the rewind, or starting after it, fails — a fresh clone.
   */
  async rejoin(leader: MemberAddress, how: 'rewind' | 'clone'): Promise<void> {
    const t0 = now();
    const free = this.core.pg.freeBytes();
    // A rewind or a clone needs room: on a full disk it only fails. When this member's own files are what
    // fills it (WAL it kept as a primary, what a failed pg_rewind copied), a clone that throws them away
    // first gets it streaming again; otherwise wait for space.
    let emptyFirst = false;
    if (free !== null && free < MIN_FREE_BYTES) {
      const room = this.core.pg.freeBytesWithoutOwnData();
      if (room === null || room < CLONE_ROOM_BYTES) {
        this.core.logElection(`not rejoining ${leader.name}: disk nearly full (${formatBytes(free)} free)`);
        this.core.followingSince = now();
        return;
      }
      how = 'clone';
      emptyFirst = true;
    }
    try {
      // The leader must answer before this member gives anything up (a hung leader made standbys stop
      // their servers and clone in a loop, while nobody could be elected).
      await this.core.pg.checkpointOn(leader);
    } catch (error) {
      this.core.logElection(
        `not rejoining ${leader.name}: it does not answer (${firstLine((error as Error).message)})`,
      );
      this.core.followingSince = now();
      return;
    }
    this.core.role = 'rejoining';
    await this.core.pg.stop('fast');
    const follow = async (): Promise<void> => {
      await this.core.pg.writeDynamic({ primaryConninfo: this.core.pg.conninfoFor(leader), syncStandbyNames: '' });
      await this.core.pg.start({ standby: true });
      // A vote granted while this rejoin ran: the leader it rejoined is no longer the one to follow.
      if (this.core.liveLeader()?.name !== leader.name) await this.election.stopFollowing();
    };
    let kind: MemberEvent['kind'] = 'rejoin';
    let detail = `rewound from ${leader.name}`;
    let rewound = false;
    const timings: Record<string, number> = {};
    if (how === 'rewind' && this.core.pg.hasData() && this.rewindsWithoutStreaming < 2) {
      try {
        this.rewindsWithoutStreaming++;
        const tRewind = now();
        await this.core.pg.rewindFrom(leader);
        timings.rewind = Math.round(now() - tRewind);
        await follow();
        timings.start = Math.round(now() - tRewind) - timings.rewind;
        rewound = true;
      } catch (error) {
        this.core.log(`rejoin by pg_rewind failed, cloning instead: ${firstLine((error as Error).message)}`);
        detail = `pg_rewind failed (${firstLine((error as Error).message)}); cloned from ${leader.name}`;
        await this.core.pg.stop('immediate').catch(() => {});
      }
    } else
      detail = emptyFirst
        ? `cloned from ${leader.name}: disk nearly full (${formatBytes(free!)} free), its own files thrown away first`
        : `cloned from ${leader.name}`;
    if (!rewound) {
      kind = 'reclone';
      // The clone empties the data directory: until it is complete this member votes with the position
      // it had (it may hold commits it confirmed), never as an empty member.
      if (this.core.pg.hasData() && this.core.state.get().positionBeforeClone == null)
        this.core.state.update({
          positionBeforeClone:
            (await this.core.pg.cleanShutdownPosition().catch(() => null)) ??
            (this.core.obs.lsn !== null && this.core.obs.timeline !== null
              ? { lsn: this.core.obs.lsn, timeline: this.core.obs.timeline }
              : 'unknown'),
        });
      // What a failed rewind copied may have filled the disk.
      const left = this.core.pg.freeBytes();
      try {
        await this.core.pg.cloneFrom(leader, { emptyFirst: emptyFirst || (left !== null && left < MIN_FREE_BYTES) });
      } catch (error) {
        this.core.role = this.core.pg.hasData() ? 'stopped' : 'empty';
        this.core.followingSince = now();
        this.core.addEvent('reclone', `clone from ${leader.name} failed: ${firstLine((error as Error).message)}`, {
          total: Math.round(now() - t0),
        });
        return;
      }
      this.core.state.update({ positionBeforeClone: null });
      await follow();
      this.rewindsWithoutStreaming = 0;
    }
    this.core.state.update({ mayHaveDiverged: false });
    this.core.role = 'standby';
    this.core.followingSince = now();
    this.core.addEvent(
      kind,
      detail,
      rewound ? { ...timings, total: Math.round(now() - t0) } : { total: Math.round(now() - t0) },
    );
  }
}
