/** A tree's health from its instances and how recently their nodes were heard from. */
import { describe, expect, it } from 'vitest';
import { Bodies } from '../protocol/schemas.js';
import { NODE_SILENT_AFTER_MS, treeHealth } from './tree-health.js';

const NOW = Date.parse('2025-06-01T12:00:00.000Z');

type Instance = Parameters<typeof treeHealth>[0][number];

const instance = (id: string, patch: Partial<Instance> = {}): Instance => ({
  id,
  title: id,
  shared: false,
  nodeId: 'n1',
  requestedState: 'started',
  reportedState: 'started',
  errorMessage: null,
  ...patch,
});

const nodes = (...entries: [string, number | null][]) =>
  new Map(entries.map(([id, lastContactAtMs]) => [id, { id, lastContactAtMs }]));

describe('treeHealth', () => {
  it('is ok when every instance converged, none errs and every node was heard from within the bound', () => {
    const verdict = treeHealth(
      [instance('root'), instance('child', { nodeId: 'n2' })],
      'root',
      nodes(['n1', NOW - 10_000], ['n2', NOW - NODE_SILENT_AFTER_MS]),
      NOW,
    );
    expect(verdict).toEqual({ health: 'ok', message: null, reportedAtMs: NOW - NODE_SILENT_AFTER_MS });
  });

  it('is stale, never ok, once a node running an instance is silent past the bound, and says which', () => {
    const verdict = treeHealth(
      [instance('root'), instance('child', { nodeId: 'n2' })],
      'root',
      nodes(['n1', NOW - 1000], ['n2', NOW - 80_000]),
      NOW,
    );
    expect(verdict).toEqual({
      health: 'stale',
      message: "node 'n2' silent for 80 s (its last report may be out of date)",
      reportedAtMs: NOW - 80_000,
    });
    // A node the master never heard from, or does not know, is no fresher.
    expect(treeHealth([instance('root')], 'root', nodes(['n1', null]), NOW)).toMatchObject({
      health: 'stale',
      message: "node 'n1' never heard from (its last report may be out of date)",
      reportedAtMs: null,
    });
    expect(treeHealth([instance('root')], 'root', nodes(), NOW).health).toBe('stale');
  });

  it('puts a fresh error first (the root before the others), and notes silent nodes beside it', () => {
    const verdict = treeHealth(
      [
        instance('member', { errorMessage: 'promise keeper: refused' }),
        instance('root', { errorMessage: 'promise rw-endpoint: no primary accepts writes' }),
        instance('far', { nodeId: 'n2' }),
      ],
      'root',
      nodes(['n1', NOW], ['n2', NOW - 100_000]),
      NOW,
    );
    expect(verdict.health).toBe('error');
    expect(verdict.message).toBe("root: promise rw-endpoint: no primary accepts writes; node 'n2' silent for 100 s");
  });

  it('is stale, not error, when the only error comes from a silent node (it may be gone already), quoting it', () => {
    const verdict = treeHealth(
      [instance('root', { errorMessage: 'promise x: failing' })],
      'root',
      nodes(['n1', NOW - 90_000]),
      NOW,
    );
    expect(verdict).toMatchObject({
      health: 'stale',
      message:
        "node 'n1' silent for 90 s (its last report may be out of date); it last reported: root: promise x: failing",
    });
  });

  it('is pending until every instance (not shared) reached its requested state; destroying wins', () => {
    expect(treeHealth([instance('root', { reportedState: null })], 'root', nodes(['n1', NOW]), NOW)).toEqual({
      health: 'pending',
      message: 'root: requested started, reported nothing yet',
      reportedAtMs: NOW,
    });
    expect(
      treeHealth(
        [instance('root'), instance('db', { shared: true, reportedState: null })],
        'root',
        nodes(['n1', NOW]),
        NOW,
      ).health,
    ).toBe('ok');
    // An instance not placed yet waits for no node: it says what it waits for, when the master said.
    expect(treeHealth([instance('root', { nodeId: null, reportedState: null })], 'root', nodes(), NOW)).toEqual({
      health: 'pending',
      message: 'root: waiting for a partition',
      reportedAtMs: null,
    });
    const why = new Map([['root', "waiting for a partition: no compute node supplies 'x'"]]);
    expect(
      treeHealth([instance('root', { nodeId: null, reportedState: null })], 'root', nodes(), NOW, why).message,
    ).toBe("root: waiting for a partition: no compute node supplies 'x'");
    // A bang's note is no failure: the tree waits for its node to reprocess.
    expect(
      treeHealth([instance('root', { errorMessage: 'bang called: rerun' })], 'root', nodes(['n1', NOW]), NOW).health,
    ).toBe('ok');
    expect(
      treeHealth(
        [instance('root', { requestedState: 'destroyed', errorMessage: 'x' })],
        'root',
        nodes(['n1', NOW - 1_000_000]),
        NOW,
      ).health,
    ).toBe('destroying');
  });

  it("is error when a shared instance's host published an error for it (a broken addon), not ok", () => {
    const addon = instance('addon-crm', {
      shared: true,
      reportedState: null,
      connectionParameters: { error: "database 'crm' is taken: choose another name" },
    });
    expect(treeHealth([instance('root'), addon], 'root', nodes(['n1', NOW]), NOW)).toEqual({
      health: 'error',
      message: "addon-crm: database 'crm' is taken: choose another name",
      reportedAtMs: NOW,
    });
    // Only a shared instance's `error` says so: any other instance's connection parameters are its own business.
    const child = instance('child', { connectionParameters: { error: 'a field named error' } });
    expect(treeHealth([instance('root'), child], 'root', nodes(['n1', NOW]), NOW).health).toBe('ok');
  });

  it('matches what the API schema says of it', () => {
    const description = JSON.stringify(Bodies.treeStatusListResult);
    expect(description).toContain(`within the last ${NODE_SILENT_AFTER_MS / 1000} s`);
    for (const value of ['ok', 'pending', 'error', 'stale', 'destroying'])
      expect(description).toContain(`"const":"${value}"`);
  });
});
