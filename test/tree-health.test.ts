/**
 * A tree's health is never `ok` on stale reports (issue 12, item 4, for every
 * release): once a node running one of its instances has not contacted the
 * master for longer than NODE_SILENT_AFTER_MS, the tree is `stale`, with the
 * node and its silence named and the age of the reports given, in the
 * master's clock; it is `ok` again as soon as the node calls in. A shared
 * instance its host refused (an `error` published for it, as hyper_db does
 * for a database name taken) makes its tree `error` (issue 13, item 1). Both
 * stores.
 */
import { expect, it } from 'vitest';
import { NODE_SILENT_AFTER_MS } from '../src/master/tree-health.js';
import { addTestNode } from '../src/testing/test-master.js';
import { instanceClient, RELEASE, request } from './support/helpers.js';
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

  it("is error, not ok, while a shared instance's host publishes an error for it (a refused database)", async () => {
    const m = await env.startMaster();
    const n1 = await addTestNode(m.admin, 'n1', { partitions: 3, releases: [RELEASE] });
    const host = await request(m.admin, 'cluster', { sla_parameters: { computer_guid: 'n1' } });
    await n1.client.call('reportInstanceState', { instance_guid: host.instance_guid, reported_state: 'started' });
    const app = await request(m.admin, 'app', { sla_parameters: { computer_guid: 'n1' } });
    await n1.client.call('reportInstanceState', { instance_guid: app.instance_guid, reported_state: 'started' });
    const asApp = await instanceClient(n1.client, app.instance_guid);
    const addon = await request(asApp, 'addon-crm', {
      shared: true,
      sla_parameters: { instance_guid: host.instance_guid },
    });
    const health = async () => {
      const [t] = (await m.admin.call('listTreeStatus', { title: 'app' })).result_list;
      return { health: t?.health, message: t?.health_message };
    };
    expect(await health()).toEqual({ health: 'ok', message: null });
    const asHost = await instanceClient(n1.client, host.instance_guid);
    const publish = (dict: Record<string, unknown>) =>
      asHost.call('publishConnectionParameters', {
        instance_guid: addon.instance_guid,
        connection_parameter_dict: dict,
      });
    await publish({ error: "database 'crm' is taken: choose another name" });
    expect(await health()).toEqual({
      health: 'error',
      message: "addon-crm: database 'crm' is taken: choose another name",
    });
    await publish({ rw_url: 'postgresql://crm@10.0.0.1/crm' });
    expect(await health()).toEqual({ health: 'ok', message: null });
  });
});
