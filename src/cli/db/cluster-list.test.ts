/** `hox db list`: which trees are clusters, and what each line says. */
import { describe, expect, it } from 'vitest';
import type { Tree } from './cluster-client.js';
import { clusterEntries } from './cluster-list.js';

const member = (name: string, role: string) => ({
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
});

function tree(title: string, root: Record<string, unknown>, health = 'ok'): Tree {
  return {
    title,
    owner: 'admin',
    root_instance_guid: `SOFTINST-${title}`,
    created_at: '2026-12-01T00:00:00.000Z',
    health,
    health_message: health === 'ok' ? null : 'member-2: promise write-probe failed',
    reported_at: '2026-12-01T00:00:00.000Z',
    reported_age_ms: 1000,
    instance_list: [
      {
        instance_guid: `SOFTINST-${title}`,
        title,
        requester_guid: null,
        shared: false,
        software_release_uri: 'hyper_db',
        software_type: 'cluster',
        state: 'started',
        reported_state: 'started',
        access_status_message: '',
        status_at: null,
        computer_guid: 'node-1',
        compute_partition_id: 'p0',
        connection_parameters: {},
        ...root,
      },
    ],
  } as unknown as Tree;
}

const published = {
  members_expected: 3,
  sync_mode: 'quorum',
  paused: false,
  maintenance: [],
  primary: 'member-1',
  members: [member('member-1', 'primary'), member('member-2', 'standby'), member('member-3', 'standby')],
  databases: ['crm', 'hyperdb_probe'],
  backups: { count: 1, last: { id: '20261201T000000Z', finished_at: '2026-12-01T00:00:00Z', bytes: 1 }, age_s: 7200 },
};

describe('clusterEntries', () => {
  it('lists clusters only (not their databases, nor other releases), by name, with the status verdict', () => {
    const entries = clusterEntries([
      tree('zeta-db', { connection_parameters: published }),
      tree('crm-db.crm', { shared: true, software_type: 'database' }),
      tree('hello', { software_release_uri: 'demo', software_type: 'default' }),
      tree('alpha-db', { connection_parameters: { ...published, primary: null, members: [] } }, 'error'),
    ]);
    expect(entries.map((e) => e.cluster)).toEqual(['alpha-db', 'zeta-db']);
    expect(entries[1]).toEqual({
      cluster: 'zeta-db',
      health: 'ok',
      problem: null,
      primary: 'member-1',
      members_ready: 3,
      members_expected: 3,
      sync_mode: 'quorum',
      paused: false,
      databases: ['crm', 'hyperdb_probe'],
      last_backup_age_s: 7200,
    });
    expect(entries[0]).toMatchObject({ health: 'error', members_ready: 0, primary: null, last_backup_age_s: 7200 });
    expect(entries[0]?.problem).toContain('write-probe');
  });
});
