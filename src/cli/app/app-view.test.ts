import { describe, expect, it } from 'vitest';
import { deployOutcome, formatAppView, maskValue, readAppView, viewHealth } from './app-view.js';

const published = (replicas: Record<string, unknown>[], release = 4) => ({
  url: 'http://127.0.0.2:20000/',
  release,
  replicas,
  problems: [],
});

describe('app view', () => {
  it('reads what the root publishes, tolerating missing and wrong-typed fields', () => {
    const view = readAppView({ url: 3, release: 'x', replicas: [{ name: 'replica-1', serving: '2' }, 'junk'] });
    expect(view.url).toBeNull();
    expect(view.release).toBeNull();
    expect(view.replicas).toEqual([
      {
        name: 'replica-1',
        upstream: null,
        state: 'pending',
        serving: null,
        deploying: null,
        failed: null,
        error: null,
        web_down: null,
      },
      {
        name: '?',
        upstream: null,
        state: 'pending',
        serving: null,
        deploying: null,
        failed: null,
        error: null,
        web_down: null,
      },
    ]);
  });

  it('a release is served when every replica serves it', () => {
    const view = readAppView(
      published([
        { name: 'replica-1', state: 'running', serving: 4 },
        { name: 'replica-2', state: 'running', serving: 4 },
      ]),
    );
    expect(deployOutcome(view, 4, 2)).toEqual({ kind: 'serving' });
    // Once the root publishes what its endpoint routes, a replica counts only when it is routed to.
    const routing = (routed: string[]) =>
      readAppView({
        ...published([
          { name: 'replica-1', state: 'running', serving: 4, upstream: '127.0.0.3:20100' },
          { name: 'replica-2', state: 'running', serving: 4, upstream: '127.0.0.4:20150' },
        ]),
        routed,
      });
    expect(deployOutcome(routing(['127.0.0.3:20100']), 4, 2)).toEqual({
      kind: 'waiting',
      line: 'v4: replica-1 serving, replica-2 serving, joining the public endpoint',
    });
    expect(deployOutcome(routing(['127.0.0.3:20100', '127.0.0.4:20150']), 4, 2)).toEqual({ kind: 'serving' });
    const waiting = deployOutcome(view, 4, 3);
    expect(waiting.kind === 'waiting' ? waiting.line : '').toContain('1 replica(s) being allocated');
  });

  it('a failure of this release on any replica ends the wait with its reason; an older failure does not', () => {
    const failed = readAppView(
      published([
        {
          name: 'replica-1',
          state: 'running',
          serving: 3,
          failed: { release: 4, reason: 'health check failed', at: '' },
        },
        { name: 'replica-2', state: 'deploying', serving: 3, deploying: { release: 4, step: 'build' } },
      ]),
    );
    expect(deployOutcome(failed, 4, 2)).toEqual({
      kind: 'failed',
      replica: 'replica-1',
      reason: 'health check failed',
    });
    const older = readAppView(
      published([
        {
          name: 'replica-1',
          state: 'deploying',
          serving: 3,
          failed: { release: 2, reason: 'x', at: '' },
          deploying: { release: 4, step: 'release' },
        },
      ]),
    );
    expect(deployOutcome(older, 4, 1)).toEqual({ kind: 'waiting', line: 'v4: replica-1 release' });
  });

  it('waits while the root still shows the previous release', () => {
    const view = readAppView(published([{ name: 'replica-1', serving: 3 }], 3));
    expect(deployOutcome(view, 4, 1).kind).toBe('waiting');
  });

  it('formats the status for people, and masks config values', () => {
    const lines = formatAppView(
      'crm',
      readAppView({
        ...published([
          { name: 'replica-1', state: 'running', serving: 4, failed: { release: 5, reason: 'boom', at: '' } },
        ]),
        addon: { kind: 'postgres', name: 'crm', ready: true },
      }),
      { health: 'ok', message: null },
    );
    expect(lines).toEqual([
      'crm: release v4 (ok)',
      '  url: http://127.0.0.2:20000/',
      "  addon: postgres 'crm' ready",
      '  replica-1: running, serving v4, v5 failed: boom',
    ]);
    expect(maskValue('s3cret-value')).toBe('********');
    expect(maskValue('')).toBe('(empty)');
  });

  it('says ok only when every replica serves the current release and is routed; otherwise what is wrong', () => {
    const tree = { health: 'ok', health_message: null };
    const view = (replicas: Record<string, unknown>[], extra: Record<string, unknown> = {}) =>
      readAppView({ ...published(replicas), routed: ['10.0.0.1:1', '10.0.0.2:1'], ...extra });
    const r1 = { name: 'replica-1', upstream: '10.0.0.1:1', state: 'running', serving: 4 };
    const r2 = { name: 'replica-2', upstream: '10.0.0.2:1', state: 'running', serving: 4 };
    expect(viewHealth(view([r1, r2]), 2, tree)).toEqual({ health: 'ok', message: null });
    // A replica in error: degraded, saying which and why.
    expect(
      viewHealth(view([r1, { ...r2, serving: null, state: 'error', error: 'no free partition' }]), 2, tree),
    ).toEqual({ health: 'degraded', message: 'replica-2 error: no free partition' });
    // A release whose web never started, on the only replica: down.
    expect(
      viewHealth(
        view([{ ...r1, serving: null, state: 'failed', failed: { release: 4, reason: 'web exited (1)', at: '' } }]),
        1,
        tree,
      ),
    ).toEqual({ health: 'down', message: 'no replica serves (replica-1: v4 failed: web exited (1))' });
    // A web process that crashed and is being restarted.
    expect(
      viewHealth(view([r1, { ...r2, web_down: { reason: 'web v4 exited (1)', since: '', restarts: 2 } }]), 2, tree),
    ).toEqual({ health: 'degraded', message: 'replica-2: web v4 exited (1) (restarting, 2 restart(s) so far)' });
    // Serving but not routed yet, or still on the previous release: a deploy in progress.
    expect(viewHealth(view([r1, { ...r2, upstream: '10.0.0.3:1' }]), 2, tree)).toEqual({
      health: 'deploying',
      message: 'replica-2 serves v4, joining the public endpoint',
    });
    expect(viewHealth(view([r1]), 2, tree)).toEqual({ health: 'deploying', message: 'replica-2 not allocated yet' });
    // A broken addon, and what the master knows beyond the replicas (a replica's promise failing).
    expect(
      viewHealth(
        view([r1], { addon: { kind: 'postgres', name: 'crm', ready: false, problem: "database 'crm' is taken" } }),
        1,
        tree,
      ),
    ).toEqual({ health: 'degraded', message: "postgres addon 'crm': database 'crm' is taken" });
    expect(
      viewHealth(view([r1]), 1, { health: 'error', health_message: 'replica-1: promise replica-proxy: refused' }),
    ).toEqual({ health: 'degraded', message: 'error: replica-1: promise replica-proxy: refused' });
    // The root's own serving promise repeats the replicas' verdict: not repeated.
    expect(
      viewHealth(view([r1]), 1, { health: 'error', health_message: 'crm: promise serving: exit 1: degraded: x' }),
    ).toEqual({ health: 'ok', message: null });
    expect(viewHealth(readAppView({}), 1, tree)).toEqual({ health: 'idle', message: 'nothing deployed' });
  });
});
