/**
 * What nodes keep of destroyed instances (issue 13, item 6: "A destroyed cluster's backups outlive it for a
 * retention period"), the master's side on both stores: a node describes only what it held for an instance it
 * ran and is destroying; the owner (and the admin) list it after the instance and its tree are gone, nobody
 * else; the node's periodic list makes the master forget what it no longer holds; a set past its time is not
 * listed. The agent's side (move, meta.json, sweep) is tested in src/agent/retained-store.test.ts, and the
 * whole path with a real hyper_db cluster in test/hyperdb-cli.test.ts.
 */
import { expect, it } from 'vitest';
import { addTestNode } from '../src/testing/test-master.js';
import { expectError, RELEASE, request } from './support/helpers.js';
import { describeEachStore } from './support/store-matrix.js';

const DAY_MS = 86_400_000;
const backups = [
  {
    path: 'backups',
    kind: 'hyper_db-backups',
    bytes: 1234,
    catalog: [{ id: '20250301T110000Z', bytes: 1000, verified: true }],
  },
];

describeEachStore('retained sets', (env) => {
  it('are reported by the node that destroys the instance, listed to its owner only, forgotten when dropped', async () => {
    let nowMs = Date.parse('2025-03-01T12:00:00.000Z');
    const m = await env.startMaster({ clock: { nowMs: () => nowMs } });
    const n1 = await addTestNode(m.admin, 'n1', { partitions: 2, releases: [RELEASE] });
    const n2 = await addTestNode(m.admin, 'n2', { partitions: 1, releases: [RELEASE] });
    const { token: aliceToken } = await m.admin.call('createUser', { name: 'alice' });
    const { token: bobToken } = await m.admin.call('createUser', { name: 'bob' });
    const alice = m.admin.withToken(aliceToken);
    const bob = m.admin.withToken(bobToken);
    const doc = await request(alice, 'old-db', { sla_parameters: { computer_guid: 'n1' } });
    const report = {
      computer_guid: 'n1',
      compute_partition_id: doc.compute_partition_id,
      instance_guid: doc.instance_guid,
      expires_in_ms: 7 * DAY_MS,
      path_list: backups,
    };

    // Not before its destruction was requested: a node cannot make a live instance's data "retained".
    await expectError(n1.client.call('reportRetainedSet', report), 'HOX_CONFLICT', /not being destroyed/);
    await request(alice, 'old-db', { state: 'destroyed' });
    // Only its own node, on its partition, for itself.
    await expectError(
      n2.client.call('reportRetainedSet', { ...report, computer_guid: 'n2' }),
      'HOX_INSTANCE_NOT_FOUND',
      /not found on compute node 'n2'/,
    );
    await expectError(n2.client.call('reportRetainedSet', report), 'HOX_FORBIDDEN');
    await expectError(
      n1.client.call('reportRetainedSet', { ...report, compute_partition_id: 'nope' }),
      'HOX_BAD_REQUEST',
      /not 'nope'/,
    );
    await expectError(
      n1.client.call('reportRetainedSet', { ...report, path_list: [...backups, ...backups] }),
      'HOX_BAD_REQUEST',
      /reported twice/,
    );
    // Bounded: at most 8 paths, 100 catalog entries each.
    await expectError(
      n1.client.call('reportRetainedSet', {
        ...report,
        path_list: Array.from({ length: 9 }, (_, i) => ({ ...backups[0]!, path: `p${i}` })),
      }),
      'HOX_BAD_REQUEST',
    );
    await expectError(
      n1.client.call('reportRetainedSet', {
        ...report,
        path_list: [{ ...backups[0]!, catalog: Array.from({ length: 101 }, () => ({ id: 'x' })) }],
      }),
      'HOX_BAD_REQUEST',
    );
    await n1.client.call('reportRetainedSet', report);
    // Then its destroyed report: the master forgets the instance and its tree, not the set.
    await n1.client.call('reportInstanceState', { instance_guid: doc.instance_guid, reported_state: 'destroyed' });
    await expectError(alice.call('listTreeStatus', { title: 'old-db' }), 'HOX_INSTANCE_TREE_NOT_FOUND');

    nowMs += DAY_MS;
    const expected = {
      instance_guid: doc.instance_guid,
      title: 'old-db',
      instance_title: 'old-db',
      owner: 'alice',
      software_release_uri: RELEASE,
      software_type: 'default',
      computer_guid: 'n1',
      destroyed_at: '2025-03-01T12:00:00.000Z',
      expires_at: '2025-03-08T12:00:00.000Z',
      path_list: backups,
    };
    expect((await alice.call('listRetainedSets', {})).result_list).toEqual([expected]);
    expect((await alice.call('listRetainedSets', { title: 'old-db' })).result_list).toEqual([expected]);
    expect((await alice.call('listRetainedSets', { title: 'other' })).result_list).toEqual([]);
    // Nobody else's: bob sees none, a node may not list; the admin sees every one.
    expect((await bob.call('listRetainedSets', {})).result_list).toEqual([]);
    await expectError(n1.client.call('listRetainedSets', {}), 'HOX_FORBIDDEN');
    expect((await m.admin.call('listRetainedSets', {})).result_list).toEqual([expected]);

    // The node's list: times left in its clock, placed in the master's; another node cannot drop n1's sets.
    await expectError(
      n2.client.call('reportRetainedSets', { computer_guid: 'n1', retained_list: [] }),
      'HOX_FORBIDDEN',
    );
    await n2.client.call('reportRetainedSets', { computer_guid: 'n2', retained_list: [] });
    await n1.client.call('reportRetainedSets', {
      computer_guid: 'n1',
      retained_list: [
        { instance_guid: doc.instance_guid, expires_in_ms: DAY_MS },
        { instance_guid: 'SOFTINST-unknown', expires_in_ms: DAY_MS },
      ],
    });
    const [listed] = (await alice.call('listRetainedSets', {})).result_list;
    expect(listed?.expires_at).toBe('2025-03-03T12:00:00.000Z');
    // A set past its time is not listed, whether or not its node has swept it yet.
    nowMs += DAY_MS + 1;
    expect((await alice.call('listRetainedSets', {})).result_list).toEqual([]);
    nowMs -= 1;
    expect((await alice.call('listRetainedSets', {})).result_list).toHaveLength(0);
    nowMs -= DAY_MS;
    expect((await alice.call('listRetainedSets', {})).result_list).toHaveLength(1);
    // Dropped by its node: forgotten.
    await n1.client.call('reportRetainedSets', { computer_guid: 'n1', retained_list: [] });
    expect((await m.admin.call('listRetainedSets', {})).result_list).toEqual([]);
  });
});
