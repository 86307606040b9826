/**
 * A tree's health is never `ok` on stale reports (issue 12, item 4, for every
 * release): once a node running one of its instances has not contacted the
 * master for longer than NODE_SILENT_AFTER_MS, the tree is `stale`, with the
 * node and its silence named and the age of the reports given, in the
 * master's clock; it is `ok` again as soon as the node calls in. Both stores.
 */
import { expect, it } from 'vitest';
import { NODE_SILENT_AFTER_MS } from '../src/master/tree-health.js';
import { addTestNode } from '../src/testing/test-master.js';
import { RELEASE, request } from './support/helpers.js';
import { describeEachStore } from './support/store-matrix.js';

describeEachStore('tree health and node silence', (env) => {
  it('is stale while a node running the tree is silent past the bound, ok again once it calls in', async () => {
    let nowMs = Date.parse('2025-06-01T12:00:00.000Z');
    const m = await env.startMaster({ clock: { nowMs: () => nowMs } });
    const n1 = await addTestNode(m.admin, 'n1', { partitions: 2, releases: [RELEASE] });
    const doc = await request(m.admin, 'app', { sla_parameters: { computer_guid: 'n1' } });
    const tree = async () => {
      const [t] = (await m.admin.call('listTreeStatus', { title: 'app' })).result_list;
      if (t === undefined) throw new Error('no tree app');
      return { health: t.health, message: t.health_message, at: t.reported_at, age: t.reported_age_ms };
    };
    expect(await tree()).toEqual({
      health: 'pending',
      message: 'app: requested started, reported nothing yet',
      at: '2025-06-01T12:00:00.000Z',
      age: 0,
    });
    await n1.client.call('reportInstanceState', { instance_guid: doc.instance_guid, reported_state: 'started' });
    nowMs += NODE_SILENT_AFTER_MS;
    expect(await tree()).toEqual({ health: 'ok', message: null, at: '2025-06-01T12:00:00.000Z', age: 75_000 });

    // Its agent dies: what it last said (started, no error) is no longer taken for the present.
    nowMs += 5_000;
    expect(await tree()).toEqual({
      health: 'stale',
      message: "node 'n1' silent for 80 s (its last report may be out of date)",
      at: '2025-06-01T12:00:00.000Z',
      age: 80_000,
    });

    // It calls in (any node call records the contact): fresh again.
    await n1.client.call('listNodeInstances', { computer_guid: 'n1' });
    expect(await tree()).toEqual({ health: 'ok', message: null, at: '2025-06-01T12:01:20.000Z', age: 0 });
    await n1.client.call('reportInstanceError', { instance_guid: doc.instance_guid, message: 'promise web: down' });
    expect(await tree()).toMatchObject({ health: 'error', message: 'app: promise web: down' });
  });
});
