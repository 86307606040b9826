import { describe, expect, it } from 'vitest';
import type { Tree, TreeInstance } from '../db/cluster-client.js';
import { formatPsRows, formatUptime, psRows } from './app-ops.js';

function instance(title: string, fields: Partial<TreeInstance>): TreeInstance {
  return {
    instance_guid: `guid-${title}`,
    title,
    requester_guid: null,
    shared: false,
    software_release_uri: 'hyper_edge',
    software_type: 'replica',
    state: 'started',
    reported_state: 'started',
    access_status_message: '#access ok',
    status_at: null,
    computer_guid: 'node-1',
    compute_partition_id: 'p1',
    host_instance_guid: null,
    waiting_for: null,
    processing_timestamp: 0,
    connection_parameters: {},
    partition_usage: null,
    parameters: {},
    sla_parameters: {},
    promises: null,
    ...fields,
  };
}

describe('hox app ps rows', () => {
  it('formats uptimes', () => {
    expect([0, 41, 192, 7500, 200_000].map(formatUptime)).toEqual(['0s', '41s', '3m12s', '2h05m', '2d07h']);
  });

  it('one row per process, replicas in order, a replica without process saying what it does', () => {
    const now = Date.parse('2026-01-01T00:10:00Z');
    const tree = {
      instance_list: [
        instance('app', { software_type: 'app' }),
        instance('replica-10', {
          computer_guid: 'node-2',
          compute_partition_id: 'p7',
          connection_parameters: { state: 'deploying', serving: null, deploying: { release: 4, step: 'build' } },
        }),
        instance('replica-2', {
          connection_parameters: {
            state: 'running',
            serving: 3,
            processes: [
              {
                name: 'web',
                type: 'web',
                release: 3,
                state: 'crashed',
                pid: 42,
                started_at: '2026-01-01T00:09:00Z',
                restarts: 2,
              },
              {
                name: 'ticker.1',
                type: 'ticker',
                release: 3,
                state: 'running',
                pid: 43,
                started_at: '2026-01-01T00:00:00Z',
                restarts: 0,
              },
            ],
          },
        }),
        instance('replica-3', { state: 'destroyed' }),
        instance('addon-db', { shared: true }),
      ],
    } as unknown as Tree;
    const rows = psRows(tree, now);
    expect(rows.map((r) => [r.replica, r.process, r.state, r.pid, r.uptime_s, r.restarts, r.release, r.node])).toEqual([
      ['replica-2', 'web', 'crashed', 42, 60, 2, 3, 'node-1'],
      ['replica-2', 'ticker.1', 'running', 43, 600, 0, 3, 'node-1'],
      ['replica-10', null, 'deploying v4 (build)', null, null, 0, null, 'node-2'],
    ]);
    expect(formatPsRows(rows)).toEqual([
      'replica-2   web       crashed               pid 42  up 1m00s   restarts 2  v3  node-1/p1',
      'replica-2   ticker.1  running               pid 43  up 10m00s  restarts 0  v3  node-1/p1',
      'replica-10  -         deploying v4 (build)  -       -          restarts 0  -   node-2/p7',
    ]);
  });
});
