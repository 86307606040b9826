/** Reading what a cluster publishes, deciding readiness, and the status lines. */
import { describe, expect, it } from 'vitest';
import {
  clusterReadiness,
  clusterVerdict,
  databaseReadiness,
  formatClusterStatus,
  isReadyMember,
  readClusterView,
  type TreeFacts,
} from './cluster-view.js';

const OK: TreeFacts = { health: 'ok', healthMessage: null, reportedAgeMs: 12_000 };

const staticPart = {
  members_expected: 3,
  members_ready: 3,
  rw_host: '127.0.1.1',
  rw_port: 20000,
  ro_port: 20001,
  sync_mode: 'quorum',
  paused: false,
  maintenance: [],
};

const member = (name: string, role: string, extra: Record<string, unknown> = {}) => ({
  name,
  host: '127.0.1.2',
  port: 20050,
  role,
  term: 2,
  timeline: 2,
  streaming: role === 'standby',
  lag_mib: 0,
  maintenance: false,
  sync_state: role === 'primary' ? 'primary' : 'quorum',
  ...extra,
});

const running = {
  ...staticPart,
  primary: 'member-2',
  members: [member('member-1', 'standby'), member('member-2', 'primary'), member('member-3', 'standby')],
  last_failover: {
    member: 'member-2',
    at: '2025-01-01T00:00:03.000Z',
    kind: 'failover',
    term: 2,
    detail: 'member-1 lost its lease',
    timings: { detect: 2500, election: 40, promote: 610, total: 3150 },
  },
  switchover: { id: 'switchover-1', result: 'refused', reason: 'member-3 is in maintenance' },
  databases_error: null,
  events: [{ member: 'member-1', at: '2025-01-01T00:00:00.000Z', kind: 'bootstrap', term: 1, detail: 'initdb' }],
};

describe('readClusterView', () => {
  it('knows when only the static part is published (router not running yet)', () => {
    const view = readClusterView(staticPart);
    expect(view).toMatchObject({ runtime: false, primary: null, members: [], membersExpected: 3, paused: false });
    expect(clusterReadiness(view)).toEqual({
      ready: false,
      line: 'members ready 0/3; primary unknown (router not publishing yet); 3 member(s) published',
    });
  });

  it('ignores malformed entries instead of failing', () => {
    const view = readClusterView({
      ...running,
      members: [null, 5, { role: 'primary' }, member('member-1', 'primary')],
      events: 'x',
    });
    expect(view.members.map((m) => m.name)).toEqual(['member-1']);
    expect(view.events).toEqual([]);
  });
});

describe('clusterReadiness', () => {
  it('is ready with a primary and every standby streaming', () => {
    expect(clusterReadiness(readClusterView(running))).toEqual({
      ready: true,
      line: 'members ready 3/3; primary member-2',
    });
  });

  it('is not ready while a standby does not stream, or a member is missing', () => {
    const lagging = readClusterView({
      ...running,
      members: [
        member('member-1', 'standby', { streaming: false }),
        member('member-2', 'primary'),
        member('member-3', 'rejoining'),
      ],
    });
    expect(clusterReadiness(lagging)).toEqual({
      ready: false,
      line: 'members ready 1/3; primary member-2; member-1 standby, not streaming, member-3 rejoining',
    });
    const missing = readClusterView({ ...running, members: running.members.slice(0, 2) });
    expect(clusterReadiness(missing).ready).toBe(false);
    expect(clusterReadiness(readClusterView({ ...running, primary: null })).ready).toBe(false);
  });
});

describe('formatClusterStatus', () => {
  it('shows the members table, the primary, failover timings, the switchover result and events', () => {
    const lines = formatClusterStatus('crm-db', OK, readClusterView(running), ['member-3: promise keeper failing']);
    const text = lines.join('\n');
    expect(lines[0]).toBe('cluster crm-db  (health ok)');
    expect(text).toContain('  as of:       12 s ago\n');
    expect(text).toContain('  primary:     member-2');
    expect(text).toMatch(/MEMBER +ROLE +HOST:PORT +TIMELINE +LAG MIB +SYNC STATE +MAINTENANCE/);
    expect(text).toMatch(/member-2 +primary +127\.0\.1\.2:20050 +2 +0 +primary +no/);
    expect(text).toContain(
      'last failover:   2025-01-01T00:00:03.000Z member-2 failover (term 2): member-1 lost its lease; detect 2500 ms, election 40 ms, promote 610 ms, total 3150 ms',
    );
    expect(text).toContain('last switchover: refused: member-3 is in maintenance (switchover-1)');
    expect(text).toContain('member-3: promise keeper failing');
    expect(text).toContain('2025-01-01T00:00:00.000Z member-1 bootstrap (term 1): initdb');
  });

  it('describes a done switchover with its path and duration', () => {
    const view = readClusterView({
      ...running,
      switchover: { id: 's-2', result: 'done', from: 'member-1', to: 'member-2', durationMs: 1234 },
    });
    expect(formatClusterStatus('crm-db', OK, view).join('\n')).toContain(
      'last switchover: done member-1 → member-2 in 1.23 s (s-2)',
    );
  });
});

describe('databaseReadiness', () => {
  it('waits for a primary, no reconcile error, and the database among those the router created', () => {
    expect(databaseReadiness(readClusterView({ ...running, primary: null }), 'crm').line).toBe(
      'the cluster has no primary yet',
    );
    expect(databaseReadiness(readClusterView({ ...running, databases_error: 'timeout' }), 'crm')).toEqual({
      ready: false,
      line: 'the cluster could not apply its databases yet: timeout',
    });
    expect(databaseReadiness(readClusterView({ ...running, databases: ['other'] }), 'crm').ready).toBe(false);
    expect(databaseReadiness(readClusterView({ ...running, databases: ['other', 'crm'] }), 'crm').ready).toBe(true);
    // A router that does not publish the list: a primary without error is all there is to go by.
    expect(databaseReadiness(readClusterView(running), 'crm').ready).toBe(true);
  });
});

/** How the agent reports the write probe's failure: the promise, its command line, the probe's line. */
const PROBE_FAILURE =
  "crm-db: promise rw-endpoint: command ['/usr/bin/node', '--import', '/opt/hox/node_modules/tsx/dist/loader.mjs', '/opt/hox/src/releases/hyper_db/probe/main.ts', 'probe.json']: exit 1: no primary accepts writes through 127.0.1.1:20000: no connection within 2750 ms";

describe('isReadyMember', () => {
  it('counts only the followed primary and standbys that stream and that the primary sees', () => {
    const view = readClusterView(running);
    const ready = (m: ReturnType<typeof member>) =>
      isReadyMember(readClusterView({ members: [m] }).members[0]!, view.primary);
    expect(ready(member('member-2', 'primary'))).toBe(true);
    expect(ready(member('member-1', 'standby'))).toBe(true);
    for (const role of ['unreachable', 'rejoining', 'demoted', 'stopped', 'empty', 'unknown'])
      expect(ready(member('member-3', role, { streaming: true, sync_state: 'quorum' })), role).toBe(false);
    // A status the router kept while the primary no longer sees that standby, or a stale claim to lead.
    expect(ready(member('member-1', 'standby', { sync_state: 'disconnected' }))).toBe(false);
    expect(ready(member('member-1', 'standby', { sync_state: null }))).toBe(false);
    expect(ready(member('member-1', 'primary'))).toBe(false);
    expect(isReadyMember(readClusterView({ members: [member('member-1', 'standby')] }).members[0]!, null)).toBe(false);
  });

  it('makes members ready and readiness say which member is not, and why', () => {
    const view = readClusterView({
      ...running,
      members: [
        member('member-1', 'unreachable', { streaming: false }),
        member('member-2', 'primary'),
        member('member-3', 'standby', { sync_state: 'disconnected' }),
      ],
    });
    expect(clusterReadiness(view)).toEqual({
      ready: false,
      line: 'members ready 1/3; primary member-2; member-1 unreachable, member-3 standby, not seen by member-2',
    });
    expect(formatClusterStatus('crm-db', OK, view).join('\n')).toContain('  members:     1/3 ready');
  });
});

describe('clusterVerdict', () => {
  const view = readClusterView(running);

  it('is ok only when the master says ok, a primary is published and every member is ready', () => {
    expect(clusterVerdict(view, OK)).toEqual({ health: 'ok', problem: null, stale: false });
  });

  it("says no primary accepts writes, quoting the write probe without the promise's command line", () => {
    const facts = { health: 'error', healthMessage: PROBE_FAILURE, reportedAgeMs: 4000 };
    expect(clusterVerdict(view, facts)).toEqual({
      health: 'error',
      problem: 'no primary accepts writes through 127.0.1.1:20000: no connection within 2750 ms',
      stale: false,
    });
    const lines = formatClusterStatus('crm-db', facts, view, [PROBE_FAILURE]);
    expect(lines[0]).toBe(
      'cluster crm-db  (health error: no primary accepts writes through 127.0.1.1:20000: no connection within 2750 ms)',
    );
    expect(lines.join('\n')).toContain(
      '    crm-db: promise rw-endpoint: no primary accepts writes through 127.0.1.1:20000: no connection within 2750 ms',
    );
    // Another error is quoted as the master gives it.
    expect(clusterVerdict(view, { ...facts, healthMessage: 'member-3: promise keeper: refused' }).problem).toBe(
      'member-3: promise keeper: refused',
    );
  });

  it('is stale when the master says so, or when the view is older than the bound, never ok', () => {
    const silent = {
      health: 'stale',
      healthMessage: "node 'n1' silent for 80 s (its last report may be out of date)",
      reportedAgeMs: 80_000,
    };
    expect(clusterVerdict(view, silent)).toEqual({
      health: 'stale',
      problem: "node 'n1' silent for 80 s (its last report may be out of date)",
      stale: true,
    });
    const text = formatClusterStatus('crm-db', silent, view).join('\n');
    expect(text).toContain(
      "cluster crm-db  (health stale: node 'n1' silent for 80 s (its last report may be out of date))",
    );
    expect(text).toContain('  as of:       80 s ago — STALE (past 75 s): what follows may no longer be true');
    // An older master that knows nothing of staleness: the age alone decides.
    expect(clusterVerdict(view, { health: 'ok', healthMessage: null, reportedAgeMs: 90_000 })).toEqual({
      health: 'stale',
      problem: 'the published view is 90 s old (stale past 75 s)',
      stale: true,
    });
  });

  it('is degraded while writes work but a member is not ready, and an error without a published primary', () => {
    const rejoining = readClusterView({
      ...running,
      members: [member('member-1', 'rejoining'), member('member-2', 'primary'), member('member-3', 'standby')],
    });
    expect(clusterVerdict(rejoining, OK)).toEqual({
      health: 'degraded',
      problem: 'members ready 2/3; primary member-2; member-1 rejoining',
      stale: false,
    });
    expect(clusterVerdict(readClusterView({ ...running, primary: null }), OK)).toEqual({
      health: 'error',
      problem: 'no primary is published',
      stale: false,
    });
    expect(
      clusterVerdict(view, {
        health: 'pending',
        healthMessage: 'member-3: requested started, reported nothing yet',
        reportedAgeMs: 0,
      }).health,
    ).toBe('pending');
  });
});
