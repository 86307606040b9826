/** Every refusal of the access model, proven through the HTTP API on every store. */
import { expect, it } from 'vitest';
import { MasterClient, isNotReady } from '../src/client/master-client.js';
import { addTestNode, type TestMaster, type TestNode } from '../src/testing/test-master.js';
import { describeEachStore } from './support/store-matrix.js';
import { RELEASE, expectError, instanceClient, request } from './support/helpers.js';

describeEachStore('authentication and authorisation', (env) => {
  let m: TestMaster;
  let n1: TestNode;
  let n2: TestNode;

  async function setup(): Promise<void> {
    m = await env.startMaster();
    n1 = await addTestNode(m.admin, 'n1', { partitions: 4, releases: [RELEASE] });
    n2 = await addTestNode(m.admin, 'n2', { partitions: 2, releases: [RELEASE] });
  }

  it('answers health and the OpenAPI document without a token, and nothing else', async () => {
    await setup();
    expect((await fetch(`${m.url}/health`)).status).toBe(200);
    expect((await fetch(`${m.url}/openapi.json`)).status).toBe(200);
    const anonymous = new MasterClient({ url: m.url });
    await expectError(anonymous.call('listInstanceTrees', {}), 'HOX_UNAUTHENTICATED', /Bearer/);
    await expectError(anonymous.call('waitForChange', {}), 'HOX_UNAUTHENTICATED');
    await expectError(
      m.admin.withToken('hox_user_not-a-real-token').call('listInstanceTrees', {}),
      'HOX_UNAUTHENTICATED',
    );
    const raw = await fetch(`${m.url}/slapos.allDocs.v0.instance_tree_list`, {
      method: 'POST',
      headers: { authorization: 'Basic abc', 'content-type': 'application/json' },
      body: '{}',
    });
    expect(raw.status).toBe(401);
  });

  it('refuses admin-only endpoints to users, nodes and instances', async () => {
    await setup();
    const alice = m.admin.withToken((await m.admin.call('createUser', { name: 'alice' })).token);
    const doc = await request(alice, 'app');
    const asInstance = await instanceClient(n1.client, doc.instance_guid);
    for (const client of [alice, n1.client, asInstance]) {
      await expectError(client.call('supply', { computer_guid: 'n1', software_release_uri: 'x' }), 'HOX_FORBIDDEN');
      await expectError(client.call('createRegistrationToken', {}), 'HOX_FORBIDDEN');
      await expectError(client.call('createUser', { name: 'mallory' }), 'HOX_FORBIDDEN');
      await expectError(client.call('listNodes', {}), 'HOX_FORBIDDEN');
    }
  });

  it('lets a node see and change only its own compute node and partitions', async () => {
    await setup();
    const doc = await request(m.admin, 'on-n2', { sla_parameters: { computer_guid: 'n2' } });
    await expectError(n1.client.call('listNodeInstances', { computer_guid: 'n2' }), 'HOX_FORBIDDEN', /'n1'.*'n2'/);
    await expectError(
      n1.client.call('getPartition', { computer_guid: 'n2', compute_partition_id: 'p0' }),
      'HOX_FORBIDDEN',
    );
    await expectError(
      n1.client.call('formatNode', { computer_guid: 'n2', compute_partition_list: [] }),
      'HOX_FORBIDDEN',
    );
    await expectError(
      n1.client.call('reportSoftwareState', {
        computer_guid: 'n2',
        software_release_uri: RELEASE,
        reported_state: 'available',
      }),
      'HOX_FORBIDDEN',
    );
    await expectError(
      n1.client.call('reportInstanceState', { instance_guid: doc.instance_guid, reported_state: 'started' }),
      'HOX_INSTANCE_NOT_FOUND',
    );
    await expectError(
      n1.client.call('publishConnectionParameters', {
        instance_guid: doc.instance_guid,
        connection_parameter_dict: { x: 1 },
      }),
      'HOX_INSTANCE_NOT_FOUND',
    );
    await expectError(
      n1.client.call('issueInstanceToken', { instance_guid: doc.instance_guid }),
      'HOX_INSTANCE_NOT_FOUND',
    );
    await expectError(
      n1.client.call('requestInstance', { title: 'x', software_release_uri: RELEASE, software_type: '' }),
      'HOX_FORBIDDEN',
    );
    await expectError(n1.client.call('waitForChange', { computer_guid: 'n2' }), 'HOX_FORBIDDEN');
    // Its own work still goes through.
    await n2.client.call('reportInstanceState', { instance_guid: doc.instance_guid, reported_state: 'started' });
  });

  it('lets a user see only the trees it owns', async () => {
    await setup();
    const alice = m.admin.withToken((await m.admin.call('createUser', { name: 'alice' })).token);
    const bob = m.admin.withToken((await m.admin.call('createUser', { name: 'bob' })).token);
    const a = await request(alice, 'secret-app');
    await expectError(bob.call('getInstance', { instance_guid: a.instance_guid }), 'HOX_INSTANCE_NOT_FOUND');
    await expectError(bob.call('getInstanceTree', { title: 'secret-app' }), 'HOX_INSTANCE_TREE_NOT_FOUND');
    await expectError(
      bob.call('renameInstance', { instance_guid: a.instance_guid, title: 'mine' }),
      'HOX_INSTANCE_NOT_FOUND',
    );
    await expectError(
      bob.call('bangInstance', { instance_guid: a.instance_guid, message: 'x' }),
      'HOX_INSTANCE_NOT_FOUND',
    );
    await expectError(bob.call('listTreeStatus', { title: 'secret-app' }), 'HOX_INSTANCE_TREE_NOT_FOUND');
    expect((await bob.call('listTreeStatus', {})).result_list).toEqual([]);
    expect((await bob.call('listInstanceTrees', {})).result_list).toEqual([]);
    await expectError(
      bob.call('waitForChange', { instance_tree_title: 'secret-app', since: 0, timeout_ms: 0 }),
      'HOX_INSTANCE_TREE_NOT_FOUND',
    );
    // Requesting the same title makes bob his own tree; alice's is untouched.
    const b = await request(bob, 'secret-app');
    expect(b.instance_guid).not.toBe(a.instance_guid);
    await expectError(
      bob.call('reportInstanceState', { instance_guid: b.instance_guid, reported_state: 'started' }),
      'HOX_FORBIDDEN',
    );
    await expectError(
      bob.call('publishConnectionParameters', { instance_guid: b.instance_guid, connection_parameter_dict: {} }),
      'HOX_FORBIDDEN',
    );
  });

  it('lets an instance act only within its own tree', async () => {
    await setup();
    const one = await request(m.admin, 'one');
    const two = await request(m.admin, 'two');
    const asOne = await instanceClient(n1.client, one.instance_guid);
    await expectError(asOne.call('getInstance', { instance_guid: two.instance_guid }), 'HOX_INSTANCE_NOT_FOUND');
    await expectError(
      asOne.call('publishConnectionParameters', {
        instance_guid: two.instance_guid,
        connection_parameter_dict: { x: 1 },
      }),
      'HOX_INSTANCE_NOT_FOUND',
    );
    await expectError(
      asOne.call('reportInstanceState', { instance_guid: two.instance_guid, reported_state: 'started' }),
      'HOX_INSTANCE_NOT_FOUND',
    );
    await expectError(
      asOne.call('bangInstance', { instance_guid: two.instance_guid, message: 'x' }),
      'HOX_INSTANCE_NOT_FOUND',
    );
    await expectError(asOne.call('listInstanceTrees', {}), 'HOX_FORBIDDEN');
    // On its node's list it sees itself only, as SlapOS's master answers an instance.
    expect(
      (await asOne.call('listNodeInstances', { computer_guid: 'n1' })).result_list.map((i) => i.instance_guid),
    ).toEqual([one.instance_guid]);
    // A child it requests lands in its own tree, not at the root of anyone's scope.
    const child = await request(asOne, 'two');
    expect(child.root_instance_title).toBe('one');
    expect(child.instance_guid).not.toBe(two.instance_guid);
    // Once destroyed, its token stops working.
    await request(m.admin, 'one', { state: 'destroyed' });
    await n1.client.call('reportInstanceState', { instance_guid: child.instance_guid, reported_state: 'destroyed' });
    await n1.client.call('reportInstanceState', { instance_guid: one.instance_guid, reported_state: 'destroyed' });
    await expectError(asOne.call('getInstance', { instance_guid: one.instance_guid }), 'HOX_UNAUTHENTICATED');
  });

  it("never hosts a user's shared instance on another user's instance; admin-run hosts serve everyone", async () => {
    await setup();
    const alice = m.admin.withToken((await m.admin.call('createUser', { name: 'alice' })).token);
    const bob = m.admin.withToken((await m.admin.call('createUser', { name: 'bob' })).token);
    const aliceHost = await request(alice, 'alice-front');
    // No host of bob's or the admin's yet: it waits, and alice's instance is never taken for one.
    const waiting = await bob.call('requestInstance', {
      title: 'bob-site',
      software_release_uri: RELEASE,
      software_type: 'default',
      shared: true,
    });
    expect(isNotReady(waiting) && waiting.message).toMatch(/waiting for a host/);
    await expectError(
      request(bob, 'bob-site', { shared: true, sla_parameters: { instance_guid: aliceHost.instance_guid } }),
      'HOX_NO_SHARED_HOST',
      /yours or the admin's/,
    );
    const platformHost = await request(m.admin, 'platform-front');
    const site = await request(bob, 'bob-site', { shared: true });
    expect(site.compute_partition_id).toBe(platformHost.compute_partition_id);
    // The host serves it, but may not rename or bang the tree it belongs to.
    const asHost = await instanceClient(n1.client, platformHost.instance_guid);
    await expectError(
      asHost.call('renameInstance', { instance_guid: site.instance_guid, title: 'hijacked' }),
      'HOX_FORBIDDEN',
    );
    await expectError(
      asHost.call('bangInstance', { instance_guid: site.instance_guid, message: 'x' }),
      'HOX_FORBIDDEN',
    );
  });

  it('accepts a registration token once, and for nothing but registering', async () => {
    await setup();
    const { token } = await m.admin.call('createRegistrationToken', {});
    const reg = m.admin.withToken(token);
    await expectError(reg.call('listInstanceTrees', {}), 'HOX_FORBIDDEN');
    await expectError(reg.call('listNodeInstances', { computer_guid: 'n1' }), 'HOX_FORBIDDEN');
    await expectError(reg.call('registerNode', { computer_guid: 'bad id!' }), 'HOX_BAD_REQUEST', /computer_guid/);
    await expectError(reg.call('registerNode', { computer_guid: 'n1' }), 'HOX_CONFLICT', /already registered/);
    const { token: nodeToken } = await reg.call('registerNode', { computer_guid: 'n3' });
    await expectError(reg.call('registerNode', { computer_guid: 'n4' }), 'HOX_TOKEN_USED');
    expect(await m.admin.withToken(nodeToken).call('whoami', {})).toEqual({ kind: 'node', subject: 'n3' });
  });

  it('refuses a registration token once its time is up, and not a millisecond before', async () => {
    let nowMs = Date.parse('2030-01-01T00:00:00Z');
    m = await env.startMaster({ clock: { nowMs: () => nowMs } });
    const early = await m.admin.call('createRegistrationToken', { ttl_seconds: 60 });
    const late = await m.admin.call('createRegistrationToken', { ttl_seconds: 60 });
    expect(early.expires_at).toBe('2030-01-01T00:01:00.000Z');
    nowMs += 59_999;
    const { token } = await m.admin.withToken(early.token).call('registerNode', { computer_guid: 'in-time' });
    expect(await m.admin.withToken(token).call('whoami', {})).toEqual({ kind: 'node', subject: 'in-time' });
    nowMs += 1;
    await expectError(
      m.admin.withToken(late.token).call('registerNode', { computer_guid: 'too-late' }),
      'HOX_TOKEN_USED',
      /expired/,
    );
    await expectError(m.admin.withToken(late.token).call('whoami', {}), 'HOX_TOKEN_USED', /expired/);
    expect((await m.admin.call('listNodes', {})).result_list.map((n) => n.computer_guid)).toEqual(['in-time']);
  });

  it('issues further tokens to a user, each acting as that user; lists users to the admin only', async () => {
    const nowMs = Date.parse('2030-06-01T12:00:00Z');
    m = await env.startMaster({ clock: { nowMs: () => nowMs } });
    await addTestNode(m.admin, 'n1', { partitions: 1, releases: [RELEASE] });
    const bob = await m.admin.call('createUser', { name: 'bob' });
    const alice = await m.admin.call('createUser', { name: 'alice' });
    const again = await m.admin.call('createUserToken', { name: 'alice' });
    expect({ user_id: again.user_id, name: again.name }).toEqual({ user_id: alice.user_id, name: 'alice' });
    expect(again.token).toMatch(/^hox_user_/);
    expect(again.token).not.toBe(alice.token);
    // Both tokens act as alice: a tree requested with one is seen with the other; bob sees nothing of it.
    const first = m.admin.withToken(alice.token);
    const second = m.admin.withToken(again.token);
    expect(await second.call('whoami', {})).toEqual({ kind: 'user', subject: alice.user_id });
    await first.call('requestInstance', { title: 'site', software_release_uri: RELEASE, software_type: 'default' });
    expect((await second.call('listInstanceTrees', {})).result_list.map((t) => t.title)).toEqual(['site']);
    expect((await m.admin.withToken(bob.token).call('listInstanceTrees', {})).result_list).toEqual([]);
    await expectError(m.admin.call('createUserToken', { name: 'nobody' }), 'HOX_NOT_FOUND', /user 'nobody' not found/);
    expect(await m.admin.call('listUsers', {})).toEqual({
      result_list: [
        { user_id: alice.user_id, name: 'alice', created_at: '2030-06-01T12:00:00.000Z' },
        { user_id: bob.user_id, name: 'bob', created_at: '2030-06-01T12:00:00.000Z' },
      ],
    });
    for (const client of [first, second]) {
      await expectError(client.call('createUserToken', { name: 'alice' }), 'HOX_FORBIDDEN');
      await expectError(client.call('createUserToken', { name: 'bob' }), 'HOX_FORBIDDEN');
      await expectError(client.call('listUsers', {}), 'HOX_FORBIDDEN');
    }
  });
});
