import { describe, expect, it } from 'vitest';
import { deployOutcome, formatAppView, maskValue, readAppView } from './app-view.js';

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
      },
      { name: '?', upstream: null, state: 'pending', serving: null, deploying: null, failed: null, error: null },
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
      'ok',
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
});
