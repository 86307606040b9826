import { describe, expect, it } from 'vitest';
import type { Tree } from '../db/cluster-client.js';
import { readAppView } from './app-view.js';
import { knownAppFailure } from './known-failures.js';

const REQUEST_MS = Date.parse('2026-12-01T10:00:00Z');
const NO_ROOM = "no free partition with software release 'hyper_edge' supplied";
const TAKEN =
  "postgres addon 'crm' on cluster 'db': database 'crm' is taken: it belongs to another shared instance of this cluster; choose another name";

/** A tree whose root reported at `statusAt` and published `published`. */
function tree(statusAt: string | null, published: Record<string, unknown>): Tree {
  return {
    title: 'site',
    root_instance_guid: 'root',
    instance_list: [{ instance_guid: 'root', status_at: statusAt, connection_parameters: published }],
  } as unknown as Tree;
}

const replica = (name: string, extra: Record<string, unknown> = {}) => ({ name, state: 'running', ...extra });

describe('failures an app publishes that waiting will not fix', () => {
  const after = new Date(REQUEST_MS + 800).toISOString();
  const before = new Date(REQUEST_MS - 60_000).toISOString();

  it('a replica with no partition, published for this request, ends the wait naming the replica', () => {
    const published = {
      release: 3,
      replicas: [replica('replica-1'), replica('replica-2'), replica('replica-3', { state: 'error', error: NO_ROOM })],
      problems: [],
    };
    const failure = knownAppFailure(tree(after, published), readAppView(published), 3, REQUEST_MS);
    expect(failure?.where).toBe('replica-3');
    expect(failure?.reason).toContain(NO_ROOM);
    expect(failure?.reason).toContain('--partitions');
  });

  it('a database name held by another owner ends the wait', () => {
    const published = { release: 1, replicas: [replica('replica-1', { state: 'pending' })], problems: [TAKEN] };
    expect(knownAppFailure(tree(after, published), readAppView(published), 1, REQUEST_MS)).toEqual({
      where: 'addon',
      reason: TAKEN,
    });
  });

  it('what the root published before this request does not count', () => {
    const published = {
      release: 3,
      replicas: [replica('replica-1', { state: 'error', error: NO_ROOM })],
      problems: [TAKEN],
    };
    expect(knownAppFailure(tree(before, published), readAppView(published), 1, REQUEST_MS)).toBeUndefined();
    expect(knownAppFailure(tree(null, published), readAppView(published), 1, REQUEST_MS)).toBeUndefined();
  });

  it('an allocation refused only for anti-affinity is retried by the root without it: not final', () => {
    const published = {
      release: 3,
      replicas: [
        replica('replica-1'),
        replica('replica-2', {
          state: 'error',
          error: `${NO_ROOM} away from 'local' (anti_affinity 'hyper_edge:site')`,
        }),
      ],
      problems: ["postgres addon 'crm' on cluster 'db': not ready yet"],
    };
    expect(knownAppFailure(tree(after, published), readAppView(published), 2, REQUEST_MS)).toBeUndefined();
  });

  it('a replica beyond the requested scale (being removed) does not count', () => {
    const published = {
      release: 3,
      replicas: [replica('replica-1'), replica('replica-2', { state: 'error', error: NO_ROOM })],
      problems: [],
    };
    expect(knownAppFailure(tree(after, published), readAppView(published), 1, REQUEST_MS)).toBeUndefined();
  });
});
