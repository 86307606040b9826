/**
 * The keeper's election rules, one at a time: each test sets up the one condition a rule is about and
 * checks the decision changes with it (so that a rule that stopped deciding would fail here).
 */
import { describe, expect, it } from 'vitest';
import type { VoteBody } from '../protocol.js';
import {
  FENCE_MARGIN_MS,
  LAG_BACKOFF_MS,
  NOTHING_OBSERVED,
  NOT_STREAMING_REJOIN_MS,
  decideHeartbeat,
  decideRelease,
  decideVote,
  electionRetryAt,
  grantUntil,
  healthRefusal,
  leaderRefusal,
  leaseUntilFromGrants,
  leaseValid,
  mayRejoin,
  mayRenewLease,
  mayStand,
  notStreamingTooLong,
  preVoteRetryAt,
  promotionBackoffMs,
  recoveryRefusal,
  stillFreeToStand,
  type MemberHealth,
  type StandInput,
  type VoterState,
} from './election-rules.js';

const NOW = 100_000;

function voter(change: Partial<VoterState> = {}): VoterState {
  return {
    now: NOW,
    term: 5,
    votedFor: null,
    primaryWithValidLease: false,
    promisedUntil: 0,
    promisedTo: null,
    handover: null,
    paused: false,
    maintenance: [],
    peerNames: ['b', 'c'],
    leaseMs: 2500,
    position: { timeline: 2, lsn: '0/3000000' },
    ...change,
  };
}

function request(change: Partial<VoteBody> = {}): VoteBody {
  return { term: 6, candidate: 'b', lsn: '0/3000000', timeline: 2, planned: false, preVote: false, ...change };
}

describe('decideVote', () => {
  it('grants a real vote: moves to the term, records it, promises the lease and stops following', () => {
    const d = decideVote(voter(), request());
    expect(d.answer).toEqual({ granted: true, term: 6 });
    expect(d.change).toEqual({
      term: 6,
      votedFor: 'b',
      promisedUntil: NOW + 2500,
      promisedTo: 'b',
      stopFollowing: true,
    });
  });

  it('grants a pre-vote without recording anything', () => {
    const d = decideVote(voter(), request({ preVote: true }));
    expect(d.answer).toEqual({ granted: true, term: 5 });
    expect(d.change).toBeNull();
  });

  it('refuses a stale term', () => {
    expect(decideVote(voter(), request({ term: 4 })).answer.reason).toBe('stale term 4 < 5');
    expect(decideVote(voter(), request({ term: 5 })).answer.granted).toBe(true);
  });

  it('votes once per term, again for the same candidate', () => {
    const voted = voter({ term: 6, votedFor: 'c' });
    expect(decideVote(voted, request()).answer.reason).toBe('already voted for c in term 6');
    expect(decideVote(voter({ term: 6, votedFor: 'b' }), request()).answer.granted).toBe(true);
    expect(decideVote(voted, request({ term: 7 })).answer.granted).toBe(true);
  });

  it('refuses while it is the primary with a valid lease', () => {
    expect(decideVote(voter({ primaryWithValidLease: true }), request()).answer.reason).toBe(
      'I am the primary and my lease is valid',
    );
  });

  it('refuses while a promise to another runs, says when it ends, and yields to a handover', () => {
    const bound = voter({ promisedUntil: NOW + 700, promisedTo: 'c' });
    const d = decideVote(bound, request());
    expect(d.answer).toMatchObject({ granted: false, reason: 'lease promised to c', retryInMs: 700 });
    expect(decideVote({ ...bound, promisedTo: 'b' }, request()).answer.granted).toBe(true);
    expect(decideVote({ ...bound, now: NOW + 700 }, request()).answer.granted).toBe(true);
    expect(decideVote({ ...bound, handover: { to: 'b', until: NOW + 1 } }, request()).answer.granted).toBe(true);
    expect(decideVote({ ...bound, handover: { to: 'b', until: NOW } }, request()).answer.granted).toBe(false);
    expect(decideVote({ ...bound, promisedTo: null }, request()).answer.reason).toBe(
      'lease promised to a previous leader',
    );
  });

  it('refuses while paused unless the election is planned', () => {
    expect(decideVote(voter({ paused: true }), request()).answer.reason).toBe('the cluster is paused');
    expect(decideVote(voter({ paused: true }), request({ planned: true })).answer.granted).toBe(true);
  });

  it('refuses a candidate in maintenance or not a member', () => {
    expect(decideVote(voter({ maintenance: ['b'] }), request()).answer.reason).toBe('b is in maintenance');
    expect(decideVote(voter(), request({ candidate: 'z' })).answer.reason).toBe('z is not a member');
  });

  it('refuses when its own position is unknown; votes for anyone when it never had data', () => {
    expect(decideVote(voter({ position: 'unknown' }), request()).answer.granted).toBe(false);
    expect(decideVote(voter({ position: null }), request({ lsn: '0/0', timeline: 1 })).answer.granted).toBe(true);
  });

  it('refuses a candidate behind it (timeline first, then LSN)', () => {
    expect(decideVote(voter(), request({ lsn: '0/2FFFFFF' })).answer.reason).toMatch(/^candidate is behind me/);
    expect(decideVote(voter(), request({ timeline: 1, lsn: 'F/0' })).answer.granted).toBe(false);
    expect(decideVote(voter(), request({ timeline: 3, lsn: '0/0' })).answer.granted).toBe(true);
  });

  it('checks in the keeper order: the term before the promise', () => {
    const d = decideVote(voter({ promisedUntil: NOW + 100, promisedTo: 'c' }), request({ term: 1 }));
    expect(d.answer.reason).toBe('stale term 1 < 5');
  });
});

describe('retries after a lost election', () => {
  it('retries just after a promise that ends within a second, else in 300-800 ms', () => {
    expect(preVoteRetryAt(NOW, 200, 0)).toBe(NOW + 205);
    expect(preVoteRetryAt(NOW, 200, 0.999)).toBe(NOW + 259);
    expect(preVoteRetryAt(NOW, 1000, 0)).toBe(NOW + 300);
    expect(preVoteRetryAt(NOW, null, 0.999)).toBe(NOW + 799);
    expect(electionRetryAt(NOW, 0.5)).toBe(NOW + 550);
  });
});

describe('the lease', () => {
  it('counts a grant from the send time', () => {
    expect(grantUntil(NOW, 2500)).toBe(NOW + 2500);
  });

  it('lasts until the need-th latest grant and never shrinks', () => {
    expect(leaseUntilFromGrants([10, 30, 20], 2, 0)).toBe(20);
    expect(leaseUntilFromGrants([10, 30, 20], 1, 0)).toBe(30);
    expect(leaseUntilFromGrants([10], 2, 5)).toBe(5);
    expect(leaseUntilFromGrants([10, 30, 20], 2, 25)).toBe(25);
    expect(leaseUntilFromGrants([], 0, 0)).toBe(Infinity);
  });

  it('is valid until the fence margin before its end, for a primary only', () => {
    const lease = { role: 'primary', forcedLeader: false, leaseUntil: NOW + FENCE_MARGIN_MS + 1, now: NOW };
    expect(leaseValid(lease)).toBe(true);
    expect(leaseValid({ ...lease, now: NOW + 1 })).toBe(false);
    expect(leaseValid({ ...lease, role: 'demoted' })).toBe(false);
    expect(leaseValid({ ...lease, leaseUntil: 0, forcedLeader: true })).toBe(true);
  });

  it('is renewed only while PostgreSQL answers', () => {
    const config = { unresponsiveMs: 1000, minFreeBytes: 0 };
    expect(mayRenewLease(NOW, { ...NOTHING_OBSERVED, lastProbeOkAt: NOW - 1000 }, config)).toBe(true);
    expect(mayRenewLease(NOW, { ...NOTHING_OBSERVED, lastProbeOkAt: NOW - 1001 }, config)).toBe(false);
    expect(mayRenewLease(NOW, NOTHING_OBSERVED, config)).toBe(false);
  });
});

describe('heartbeats and releases', () => {
  const follower = { now: NOW, self: 'a', term: 5, role: 'standby' };

  it('refuses a stale heartbeat, follows a current one, records a newer term', () => {
    expect(decideHeartbeat(follower, { term: 4, leader: 'b', leaseMs: 2500 })).toMatchObject({ ok: false, term: 5 });
    expect(decideHeartbeat(follower, { term: 5, leader: 'b', leaseMs: 2500 })).toEqual({
      ok: true,
      term: 5,
      newTerm: null,
      stepDown: false,
      promisedUntil: NOW + 2500,
    });
    expect(decideHeartbeat(follower, { term: 7, leader: 'b', leaseMs: 2500 }).newTerm).toBe(7);
  });

  it('makes a primary that hears another leader step down', () => {
    const primary = { ...follower, role: 'primary' };
    expect(decideHeartbeat(primary, { term: 5, leader: 'b', leaseMs: 2500 }).stepDown).toBe(true);
    expect(decideHeartbeat(primary, { term: 5, leader: 'a', leaseMs: 2500 }).stepDown).toBe(false);
  });

  it('ends the promise on a release by the leader it promised, hands over with a target, ignores others', () => {
    const f = { now: NOW, term: 5, promisedTo: 'b', leaseMs: 2500 };
    expect(decideRelease(f, { term: 5, from: 'b', to: null })).toEqual({ kind: 'end-promise' });
    expect(decideRelease(f, { term: 5, from: 'b', to: 'c' })).toEqual({ kind: 'handover', to: 'c', until: NOW + 2500 });
    expect(decideRelease(f, { term: 5, from: 'c', to: null })).toEqual({ kind: 'ignore' });
    expect(decideRelease(f, { term: 4, from: 'b', to: null })).toEqual({ kind: 'ignore' });
  });
});

describe('health', () => {
  const config = { unresponsiveMs: 1000, minFreeBytes: 1000 };
  const fine: MemberHealth = { ...NOTHING_OBSERVED, lastProbeOkAt: NOW, freeBytes: 5000 };

  it('backs off 2 s, 4 s, 8 s … after failed promotions, capped at 60 s', () => {
    expect([0, 1, 2, 3, 5, 6, 100].map(promotionBackoffMs)).toEqual([0, 2000, 4000, 8000, 32_000, 60_000, 60_000]);
  });

  it('is fine when PostgreSQL answered, the disk has room and nothing failed lately', () => {
    expect(healthRefusal(NOW, fine, config)).toBeNull();
    expect(healthRefusal(NOW, { ...fine, freeBytes: null }, config)).toBeNull();
  });

  it('refuses a server that has not answered a probe within unresponsiveMs', () => {
    expect(healthRefusal(NOW + 1001, fine, config)).toMatch(/has not answered a probe for 1001 ms/);
  });

  it('refuses a nearly full disk', () => {
    expect(healthRefusal(NOW, { ...fine, freeBytes: 999 }, config)).toMatch(/disk nearly full: 999 bytes free/);
  });

  it('refuses during the backoff after failed promotions, then recovers', () => {
    const failed = { ...fine, promotionFailures: 2, lastPromotionFailureAt: NOW - 3999 };
    expect(recoveryRefusal(NOW, failed)).toMatch(/promotion failed 2 time\(s\) in a row: waiting 1 ms/);
    expect(recoveryRefusal(NOW + 1, failed)).toBeNull();
  });

  it('refuses after three PostgreSQL crashes within a minute', () => {
    const crashes = [NOW - 59_999, NOW - 1000, NOW - 10];
    expect(recoveryRefusal(NOW, { ...fine, pgCrashes: crashes })).toBe('PostgreSQL crashed 3 times in 60 s');
    expect(recoveryRefusal(NOW + 1, { ...fine, pgCrashes: crashes })).toBeNull();
  });
});

describe('standing for election', () => {
  const input = (change: Partial<StandInput> = {}): StandInput => ({
    now: NOW,
    paused: false,
    inMaintenance: false,
    promisedUntil: NOW - 200,
    jitterMs: 100,
    electionBackoffUntil: 0,
    position: { timeline: 2, lsn: '0/1000000' },
    leaderLsn: '0/1000000',
    maxLagBytes: 1024,
    restoreNotReady: false,
    health: { ...NOTHING_OBSERVED, lastProbeOkAt: NOW, freeBytes: 10_000 },
    healthConfig: { unresponsiveMs: 1000, minFreeBytes: 1000 },
    ...change,
  });

  it('stands when nothing holds it back', () => {
    expect(mayStand(input())).toEqual({ stand: true });
  });

  it.each([
    ['paused', { paused: true }],
    ['in maintenance', { inMaintenance: true }],
    ['a promise (with its jitter) still runs', { jitterMs: 201 }],
    ['the election backoff runs', { electionBackoffUntil: NOW + 1 }],
    ['its position is unknown', { position: null }],
    ['a restore has not reached its target', { restoreNotReady: true }],
  ] as [string, Partial<StandInput>][])('does not stand when %s', (_, change) => {
    expect(leaderRefusal(input(change)).stand).toBe(false);
    expect(mayStand(input(change)).stand).toBe(false);
  });

  it('does not stand too far behind the leader, and looks again after LAG_BACKOFF_MS', () => {
    const d = mayStand(input({ leaderLsn: '0/1000401' }));
    expect(d).toMatchObject({ stand: false, backoffUntil: NOW + LAG_BACKOFF_MS });
    expect(mayStand(input({ leaderLsn: '0/1000400' })).stand).toBe(true);
  });

  it('adds the health rules: before issue 12 an unhealthy member stood', () => {
    const sick = input({ health: { ...NOTHING_OBSERVED, lastProbeOkAt: NOW, freeBytes: 0 } });
    expect(leaderRefusal(sick)).toEqual({ stand: true });
    expect(mayStand(sick)).toMatchObject({ stand: false, reason: expect.stringMatching(/disk nearly full/) as string });
    const failed = input({
      health: { ...NOTHING_OBSERVED, lastProbeOkAt: NOW, promotionFailures: 1, lastPromotionFailureAt: NOW - 10 },
    });
    expect(mayStand(failed).stand).toBe(false);
  });

  it('gives up a round when it promised another candidate during its pre-vote', () => {
    const state = { now: NOW, self: 'a', promisedUntil: NOW + 1, promisedTo: 'b' };
    expect(stillFreeToStand(state)).toBe('promised b a lease during the pre-vote');
    expect(stillFreeToStand({ ...state, promisedTo: 'a' })).toBeNull();
    expect(stillFreeToStand({ ...state, now: NOW + 1 })).toBeNull();
  });
});

describe('rejoining', () => {
  const base = { now: NOW, streaming: false, followingSince: NOW - NOT_STREAMING_REJOIN_MS - 1 };

  it('rejoins a standby that has not streamed for NOT_STREAMING_REJOIN_MS from a healthy leader', () => {
    expect(mayRejoin({ ...base, leaderPgHealthy: true })).toBe(true);
    expect(mayRejoin({ ...base, streaming: true, leaderPgHealthy: true })).toBe(false);
    expect(mayRejoin({ ...base, followingSince: NOW - NOT_STREAMING_REJOIN_MS, leaderPgHealthy: true })).toBe(false);
  });

  it('never rejoins a leader whose PostgreSQL does not answer (it did before issue 12)', () => {
    expect(mayRejoin({ ...base, leaderPgHealthy: false })).toBe(false);
    expect(notStreamingTooLong(base)).toBe(true);
  });
});
