/**
 * The keeper's election rules, one at a time: each test sets up the one condition a rule is about and
 * checks the decision changes with it (so that a rule that stopped deciding would fail here).
 */
import { describe, expect, it } from 'vitest';
import type { VoteBody } from '../protocol.js';
import {
  FENCE_MARGIN_MS,
  FIT,
  LAG_BACKOFF_MS,
  MIN_FREE_BYTES,
  NOT_STREAMING_REJOIN_MS,
  STAND_BLOCK_MS,
  UNFIT_RECHECK_MS,
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
  unfitToLead,
  unresponsiveMsFor,
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

  it('of a keeper resuming beside its running primary comes from grants only (before: a margin for free)', () => {
    expect(resumedLeaseUntil(NOW, 250, true)).toBe(0);
    expect(resumedLeaseUntil(NOW, 250, false)).toBe(NOW + FENCE_MARGIN_MS + 500);
  });

  it('is valid until the fence margin before its end, for a primary only', () => {
    const lease = { role: 'primary', forcedLeader: false, leaseUntil: NOW + FENCE_MARGIN_MS + 1, now: NOW };
    expect(leaseValid(lease)).toBe(true);
    expect(leaseValid({ ...lease, now: NOW + 1 })).toBe(false);
    expect(leaseValid({ ...lease, role: 'demoted' })).toBe(false);
    expect(leaseValid({ ...lease, leaseUntil: 0, forcedLeader: true })).toBe(true);
  });

  it('is renewed only while PostgreSQL answered within unresponsiveMs, or is being started or promoted', () => {
    expect(mayRenewLease(NOW, { ...FIT, pgAnsweredAt: NOW - 8000 }, 8000, false)).toBe(true);
    expect(mayRenewLease(NOW, { ...FIT, pgAnsweredAt: NOW - 8001 }, 8000, false)).toBe(false);
    expect(mayRenewLease(NOW, { ...FIT, pgAnsweredAt: NOW - 8001 }, 8000, true)).toBe(true);
  });

  it('is fenced by a primary whose PostgreSQL has not answered for unresponsiveMs (max of 8 s and 3 leases)', () => {
    expect(unresponsiveMsFor(2500)).toBe(8000);
    expect(unresponsiveMsFor(5000)).toBe(15_000);
    const silent = { ...FIT, pgAnsweredAt: NOW - 8001 };
    expect(mustFenceUnresponsive(NOW, 'primary', silent, 8000)).toBe(true);
    expect(mustFenceUnresponsive(NOW, 'standby', silent, 8000)).toBe(false);
    expect(mustFenceUnresponsive(NOW - 1, 'primary', silent, 8000)).toBe(false);
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
  const fine = { ...FIT, pgAnsweredAt: NOW, freeBytes: MIN_FREE_BYTES };

  it('backs off 2 s, 4 s, 8 s … after failed promotions, capped at 60 s', () => {
    expect([0, 1, 2, 3, 5, 6, 100].map(promotionBackoffMs)).toEqual([0, 2000, 4000, 8000, 32_000, 60_000, 60_000]);
  });

  it('is fit when its server answers, the disk has room and no block runs', () => {
    expect(unfitToLead(NOW, fine)).toBeNull();
    expect(unfitToLead(NOW, { ...fine, freeBytes: null })).toBeNull();
  });

  it('is unfit while a block after a failure to lead runs', () => {
    const blocked = { ...fine, standBlockedUntil: NOW + 1500, standBlockedReason: 'promotion failed' };
    expect(unfitToLead(NOW, blocked)).toBe('promotion failed (may stand again in 2 s)');
    expect(unfitToLead(NOW + 1500, blocked)).toBeNull();
  });

  it('is unfit with a nearly full disk', () => {
    expect(unfitToLead(NOW, { ...fine, freeBytes: MIN_FREE_BYTES - 1 })).toMatch(
      /^disk nearly full: 32 MiB free on its data filesystem \(needs 32 MiB\)$/,
    );
  });

  it('is unfit while its server does not answer', () => {
    expect(unfitToLead(NOW, { ...fine, pgProblem: 'no answer within 3000 ms' })).toBe(
      'its PostgreSQL does not answer: no answer within 3000 ms',
    );
  });

  it('restarts a stopped primary in place, but steps down on a full disk or after 3 restarts a minute', () => {
    expect(primaryServerDown(NOW, [NOW - 60_000, NOW - 1, NOW - 2], MIN_FREE_BYTES)).toEqual({ action: 'restart' });
    expect(primaryServerDown(NOW, [NOW - 59_999, NOW - 1, NOW - 2], null)).toEqual({
      action: 'step-down',
      reason: 'crashes',
      blockMs: STAND_BLOCK_MS.crashes,
    });
    expect(primaryServerDown(NOW, [], MIN_FREE_BYTES - 1)).toEqual({
      action: 'step-down',
      reason: 'disk-full',
      blockMs: STAND_BLOCK_MS.diskFull,
    });
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
    health: { ...FIT, pgAnsweredAt: NOW, freeBytes: MIN_FREE_BYTES },
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
    expect(mayStand(input(change), { healthRules: false }).stand).toBe(false);
    expect(mayStand(input(change)).stand).toBe(false);
  });

  it('does not stand too far behind the leader, and looks again after LAG_BACKOFF_MS', () => {
    const d = mayStand(input({ leaderLsn: '0/1000401' }));
    expect(d).toMatchObject({ stand: false, backoffUntil: NOW + LAG_BACKOFF_MS });
    expect(mayStand(input({ leaderLsn: '0/1000400' })).stand).toBe(true);
  });

  it('adds the health rules (before issue 12 an unfit member stood), and looks again in UNFIT_RECHECK_MS', () => {
    const sick = input({ health: { ...FIT, pgAnsweredAt: NOW, freeBytes: 0 } });
    expect(mayStand(sick, { healthRules: false })).toEqual({ stand: true });
    expect(mayStand(sick)).toMatchObject({
      stand: false,
      reason: expect.stringMatching(/^not standing for election: disk nearly full/) as string,
      backoffUntil: NOW + UNFIT_RECHECK_MS,
    });
    const blocked = input({ health: { ...FIT, standBlockedUntil: NOW + 1, standBlockedReason: 'promotion failed' } });
    expect(mayStand(blocked).stand).toBe(false);
    // A running promise is checked first: an unfit member bound to a leader says nothing.
    expect(mayStand({ ...sick, promisedUntil: NOW + 1 })).toMatchObject({ stand: false, quiet: true });
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
