/**
 * SlapOS's slapproxy JSON-RPC test suite, ported: each `it` is named after the test it comes from (slapos.core
 * slapos/tests/test_slapproxy_json_rpc.py at 9907e414, classes JsonRpcTestCase and JsonRpcExperimentalTestCase)
 * and asserts the status, the `Content-Type` exactly `application/json`, and the body.
 *
 * Our master answers like SlapOS's master, not like its proxy. Everywhere, then:
 * - every call is authenticated, as SlapOS's master would require: the node for its reports and lists, the
 *   instance (its token from its node) for its own reports, a person (a user) for requests, the admin for supply,
 *   node bang and node certificates;
 * - instance guids are opaque `SOFTINST-…` (the proxy's are `<title>______0|1`), and an instance's
 *   `access_status_message` is the master's (`#error no data found for <guid>` before any report), not "";
 * - the release is supplied on the compute node before instances of it are requested (the allocator places an
 *   instance only where its release is supplied; the proxy places anything anywhere);
 * - errors are the master's `{status, type, title}` (plus our `detail`/`field`), types such as
 *   `SOFTWARE-INSTANCE-NOT-FOUND` rather than the proxy's "Forbidden".
 * Where a test's behaviour differs beyond that, its name says `(differs: …)` and it asserts ours.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startTestMaster, addTestNode, type TestMaster, type TestNode } from '../src/testing/test-master.js';
import { expectAnswer, rpc, tioxml } from './support/slapos-rpc.js';

/** The same call behind a TLS-terminating proxy (`X-Forwarded-Proto: https`). */
const rpcForwarded = (m: TestMaster, token: string, route: string, body: Record<string, unknown>) =>
  rpc(m, token, route, body, { 'x-forwarded-proto': 'https' });

/** BasicMixin's compute node id. */
const COMPUTER = 'computer';
const SR = 'http://sr//';
const MYSOFT = 'https://mysoft';
const CDN_SR = 'http://git.erp5.org/gitweb/slapos.git/blob_plain/HEAD:/software/apache-frontend/software.cfg';
const CDN_URL = 'https://[::1]:123/my/path?my=query&string=value#myanchor';
/** What `format_for_number_of_partitions` gives every partition. */
const PROXY_IPS = [
  { 'ip-address': '1.2.3.4', 'network-interface': 'tap0' },
  { 'ip-address': '4.3.2.1', 'network-interface': 'tap0' },
];
const PROXY_IP_LIST = [
  ['tap0', '1.2.3.4'],
  ['tap0', '4.3.2.1'],
];
const SUCCESS = (title: string) => ({ type: 'success', title });
const RFC1123 =
  /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d\d:\d\d:\d\d GMT$/;

const TIOXML = tioxml('testusage');

/** An instance document as the proxy's tests spell it out, with the master's values where ours differ by rule. */
function instanceDoc(
  got: Record<string, unknown>,
  fields: {
    title: string;
    software_release_uri: string;
    software_type: string;
    root_instance_title: string;
    compute_partition_id: string;
    ip_list: string[][];
    parameters?: Record<string, unknown>;
    connection_parameters?: Record<string, unknown>;
    shared?: boolean;
    access_status_message?: string;
  },
): Record<string, unknown> {
  const guid = String(got.instance_guid);
  return {
    title: fields.title,
    instance_guid: expect.stringMatching(/^SOFTINST-/) as unknown,
    software_release_uri: fields.software_release_uri,
    software_type: fields.software_type,
    state: 'started',
    connection_parameters: fields.connection_parameters ?? {},
    parameters: fields.parameters ?? {},
    shared: fields.shared ?? false,
    root_instance_title: fields.root_instance_title,
    ip_list: fields.ip_list,
    full_ip_list: [],
    sla_parameters: {},
    computer_guid: COMPUTER,
    compute_partition_id: fields.compute_partition_id,
    // The proxy copies it from the answer (`None`/`0` otherwise); ours is a positive integer (µs) always.
    processing_timestamp: got.processing_timestamp,
    access_status_message: fields.access_status_message ?? `#error no data found for ${guid}`,
  };
}

function expectTimestamp(doc: Record<string, unknown>): number {
  const ts = doc.processing_timestamp;
  expect(Number.isInteger(ts) && (ts as number) > 0, `processing_timestamp ${String(ts)}`).toBe(true);
  return ts as number;
}

describe('slapproxy JSON-RPC suite, ported', () => {
  let m: TestMaster;
  let person: string;

  beforeEach(async () => {
    m = await startTestMaster();
    person = (await m.admin.call('createUser', { name: 'person' })).token;
  });
  afterEach(async () => m.stop());

  /** BasicMixin's computer: registered (its token), formatted with no partition, `releases` supplied (ours). */
  async function computer(releases: string[] = []): Promise<TestNode> {
    return await addTestNode(m.admin, COMPUTER, { partitions: 0, releases });
  }

  /** `format_for_number_of_partitions(n)`: slappart0…, each with the proxy's two addresses, sent by the node. */
  async function formatForNumberOfPartitions(n: number, releases: string[] = [SR]): Promise<TestNode> {
    const node = await computer(releases);
    const answer = await rpc(m, node.token, 'slapos.put.v0.compute_node_format', {
      computer_guid: COMPUTER,
      compute_partition_list: Array.from({ length: n }, (_, i) => ({
        partition_id: `slappart${i}`,
        ip_list: PROXY_IPS,
      })),
    });
    expect(expectAnswer(answer, 200)).toEqual(SUCCESS('Formatted'));
    return node;
  }

  /** `slapos.post.v0.software_instance` as the person; the answer's body, status 200 checked. */
  async function requestAsPerson(body: Record<string, unknown>): Promise<Record<string, unknown>> {
    return expectAnswer(await rpc(m, person, 'slapos.post.v0.software_instance', body), 200);
  }

  /** The proxy's `MyFirstInstance` on slappart0, and the instance's own token. */
  async function myFirstInstance(node: TestNode, parameters?: Record<string, unknown>) {
    const doc = await requestAsPerson({
      title: 'MyFirstInstance',
      software_release_uri: SR,
      software_type: 'foobar',
      ...(parameters === undefined ? {} : { parameters }),
    });
    const guid = String(doc.instance_guid);
    expect(doc.compute_partition_id).toBe('slappart0');
    const { token } = await node.client.call('issueInstanceToken', { instance_guid: guid });
    return { doc, guid, token };
  }

  /** The proxy's `MyFirstShared`, hosted by MyFirstInstance. */
  async function myFirstShared(parameters?: Record<string, unknown>) {
    const doc = await requestAsPerson({
      title: 'MyFirstShared',
      software_release_uri: SR,
      software_type: 'foobar',
      shared: true,
      ...(parameters === undefined ? {} : { parameters }),
    });
    expect(doc).toMatchObject({ shared: true, computer_guid: COMPUTER, compute_partition_id: 'slappart0' });
    return { doc, guid: String(doc.instance_guid) };
  }

  describe('JsonRpcTestCase', () => {
    it('test_post_v0_hateoas_url, test_post_v0_hateoas_url_with_https (differs: the master names its own URL, whatever X-Forwarded-Proto says)', async () => {
      const plain = await rpc(m, person, 'slapos.get.v0.hateoas_url', {});
      expect(expectAnswer(plain, 200)).toEqual({ hateoas_url: m.url });
      expect(m.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+/);
      const forwarded = await rpcForwarded(m, person, 'slapos.get.v0.hateoas_url', {});
      expect(expectAnswer(forwarded, 200)).toEqual({ hateoas_url: m.url });
    });

    it('test_remove_v0_compute_node_certificate (differs: an unknown node is refused; a real certificate is revoked: "Certificate removed", not "Ignored")', async () => {
      await computer();
      const unknown = await rpc(m, m.adminToken, 'slapos.remove.v0.compute_node_certificate', { computer_guid: 'foo' });
      expect(expectAnswer(unknown, 403)).toEqual({
        status: 403,
        type: 'COMPUTE-NODE-NOT-FOUND',
        title: "Compute Node 'foo' not found",
        detail: "compute node 'foo' not found",
      });
      const none = await rpc(m, m.adminToken, 'slapos.remove.v0.compute_node_certificate', { computer_guid: COMPUTER });
      expect(expectAnswer(none, 200)).toEqual(SUCCESS('No certificate to remove'));
      await rpc(m, m.adminToken, 'slapos.post.v0.compute_node_certificate', { computer_guid: COMPUTER });
      const removed = await rpc(m, m.adminToken, 'slapos.remove.v0.compute_node_certificate', {
        computer_guid: COMPUTER,
      });
      expect(expectAnswer(removed, 200)).toEqual(SUCCESS('Certificate removed'));
    });

    it('test_post_v0_compute_node_certificate (differs: an unknown node is refused; a real key and certificate, not "")', async () => {
      await computer();
      const unknown = await rpc(m, m.adminToken, 'slapos.post.v0.compute_node_certificate', { computer_guid: 'foo' });
      expect(expectAnswer(unknown, 403)).toEqual({
        status: 403,
        type: 'COMPUTE-NODE-NOT-FOUND',
        title: "Compute Node 'foo' not found",
        detail: "compute node 'foo' not found",
      });
      const answer = await rpc(m, m.adminToken, 'slapos.post.v0.compute_node_certificate', {
        computer_guid: COMPUTER,
      });
      const body = expectAnswer(answer, 200);
      expect(Object.keys(body).sort()).toEqual(['certificate', 'key']);
      expect(String(body.key)).toMatch(/^-----BEGIN PRIVATE KEY-----\n[\s\S]+-----END PRIVATE KEY-----\n?$/);
      expect(String(body.certificate)).toMatch(/^-----BEGIN CERTIFICATE-----\n[\s\S]+-----END CERTIFICATE-----\n?$/);
    });

    it('test_post_v0_compute_node_usage (differs: TioXML is validated, "" refused with INVALIDATE_TIOXML; a valid one is "Usage reported")', async () => {
      const node = await computer();
      const empty = await rpc(m, node.token, 'slapos.post.v0.compute_node_usage', {
        computer_guid: COMPUTER,
        tioxml: '',
      });
      expect(expectAnswer(empty, 400)).toMatchObject({
        status: 400,
        type: 'INVALIDATE_TIOXML',
        title: 'The tioxml does not validate the xsd',
      });
      expect(empty.json.detail).toMatch(/^tioxml: /);
      const garbage = await rpc(m, node.token, 'slapos.post.v0.compute_node_usage', {
        computer_guid: COMPUTER,
        tioxml: 'foobar',
      });
      expect(expectAnswer(garbage, 400).type).toBe('INVALIDATE_TIOXML');
      const unknown = await rpc(m, m.adminToken, 'slapos.post.v0.compute_node_usage', {
        computer_guid: 'foo',
        tioxml: TIOXML,
      });
      expect(expectAnswer(unknown, 403)).toMatchObject({ status: 403, type: 'COMPUTE-NODE-NOT-FOUND' });
      const valid = await rpc(m, node.token, 'slapos.post.v0.compute_node_usage', {
        computer_guid: COMPUTER,
        tioxml: TIOXML,
      });
      expect(expectAnswer(valid, 200)).toEqual(SUCCESS('Usage reported'));
    });

    it('test_get_v0_compute_node_status (differs: SlapOS master fields, not "Unknown (not implemented)")', async () => {
      // The node called in when it formatted (addTestNode); SlapOS's production manager (our admin) reads it.
      await computer();
      const status = expectAnswer(
        await rpc(m, m.adminToken, 'slapos.get.v0.compute_node_status', { computer_guid: COMPUTER }),
        200,
      );
      expect(status).toEqual({
        text: `#access ${COMPUTER}`,
        reference: COMPUTER,
        portal_type: 'Compute Node',
        created_at: expect.stringMatching(RFC1123) as unknown,
        since: expect.stringMatching(RFC1123) as unknown,
        state: '',
        user: COMPUTER,
        no_data_since_15_minutes: 0,
        no_data_since_5_minutes: 0,
        // Ours, besides SlapOS's.
        computer_guid: COMPUTER,
        title: COMPUTER,
        registered_at: expect.any(String) as unknown,
        last_contact_at: expect.any(String) as unknown,
        partition_count: 0,
        free_partition_count: 0,
      });
    });

    it('test_get_v0_software_instance_certificate (differs: an unknown guid is refused; a real key and certificate, not "")', async () => {
      const node = await formatForNumberOfPartitions(1);
      const { guid, token } = await myFirstInstance(node);
      const unknown = await rpc(m, token, 'slapos.get.v0.software_instance_certificate', { instance_guid: 'foo' });
      expect(expectAnswer(unknown, 403)).toEqual({
        status: 403,
        type: 'SOFTWARE-INSTANCE-NOT-FOUND',
        title: 'No instance found with reference: foo',
        detail: "instance 'foo' not found",
      });
      const answer = await rpc(m, token, 'slapos.get.v0.software_instance_certificate', { instance_guid: guid });
      const body = expectAnswer(answer, 200);
      expect(Object.keys(body).sort()).toEqual(['certificate', 'key']);
      expect(String(body.key)).toMatch(/^-----BEGIN PRIVATE KEY-----\n[\s\S]+-----END PRIVATE KEY-----\n?$/);
      expect(String(body.certificate)).toMatch(/^-----BEGIN CERTIFICATE-----\n[\s\S]+-----END CERTIFICATE-----\n?$/);
    });

    it('test_post_v0_software_installation (differs: "State changed", not "Supplied https://mysoft to be available")', async () => {
      await formatForNumberOfPartitions(0, []);
      const answer = await rpc(m, m.adminToken, 'slapos.post.v0.software_installation', {
        software_release_uri: MYSOFT,
        computer_guid: COMPUTER,
      });
      expect(expectAnswer(answer, 200)).toEqual(SUCCESS('State changed'));
    });

    it('test_put_v0_software_installation_reported_state_available (differs: a release never supplied is refused; a supplied one is "State reported", not "Ignored")', async () => {
      const node = await computer();
      const unknown = await rpc(m, node.token, 'slapos.put.v0.software_installation_reported_state', {
        software_release_uri: 'foo',
        computer_guid: COMPUTER,
        reported_state: 'available',
      });
      expect(expectAnswer(unknown, 403)).toEqual({
        status: 403,
        type: 'SOFTWARE-INSTALLATION-NOT-FOUND',
        title: 'No installation found with url: foo',
        detail: "software release 'foo' is not supplied to compute node 'computer'",
      });
      const otherNode = await rpc(m, m.adminToken, 'slapos.put.v0.software_installation_reported_state', {
        software_release_uri: 'foo',
        computer_guid: 'bar',
        reported_state: 'available',
      });
      expect(expectAnswer(otherNode, 403)).toEqual({
        status: 403,
        type: 'COMPUTE-NODE-NOT-FOUND',
        title: "Compute Node 'bar' not found",
        detail: "compute node 'bar' not found",
      });
      await m.admin.call('supply', { computer_guid: COMPUTER, software_release_uri: 'foo' });
      const supplied = await rpc(m, node.token, 'slapos.put.v0.software_installation_reported_state', {
        software_release_uri: 'foo',
        computer_guid: COMPUTER,
        reported_state: 'available',
      });
      expect(expectAnswer(supplied, 200)).toEqual(SUCCESS('State reported'));
    });

    it('test_put_v0_software_installation_reported_state_destroyed (differs: refused until its destruction is requested; then "State reported", not "Destroyed")', async () => {
      const node = await formatForNumberOfPartitions(0, []);
      await rpc(m, m.adminToken, 'slapos.post.v0.software_installation', {
        software_release_uri: MYSOFT,
        computer_guid: COMPUTER,
      });
      const body = { software_release_uri: MYSOFT, computer_guid: COMPUTER, reported_state: 'destroyed' };
      const early = await rpc(m, node.token, 'slapos.put.v0.software_installation_reported_state', body);
      expect(expectAnswer(early, 403)).toMatchObject({
        status: 403,
        type: 'SOFTWARE-INSTALLATION-DESTROY-NOT-REQUESTED',
        title: 'Reported state is destroyed but requested state is not destroyed',
      });
      const remove = await rpc(m, m.adminToken, 'slapos.post.v0.software_installation', {
        software_release_uri: MYSOFT,
        computer_guid: COMPUTER,
        state: 'destroyed',
      });
      expect(expectAnswer(remove, 200)).toEqual(SUCCESS('State changed'));
      const answer = await rpc(m, node.token, 'slapos.put.v0.software_installation_reported_state', body);
      expect(expectAnswer(answer, 200)).toEqual(SUCCESS('State reported'));
      const list = await rpc(m, node.token, 'slapos.allDocs.v0.compute_node_software_installation_list', {
        computer_guid: COMPUTER,
      });
      expect(expectAnswer(list, 200)).toEqual({ result_list: [] });
    });

    it('test_allDocs_v0_compute_node_software_installation_list', async () => {
      const node = await formatForNumberOfPartitions(0, []);
      await rpc(m, m.adminToken, 'slapos.post.v0.software_installation', {
        software_release_uri: MYSOFT,
        computer_guid: COMPUTER,
      });
      const list = await rpc(m, node.token, 'slapos.allDocs.v0.compute_node_software_installation_list', {
        computer_guid: COMPUTER,
      });
      expect(expectAnswer(list, 200)).toEqual({
        result_list: [{ software_release_uri: MYSOFT, state: 'available' }],
      });
    });

    it('test_post_v0_software_instance__no_partition (differs: accepted, 200 + 102 and the tree created, then placed when a partition appears; not 403)', async () => {
      const body = { title: 'foo', software_release_uri: 'bar', software_type: 'foobar' };
      const waiting = await requestAsPerson(body);
      expect(waiting).toEqual({
        status: 102,
        name: 'SoftwareInstanceNotReady',
        message:
          "Software Instance Not Ready: waiting for a partition: no compute node is registered yet, so nothing runs 'bar' (hox node, or hox up)",
      });
      const tree = expectAnswer(await rpc(m, person, 'slapos.get.v0.instance_tree', { title: 'foo' }), 200);
      expect(tree).toMatchObject({ title: 'foo', computer_guid: '', compute_partition_id: '', ip_list: [] });
      // Room appears: the master places it without another request.
      await formatForNumberOfPartitions(1, ['bar']);
      await expect
        .poll(async () => (await rpc(m, person, 'slapos.get.v0.instance_tree', { title: 'foo' })).json.computer_guid, {
          timeout: 20_000,
        })
        .toBe(COMPUTER);
      const doc = await requestAsPerson(body);
      expect(doc).toEqual(
        instanceDoc(doc, {
          title: 'foo',
          software_release_uri: 'bar',
          software_type: 'foobar',
          root_instance_title: 'foo',
          compute_partition_id: 'slappart0',
          ip_list: PROXY_IP_LIST,
        }),
      );
      expect(doc.instance_guid).toBe(tree.instance_guid);
    });

    it('test_post_v0_software_instance__first_allocation', async () => {
      await formatForNumberOfPartitions(1);
      const doc = await requestAsPerson({
        title: 'MyFirstInstance',
        software_release_uri: SR,
        software_type: 'foobar',
        parameters: { bar: 'foo' },
      });
      expect(doc).toEqual(
        instanceDoc(doc, {
          title: 'MyFirstInstance',
          software_release_uri: SR,
          software_type: 'foobar',
          root_instance_title: 'MyFirstInstance',
          compute_partition_id: 'slappart0',
          ip_list: PROXY_IP_LIST,
          parameters: { bar: 'foo' },
        }),
      );
      expectTimestamp(doc);
    });

    it('test_post_v0_software_instance__with_connection_parameters', async () => {
      const node = await formatForNumberOfPartitions(1);
      const { guid, token } = await myFirstInstance(node, { bar: 'foo' });
      const published = await rpc(m, token, 'slapos.put.v0.software_instance_connection_parameter', {
        instance_guid: guid,
        connection_parameter_dict: { foo: 'bar' },
      });
      expect(expectAnswer(published, 200)).toEqual(SUCCESS('connection parameter updated'));
      const doc = await requestAsPerson({
        title: 'MyFirstInstance',
        software_release_uri: SR,
        software_type: 'foobar',
        parameters: { bar: 'foo' },
      });
      expect(doc).toEqual(
        instanceDoc(doc, {
          title: 'MyFirstInstance',
          software_release_uri: SR,
          software_type: 'foobar',
          root_instance_title: 'MyFirstInstance',
          compute_partition_id: 'slappart0',
          ip_list: PROXY_IP_LIST,
          parameters: { bar: 'foo' },
          connection_parameters: { foo: 'bar' },
        }),
      );
      expect(doc.instance_guid).toBe(guid);
    });

    it('test_post_v0_shared_instance__with_connection_parameters (differs: processing_timestamp a positive integer, not 0; the host publishes for it)', async () => {
      const node = await formatForNumberOfPartitions(1);
      const host = await myFirstInstance(node, { bar: 'foo' });
      const body = {
        title: 'MySharedInstance',
        software_release_uri: SR,
        software_type: 'foobar',
        parameters: { bar2: 'foo2' },
        shared: true,
      };
      const first = await requestAsPerson(body);
      const expected = (doc: Record<string, unknown>, connection: Record<string, unknown>) =>
        instanceDoc(doc, {
          title: 'MySharedInstance',
          software_release_uri: SR,
          software_type: 'foobar',
          root_instance_title: 'MySharedInstance',
          compute_partition_id: 'slappart0',
          ip_list: PROXY_IP_LIST,
          parameters: { bar2: 'foo2' },
          connection_parameters: connection,
          shared: true,
        });
      expect(first).toEqual(expected(first, {}));
      expectTimestamp(first);
      // Published by its host instance, whose partition it lives on.
      const published = await rpc(m, host.token, 'slapos.put.v0.software_instance_connection_parameter', {
        instance_guid: first.instance_guid,
        connection_parameter_dict: { foo: 'bar' },
      });
      expect(expectAnswer(published, 200)).toEqual(SUCCESS('connection parameter updated'));
      const again = await requestAsPerson(body);
      expect(again).toEqual(expected(again, { foo: 'bar' }));
      expect(again.instance_guid).toBe(first.instance_guid);
    });

    it('test_post_v0_shared_instance__with_cdn, test_post_v0_shared_instance__with_cdn_and_https_proxy (differs: no fake frontend; the shared instance waits (102) until an instance of its release can host it, then is placed there without another request)', async () => {
      const body = {
        title: 'MyCDNInstance',
        software_release_uri: CDN_SR,
        software_type: 'default',
        parameters: { url: CDN_URL },
        shared: true,
      };
      const waiting = await requestAsPerson(body);
      expect(waiting).toEqual({
        status: 102,
        name: 'SoftwareInstanceNotReady',
        message: `Software Instance Not Ready: waiting for a host: no instance runs '${CDN_SR}' with software type 'default' to host shared instance 'MyCDNInstance'`,
      });
      // Behind a TLS-terminating proxy: the same.
      const forwarded = await rpcForwarded(m, person, 'slapos.post.v0.software_instance', body);
      expect(expectAnswer(forwarded, 200)).toMatchObject({ status: 102, name: 'SoftwareInstanceNotReady' });
      const readTree = async () =>
        expectAnswer(await rpc(m, person, 'slapos.get.v0.instance_tree', { title: 'MyCDNInstance' }), 200);
      expect(await readTree()).toMatchObject({ shared: true, computer_guid: '', compute_partition_id: '' });

      // The platform's frontend (an admin's instance may host any user's shared instance).
      await formatForNumberOfPartitions(1, [CDN_SR]);
      const frontend = expectAnswer(
        await rpc(m, m.adminToken, 'slapos.post.v0.software_instance', {
          title: 'MyFrontend',
          software_release_uri: CDN_SR,
          software_type: 'default',
        }),
        200,
      );
      expect(frontend).toMatchObject({ computer_guid: COMPUTER, compute_partition_id: 'slappart0' });
      await expect.poll(async () => (await readTree()).computer_guid, { timeout: 20_000 }).toBe(COMPUTER);

      const doc = await requestAsPerson(body);
      expect(doc).toEqual(
        instanceDoc(doc, {
          title: 'MyCDNInstance',
          software_release_uri: CDN_SR,
          software_type: 'default',
          root_instance_title: 'MyCDNInstance',
          compute_partition_id: 'slappart0',
          ip_list: PROXY_IP_LIST,
          parameters: { url: CDN_URL },
          shared: true,
        }),
      );
      // The frontend sees it among the shared instances it serves.
      const hosted = await rpc(m, m.adminToken, 'slapos.allDocs.v0.instance_node_instance_list', {
        instance_guid: frontend.instance_guid,
      });
      expect(expectAnswer(hosted, 200).result_list).toEqual([
        expect.objectContaining({ instance_guid: doc.instance_guid, parameters: { url: CDN_URL } }),
      ]);
    });

    it('test_allDocs_v0_compute_node_instance_list', async () => {
      const node = await formatForNumberOfPartitions(1);
      const { guid } = await myFirstInstance(node, { bar: 'foo' });
      const list = await rpc(m, node.token, 'slapos.allDocs.v0.compute_node_instance_list', {
        computer_guid: COMPUTER,
      });
      expect(expectAnswer(list, 200)).toEqual({
        result_list: [
          {
            title: 'MyFirstInstance',
            instance_guid: guid,
            state: 'started',
            compute_partition_id: 'slappart0',
            software_release_uri: SR,
          },
        ],
      });
    });

    it('test_allDocs_v0_instance_node_instance_list_no_instance', async () => {
      const answer = await rpc(m, person, 'slapos.allDocs.v0.instance_node_instance_list', {
        instance_guid: 'MyFirstInstance______0',
      });
      expect(expectAnswer(answer, 403)).toEqual({
        status: 403,
        type: 'SOFTWARE-INSTANCE-NOT-FOUND',
        title: 'No instance found with reference: MyFirstInstance______0',
        detail: "instance 'MyFirstInstance______0' not found",
      });
    });

    it('test_allDocs_v0_instance_node_instance_list_empty', async () => {
      const node = await formatForNumberOfPartitions(1);
      const { guid, token } = await myFirstInstance(node, { bar: 'foo' });
      const list = await rpc(m, token, 'slapos.allDocs.v0.instance_node_instance_list', { instance_guid: guid });
      expect(expectAnswer(list, 200)).toEqual({ result_list: [] });
    });

    it('test_allDocs_v0_instance_node_instance_list_not_empty (differs: items also name their software_release_uri)', async () => {
      const node = await formatForNumberOfPartitions(1);
      const { guid, token } = await myFirstInstance(node, { bar: 'foo' });
      const shared = await requestAsPerson({
        title: 'MySharedInstance',
        software_release_uri: SR,
        software_type: 'foobar',
        parameters: { bar2: 'foo2' },
        shared: true,
      });
      const list = await rpc(m, token, 'slapos.allDocs.v0.instance_node_instance_list', { instance_guid: guid });
      expect(expectAnswer(list, 200)).toEqual({
        result_list: [
          {
            title: 'MySharedInstance',
            instance_guid: shared.instance_guid,
            software_type: 'foobar',
            state: 'started',
            parameters: { bar2: 'foo2' },
            compute_partition_id: 'slappart0',
            software_release_uri: SR,
          },
        ],
      });
    });

    it('test_get_v0_computer_partition__not_instance (differs: COMPUTE-NODE-NOT-FOUND for an unknown node, PARTITION-NOT-FOUND for an unknown partition)', async () => {
      const node = await formatForNumberOfPartitions(1);
      const unknownNode = await rpc(m, m.adminToken, 'slapos.get.v0.compute_partition', {
        computer_guid: 'foo',
        compute_partition_id: 'bar',
      });
      expect(expectAnswer(unknownNode, 403)).toEqual({
        status: 403,
        type: 'COMPUTE-NODE-NOT-FOUND',
        title: "Compute Node 'foo' not found",
        detail: "compute node 'foo' not found",
      });
      const unknownPartition = await rpc(m, node.token, 'slapos.get.v0.compute_partition', {
        computer_guid: COMPUTER,
        compute_partition_id: 'bar',
      });
      expect(expectAnswer(unknownPartition, 403)).toEqual({
        status: 403,
        type: 'PARTITION-NOT-FOUND',
        title: "partition 'bar' not found on compute node 'computer'",
      });
      // A node asks about its own compute node only.
      const otherNode = await rpc(m, node.token, 'slapos.get.v0.compute_partition', {
        computer_guid: 'foo',
        compute_partition_id: 'bar',
      });
      expect(expectAnswer(otherNode, 403)).toEqual({
        status: 403,
        type: 'FORBIDDEN',
        title: "compute node 'computer' may not act on compute node 'foo'",
      });
    });

    it('test_get_v0_computer_partition__matching_instance', async () => {
      const node = await formatForNumberOfPartitions(1);
      const { guid, token } = await myFirstInstance(node, { bar: 'foo' });
      await rpc(m, token, 'slapos.put.v0.software_instance_connection_parameter', {
        instance_guid: guid,
        connection_parameter_dict: { foo: 'bar' },
      });
      const doc = expectAnswer(
        await rpc(m, node.token, 'slapos.get.v0.compute_partition', {
          computer_guid: COMPUTER,
          compute_partition_id: 'slappart0',
        }),
        200,
      );
      expect(doc).toEqual(
        instanceDoc(doc, {
          title: 'MyFirstInstance',
          software_release_uri: SR,
          software_type: 'foobar',
          root_instance_title: 'MyFirstInstance',
          compute_partition_id: 'slappart0',
          ip_list: PROXY_IP_LIST,
          parameters: { bar: 'foo' },
          connection_parameters: { foo: 'bar' },
        }),
      );
      expect(doc.instance_guid).toBe(guid);
    });

    it('test_get_v0_computer_partition__empty_partition (differs: 200 and the document of a free partition, not 403)', async () => {
      const node = await formatForNumberOfPartitions(1);
      const answer = await rpc(m, node.token, 'slapos.get.v0.compute_partition', {
        computer_guid: COMPUTER,
        compute_partition_id: 'slappart0',
      });
      expect(expectAnswer(answer, 200)).toEqual({
        instance_guid: '',
        title: '',
        root_instance_title: '',
        computer_guid: COMPUTER,
        compute_partition_id: 'slappart0',
        software_release_uri: '',
        software_type: '',
        shared: false,
        state: 'destroyed',
        processing_timestamp: 0,
        access_status_message: '',
        parameters: {},
        sla_parameters: {},
        connection_parameters: {},
        ip_list: PROXY_IP_LIST,
        full_ip_list: [],
      });
    });

    it('test_get_v0_software_instance__not_instance', async () => {
      const answer = await rpc(m, person, 'slapos.get.v0.software_instance', { instance_guid: 'foo' });
      expect(expectAnswer(answer, 403)).toEqual({
        status: 403,
        type: 'SOFTWARE-INSTANCE-NOT-FOUND',
        title: 'No instance found with reference: foo',
        detail: "instance 'foo' not found",
      });
    });

    it('test_get_v0_software_instance__matching_instance', async () => {
      const node = await formatForNumberOfPartitions(1);
      const { guid, token } = await myFirstInstance(node, { bar: 'foo' });
      await rpc(m, token, 'slapos.put.v0.software_instance_connection_parameter', {
        instance_guid: guid,
        connection_parameter_dict: { foo: 'bar' },
      });
      const doc = expectAnswer(await rpc(m, token, 'slapos.get.v0.software_instance', { instance_guid: guid }), 200);
      expect(doc).toEqual(
        instanceDoc(doc, {
          title: 'MyFirstInstance',
          software_release_uri: SR,
          software_type: 'foobar',
          root_instance_title: 'MyFirstInstance',
          compute_partition_id: 'slappart0',
          ip_list: PROXY_IP_LIST,
          parameters: { bar: 'foo' },
          connection_parameters: { foo: 'bar' },
        }),
      );
      expect(doc.instance_guid).toBe(guid);
    });

    it("test_get_v0_software_instance__matching_shared_instance (differs: ip_list is the host partition's, not [])", async () => {
      const node = await formatForNumberOfPartitions(1);
      const host = await myFirstInstance(node);
      const shared = await myFirstShared({ bar: 'foo' });
      await rpc(m, host.token, 'slapos.put.v0.software_instance_connection_parameter', {
        instance_guid: shared.guid,
        connection_parameter_dict: { foo: 'bar' },
      });
      // Read by its host, as the node's agent does.
      const doc = expectAnswer(
        await rpc(m, host.token, 'slapos.get.v0.software_instance', { instance_guid: shared.guid }),
        200,
      );
      expect(doc).toEqual(
        instanceDoc(doc, {
          title: 'MyFirstShared',
          software_release_uri: SR,
          software_type: 'foobar',
          root_instance_title: 'MyFirstShared',
          compute_partition_id: 'slappart0',
          ip_list: PROXY_IP_LIST,
          parameters: { bar: 'foo' },
          connection_parameters: { foo: 'bar' },
          shared: true,
        }),
      );
      expect(doc.instance_guid).toBe(shared.guid);
    });

    it('test_put_v0_compute_node_format_empty_node (differs: the request is accepted, 200 + 102, and placed once a partition is formatted; not 403)', async () => {
      const node = await computer();
      const format = await rpc(m, node.token, 'slapos.put.v0.compute_node_format', {
        computer_guid: COMPUTER,
        compute_partition_list: [],
      });
      expect(expectAnswer(format, 200)).toEqual(SUCCESS('Formatted'));
      const supply = await rpc(m, m.adminToken, 'slapos.post.v0.software_installation', {
        software_release_uri: MYSOFT,
        computer_guid: COMPUTER,
      });
      expect(expectAnswer(supply, 200)).toEqual(SUCCESS('State changed'));
      const body = { title: 'MyFirstInstance', software_release_uri: MYSOFT, software_type: 'foobar' };
      expect(await requestAsPerson(body)).toEqual({
        status: 102,
        name: 'SoftwareInstanceNotReady',
        message: `Software Instance Not Ready: waiting for a partition: no free partition: 'computer' supplies '${MYSOFT}' but has no partitions yet (its agent formats them when it starts)`,
      });

      const grown = await rpc(m, node.token, 'slapos.put.v0.compute_node_format', {
        computer_guid: COMPUTER,
        compute_partition_list: [{ partition_id: 'slappart0', ip_list: PROXY_IPS }],
      });
      expect(expectAnswer(grown, 200)).toEqual(SUCCESS('Formatted'));
      const listed = async () =>
        expectAnswer(
          await rpc(m, node.token, 'slapos.allDocs.v0.compute_node_instance_list', { computer_guid: COMPUTER }),
          200,
        ).result_list;
      await expect
        .poll(listed, { timeout: 20_000 })
        .toEqual([expect.objectContaining({ title: 'MyFirstInstance', compute_partition_id: 'slappart0' })]);
      const doc = await requestAsPerson(body);
      expect(doc).toEqual(
        instanceDoc(doc, {
          title: 'MyFirstInstance',
          software_release_uri: MYSOFT,
          software_type: 'foobar',
          root_instance_title: 'MyFirstInstance',
          compute_partition_id: 'slappart0',
          ip_list: PROXY_IP_LIST,
        }),
      );
    });

    it('test_put_v0_compute_node_format_new_partition', async () => {
      const node = await computer();
      const format = await rpc(m, node.token, 'slapos.put.v0.compute_node_format', {
        computer_guid: COMPUTER,
        compute_partition_list: [
          {
            partition_id: 'MyFirstPartition',
            ip_list: [
              {
                'ip-address': 'MyFirstIpAddress',
                'network-interface': 'MyFirstNetworkInterface',
                'network-address': 'MyFirstNetworkAddress',
                'gateway-ip-address': 'MyFirstGatewayIpAddress',
                netmask: 'MyFirstNetmask',
              },
              {
                'ip-address': 'MySecondIpAddress',
                'network-interface': 'MySecondNetworkInterface',
                'network-address': 'MySecondNetworkAddress',
                'gateway-ip-address': 'MySecondGatewayIpAddress',
                netmask: 'MySecondNetmask',
              },
            ],
          },
        ],
      });
      expect(expectAnswer(format, 200)).toEqual(SUCCESS('Formatted'));
      const supply = await rpc(m, m.adminToken, 'slapos.post.v0.software_installation', {
        software_release_uri: MYSOFT,
        computer_guid: COMPUTER,
      });
      expect(supply.status).toBe(200);
      const doc = await requestAsPerson({
        title: 'MyFirstInstance',
        software_release_uri: MYSOFT,
        software_type: 'foobar',
      });
      expect(doc).toEqual(
        instanceDoc(doc, {
          title: 'MyFirstInstance',
          software_release_uri: MYSOFT,
          software_type: 'foobar',
          root_instance_title: 'MyFirstInstance',
          compute_partition_id: 'MyFirstPartition',
          ip_list: [
            ['MyFirstNetworkInterface', 'MyFirstIpAddress'],
            ['MySecondNetworkInterface', 'MySecondIpAddress'],
          ],
        }),
      );
    });

    it("test_put_v0_compute_node_format_update_existing (differs: a format dropping a partition that still hosts an instance is refused, PARTITION-BUSY, until that instance is destroyed; a shared instance keeps its host's ip_list, not [])", async () => {
      const node = await computer();
      const partition = (id: string, name: string) => ({
        partition_id: id,
        ip_list: [
          {
            'ip-address': `${name}IpAddress`,
            'network-interface': `${name}NetworkInterface`,
            'network-address': `${name}NetworkAddress`,
            'gateway-ip-address': `${name}GatewayIpAddress`,
            netmask: `${name}Netmask`,
          },
        ],
      });
      const first = await rpc(m, node.token, 'slapos.put.v0.compute_node_format', {
        computer_guid: COMPUTER,
        compute_partition_list: [partition('MyFirstPartition', 'MyFirst'), partition('MySecondPartition', 'MySecond')],
      });
      expect(expectAnswer(first, 200)).toEqual(SUCCESS('Formatted'));
      const soft = 'https://mysoft1';
      const supply = await rpc(m, m.adminToken, 'slapos.post.v0.software_installation', {
        software_release_uri: soft,
        computer_guid: COMPUTER,
      });
      expect(supply.status).toBe(200);
      const ask = (title: string, software_type: string, shared = false) =>
        requestAsPerson({ title, software_release_uri: soft, software_type, ...(shared ? { shared } : {}) });
      const firstInstance = await ask('MyFirstInstance', 'foobar1');
      const firstShared = await ask('MyFirstShared', 'foobar1', true);
      const secondInstance = await ask('MySecondInstance', 'foobar2');
      const secondShared = await ask('MySecondShared', 'foobar2', true);
      expect(firstInstance.compute_partition_id).toBe('MyFirstPartition');
      expect(firstShared.compute_partition_id).toBe('MyFirstPartition');
      expect(secondInstance.compute_partition_id).toBe('MySecondPartition');
      expect(secondShared.compute_partition_id).toBe('MySecondPartition');

      const reformat = {
        computer_guid: COMPUTER,
        compute_partition_list: [
          partition('MyThirdPartition', 'MyThird'),
          partition('MySecondPartition', 'MyNewSecond'),
        ],
      };
      const refused = await rpc(m, node.token, 'slapos.put.v0.compute_node_format', reformat);
      expect(expectAnswer(refused, 403)).toEqual({
        status: 403,
        type: 'PARTITION-BUSY',
        title: "cannot remove partition(s) 'MyFirstPartition' of compute node 'computer': still hosting an instance",
      });
      // Nothing changed.
      const unchanged = await rpc(m, person, 'slapos.get.v0.software_instance', {
        instance_guid: secondInstance.instance_guid,
      });
      expect(expectAnswer(unchanged, 200).ip_list).toEqual([['MySecondNetworkInterface', 'MySecondIpAddress']]);

      // Ours: destroy what lives on MyFirstPartition first; its node confirms.
      const destroyShared = await requestAsPerson({
        title: 'MyFirstShared',
        software_release_uri: soft,
        software_type: 'foobar1',
        shared: true,
        state: 'destroyed',
      });
      expect(destroyShared.state).toBe('destroyed');
      const destroy = await requestAsPerson({
        title: 'MyFirstInstance',
        software_release_uri: soft,
        software_type: 'foobar1',
        state: 'destroyed',
      });
      expect(destroy.state).toBe('destroyed');
      const { token } = await node.client.call('issueInstanceToken', {
        instance_guid: String(firstInstance.instance_guid),
      });
      const confirmed = await rpc(m, token, 'slapos.put.v0.software_instance_reported_state', {
        instance_guid: firstInstance.instance_guid,
        reported_state: 'destroyed',
      });
      expect(expectAnswer(confirmed, 200)).toEqual(SUCCESS('State reported'));

      const accepted = await rpc(m, node.token, 'slapos.put.v0.compute_node_format', reformat);
      expect(expectAnswer(accepted, 200)).toEqual(SUCCESS('Formatted'));

      const second = expectAnswer(
        await rpc(m, person, 'slapos.get.v0.software_instance', { instance_guid: secondInstance.instance_guid }),
        200,
      );
      expect(second).toEqual(
        instanceDoc(second, {
          title: 'MySecondInstance',
          software_release_uri: soft,
          software_type: 'foobar2',
          root_instance_title: 'MySecondInstance',
          compute_partition_id: 'MySecondPartition',
          ip_list: [['MyNewSecondNetworkInterface', 'MyNewSecondIpAddress']],
        }),
      );
      const sharedDoc = expectAnswer(
        await rpc(m, person, 'slapos.get.v0.software_instance', { instance_guid: secondShared.instance_guid }),
        200,
      );
      expect(sharedDoc).toEqual(
        instanceDoc(sharedDoc, {
          title: 'MySecondShared',
          software_release_uri: soft,
          software_type: 'foobar2',
          root_instance_title: 'MySecondShared',
          compute_partition_id: 'MySecondPartition',
          ip_list: [['MyNewSecondNetworkInterface', 'MyNewSecondIpAddress']],
          shared: true,
        }),
      );
      for (const gone of [firstInstance, firstShared]) {
        const answer = await rpc(m, person, 'slapos.get.v0.software_instance', { instance_guid: gone.instance_guid });
        expect(expectAnswer(answer, 403)).toEqual({
          status: 403,
          type: 'SOFTWARE-INSTANCE-NOT-FOUND',
          title: `No instance found with reference: ${String(gone.instance_guid)}`,
          detail: `instance '${String(gone.instance_guid)}' not found`,
        });
      }
      const third = await ask('MyThirdInstance', 'foobar');
      expect(third).toEqual(
        instanceDoc(third, {
          title: 'MyThirdInstance',
          software_release_uri: soft,
          software_type: 'foobar',
          root_instance_title: 'MyThirdInstance',
          compute_partition_id: 'MyThirdPartition',
          ip_list: [['MyThirdNetworkInterface', 'MyThirdIpAddress']],
        }),
      );
    });

    it('test_put_v0_compute_node_bang (differs: "Bang handled", not "Ignored"; every instance on the node reprocesses)', async () => {
      const node = await formatForNumberOfPartitions(1);
      const { doc, guid } = await myFirstInstance(node);
      const answer = await rpc(m, m.adminToken, 'slapos.put.v0.compute_node_bang', {
        computer_guid: COMPUTER,
        message: 'it does not work',
      });
      expect(expectAnswer(answer, 200)).toEqual(SUCCESS('Bang handled'));
      const after = expectAnswer(await rpc(m, person, 'slapos.get.v0.software_instance', { instance_guid: guid }), 200);
      expect(expectTimestamp(after)).toBeGreaterThan(expectTimestamp(doc));
      const status = await rpc(m, m.adminToken, 'slapos.get.v0.compute_node_status', { computer_guid: COMPUTER });
      expect(expectAnswer(status, 200).text).toBe('#error bang: it does not work');
    });

    for (const [name, state] of [
      ['test_put_v0_software_instance_reported_state_started', 'started'],
      ['test_put_v0_software_instance_reported_state_stopped', 'stopped'],
    ] as const)
      it(`${name} (differs: an unknown guid is refused; a report is recorded, "State reported", not "Ignored")`, async () => {
        const node = await formatForNumberOfPartitions(1);
        const { guid, token } = await myFirstInstance(node);
        const unknown = await rpc(m, token, 'slapos.put.v0.software_instance_reported_state', {
          instance_guid: 'foo',
          reported_state: state,
        });
        expect(expectAnswer(unknown, 403)).toEqual({
          status: 403,
          type: 'SOFTWARE-INSTANCE-NOT-FOUND',
          title: 'No instance found with reference: foo',
          detail: "instance 'foo' not found",
        });
        const answer = await rpc(m, token, 'slapos.put.v0.software_instance_reported_state', {
          instance_guid: guid,
          reported_state: state,
        });
        expect(expectAnswer(answer, 200)).toEqual(SUCCESS('State reported'));
        const doc = await rpc(m, token, 'slapos.get.v0.software_instance', { instance_guid: guid });
        // Reported is not requested: the requested state stays.
        expect(expectAnswer(doc, 200)).toMatchObject({
          access_status_message: `#access Instance correctly ${state}`,
          state: 'started',
        });
      });

    it('test_put_v0_software_instance_reported_state_destroyed (differs: "State reported", not "Destroyed"; the instance goes only once its destruction was requested)', async () => {
      const node = await formatForNumberOfPartitions(1);
      const { guid, token } = await myFirstInstance(node);
      const early = await rpc(m, token, 'slapos.put.v0.software_instance_reported_state', {
        instance_guid: guid,
        reported_state: 'destroyed',
      });
      expect(expectAnswer(early, 200)).toEqual(SUCCESS('State reported'));
      // Recorded, but nobody asked for its destruction: it stays, requested started.
      const still = await rpc(m, person, 'slapos.get.v0.software_instance', { instance_guid: guid });
      expect(expectAnswer(still, 200)).toMatchObject({
        state: 'started',
        access_status_message: '#access Instance correctly destroyed',
      });
      // Its node processes it again and says so; then its owner destroys it and the node confirms.
      await rpc(m, token, 'slapos.put.v0.software_instance_reported_state', {
        instance_guid: guid,
        reported_state: 'started',
      });
      const destroy = await requestAsPerson({
        title: 'MyFirstInstance',
        software_release_uri: SR,
        software_type: 'foobar',
        state: 'destroyed',
      });
      expect(destroy).toMatchObject({ instance_guid: guid, state: 'destroyed' });
      const answer = await rpc(m, token, 'slapos.put.v0.software_instance_reported_state', {
        instance_guid: guid,
        reported_state: 'destroyed',
      });
      expect(expectAnswer(answer, 200)).toEqual(SUCCESS('State reported'));
      const gone = await rpc(m, person, 'slapos.get.v0.software_instance', { instance_guid: guid });
      expect(expectAnswer(gone, 403)).toEqual({
        status: 403,
        type: 'SOFTWARE-INSTANCE-NOT-FOUND',
        title: `No instance found with reference: ${guid}`,
        detail: `instance '${guid}' not found`,
      });
    });

    it('test_put_v0_software_instance_bang_instance', async () => {
      const node = await formatForNumberOfPartitions(1);
      const { guid, token } = await myFirstInstance(node);
      const before = expectAnswer(await rpc(m, token, 'slapos.get.v0.software_instance', { instance_guid: guid }), 200);
      // No clock to mock: ours strictly increases on every bang.
      const answer = await rpc(m, token, 'slapos.put.v0.software_instance_bang', {
        instance_guid: guid,
        message: 'Please reprocess',
      });
      expect(expectAnswer(answer, 200)).toEqual(SUCCESS('Bang handled'));
      const after = expectAnswer(await rpc(m, token, 'slapos.get.v0.software_instance', { instance_guid: guid }), 200);
      expect(expectTimestamp(after)).toBeGreaterThan(expectTimestamp(before));
      expect(after.access_status_message).toBe('#error bang called: Please reprocess');
    });

    it('test_put_v0_software_instance_bang_shared (differs: handled, "Bang handled", not 403 "NotImplemented"; its host reprocesses)', async () => {
      const node = await formatForNumberOfPartitions(1);
      const host = await myFirstInstance(node);
      const shared = await myFirstShared();
      const hostBefore = expectAnswer(
        await rpc(m, host.token, 'slapos.get.v0.software_instance', { instance_guid: host.guid }),
        200,
      );
      // Banged by its owner (a shared instance has no token of its own).
      const answer = await rpc(m, person, 'slapos.put.v0.software_instance_bang', {
        instance_guid: shared.guid,
        message: 'Please reprocess',
      });
      expect(expectAnswer(answer, 200)).toEqual(SUCCESS('Bang handled'));
      const sharedAfter = expectAnswer(
        await rpc(m, person, 'slapos.get.v0.software_instance', { instance_guid: shared.guid }),
        200,
      );
      expect(sharedAfter.access_status_message).toBe('#error bang called: Please reprocess');
      expect(expectTimestamp(sharedAfter)).toBeGreaterThan(expectTimestamp(shared.doc));
      const hostAfter = expectAnswer(
        await rpc(m, host.token, 'slapos.get.v0.software_instance', { instance_guid: host.guid }),
        200,
      );
      expect(expectTimestamp(hostAfter)).toBeGreaterThan(expectTimestamp(hostBefore));
    });

    it('test_put_v0_software_instance_title_instance (differs: "Title updated", not "Renamed"; the guid stays and the tree is renamed with its root)', async () => {
      const node = await formatForNumberOfPartitions(1);
      const { guid, token } = await myFirstInstance(node);
      const answer = await rpc(m, token, 'slapos.put.v0.software_instance_title', {
        instance_guid: guid,
        title: 'MyRenamedFirstInstance',
      });
      expect(expectAnswer(answer, 200)).toEqual(SUCCESS('Title updated'));
      const doc = await rpc(m, token, 'slapos.get.v0.software_instance', { instance_guid: guid });
      expect(expectAnswer(doc, 200)).toMatchObject({
        instance_guid: guid,
        title: 'MyRenamedFirstInstance',
        root_instance_title: 'MyRenamedFirstInstance',
      });
      // The old title names no tree any more.
      const old = await rpc(m, person, 'slapos.get.v0.instance_tree', { title: 'MyFirstInstance' });
      expect(expectAnswer(old, 403)).toEqual({
        status: 403,
        type: 'INSTANCE-TREE-NOT-FOUND',
        title: 'No instance tree found with title: MyFirstInstance',
        detail: "instance tree 'MyFirstInstance' not found",
      });
    });

    it('test_put_v0_software_instance_title_shared (differs: renamed, "Title updated", not 403 "NotImplemented")', async () => {
      const node = await formatForNumberOfPartitions(1);
      await myFirstInstance(node);
      const shared = await myFirstShared();
      const answer = await rpc(m, person, 'slapos.put.v0.software_instance_title', {
        instance_guid: shared.guid,
        title: 'MyRenamedFirstShared',
      });
      expect(expectAnswer(answer, 200)).toEqual(SUCCESS('Title updated'));
      const doc = await rpc(m, person, 'slapos.get.v0.software_instance', { instance_guid: shared.guid });
      expect(expectAnswer(doc, 200)).toMatchObject({
        instance_guid: shared.guid,
        title: 'MyRenamedFirstShared',
        root_instance_title: 'MyRenamedFirstShared',
        shared: true,
      });
    });

    it('test_put_v0_software_instance_connection_parameter_instance (differs: "connection parameter updated", not "Updated")', async () => {
      const node = await formatForNumberOfPartitions(1);
      const { guid, token } = await myFirstInstance(node);
      const body = { instance_guid: guid, connection_parameter_dict: { foo: 'bar', bar: 'foo' } };
      const answer = await rpc(m, token, 'slapos.put.v0.software_instance_connection_parameter', body);
      expect(expectAnswer(answer, 200)).toEqual(SUCCESS('connection parameter updated'));
      const again = await rpc(m, token, 'slapos.put.v0.software_instance_connection_parameter', body);
      expect(expectAnswer(again, 200)).toEqual(SUCCESS('connection parameter not modified as identical'));
      const doc = await rpc(m, person, 'slapos.get.v0.software_instance', { instance_guid: guid });
      expect(expectAnswer(doc, 200).connection_parameters).toEqual({ foo: 'bar', bar: 'foo' });
    });

    it('test_put_v0_software_instance_connection_parameter_shared (differs: "connection parameter updated", not "Updated"; published by the host)', async () => {
      const node = await formatForNumberOfPartitions(1);
      const host = await myFirstInstance(node);
      const shared = await myFirstShared();
      const answer = await rpc(m, host.token, 'slapos.put.v0.software_instance_connection_parameter', {
        instance_guid: shared.guid,
        connection_parameter_dict: { foo: 'bar', bar: 'foo' },
      });
      expect(expectAnswer(answer, 200)).toEqual(SUCCESS('connection parameter updated'));
      const doc = await rpc(m, person, 'slapos.get.v0.software_instance', { instance_guid: shared.guid });
      expect(expectAnswer(doc, 200).connection_parameters).toEqual({ foo: 'bar', bar: 'foo' });
    });

    it('test_put_v0_software_instance_error (differs: an unknown guid is refused; an error is recorded, "Error reported", not "Ignored")', async () => {
      const node = await formatForNumberOfPartitions(1);
      const { guid, token } = await myFirstInstance(node);
      const unknown = await rpc(m, token, 'slapos.put.v0.software_instance_error', {
        instance_guid: 'foo',
        message: 'it does not work',
      });
      expect(expectAnswer(unknown, 403)).toEqual({
        status: 403,
        type: 'SOFTWARE-INSTANCE-NOT-FOUND',
        title: 'No instance found with reference: foo',
        detail: "instance 'foo' not found",
      });
      const answer = await rpc(m, token, 'slapos.put.v0.software_instance_error', {
        instance_guid: guid,
        message: 'it does not work',
      });
      expect(expectAnswer(answer, 200)).toEqual(SUCCESS('Error reported'));
      const doc = await rpc(m, token, 'slapos.get.v0.software_instance', { instance_guid: guid });
      expect(expectAnswer(doc, 200).access_status_message).toBe('#error while instanciating: it does not work');
    });

    it('test_put_v0_software_installation_error (differs: refused for a release not supplied there; then "Error reported", not "Ignored")', async () => {
      const node = await computer();
      const body = { software_release_uri: MYSOFT, computer_guid: COMPUTER, message: 'it does not work' };
      const unknown = await rpc(m, node.token, 'slapos.put.v0.software_installation_error', body);
      expect(expectAnswer(unknown, 403)).toEqual({
        status: 403,
        type: 'SOFTWARE-INSTALLATION-NOT-FOUND',
        title: `No installation found with url: ${MYSOFT}`,
        detail: `software release '${MYSOFT}' is not supplied to compute node 'computer'`,
      });
      await m.admin.call('supply', { computer_guid: COMPUTER, software_release_uri: MYSOFT });
      const answer = await rpc(m, node.token, 'slapos.put.v0.software_installation_error', body);
      expect(expectAnswer(answer, 200)).toEqual(SUCCESS('Error reported'));
      const status = await m.admin.call('listSoftwareStatus', { computer_guid: COMPUTER });
      expect(status.result_list.find((s) => s.software_release_uri === MYSOFT)).toMatchObject({
        reported_state: 'error',
        error_message: 'it does not work',
      });
    });
  });

  describe('JsonRpcExperimentalTestCase', () => {
    it('test_allDocs_WIP_instance_tree_list, test_allDocs_WIP_compute_node_list (differs: work-in-progress routes we do not serve: 404 not-found; v0 instance_tree_list instead)', async () => {
      const node = await formatForNumberOfPartitions(1);
      await myFirstInstance(node);
      await myFirstShared();
      for (const route of ['slapos.allDocs.WIP.instance_tree_list', 'slapos.allDocs.WIP.compute_node_list']) {
        const answer = await rpc(m, person, route, {});
        expect(expectAnswer(answer, 404)).toEqual({
          status: 404,
          type: 'not-found',
          title: `no endpoint POST /${route}`,
        });
      }
      const trees = await rpc(m, person, 'slapos.allDocs.v0.instance_tree_list', {});
      expect(expectAnswer(trees, 200)).toEqual({
        result_list: [{ title: 'MyFirstInstance' }, { title: 'MyFirstShared' }],
      });
    });
  });
});
