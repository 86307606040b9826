/**
 * What a switchover decides before it stops the primary: the refusals (read-only, answered at once) and
 * the wait for the WAL archive to catch up, which PostgreSQL's shutdown would otherwise do with writes
 * paused. The stop and takeover themselves run on real clusters (test/hyperdb.test.ts, test-long/).
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { PostgresSupervisor } from './postgres-supervisor.js';
import { ARCHIVE_DRAIN_MS, Switchover, type ElectionForSwitchover, type SwitchoverCore } from './switchover.js';

function fixture(options: { archive: boolean; backlog: number[] }) {
  const logs: string[] = [];
  const backlog = [...options.backlog];
  const core = {
    config: {
      name: 'member-1',
      archive: options.archive ? { url: 'http://127.0.0.1:1', token: 't', timeoutS: 60 } : null,
      peers: [{ name: 'member-2', host: '127.0.0.2', pgPort: 5432, peerPort: 5433 }],
      maintenance: [],
      maxLagBytes: 1024 * 1024,
    },
    // The last value repeats: the backlog as the keeper reads it at each tick.
    pg: { archiveBacklog: () => (backlog.length > 1 ? backlog.shift()! : backlog[0]!) },
    obs: { replicas: [{ name: 'member-2', state: 'streaming', syncState: 'quorum', lagBytes: 0 }] },
    log: (line: string) => logs.push(line),
  } as unknown as SwitchoverCore;
  const election: ElectionForSwitchover = { peerProblems: new Map(), runElection: () => Promise.resolve(false) };
  return { switchover: new Switchover(core, {} as PostgresSupervisor, election), logs };
}

describe('a switchover waits for the WAL archive to catch up before it stops the primary', () => {
  // The keeper's clock (performance.now), moved by hand.
  let clock = 0;
  const advance = (ms: number) => (clock += ms);
  beforeEach(() => void vi.spyOn(performance, 'now').mockImplementation(() => clock));
  afterEach(() => vi.restoreAllMocks());

  it('goes at once without an archive, or with at most one WAL file waiting', () => {
    expect(fixture({ archive: false, backlog: [40] }).switchover.archiveDrained('sw-1')).toBe(true);
    expect(fixture({ archive: true, backlog: [1] }).switchover.archiveDrained('sw-1')).toBe(true);
    expect(fixture({ archive: true, backlog: [0] }).switchover.archiveDrained('sw-1')).toBe(true);
  });

  it('waits while files wait, then goes once the archive caught up, and says how long it took', () => {
    const { switchover, logs } = fixture({ archive: true, backlog: [41, 30, 12, 1] });
    expect(switchover.archiveDrained('sw-1')).toBe(false);
    expect(logs).toEqual(['switchover sw-1: 41 WAL files to archive first, while writes go on']);
    advance(1000);
    expect(switchover.archiveDrained('sw-1')).toBe(false);
    advance(1000);
    expect(switchover.archiveDrained('sw-1')).toBe(false);
    advance(1000);
    expect(switchover.archiveDrained('sw-1')).toBe(true);
    expect(logs[1]).toBe('switchover sw-1: archive caught up (41 WAL files) in 3000 ms');
  });

  it('waits at most ARCHIVE_DRAIN_MS for an archive that does not keep up, then goes and says what is left', () => {
    const { switchover, logs } = fixture({ archive: true, backlog: [9] });
    expect(switchover.archiveDrained('sw-1')).toBe(false);
    advance(ARCHIVE_DRAIN_MS - 1);
    expect(switchover.archiveDrained('sw-1')).toBe(false);
    advance(2);
    expect(switchover.archiveDrained('sw-1')).toBe(true);
    expect(logs[1]).toMatch(/^switchover sw-1: 9 WAL files still to archive after 6000\d ms: the stop waits for them$/);
  });

  it('starts the wait afresh for another switchover', () => {
    const { switchover } = fixture({ archive: true, backlog: [9] });
    expect(switchover.archiveDrained('sw-1')).toBe(false);
    advance(ARCHIVE_DRAIN_MS + 1);
    expect(switchover.archiveDrained('sw-2')).toBe(false);
  });

  it('refuses without waiting: a target that is this member, not a member, or not streaming', () => {
    const { switchover } = fixture({ archive: true, backlog: [9] });
    expect(switchover.refusal({ id: 'a', to: 'member-1' })?.reason).toBe('member-1 is already the primary');
    expect(switchover.refusal({ id: 'b', to: 'member-9' })?.reason).toBe('member-9 is not a member of this cluster');
    expect(switchover.refusal({ id: 'c', to: 'member-2' })).toBeNull();
    expect(switchover.refusal({ id: 'd', to: null })).toBeNull();
  });
});
