/**
 * SlapOS's own JSON-RPC test suite, ported: each `it` is named after the test of SlapOS's master it comes from
 * (slapos.core, master/bt5/slapos_json_rpc_api/…/test.erp5.testSlapOSJsonRpc.py: classes
 * TestSlapOSSlapToolComputeNodeAccess, …InstanceAccess, …PersonAccess) and asserts what it asserts: the status,
 * the `Content-Type` exactly `application/json`, and the body. Where we differ on purpose, the `it` says so and
 * docs/slapos.md gives the reason; those are the only departures.
 *
 * SlapOS's persons are our users; its project production manager (who supplies, bangs a node, manages its
 * certificates) is our admin.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startTestMaster, addTestNode, type TestMaster, type TestNode } from '../src/testing/test-master.js';
import { expectAnswer, rpc, tioxml } from './support/slapos-rpc.js';
import { RELEASE, instanceClient, request } from './support/helpers.js';

describe('SlapOS JSON-RPC suite, ported', () => {
  let m: TestMaster;
  let node: TestNode;
  let person: string;
  let personClient: TestMaster['admin'];

  beforeEach(async () => {
    m = await startTestMaster();
    node = await addTestNode(m.admin, 'COMP-0', { partitions: 4, releases: [RELEASE] });
    person = (await m.admin.call('createUser', { name: 'person' })).token;
    personClient = m.admin.withToken(person);
  });
  afterEach(async () => m.stop());

  /** `bootstrapAllocableInstanceTree(allocation_state='allocated')`: a person's tree, its root on a partition. */
  async function allocatedTree(title = 'test tree') {
    const root = await request(personClient, title, { parameters: { p: 'v' } });
    const asInstance = await instanceClient(node.client, root.instance_guid);
    const token = (await node.client.call('issueInstanceToken', { instance_guid: root.instance_guid })).token;
    return { root, asInstance, instanceToken: token };
  }

  describe('TestSlapOSSlapToolComputeNodeAccess', () => {
    it('test_ComputeNodeAccess_01_getFullComputerInformationInstanceList', async () => {
      const { root } = await allocatedTree();
      const list = expectAnswer(
        await rpc(m, node.token, 'slapos.allDocs.v0.compute_node_instance_list', { computer_guid: 'COMP-0' }),
        200,
      );
      expect(list).toEqual({
        result_list: [
          {
            compute_partition_id: root.compute_partition_id,
            instance_guid: root.instance_guid,
            software_release_uri: RELEASE,
            state: 'started',
            title: 'test tree',
          },
        ],
      });
      const doc = expectAnswer(
        await rpc(m, node.token, 'slapos.get.v0.software_instance', { instance_guid: root.instance_guid }),
        200,
      );
      expect(Object.keys(doc).sort()).toEqual(
        [
          'access_status_message',
          'compute_partition_id',
          'computer_guid',
          'connection_parameters',
          'full_ip_list',
          'instance_guid',
          'ip_list',
          'parameters',
          'processing_timestamp',
          'root_instance_title',
          'shared',
          'sla_parameters',
          'software_release_uri',
          'software_type',
          'state',
          'title',
        ].sort(),
      );
      expect(doc).toMatchObject({ shared: false, state: 'started', root_instance_title: 'test tree' });
    });

    it('test_ComputeNodeAccess_01_bis_getFullComputerInformationSoftwareList', async () => {
      await m.admin.call('supply', {
        computer_guid: 'COMP-0',
        software_release_uri: 'https://x/sr-b',
        state: 'available',
      });
      const list = expectAnswer(
        await rpc(m, node.token, 'slapos.allDocs.v0.compute_node_software_installation_list', {
          computer_guid: 'COMP-0',
        }),
        200,
      );
      expect(list).toEqual({
        result_list: [
          { software_release_uri: RELEASE, state: 'available' },
          { software_release_uri: 'https://x/sr-b', state: 'available' },
        ],
      });
    });

    it('test_ComputeNodeAccess_02_computerBang', async () => {
      const { root } = await allocatedTree();
      const answer = await rpc(m, node.token, 'slapos.put.v0.compute_node_bang', {
        computer_guid: 'COMP-0',
        message: 'Please force slapos node rerun',
      });
      expect(expectAnswer(answer, 200)).toEqual({ type: 'success', title: 'Bang handled' });
      // It reprocesses every instance on the node.
      const after = await m.admin.call('getInstance', { instance_guid: root.instance_guid });
      expect('processing_timestamp' in after && after.processing_timestamp).toBeGreaterThan(root.processing_timestamp);
    });

    it('test_ComputeNodeAccess_04_destroyedSoftwareRelease_noSoftwareInstallation', async () => {
      const url = 'http://example.org/foo';
      const answer = await rpc(m, node.token, 'slapos.put.v0.software_installation_reported_state', {
        software_release_uri: url,
        computer_guid: 'COMP-0',
        reported_state: 'destroyed',
      });
      // SlapOS's three keys, and (ours, extra) `detail`: what the title's fixed words leave out.
      expect(expectAnswer(answer, 403)).toEqual({
        status: 403,
        title: `No installation found with url: ${url}`,
        type: 'SOFTWARE-INSTALLATION-NOT-FOUND',
        detail: `software release '${url}' is not supplied to compute node 'COMP-0'`,
      });
    });

    it('test_ComputeNodeAccess_05_destroyedSoftwareRelease_noDestroyRequested', async () => {
      const answer = await rpc(m, node.token, 'slapos.put.v0.software_installation_reported_state', {
        software_release_uri: RELEASE,
        computer_guid: 'COMP-0',
        reported_state: 'destroyed',
      });
      expect(expectAnswer(answer, 403)).toMatchObject({
        status: 403,
        title: 'Reported state is destroyed but requested state is not destroyed',
        type: 'SOFTWARE-INSTALLATION-DESTROY-NOT-REQUESTED',
      });
    });

    it('test_ComputeNodeAccess_06_destroyedSoftwareRelease_destroyRequested', async () => {
      await m.admin.call('supply', { computer_guid: 'COMP-0', software_release_uri: RELEASE, state: 'destroyed' });
      const answer = await rpc(m, node.token, 'slapos.put.v0.software_installation_reported_state', {
        software_release_uri: RELEASE,
        computer_guid: 'COMP-0',
        reported_state: 'destroyed',
      });
      expect(expectAnswer(answer, 200)).toEqual({ title: 'State reported', type: 'success' });
      const list = await rpc(m, node.token, 'slapos.allDocs.v0.compute_node_software_installation_list', {
        computer_guid: 'COMP-0',
      });
      expect(list.json).toEqual({ result_list: [] });
    });

    for (const [name, state] of [
      ['test_ComputeNodeAccess_07_availableSoftwareRelease', 'available'],
      ['test_ComputeNodeAccess_08_buildingSoftwareRelease', 'building'],
    ] as const)
      it(name, async () => {
        const answer = await rpc(m, node.token, 'slapos.put.v0.software_installation_reported_state', {
          software_release_uri: RELEASE,
          computer_guid: 'COMP-0',
          reported_state: state,
        });
        expect(expectAnswer(answer, 200)).toEqual({ title: 'State reported', type: 'success' });
        const status = await m.admin.call('listSoftwareStatus', { computer_guid: 'COMP-0' });
        expect(status.result_list[0]?.reported_state).toBe(state);
      });

    it('test_ComputeNodeAccess_09_softwareReleaseError', async () => {
      const answer = await rpc(m, node.token, 'slapos.put.v0.software_installation_error', {
        software_release_uri: RELEASE,
        computer_guid: 'COMP-0',
        message: 'error log',
      });
      expect(expectAnswer(answer, 200)).toEqual({ title: 'Error reported', type: 'success' });
      const status = await m.admin.call('listSoftwareStatus', { computer_guid: 'COMP-0' });
      expect(status.result_list[0]).toMatchObject({ reported_state: 'error', error_message: 'error log' });
    });

    for (const [name, reference] of [
      ['test_ComputeNodeAccess_10_reportUsageWithReference', 'testusagé'],
      ['test_ComputeNodeAccess_11_reportUsageWithEmptyReference', ''],
    ] as const)
      it(name, async () => {
        const answer = await rpc(m, node.token, 'slapos.post.v0.compute_node_usage', {
          tioxml: tioxml(reference),
          computer_guid: 'COMP-0',
        });
        expect(expectAnswer(answer, 200)).toEqual({ title: 'Usage reported', type: 'success' });
      });

    it('test_ComputeNodeAccess_12_reportUsageWithWrongXml', async () => {
      for (const wrong of [
        'foobar',
        tioxml('x').replace('<resource>CPU Consumption</resource>', ''),
        tioxml('x').replace('42.42', 'lots'),
        tioxml('x').replace(' type="Administration"', ''),
      ]) {
        const answer = await rpc(m, node.token, 'slapos.post.v0.compute_node_usage', {
          tioxml: wrong,
          computer_guid: 'COMP-0',
        });
        expect(expectAnswer(answer, 400)).toMatchObject({
          status: 400,
          title: 'The tioxml does not validate the xsd',
          type: 'INVALIDATE_TIOXML',
        });
        // Ours, extra: what is wrong.
        expect(answer.json.detail).toMatch(/^tioxml: /);
      }
    });
  });

  describe('TestSlapOSSlapToolInstanceAccess', () => {
    it('test_InstanceAccess_10_getComputerPartitionCertificate', async () => {
      const { root, instanceToken } = await allocatedTree();
      const answer = await rpc(m, instanceToken, 'slapos.get.v0.software_instance_certificate', {
        instance_guid: root.instance_guid,
      });
      const body = expectAnswer(answer, 200);
      expect(Object.keys(body).sort()).toEqual(['certificate', 'key']);
      expect(String(body.certificate)).toMatch(/BEGIN CERTIFICATE/);
      expect(String(body.key)).toMatch(/BEGIN PRIVATE KEY/);
    });

    it('test_InstanceAccess_11_bis_getFullComputerInformationNoSharedInstance: an instance sees itself only', async () => {
      const { root, instanceToken } = await allocatedTree();
      await request(personClient, 'another tree');
      const list = expectAnswer(
        await rpc(m, instanceToken, 'slapos.allDocs.v0.compute_node_instance_list', { computer_guid: 'COMP-0' }),
        200,
      );
      expect(list.result_list).toEqual([
        expect.objectContaining({ instance_guid: root.instance_guid, title: 'test tree' }),
      ]);
    });

    it('test_InstanceAccess_12_getSharedInstance', async () => {
      const { root, instanceToken } = await allocatedTree();
      const shared = await request(personClient, 'shared', { shared: true, parameters: { a: '1' } });
      const list = expectAnswer(
        await rpc(m, instanceToken, 'slapos.allDocs.v0.instance_node_instance_list', {
          instance_guid: root.instance_guid,
        }),
        200,
      );
      // SlapOS's six keys, and (ours) the release, which its schema allows.
      expect(list).toEqual({
        result_list: [
          {
            software_type: 'default',
            parameters: { a: '1' },
            compute_partition_id: root.compute_partition_id,
            instance_guid: shared.instance_guid,
            state: 'started',
            title: 'shared',
            software_release_uri: RELEASE,
          },
        ],
      });
      const doc = expectAnswer(
        await rpc(m, instanceToken, 'slapos.get.v0.software_instance', { instance_guid: shared.instance_guid }),
        200,
      );
      expect(doc).toMatchObject({
        shared: true,
        title: 'shared',
        computer_guid: 'COMP-0',
        compute_partition_id: root.compute_partition_id,
        ip_list: root.ip_list,
        full_ip_list: [],
      });
    });

    for (const name of ['test_InstanceAccess_13_setConnectionXml_withSlave', 'test_InstanceAccess_14_setConnectionXml'])
      it(name, async () => {
        const { root, instanceToken } = await allocatedTree();
        const body = { instance_guid: root.instance_guid, connection_parameter_dict: { p1e: 'v1e', p2e: 'v2e' } };
        const answer = await rpc(m, instanceToken, 'slapos.put.v0.software_instance_connection_parameter', body);
        expect(expectAnswer(answer, 200)).toEqual({ title: 'connection parameter updated', type: 'success' });
        const again = await rpc(m, instanceToken, 'slapos.put.v0.software_instance_connection_parameter', body);
        expect(expectAnswer(again, 200)).toEqual({
          title: 'connection parameter not modified as identical',
          type: 'success',
        });
        const doc = await rpc(m, person, 'slapos.get.v0.software_instance', { instance_guid: root.instance_guid });
        expect(doc.json.connection_parameters).toEqual({ p1e: 'v1e', p2e: 'v2e' });
      });

    it('test_InstanceAccess_15_softwareInstanceError, test_InstanceAccess_16_softwareInstanceError_twice', async () => {
      const { root, instanceToken } = await allocatedTree();
      for (let i = 0; i < 2; i++) {
        const answer = await rpc(m, instanceToken, 'slapos.put.v0.software_instance_error', {
          instance_guid: root.instance_guid,
          message: 'The error',
        });
        expect(expectAnswer(answer, 200)).toEqual({ title: 'Error reported', type: 'success' });
        const doc = await rpc(m, instanceToken, 'slapos.get.v0.software_instance', {
          instance_guid: root.instance_guid,
        });
        expect(expectAnswer(doc, 200).access_status_message).toBe('#error while instanciating: The error');
      }
    });

    for (const [name, caller] of [
      ['test_InstanceAccess_17_softwareInstanceBang', 'instance'],
      ['test_PersonAccess_32_softwareInstanceBang', 'person'],
    ] as const)
      it(name, async () => {
        const { root, instanceToken } = await allocatedTree();
        const token = caller === 'instance' ? instanceToken : person;
        const answer = await rpc(m, token, 'slapos.put.v0.software_instance_bang', {
          instance_guid: root.instance_guid,
          message: 'Please force slapos instance rerun',
        });
        expect(expectAnswer(answer, 200)).toEqual({ title: 'Bang handled', type: 'success' });
        const doc = expectAnswer(
          await rpc(m, token, 'slapos.get.v0.software_instance', { instance_guid: root.instance_guid }),
          200,
        );
        expect(doc).toMatchObject({
          access_status_message: '#error bang called: Please force slapos instance rerun',
          computer_guid: 'COMP-0',
          compute_partition_id: root.compute_partition_id,
          full_ip_list: [],
          ip_list: root.ip_list,
          instance_guid: root.instance_guid,
          root_instance_title: 'test tree',
          shared: false,
          sla_parameters: {},
          parameters: { p: 'v' },
          connection_parameters: {},
          software_release_uri: RELEASE,
          software_type: 'default',
          state: 'started',
          title: 'test tree',
        });
        expect(doc.processing_timestamp).toBeGreaterThan(root.processing_timestamp);
      });

    for (const [name, caller] of [
      ['test_InstanceAccess_18_softwareInstanceRename', 'instance'],
      ['test_PersonAccess_33_softwareInstanceRename', 'person'],
    ] as const)
      it(name, async () => {
        const { root, instanceToken } = await allocatedTree();
        const token = caller === 'instance' ? instanceToken : person;
        const answer = await rpc(m, token, 'slapos.put.v0.software_instance_title', {
          instance_guid: root.instance_guid,
          title: 'new me',
        });
        expect(expectAnswer(answer, 200)).toEqual({ title: 'Title updated', type: 'success' });
        const doc = await rpc(m, token, 'slapos.get.v0.software_instance', { instance_guid: root.instance_guid });
        expect(doc.json).toMatchObject({ title: 'new me', instance_guid: root.instance_guid });
      });

    it('test_InstanceAccess_19_destroyedComputePartition', async () => {
      const { root, instanceToken } = await allocatedTree();
      await m.admin.withToken(person).call('requestInstance', {
        title: 'test tree',
        software_release_uri: RELEASE,
        software_type: 'default',
        state: 'destroyed',
      });
      const answer = await rpc(m, instanceToken, 'slapos.put.v0.software_instance_reported_state', {
        instance_guid: root.instance_guid,
        reported_state: 'destroyed',
      });
      expect(expectAnswer(answer, 200)).toEqual({ title: 'State reported', type: 'success' });
      // SlapOS invalidates it and drops its certificate; ours forgets it, its token and certificates with it.
      const gone = await rpc(m, person, 'slapos.get.v0.software_instance', { instance_guid: root.instance_guid });
      expect(expectAnswer(gone, 403).type).toBe('SOFTWARE-INSTANCE-NOT-FOUND');
      expect((await rpc(m, instanceToken, 'slapos.get.v0.hateoas_url', {})).status).toBe(401);
    });

    for (const [name, shared] of [
      ['test_InstanceAccess_20_request_withSlave', true],
      ['test_InstanceAccess_21_request', false],
    ] as const)
      it(`${name} (differs: placed at once when room exists; 102 while not)`, async () => {
        const { root, instanceToken } = await allocatedTree();
        const answer = await rpc(m, instanceToken, 'slapos.post.v0.software_instance', {
          software_release_uri: RELEASE,
          software_type: 'default',
          title: 'req_reference',
          shared,
        });
        const doc = expectAnswer(answer, 200);
        expect(doc).toMatchObject({
          title: 'req_reference',
          shared,
          state: 'started',
          software_release_uri: RELEASE,
          software_type: 'default',
          root_instance_title: 'test tree',
        });
        expect(doc.access_status_message).toMatch(/^#error no data found for SOFTINST-/);
        // Requested by the root: a child of its tree.
        const tree = (await personClient.call('listTreeStatus', { title: 'test tree' })).result_list[0]!;
        const child = tree.instance_list.find((i) => i.title === 'req_reference')!;
        expect(child.requester_guid).toBe(root.instance_guid);
      });

    it('test_InstanceAccess_22_request_stopped, test_InstanceAccess_22_request_startedWithManuallyStoppedInstance', async () => {
      const { instanceToken } = await allocatedTree();
      const body = { software_release_uri: RELEASE, software_type: 'default', title: 'req_reference' };
      const stopped = await rpc(m, instanceToken, 'slapos.post.v0.software_instance', { ...body, state: 'stopped' });
      expect(expectAnswer(stopped, 200).state).toBe('stopped');
      const started = await rpc(m, instanceToken, 'slapos.post.v0.software_instance', { ...body, state: 'started' });
      expect(expectAnswer(started, 200).state).toBe('started');
    });

    for (const [name, state, text] of [
      ['test_InstanceAccess_26_stoppedComputePartition', 'stopped', '#access Instance correctly stopped'],
      ['test_InstanceAccess_27_startedComputePartition', 'started', '#access Instance correctly started'],
    ] as const)
      it(name, async () => {
        const { root, instanceToken } = await allocatedTree();
        const answer = await rpc(m, instanceToken, 'slapos.put.v0.software_instance_reported_state', {
          instance_guid: root.instance_guid,
          reported_state: state,
        });
        expect(expectAnswer(answer, 200)).toEqual({ title: 'State reported', type: 'success' });
        const doc = await rpc(m, instanceToken, 'slapos.get.v0.software_instance', {
          instance_guid: root.instance_guid,
        });
        // The requested state is unchanged: reported is not requested.
        expect(expectAnswer(doc, 200)).toMatchObject({
          access_status_message: text,
          state: 'started',
          ip_list: root.ip_list,
        });
      });

    it('test_InstanceAccess_28_getComputePartitionInformation', async () => {
      const { root, instanceToken } = await allocatedTree();
      await rpc(m, instanceToken, 'slapos.put.v0.software_instance_reported_state', {
        instance_guid: root.instance_guid,
        reported_state: 'started',
      });
      const answer = await rpc(m, node.token, 'slapos.get.v0.compute_partition', {
        computer_guid: 'COMP-0',
        compute_partition_id: root.compute_partition_id,
      });
      expect(expectAnswer(answer, 200)).toMatchObject({
        instance_guid: root.instance_guid,
        access_status_message: '#access Instance correctly started',
        ip_list: root.ip_list,
      });
    });
  });

  describe('TestSlapOSSlapToolPersonAccess', () => {
    it('test_PersonAccess_30_computerBang (by the admin: our production manager)', async () => {
      const answer = await rpc(m, m.adminToken, 'slapos.put.v0.compute_node_bang', {
        computer_guid: 'COMP-0',
        message: 'Please force slapos node rerun',
      });
      expect(expectAnswer(answer, 200)).toEqual({ type: 'success', title: 'Bang handled' });
      // A person who is not: refused.
      expect(
        (await rpc(m, person, 'slapos.put.v0.compute_node_bang', { computer_guid: 'COMP-0', message: 'x' })).status,
      ).toBe(403);
    });

    for (const [name, shared] of [
      ['test_PersonAccess_31_getInstanceWithSharedInstance', true],
      ['test_PersonAccess_31_bis_getInstance', false],
    ] as const)
      it(name, async () => {
        const { root } = await allocatedTree('host tree');
        const instance = shared ? await request(personClient, 'test tree', { shared: true }) : root;
        const doc = expectAnswer(
          await rpc(m, person, 'slapos.get.v0.software_instance', { instance_guid: instance.instance_guid }),
          200,
        );
        expect(doc).toMatchObject({
          shared,
          instance_guid: instance.instance_guid,
          computer_guid: 'COMP-0',
          compute_partition_id: root.compute_partition_id,
          ip_list: root.ip_list,
          full_ip_list: [],
        });
      });

    for (const [name, shared] of [
      ['test_PersonAccess_34_request_withSlave', true],
      ['test_PersonAccess_35_request', false],
    ] as const)
      it(`${name}: nothing can take it yet, so 102 and the tree is created`, async () => {
        const body = { software_release_uri: 'req_release', software_type: 'req_type', title: 'req_reference', shared };
        const answer = await rpc(m, person, 'slapos.post.v0.software_instance', body);
        const json = expectAnswer(answer, 200);
        expect(json).toMatchObject({ name: 'SoftwareInstanceNotReady', status: 102 });
        // SlapOS's message, then (ours) what it waits for.
        expect(json.message).toMatch(/^Software Instance Not Ready: waiting for a (partition|host)/);
        const tree = (await personClient.call('listTreeStatus', { title: 'req_reference' })).result_list[0]!;
        expect(tree.owner).toBe('person');
        expect(tree.instance_list[0]).toMatchObject({
          title: 'req_reference',
          software_release_uri: 'req_release',
          software_type: 'req_type',
          shared,
          computer_guid: null,
        });
      });

    it('test_PersonAccess_36_request_allocated_instance', async () => {
      const { root } = await allocatedTree();
      const answer = await rpc(m, person, 'slapos.post.v0.software_instance', {
        software_release_uri: RELEASE,
        software_type: 'default',
        title: 'test tree',
      });
      expect(expectAnswer(answer, 200)).toMatchObject({
        instance_guid: root.instance_guid,
        computer_guid: 'COMP-0',
        compute_partition_id: root.compute_partition_id,
        ip_list: root.ip_list,
        shared: false,
        root_instance_title: 'test tree',
      });
    });

    it('test_PersonAccess_37_ComputeNodeSupply (differs: no whitespace in a release URL)', async () => {
      const url = `live💩é/?%20_test_url_${Date.now()}`;
      const answer = await rpc(m, m.adminToken, 'slapos.post.v0.software_installation', {
        computer_guid: 'COMP-0',
        software_release_uri: url,
      });
      expect(expectAnswer(answer, 200)).toEqual({ type: 'success', title: 'State changed' });
      const list = await m.admin.call('listSoftwareStatus', { computer_guid: 'COMP-0' });
      expect(list.result_list.find((s) => s.software_release_uri === url)?.state).toBe('available');
      const spaced = await rpc(m, m.adminToken, 'slapos.post.v0.software_installation', {
        computer_guid: 'COMP-0',
        software_release_uri: 'live💩é /?%20_test_url',
      });
      expect(expectAnswer(spaced, 400)).toMatchObject({
        type: 'invalid-json-object-content',
        field: 'software_release_uri',
      });
    });

    it('test_PersonAccess_38_ComputeNodeCreateCertificate, test_PersonAccess_38_ComputeNodeRemoveCertificate', async () => {
      const created = expectAnswer(
        await rpc(m, m.adminToken, 'slapos.post.v0.compute_node_certificate', { computer_guid: 'COMP-0' }),
        200,
      );
      expect(Object.keys(created).sort()).toEqual(['certificate', 'key']);
      const removed = await rpc(m, m.adminToken, 'slapos.remove.v0.compute_node_certificate', {
        computer_guid: 'COMP-0',
      });
      expect(expectAnswer(removed, 200)).toEqual({ type: 'success', title: 'Certificate removed' });
    });

    it('test_PersonAccess_39_HateoasUrl (test_PersonAccess_40_HateoasUrlNotConfigured cannot happen: it is the master)', async () => {
      const answer = await rpc(m, person, 'slapos.get.v0.hateoas_url', {});
      expect(expectAnswer(answer, 200)).toEqual({ hateoas_url: m.url });
    });

    it('test_PersonAccess_41_NotAccessedComputeNodeStatus', async () => {
      // Registered, never heard from since.
      const { token: registration } = await m.admin.call('createRegistrationToken', {});
      await m.admin.withToken(registration).call('registerNode', { computer_guid: 'COMP-1' });
      const before = Date.now();
      const status = expectAnswer(
        await rpc(m, m.adminToken, 'slapos.get.v0.compute_node_status', { computer_guid: 'COMP-1' }),
        200,
      );
      expect(status).toMatchObject({
        no_data: 1,
        portal_type: 'Compute Node',
        reference: 'COMP-1',
        state: '',
        text: '#error no data found for COMP-1',
        user: 'SlapOS Master',
      });
      expect(status).not.toHaveProperty('no_data_since_5_minutes');
      const rfc1123 =
        /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d\d:\d\d:\d\d GMT$/;
      expect(status.created_at).toMatch(rfc1123);
      expect(status.since).toMatch(rfc1123);
      expect(Date.parse(String(status.created_at))).toBeGreaterThanOrEqual(Math.floor(before / 1000) * 1000);
    });

    it('test_PersonAccess_42_AccessedComputeNodeStatus', async () => {
      // The node calls in (SlapOS: setAccessStatus), then a person reads its status.
      await rpc(m, node.token, 'slapos.allDocs.v0.compute_node_instance_list', { computer_guid: 'COMP-0' });
      const status = expectAnswer(
        await rpc(m, m.adminToken, 'slapos.get.v0.compute_node_status', { computer_guid: 'COMP-0' }),
        200,
      );
      expect(status).toMatchObject({
        no_data_since_15_minutes: 0,
        no_data_since_5_minutes: 0,
        portal_type: 'Compute Node',
        reference: 'COMP-0',
        state: '',
        text: '#access COMP-0',
        user: 'COMP-0',
      });
      expect(status).not.toHaveProperty('no_data');
    });

    it('test_PersonAccess_44_getInstanceTreeAllocated', async () => {
      const { root } = await allocatedTree();
      const doc = expectAnswer(await rpc(m, person, 'slapos.get.v0.instance_tree', { title: 'test tree' }), 200);
      expect(doc).toMatchObject({ instance_guid: root.instance_guid, computer_guid: 'COMP-0' });
    });

    it('test_PersonAccess_45_getInstanceTreeNonExisting', async () => {
      await allocatedTree();
      const answer = await rpc(m, person, 'slapos.get.v0.instance_tree', { title: 'test treeFOOBAR' });
      expect(expectAnswer(answer, 403)).toEqual({
        title: 'No instance tree found with title: test treeFOOBAR',
        type: 'INSTANCE-TREE-NOT-FOUND',
        status: 403,
        detail: "instance tree 'test treeFOOBAR' not found",
      });
    });
  });
});
