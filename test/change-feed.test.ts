import { join } from 'node:path';
/** Waiting for change: a node hears about a request in milliseconds, across masters on PostgreSQL too. */
import { expect, it } from 'vitest';
import { MasterClient } from '../src/client/master-client.js';
import { addTestNode, startTestMaster } from '../src/testing/test-master.js';
import { describeEachStore } from './support/store-matrix.js';
import { RELEASE, request } from './support/helpers.js';

describeEachStore('change feed', (env) => {
  it('wakes a waiting node when something concerning it changes, and only then', async () => {
    const m = await env.startMaster();
    const n1 = await addTestNode(m.admin, 'n1', { partitions: 2, releases: [RELEASE] });
    const n2 = await addTestNode(m.admin, 'n2', { partitions: 2, releases: [RELEASE] });
    const { cursor } = await n1.client.call('waitForChange', {});
    // Nothing new: the wait times out with the same cursor.
    const idle = await n1.client.call('waitForChange', { since: cursor, timeout_ms: 200 });
    expect(idle).toEqual({ cursor, changed: false });
    // A request for n2 does not wake n1; one for n1 does.
    const waiting = n1.client.call('waitForChange', { since: cursor, timeout_ms: 20_000 });
    await request(m.admin, 'elsewhere', { sla_parameters: { computer_guid: 'n2' } });
    await request(m.admin, 'here', { sla_parameters: { computer_guid: 'n1' } });
    const woken = await waiting;
    expect(woken.changed).toBe(true);
    expect(woken.cursor).toBeGreaterThan(cursor);
    // n2's own cursor sees its change.
    expect((await n2.client.call('waitForChange', { since: cursor, timeout_ms: 0 })).changed).toBe(true);
  });

  it('lets a user wait on one of its trees', async () => {
    const m = await env.startMaster();
    const n1 = await addTestNode(m.admin, 'n1', { partitions: 2, releases: [RELEASE] });
    const doc = await request(m.admin, 'watched');
    const { cursor } = await m.admin.call('waitForChange', {});
    const waiting = m.admin.call('waitForChange', {
      since: cursor,
      instance_tree_title: 'watched',
      timeout_ms: 20_000,
    });
    await n1.client.call('publishConnectionParameters', {
      instance_guid: doc.instance_guid,
      connection_parameter_dict: { url: 'x' },
    });
    expect((await waiting).changed).toBe(true);
  });

  if (env.kind === 'postgres') {
    it('wakes a watcher on another master sharing the database', async () => {
      const databaseUrl = await env.newDatabaseUrl();
      const a = await startTestMaster({ databaseUrl });
      // Masters sharing a store share its key (the first one generated it).
      const b = await startTestMaster({ databaseUrl, storeKeyFile: join(a.dataDir, 'store.key') });
      try {
        const n1 = await addTestNode(a.admin, 'n1', { partitions: 2, releases: [RELEASE] });
        const nodeOnB = new MasterClient({ url: b.url, token: n1.token });
        const { cursor } = await nodeOnB.call('waitForChange', {});
        const waiting = nodeOnB.call('waitForChange', { since: cursor, timeout_ms: 20_000 });
        await request(a.admin, 'cross', { sla_parameters: { computer_guid: 'n1' } });
        const woken = await waiting;
        expect(woken.changed).toBe(true);
      } finally {
        await a.stop();
        await b.stop();
      }
    });
  }
});
