/**
 * The request semantics of specs/request-semantics.md, one `it` per behaviour
 * (numbered as there), run black-box through the HTTP API on every store.
 */
import { expect, it } from 'vitest';
import { addTestNode, type TestNode } from '../src/testing/test-master.js';
import type { TestMaster } from '../src/testing/test-master.js';
import { isNotReady } from '../src/client/master-client.js';
import { describeEachStore } from './support/store-matrix.js';
import {
  OTHER_RELEASE,
  RELEASE,
  asDoc,
  expectError,
  getDoc,
  instanceClient,
  request,
  type RequestExtra,
} from './support/helpers.js';

describeEachStore('request semantics', (env) => {
  let m: TestMaster;
  let n1: TestNode;

  async function setup(partitions = 3): Promise<void> {
    m = await env.startMaster();
    n1 = await addTestNode(m.admin, 'n1', { partitions, releases: [RELEASE] });
  }

  it('1. nodes exist once registered and formatted; re-format keeps allocations; busy partitions are not removed', async () => {
    await setup(3);
    await expectError(m.admin.call('listNodeInstances', { computer_guid: 'ghost' }), 'HOX_NODE_NOT_FOUND', /'ghost'/);
    await expectError(
      m.admin.call('getPartition', { computer_guid: 'n1', compute_partition_id: 'p9' }),
      'HOX_PARTITION_NOT_FOUND',
      /'p9'/,
    );
    const a = await request(m.admin, 'a');
    const list = n1.partitionIds.map((pid) => ({ partition_id: pid }));
    await n1.client.call('formatNode', { computer_guid: 'n1', compute_partition_list: list });
    const again = await n1.client.call('getPartition', {
      computer_guid: 'n1',
      compute_partition_id: a.compute_partition_id,
    });
    expect(again.instance_guid).toBe(a.instance_guid);
    // Dropping the busy partition is refused, and nothing changes.
    const withoutBusy = list.filter((p) => p.partition_id !== a.compute_partition_id);
    await expectError(
      n1.client.call('formatNode', { computer_guid: 'n1', compute_partition_list: withoutBusy }),
      'HOX_PARTITION_BUSY',
      new RegExp(a.compute_partition_id),
    );
    const status = await n1.client.call('nodeStatus', { computer_guid: 'n1' });
    expect(status.partition_count).toBe(3);
    // Dropping a free one works.
    const free = list.find((p) => p.partition_id !== a.compute_partition_id)!;
    await n1.client.call('formatNode', { computer_guid: 'n1', compute_partition_list: list.filter((p) => p !== free) });
    expect((await n1.client.call('nodeStatus', { computer_guid: 'n1' })).partition_count).toBe(2);
    await expectError(
      n1.client.call('getPartition', { computer_guid: 'n1', compute_partition_id: free.partition_id }),
      'HOX_PARTITION_NOT_FOUND',
    );
  });

  it('2. free partitions carry nothing', async () => {
    await setup(2);
    const doc = await n1.client.call('getPartition', { computer_guid: 'n1', compute_partition_id: 'p1' });
    expect(doc).toMatchObject({
      software_release_uri: '',
      title: '',
      instance_guid: '',
      state: 'destroyed',
      processing_timestamp: 0,
      parameters: {},
    });
    expect((await n1.client.call('listNodeInstances', { computer_guid: 'n1' })).result_list).toEqual([]);
  });

  it('3. supply sets what a node installs; reports never change it; destroyed reports remove it; nodes are independent', async () => {
    await setup(1);
    const n2 = await addTestNode(m.admin, 'n2', { partitions: 1, releases: [RELEASE] });
    const list = async (node: TestNode) =>
      (await node.client.call('listSoftwareInstallations', { computer_guid: node.id })).result_list;
    await m.admin.call('supply', { computer_guid: 'n1', software_release_uri: OTHER_RELEASE });
    expect(await list(n1)).toEqual(
      [
        { software_release_uri: RELEASE, state: 'available' },
        { software_release_uri: OTHER_RELEASE, state: 'available' },
      ].sort((a, b) => a.software_release_uri.localeCompare(b.software_release_uri)),
    );
    for (const reported of ['building', 'available'] as const) {
      await n1.client.call('reportSoftwareState', {
        computer_guid: 'n1',
        software_release_uri: OTHER_RELEASE,
        reported_state: reported,
      });
      expect((await list(n1)).find((s) => s.software_release_uri === OTHER_RELEASE)?.state).toBe('available');
    }
    await n1.client.call('reportSoftwareError', {
      computer_guid: 'n1',
      software_release_uri: OTHER_RELEASE,
      message: 'boom',
    });
    expect((await list(n1)).find((s) => s.software_release_uri === OTHER_RELEASE)?.state).toBe('available');
    const detailed = await n1.client.call('listSoftwareStatus', { computer_guid: 'n1' });
    expect(detailed.result_list.find((s) => s.software_release_uri === OTHER_RELEASE)).toMatchObject({
      reported_state: 'error',
      error_message: 'boom',
    }); // Supplying again after an error asks the node to retry: the error is cleared, the request unchanged.
    await m.admin.call('supply', { computer_guid: 'n1', software_release_uri: OTHER_RELEASE });
    const retried = await n1.client.call('listSoftwareStatus', { computer_guid: 'n1' });
    expect(retried.result_list.find((s) => s.software_release_uri === OTHER_RELEASE)).toMatchObject({
      state: 'available',
      reported_state: null,
      error_message: null,
    });

    // Destroyed only once requested.
    await expectError(
      n1.client.call('reportSoftwareState', {
        computer_guid: 'n1',
        software_release_uri: OTHER_RELEASE,
        reported_state: 'destroyed',
      }),
      'HOX_SOFTWARE_DESTROY_NOT_REQUESTED',
    );
    await m.admin.call('supply', { computer_guid: 'n1', software_release_uri: RELEASE, state: 'destroyed' });
    expect((await list(n1)).find((s) => s.software_release_uri === RELEASE)?.state).toBe('destroyed');
    expect(await list(n2)).toEqual([{ software_release_uri: RELEASE, state: 'available' }]);
    await n1.client.call('reportSoftwareState', {
      computer_guid: 'n1',
      software_release_uri: RELEASE,
      reported_state: 'destroyed',
    });
    expect((await list(n1)).map((s) => s.software_release_uri)).toEqual([OTHER_RELEASE]);
    expect(await list(n2)).toEqual([{ software_release_uri: RELEASE, state: 'available' }]);
  });

  it('4. a first request allocates a free partition and defaults to started', async () => {
    await setup(3);
    const doc = await request(m.admin, 'first');
    expect(doc.computer_guid).toBe('n1');
    expect(n1.partitionIds).toContain(doc.compute_partition_id);
    expect(doc.state).toBe('started');
    expect(doc.root_instance_title).toBe('first');
    expect(doc.ip_list.length).toBe(1);
    const onPartition = await n1.client.call('getPartition', {
      computer_guid: 'n1',
      compute_partition_id: doc.compute_partition_id,
    });
    expect(onPartition.instance_guid).toBe(doc.instance_guid);
    const stopped = await request(m.admin, 'second', { state: 'stopped' });
    expect(stopped.state).toBe('stopped');
  });

  it('5. not ready (accepted, waiting, with what it waits for) is distinct from impossible, refused at once', async () => {
    await setup(1);
    const host = await request(m.admin, 'host');
    // Accepted, allocated, nothing published yet: an empty dict and a "no data" status.
    expect(host.connection_parameters).toEqual({});
    expect(host.access_status_message).toMatch(/^#error no data found/);
    // Impossible, whatever room appears later: an unknown node, an unknown SLA key. Nothing is created.
    await expectError(
      request(m.admin, 'nope', { sla_parameters: { computer_guid: 'ghost' } }),
      'HOX_NODE_NOT_FOUND',
      /'ghost'/,
    );
    const e = await expectError(
      request(m.admin, 'nope', { sla_parameters: { colour: 'blue' } }),
      'HOX_UNKNOWN_SLA_KEY',
      /'colour'/,
    );
    expect(e.field).toBe('sla_parameters.colour');
    expect((await m.admin.call('listInstanceTrees', {})).result_list).toEqual([{ title: 'host' }]);
    // Not ready: no free partition now. Accepted (SlapOS's 102), the tree exists, and it says what it waits for.
    const waiting = await m.admin.call('requestInstance', {
      title: 'later',
      software_release_uri: RELEASE,
      software_type: 'default',
    });
    expect(waiting).toMatchObject({ status: 102, name: 'SoftwareInstanceNotReady' });
    expect(isNotReady(waiting) && waiting.message).toMatch(
      /^Software Instance Not Ready: waiting for a partition: no free partition/,
    );
    const tree = (await m.admin.call('listTreeStatus', { title: 'later' })).result_list[0]!;
    expect(tree.health).toBe('pending');
    expect(tree.instance_list[0]!.computer_guid).toBeNull();
    expect(tree.instance_list[0]!.waiting_for).toMatch(/all 1 partitions/);
    // Read back, it is an instance placed nowhere, as SlapOS's master shows one.
    const later = asDoc(await m.admin.call('getInstanceTree', { title: 'later' }));
    expect(later).toMatchObject({ computer_guid: '', compute_partition_id: '', ip_list: [] });
    expect(later.access_status_message).toMatch(/^#error no data found for /);
    // Not ready either: a shared instance with no host yet.
    const site = await m.admin.call('requestInstance', {
      title: 'site',
      software_release_uri: OTHER_RELEASE,
      software_type: 'default',
      shared: true,
    });
    expect(isNotReady(site) && site.message).toMatch(/waiting for a host: no instance runs/);
  });

  it('5b. a waiting request is placed without another request once room appears (SlapOS pending allocation)', async () => {
    await setup(1);
    await request(m.admin, 'first');
    const answer = await m.admin.call('requestInstance', {
      title: 'second',
      software_release_uri: RELEASE,
      software_type: 'default',
    });
    expect(isNotReady(answer)).toBe(true);
    const root = async () =>
      (await m.admin.call('listTreeStatus', { title: 'second' })).result_list[0]!.instance_list[0]!;
    const guid = (await root()).instance_guid;
    // The node grows a partition: the master places the waiting instance there on its own, and tells the node.
    const cursor = (await n1.client.call('waitForChange', {})).cursor;
    await n1.client.call('formatNode', {
      computer_guid: 'n1',
      compute_partition_list: [...n1.partitionIds, 'p9'].map((partition_id) => ({ partition_id })),
    });
    await expect.poll(async () => (await root()).compute_partition_id, { timeout: 20_000 }).toBe('p9');
    expect((await root()).waiting_for).toBeNull();
    const listed = await n1.client.call('listNodeInstances', { computer_guid: 'n1' });
    expect(listed.result_list.map((i) => i.instance_guid)).toContain(guid);
    expect((await n1.client.call('waitForChange', { since: cursor, timeout_ms: 1 })).cursor).toBeGreaterThan(cursor);
    // The same request now answers the instance.
    expect((await request(m.admin, 'second')).compute_partition_id).toBe('p9');

    // A release no node supplies: placed once one does.
    const other = await m.admin.call('requestInstance', {
      title: 'other',
      software_release_uri: OTHER_RELEASE,
      software_type: 'default',
    });
    expect(isNotReady(other) && other.message).toMatch(/waiting for a partition/);
    await request(m.admin, 'first', { state: 'destroyed' });
    await n1.client.call('reportInstanceState', {
      instance_guid: (await m.admin.call('listTreeStatus', { title: 'first' })).result_list[0]!.root_instance_guid,
      reported_state: 'destroyed',
    });
    await m.admin.call('supply', { computer_guid: 'n1', software_release_uri: OTHER_RELEASE });
    await expect
      .poll(
        async () =>
          (await m.admin.call('listTreeStatus', { title: 'other' })).result_list[0]!.instance_list[0]!.computer_guid,
        {
          timeout: 20_000,
        },
      )
      .toBe('n1');

    // A waiting shared instance is hosted once a host runs: no new request either.
    const site = await m.admin.call('requestInstance', {
      title: 'site',
      software_release_uri: OTHER_RELEASE,
      software_type: 'cdn',
      shared: true,
    });
    expect(isNotReady(site)).toBe(true);
    await request(m.admin, 'other', { software_release_uri: OTHER_RELEASE, software_type: 'cdn' });
    await expect
      .poll(
        async () =>
          (await m.admin.call('listTreeStatus', { title: 'site' })).result_list[0]!.instance_list[0]!.computer_guid,
        {
          timeout: 20_000,
        },
      )
      .toBe('n1');
    // Destroying a waiting instance forgets it at once: no node ever ran it.
    const third = await m.admin.call('requestInstance', {
      title: 'third',
      software_release_uri: RELEASE,
      software_type: 'default',
    });
    expect(isNotReady(third)).toBe(true);
    await m.admin.call('requestInstance', {
      title: 'third',
      software_release_uri: RELEASE,
      software_type: 'default',
      state: 'destroyed',
    });
    await expectError(m.admin.call('listTreeStatus', { title: 'third' }), 'HOX_INSTANCE_TREE_NOT_FOUND');
  });

  it('6. an identical request changes nothing, not even the timestamp', async () => {
    await setup(1);
    const first = await request(m.admin, 'same', { parameters: { a: '1', b: 2 } });
    const second = await request(m.admin, 'same', { parameters: { b: 2, a: '1' } });
    expect(second).toEqual(first);
    const trees = await m.admin.call('listTreeStatus', {});
    expect(trees.result_list[0]?.instance_list[0]?.processing_timestamp).toBe(first.processing_timestamp);
  });

  it('7. a changed request updates in place and strictly increases the timestamp', async () => {
    await setup(2);
    await m.admin.call('supply', { computer_guid: 'n1', software_release_uri: OTHER_RELEASE });
    const first = await request(m.admin, 'upd', { parameters: { a: '1' } });
    const params = await request(m.admin, 'upd', { parameters: { a: '2' } });
    expect(params.compute_partition_id).toBe(first.compute_partition_id);
    expect(params.instance_guid).toBe(first.instance_guid);
    expect(params.parameters).toEqual({ a: '2' });
    expect(params.processing_timestamp).toBeGreaterThan(first.processing_timestamp);
    const type = await request(m.admin, 'upd', { parameters: { a: '2' }, software_type: 'replica' });
    expect(type.software_type).toBe('replica');
    expect(type.processing_timestamp).toBeGreaterThan(params.processing_timestamp);
    const url = await request(m.admin, 'upd', {
      parameters: { a: '2' },
      software_type: 'replica',
      software_release_uri: OTHER_RELEASE,
    });
    expect(url.software_release_uri).toBe(OTHER_RELEASE);
    expect(url.compute_partition_id).toBe(first.compute_partition_id);
    expect(url.processing_timestamp).toBeGreaterThan(type.processing_timestamp);
  });

  it('8. scope is the instance tree: users have their own roots, instances request children in their tree', async () => {
    await setup(6);
    const alice = m.admin.withToken((await m.admin.call('createUser', { name: 'alice' })).token);
    const bob = m.admin.withToken((await m.admin.call('createUser', { name: 'bob' })).token);
    const a = await request(alice, 'app');
    const b = await request(bob, 'app');
    expect(a.instance_guid).not.toBe(b.instance_guid);
    const asA = await instanceClient(n1.client, a.instance_guid);
    const asB = await instanceClient(n1.client, b.instance_guid);
    const childA = await request(asA, 'db');
    const childB = await request(asB, 'db');
    expect(childA.instance_guid).not.toBe(childB.instance_guid);
    expect(childA.root_instance_title).toBe('app');
    expect((await alice.call('listTreeStatus', {})).result_list[0]?.instance_list.map((i) => i.title)).toEqual([
      'app',
      'db',
    ]);
    expect((await alice.call('listInstanceTrees', {})).result_list).toEqual([{ title: 'app' }]);
    // The child's own request for the same title is the same instance.
    expect((await request(asA, 'db')).instance_guid).toBe(childA.instance_guid);
    // An instance cannot take a title of its tree that it did not request.
    await expectError(request(asA, 'app'), 'HOX_TITLE_CONFLICT');
  });

  it('9. a stopped requester makes its children stopped on their next request; a child may stop alone', async () => {
    await setup(3);
    const root = await request(m.admin, 'root');
    const asRoot = await instanceClient(n1.client, root.instance_guid);
    expect((await request(asRoot, 'child')).state).toBe('started');
    await request(m.admin, 'root', { state: 'stopped' });
    expect((await request(asRoot, 'child')).state).toBe('stopped');
    await request(m.admin, 'root', { state: 'started' });
    expect((await request(asRoot, 'child')).state).toBe('started');
    expect((await request(asRoot, 'child', { state: 'stopped' })).state).toBe('stopped');
    expect((await getDoc(m.admin, root.instance_guid)).state).toBe('started');
  });

  it('10. a bang reprocesses every instance of its tree and no other', async () => {
    await setup(4);
    const root = await request(m.admin, 'banged');
    const child = await request(await instanceClient(n1.client, root.instance_guid), 'child');
    const other = await request(m.admin, 'other');
    await n1.client.call('bangInstance', { instance_guid: child.instance_guid, message: 'please' });
    expect((await getDoc(m.admin, root.instance_guid)).processing_timestamp).toBeGreaterThan(root.processing_timestamp);
    expect((await getDoc(m.admin, child.instance_guid)).processing_timestamp).toBeGreaterThan(
      child.processing_timestamp,
    );
    expect((await getDoc(m.admin, other.instance_guid)).processing_timestamp).toBe(other.processing_timestamp);
  });

  it('11. destruction is two-phase: the partition stays busy until the node reports destroyed', async () => {
    await setup(1);
    const doc = await request(m.admin, 'gone');
    const destroyed = await request(m.admin, 'gone', { state: 'destroyed' });
    expect(destroyed.state).toBe('destroyed');
    expect(destroyed.processing_timestamp).toBeGreaterThan(doc.processing_timestamp);
    const listed = await n1.client.call('listNodeInstances', { computer_guid: 'n1' });
    expect(listed.result_list).toEqual([
      expect.objectContaining({ instance_guid: doc.instance_guid, state: 'destroyed' }),
    ]);
    // The partition is not free yet: a new request waits for it.
    expect(
      isNotReady(
        await m.admin.call('requestInstance', {
          title: 'next',
          software_release_uri: RELEASE,
          software_type: 'default',
        }),
      ),
    ).toBe(true);
    await n1.client.call('reportInstanceState', { instance_guid: doc.instance_guid, reported_state: 'destroyed' });
    // Freed, it goes to the request that waited, without another request.
    const next = async () =>
      (await m.admin.call('listTreeStatus', { title: 'next' })).result_list[0]!.instance_list[0]!;
    await expect
      .poll(async () => (await next()).compute_partition_id, { timeout: 20_000 })
      .toBe(doc.compute_partition_id);
    expect((await n1.client.call('listNodeInstances', { computer_guid: 'n1' })).result_list).toEqual([
      expect.objectContaining({ instance_guid: (await next()).instance_guid }),
    ]);
    await expectError(m.admin.call('getInstance', { instance_guid: doc.instance_guid }), 'HOX_INSTANCE_NOT_FOUND');
  });

  it('11b. a destroyed report made before destruction was requested confirms nothing', async () => {
    await setup(1);
    const doc = await request(m.admin, 'early');
    await n1.client.call('reportInstanceState', { instance_guid: doc.instance_guid, reported_state: 'destroyed' });
    await request(m.admin, 'early', { state: 'destroyed' });
    // Still the node's to destroy: listed, its partition busy.
    expect((await n1.client.call('listNodeInstances', { computer_guid: 'n1' })).result_list).toEqual([
      expect.objectContaining({ instance_guid: doc.instance_guid, state: 'destroyed' }),
    ]);
    expect((await n1.client.call('nodeStatus', { computer_guid: 'n1' })).free_partition_count).toBe(0);
    await n1.client.call('reportInstanceState', { instance_guid: doc.instance_guid, reported_state: 'destroyed' });
    expect((await n1.client.call('nodeStatus', { computer_guid: 'n1' })).free_partition_count).toBe(1);
  });

  it("12. destroying a root destroys its children; the root's partition is freed only after them", async () => {
    await setup(3);
    const root = await request(m.admin, 'tree');
    const asRoot = await instanceClient(n1.client, root.instance_guid);
    const child = await request(asRoot, 'child');
    const grandchild = await request(await instanceClient(n1.client, child.instance_guid), 'grandchild');
    await request(m.admin, 'tree', { state: 'destroyed' });
    for (const i of [child, grandchild]) expect((await getDoc(m.admin, i.instance_guid)).state).toBe('destroyed');
    await n1.client.call('reportInstanceState', { instance_guid: root.instance_guid, reported_state: 'destroyed' });
    const busy = async () => (await n1.client.call('nodeStatus', { computer_guid: 'n1' })).free_partition_count;
    expect(await busy()).toBe(0);
    await n1.client.call('reportInstanceState', { instance_guid: child.instance_guid, reported_state: 'destroyed' });
    expect(await busy()).toBe(0);
    await n1.client.call('reportInstanceState', {
      instance_guid: grandchild.instance_guid,
      reported_state: 'destroyed',
    });
    expect(await busy()).toBe(3);
    expect((await m.admin.call('listTreeStatus', {})).result_list).toEqual([]);
  });

  it('13. parameters and connection parameters round-trip non-ASCII text and numbers', async () => {
    await setup(2);
    const parameters = { name: 'Zoë — 日本語 ✓', count: 42, ratio: 1.5, nested: { list: [1, 'é', null, true] } };
    const doc = await request(m.admin, 'unicode ☃', { parameters });
    expect(doc.parameters).toEqual(parameters);
    expect(doc.title).toBe('unicode ☃');
    const published = { url: 'http://[::1]:8080/ça', port: 8080, clé: 'välue' };
    await n1.client.call('publishConnectionParameters', {
      instance_guid: doc.instance_guid,
      connection_parameter_dict: published,
    });
    expect((await request(m.admin, 'unicode ☃', { parameters })).connection_parameters).toEqual(published);
  });

  it('14. what an instance publishes is what its requester reads next', async () => {
    await setup(2);
    const root = await request(m.admin, 'parent');
    const asRoot = await instanceClient(n1.client, root.instance_guid);
    const child = await request(asRoot, 'child');
    expect(child.connection_parameters).toEqual({});
    const asChild = await instanceClient(n1.client, child.instance_guid);
    await asChild.call('publishConnectionParameters', {
      instance_guid: child.instance_guid,
      connection_parameter_dict: { url: 'http://x' },
    });
    expect((await request(asRoot, 'child')).connection_parameters).toEqual({ url: 'http://x' });
    expect((await getDoc(asRoot, child.instance_guid)).connection_parameters).toEqual({ url: 'http://x' });
    // The requester is woken to converge again with the child's values.
    expect((await getDoc(m.admin, root.instance_guid)).processing_timestamp).toBeGreaterThan(root.processing_timestamp);
  });

  it('15. a shared instance needs a busy partition running the same release and type', async () => {
    await setup(2);
    const notYet = (extra: RequestExtra) =>
      m.admin.call('requestInstance', {
        title: 'site',
        software_release_uri: RELEASE,
        software_type: 'default',
        ...extra,
      });
    const none = await notYet({ shared: true });
    expect(isNotReady(none) && none.message).toMatch(/waiting for a host: no instance runs/);
    const host = await request(m.admin, 'frontend', { software_type: 'cdn' });
    const wrongType = await notYet({ shared: true, software_type: 'db' });
    expect(isNotReady(wrongType) && wrongType.message).toMatch(/software type 'db'/);
    // A host that does not exist never will: refused at once.
    await expectError(
      notYet({ shared: true, sla_parameters: { instance_guid: 'SOFTINST-ghost' } }),
      'HOX_NO_SHARED_HOST',
      /SOFTINST-ghost/,
    );
    const site = await request(m.admin, 'site', { shared: true, software_type: 'cdn' });
    expect(site.shared).toBe(true);
    expect(site.computer_guid).toBe('n1');
    expect(site.compute_partition_id).toBe(host.compute_partition_id);
    expect(site.ip_list).toEqual(host.ip_list);
    // It takes no partition of its own.
    expect((await n1.client.call('nodeStatus', { computer_guid: 'n1' })).free_partition_count).toBe(1);
  });

  it('16. hosts see their shared instances; new parameters replace the entry; destruction removes it', async () => {
    await setup(1);
    const host = await request(m.admin, 'frontend');
    const site = await request(m.admin, 'site', { shared: true, parameters: { domain: 'a.example' } });
    const hosted = async () =>
      (await n1.client.call('listHostedInstances', { instance_guid: host.instance_guid })).result_list;
    expect(await hosted()).toEqual([
      expect.objectContaining({
        instance_guid: site.instance_guid,
        title: 'site',
        software_type: 'default',
        parameters: { domain: 'a.example' },
        state: 'started',
      }),
    ]);
    await request(m.admin, 'site', { shared: true, parameters: { domain: 'b.example' } });
    expect((await hosted()).map((h) => h.parameters)).toEqual([{ domain: 'b.example' }]);
    await request(m.admin, 'site', { shared: true, parameters: { domain: 'b.example' }, state: 'destroyed' });
    expect(await hosted()).toEqual([]);
  });

  it("17. adding, changing or destroying a shared instance moves the host's timestamp; a no-op does not", async () => {
    await setup(1);
    const ts = async (guid: string) => (await getDoc(m.admin, guid)).processing_timestamp;
    const host = await request(m.admin, 'frontend');
    let last = await ts(host.instance_guid);
    await request(m.admin, 'site', { shared: true, parameters: { v: 1 } });
    expect(await ts(host.instance_guid)).toBeGreaterThan(last);
    last = await ts(host.instance_guid);
    await request(m.admin, 'site', { shared: true, parameters: { v: 1 } });
    expect(await ts(host.instance_guid)).toBe(last);
    await request(m.admin, 'site', { shared: true, parameters: { v: 2 } });
    expect(await ts(host.instance_guid)).toBeGreaterThan(last);
    last = await ts(host.instance_guid);
    await request(m.admin, 'site', { shared: true, parameters: { v: 2 }, state: 'destroyed' });
    expect(await ts(host.instance_guid)).toBeGreaterThan(last);
  });

  it('18. the host publishes per-shared-instance connection parameters; instance_guid pins the host', async () => {
    await setup(2);
    const host1 = await request(m.admin, 'frontend-1');
    const host2 = await request(m.admin, 'frontend-2');
    const site = await request(m.admin, 'site', {
      shared: true,
      sla_parameters: { instance_guid: host2.instance_guid },
    });
    expect(site.compute_partition_id).toBe(host2.compute_partition_id);
    expect(site.connection_parameters).toEqual({});
    const asHost1 = await instanceClient(n1.client, host1.instance_guid);
    await expectError(
      asHost1.call('publishConnectionParameters', {
        instance_guid: site.instance_guid,
        connection_parameter_dict: { url: 'nope' },
      }),
      'HOX_INSTANCE_NOT_FOUND',
    );
    const asHost2 = await instanceClient(n1.client, host2.instance_guid);
    await asHost2.call('publishConnectionParameters', {
      instance_guid: site.instance_guid,
      connection_parameter_dict: { url: 'https://site' },
    });
    const again = await request(m.admin, 'site', {
      shared: true,
      sla_parameters: { instance_guid: host2.instance_guid },
    });
    expect(again.connection_parameters).toEqual({ url: 'https://site' });
    expect((await getDoc(m.admin, host2.instance_guid)).connection_parameters).toEqual({});
  });

  it('19. placement is sticky and state changes on one node never touch another', async () => {
    await setup(2);
    const n2 = await addTestNode(m.admin, 'n2', { partitions: 2, releases: [RELEASE] });
    const a = await request(m.admin, 'a', { sla_parameters: { computer_guid: 'n1' } });
    const b = await request(m.admin, 'b', { sla_parameters: { computer_guid: 'n2' } });
    const moved = await request(m.admin, 'a', { sla_parameters: { computer_guid: 'n2' } });
    expect(moved.computer_guid).toBe('n1');
    expect(moved.compute_partition_id).toBe(a.compute_partition_id);
    expect(moved.processing_timestamp).toBe(a.processing_timestamp);
    await request(m.admin, 'a', { sla_parameters: { computer_guid: 'n2' }, state: 'stopped' });
    await n1.client.call('bangNode', { computer_guid: 'n1', message: 'reboot' });
    expect(await getDoc(m.admin, b.instance_guid)).toEqual(b);
    expect((await n2.client.call('listNodeInstances', { computer_guid: 'n2' })).result_list).toEqual([
      expect.objectContaining({ instance_guid: b.instance_guid, state: 'started' }),
    ]);
  });

  it('20. an instance can be renamed; renaming a root renames the tree; nothing moves', async () => {
    await setup(2);
    const root = await request(m.admin, 'old');
    const child = await request(await instanceClient(n1.client, root.instance_guid), 'child');
    await m.admin.call('renameInstance', { instance_guid: root.instance_guid, title: 'new' });
    const renamed = asDoc(await m.admin.call('getInstanceTree', { title: 'new' }));
    expect(renamed.instance_guid).toBe(root.instance_guid);
    expect(renamed.compute_partition_id).toBe(root.compute_partition_id);
    expect(renamed.processing_timestamp).toBeGreaterThan(root.processing_timestamp);
    await expectError(m.admin.call('getInstanceTree', { title: 'old' }), 'HOX_INSTANCE_TREE_NOT_FOUND');
    expect((await getDoc(m.admin, child.instance_guid)).root_instance_title).toBe('new');
    await m.admin.call('renameInstance', { instance_guid: child.instance_guid, title: 'kid' });
    expect((await getDoc(m.admin, child.instance_guid)).title).toBe('kid');
    await expectError(
      m.admin.call('renameInstance', { instance_guid: child.instance_guid, title: 'new' }),
      'HOX_TITLE_CONFLICT',
    );
    // The same request under the new title is the same instance, unchanged.
    const same = await request(m.admin, 'new');
    expect(same.instance_guid).toBe(root.instance_guid);
  });
});
