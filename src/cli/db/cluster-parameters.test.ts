/** The parameter merges behind `hox db`: what they keep, what they change, what they refuse. */
import { describe, expect, it } from 'vitest';
import { HoxError } from '../../shared/errors.js';
import {
  assertDatabaseName,
  assertMember,
  createParameters,
  newRequestId,
  withAcceptDataLoss,
  withMaintenance,
  withPasswordRotation,
  withPaused,
  withSwitchover,
} from './cluster-parameters.js';

/** Parameters someone set earlier, none of which a `hox db` change owns. */
const current = Object.freeze({
  members: 3,
  sync_mode: 'strict',
  paused: true,
  maintenance: ['member-3'],
  settings: { work_mem: '16MB' },
  switchover: { id: 'switchover-old', to: null },
  accept_data_loss: { id: 'promote-old', member: 'member-1', by: 'admin' },
});

function refusal(run: () => unknown): HoxError {
  try {
    run();
  } catch (error) {
    if (error instanceof HoxError) return error;
    throw error;
  }
  throw new Error('expected a HoxError');
}

describe('member names', () => {
  it('accepts member-1..member-N and names the cluster and its members otherwise', () => {
    expect(() => assertMember('x', current, 'member-3')).not.toThrow();
    for (const bad of ['member-9', 'member-0', 'member-4', 'Member-1', 'member-01', '', 'primary']) {
      const error = refusal(() => assertMember('x', current, bad));
      expect(error.code).toBe('HOX_BAD_REQUEST');
      expect(error.message).toBe(`'${bad}' is not a member of cluster 'x' (members: member-1..member-3)`);
    }
  });

  it('follows the members parameter, and the release default (3) without it', () => {
    expect(() => assertMember('x', { members: 5 }, 'member-5')).not.toThrow();
    expect(refusal(() => assertMember('x', {}, 'member-4')).message).toContain('(members: member-1..member-3)');
    expect(refusal(() => assertMember('solo', { members: 1 }, 'member-2')).message).toBe(
      "'member-2' is not a member of cluster 'solo' (members: member-1)",
    );
  });
});

describe('createParameters', () => {
  it('keeps current parameters, with --param under the --members / --sync-mode flags', () => {
    const next = createParameters(current, {
      members: 5,
      syncMode: 'async',
      extra: { members: 2, max_lag_bytes: 1024, sync_mode: 'quorum' },
    });
    expect(next).toEqual({ ...current, members: 5, sync_mode: 'async', max_lag_bytes: 1024 });
  });

  it('starts empty for a new cluster and leaves defaults to the release', () => {
    expect(createParameters(undefined, {})).toEqual({});
  });

  it('refuses a member count the release does not take', () => {
    for (const members of [0, 8, 2.5])
      expect(refusal(() => createParameters(undefined, { members })).field).toBe('--members');
  });
});

describe('withSwitchover', () => {
  it('keeps every other parameter and sets {id, to}', () => {
    const { parameters, request } = withSwitchover('x', current, 'member-2');
    expect(parameters).toEqual({ ...current, switchover: { id: request.id, to: 'member-2' } });
    expect(current.switchover.id).toBe('switchover-old');
  });

  it('makes a fresh id every time, never the one already requested', () => {
    const ids = new Set(Array.from({ length: 50 }, () => withSwitchover('x', current, null).request.id));
    expect(ids.size).toBe(50);
    expect(ids.has('switchover-old')).toBe(false);
    for (const id of ids) expect(id).toMatch(/^switchover-[0-9a-f]{16}$/);
    // A generator that repeats the previous id is asked again.
    const queue = ['switchover-old', 'switchover-old', 'switchover-new'];
    expect(withSwitchover('x', current, null, () => queue.shift()!).request.id).toBe('switchover-new');
  });

  it('leaves the target to the cluster when none is given, and refuses one that is not a member', () => {
    expect(withSwitchover('x', current, null).parameters.switchover).toMatchObject({ to: null });
    expect(refusal(() => withSwitchover('x', current, 'member-9')).message).toBe(
      "'member-9' is not a member of cluster 'x' (members: member-1..member-3)",
    );
  });
});

describe('withPaused', () => {
  it('sets paused and keeps the rest', () => {
    expect(withPaused(current, false)).toEqual({ ...current, paused: false });
    expect(withPaused({}, true)).toEqual({ paused: true });
  });
});

describe('withMaintenance', () => {
  it('adds a member once: adding it again changes nothing', () => {
    const first = withMaintenance('x', current, 'member-1', true);
    expect(first).toMatchObject({ changed: true, maintenance: ['member-3', 'member-1'] });
    expect(first.parameters).toEqual({ ...current, maintenance: ['member-3', 'member-1'] });
    const again = withMaintenance('x', first.parameters, 'member-1', true);
    expect(again.changed).toBe(false);
    expect(again.parameters).toEqual(first.parameters);
  });

  it('removes a member once: removing it again changes nothing; an emptied list is dropped', () => {
    const out = withMaintenance('x', current, 'member-3', false);
    expect(out).toMatchObject({ changed: true, maintenance: [] });
    expect(out.parameters).not.toHaveProperty('maintenance');
    expect(out.parameters).toEqual({ ...current, maintenance: undefined });
    expect(withMaintenance('x', out.parameters, 'member-3', false)).toMatchObject({ changed: false, maintenance: [] });
    expect(withMaintenance('x', {}, 'member-2', false).parameters).toEqual({});
  });

  it('refuses a member the cluster does not have', () => {
    const error = refusal(() => withMaintenance('x', current, 'member-4', true));
    expect(error.code).toBe('HOX_BAD_REQUEST');
    expect(error.message).toBe("'member-4' is not a member of cluster 'x' (members: member-1..member-3)");
  });
});

describe('withAcceptDataLoss', () => {
  it('records the member and who asked, with a fresh id, keeping the rest', () => {
    const { parameters, request } = withAcceptDataLoss('x', current, 'member-2', 'user alice');
    expect(request.id).toMatch(/^promote-[0-9a-f]{16}$/);
    expect(request).toEqual({ id: request.id, member: 'member-2', by: 'user alice' });
    expect(request.id).not.toBe(current.accept_data_loss.id);
    expect(parameters).toEqual({ ...current, accept_data_loss: request });
  });

  it('refuses a member the cluster does not have', () => {
    expect(refusal(() => withAcceptDataLoss('x', current, 'member-7', 'admin')).message).toContain(
      "'member-7' is not a member of cluster 'x'",
    );
  });
});

describe('databases', () => {
  it('accepts the names the release accepts', () => {
    for (const name of ['crm', 'app_2', '_x']) expect(() => assertDatabaseName(name)).not.toThrow();
    for (const name of ['CRM', '2app', 'a-b', 'postgres', 'hox_super', 'x'.repeat(64), ''])
      expect(refusal(() => assertDatabaseName(name)).message).toContain(`database name '${name}'`);
  });

  it('rotates a password by incrementing password_rotation, keeping the rest', () => {
    expect(withPasswordRotation({ database: 'crm' })).toEqual({ database: 'crm', password_rotation: 1 });
    expect(withPasswordRotation({ database: 'crm', password_rotation: 4 })).toEqual({
      database: 'crm',
      password_rotation: 5,
    });
  });

  it('makes request ids that fit the release schema (at most 64 characters)', () => {
    expect(newRequestId('switchover').length).toBeLessThanOrEqual(64);
  });
});
