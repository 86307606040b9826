/**
 * The slap protocol (SlapOS's `slapos.slap` library, `slapgrid`, `slapos request`) against a real master, with a
 * client written from the protocol (test/support/slap-client.ts). Each `it` is named after the test of SlapOS's
 * master (slapos.core, master/bt5/slapos_slap_tool/…/test.erp5.testSlapOSSlapTool.py) whose behaviour it ports;
 * the node's sequence is slapgrid's (format, software, instance, report).
 */
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { runHox } from './support/hox-cli.js';
import { httpCall } from './support/http-call.js';
import { addTestNode, startTestMaster, type TestMaster } from '../src/testing/test-master.js';
import { describeEachStore } from './support/store-matrix.js';
import { SlapClient, marshal, text, unmarshal, type Py } from './support/slap-client.js';

const SR = 'https://releases.example.org/slap-sr/software.cfg';

const portOf = (m: TestMaster): number => Number(new URL(m.url).port);
type Obj = Record<string, Py>;
const obj = (v: Py | undefined): Obj => (v ?? {}) as Obj;

/** `slapos node format`'s loadComputerConfigurationFromXML body for `count` partitions. */
function formatXml(computerId: string, count: number): string {
  const partitions = Array.from(
    { length: count },
    (_, i) =>
      `<dictionary id="i${4 + i * 4}"><string>address_list</string><list id="i${5 + i * 4}"><dictionary id="i${6 + i * 4}"><string>addr</string><string>127.0.9.${i + 1}</string><string>netmask</string><string>255.255.255.0</string></dictionary></list><string>reference</string><string>slappart${i}</string><string>tap</string><dictionary id="i${7 + i * 4}"><string>name</string><string>slaptap${i}</string></dictionary></dictionary>`,
  ).join('');
  return `<marshal><dictionary id="i2"><string>partition_list</string><list id="i3">${partitions}</list><string>reference</string><string>${computerId}</string></dictionary></marshal>`;
}

/** What `slapos request` posts (no computer_id: a person's request). */
function requestFields(
  title: string,
  extra: { parameters?: Record<string, string>; state?: string; shared?: boolean } = {},
) {
  return {
    software_release: SR,
    software_type: 'RootSoftwareInstance',
    partition_reference: title,
    partition_parameter_xml: marshal(extra.parameters ?? {}),
    filter_xml: marshal({}),
    state: marshal(extra.state ?? null),
    shared_xml: marshal(extra.shared ?? false),
  };
}

/** The Computer a node reads, its partitions by id. */
async function computer(node: SlapClient, id: string): Promise<{ computer: Obj; partitions: Map<string, Obj> }> {
  const c = obj(await node.getObject('getFullComputerInformation', { computer_id: id }));
  const partitions = new Map((c._computer_partition_list as Py[]).map((p) => [text(obj(p)._partition_id), obj(p)]));
  return { computer: c, partitions };
}

describeEachStore('slap protocol', (env) => {
  it('test_getFullComputerInformation, test_request_allocated_instance, test_setConnectionXml: a node and slapos request, end to end', async () => {
    const m = await env.startMaster();
    const n = await addTestNode(m.admin, 'COMP-0', { partitions: 0 });
    const node = new SlapClient(portOf(m), { token: n.token });
    const person = new SlapClient(portOf(m), { token: m.adminToken });

    // slapos node format
    const format = await node.post('loadComputerConfigurationFromXML', { xml: formatXml('COMP-0', 2) });
    expect([format.status, format.text]).toEqual([200, 'Content properly posted.']);
    // slapos supply
    expect((await person.post('supplySupply', { url: SR, computer_id: 'COMP-0', state: 'available' })).status).toBe(
      200,
    );

    // slapos node software: the release to install, free partitions (destroyed, no release).
    let seen = await computer(node, 'COMP-0');
    expect(seen.computer.__class__).toBe('Computer');
    expect(seen.computer._computer_id).toBe('COMP-0');
    expect(seen.computer._software_release_list).toEqual([
      expect.objectContaining({
        __class__: 'SoftwareRelease',
        __args__: [SR, 'COMP-0'],
        _software_release: SR,
        _computer_guid: 'COMP-0',
        _requested_state: 'available',
      }),
    ]);
    expect(seen.partitions.get('slappart0')).toMatchObject({
      __class__: 'ComputerPartition',
      __args__: ['COMP-0', 'slappart0', null],
      _requested_state: 'destroyed',
      _software_release_document: null,
    });
    for (const step of ['buildingSoftwareRelease', 'availableSoftwareRelease'])
      expect((await node.post(step, { url: SR, computer_id: 'COMP-0' })).status, step).toBe(200);
    const software = await m.admin.call('listSoftwareStatus', { computer_guid: 'COMP-0' });
    expect(software.result_list[0]?.reported_state).toBe('available');

    // slapos request
    const answer = await person.post(
      'requestComputerPartition',
      requestFields('MyInstance', { parameters: { name: 'wörld & <co>' } }),
    );
    expect(answer.status, answer.text).toBe(200);
    expect(answer.contentType).toBe('text/xml; charset=utf-8');
    const instance = obj(unmarshal(answer.text));
    expect(instance).toMatchObject({
      __class__: 'SoftwareInstance',
      slap_computer_id: 'COMP-0',
      slap_computer_partition_id: 'slappart0',
      slap_software_release_url: SR,
      slap_software_type: 'default',
      _requested_state: 'started',
      _parameter_dict: { name: 'wörld & <co>' },
      _connection_dict: {},
      ip_list: [['slaptap0', '127.0.9.1']],
      instance_title: 'MyInstance',
      root_instance_title: 'MyInstance',
    });
    const guid = text(instance._instance_guid);
    expect(guid).toMatch(/^SOFTINST-/);

    // slapos node instance: the partition to process, with what the slapconfiguration recipe reads.
    seen = await computer(node, 'COMP-0');
    const p0 = seen.partitions.get('slappart0')!;
    expect(p0).toMatchObject({
      _instance_guid: guid,
      _requested_state: 'started',
      _need_modification: 1,
      _software_release_document: { __class__: 'SoftwareRelease', _software_release: SR },
      _access_status: `#error no data found for ${guid}`,
    });
    const parameters = obj(p0._parameter_dict);
    expect(parameters).toMatchObject({
      name: 'wörld & <co>',
      ip_list: [['slaptap0', '127.0.9.1']],
      slap_computer_id: 'COMP-0',
      slap_computer_partition_id: 'slappart0',
      slap_software_type: 'default',
      slave_instance_list: [],
    });
    const timestamp = Number(parameters.timestamp);
    expect(timestamp).toBeGreaterThan(0);
    const cert = obj(
      await node.getObject('getComputerPartitionCertificate', {
        computer_id: 'COMP-0',
        computer_partition_id: 'slappart0',
      }),
    );
    expect(text(cert.certificate)).toMatch(/BEGIN CERTIFICATE/);
    expect(text(cert.key)).toMatch(/BEGIN PRIVATE KEY/);
    const registered = obj(
      await node.getObject('registerComputerPartition', {
        computer_reference: 'COMP-0',
        computer_partition_reference: 'slappart0',
      }),
    );
    expect(registered).toMatchObject({ _instance_guid: guid, _synced: true });

    // The publish recipe, then startedComputerPartition.
    const publish = await node.post('setComputerPartitionConnectionXml', {
      computer_id: 'COMP-0',
      computer_partition_id: 'slappart0',
      connection_xml: marshal({ url: 'http://[::1]:8080/?a=1&b=2' }),
      slave_reference: null,
    });
    expect([publish.status, publish.text]).toEqual([200, 'None']);
    expect(
      (await node.post('startedComputerPartition', { computer_id: 'COMP-0', computer_partition_id: 'slappart0' }))
        .status,
    ).toBe(200);
    const again = obj(
      unmarshal(
        (
          await person.post(
            'requestComputerPartition',
            requestFields('MyInstance', { parameters: { name: 'wörld & <co>' } }),
          )
        ).text,
      ),
    );
    expect(again._connection_dict).toEqual({ url: 'http://[::1]:8080/?a=1&b=2' });
    seen = await computer(node, 'COMP-0');
    expect(seen.partitions.get('slappart0')?._access_status).toBe('#access Instance correctly started');

    // test_softwareInstanceError
    expect(
      (
        await node.post('softwareInstanceError', {
          computer_id: 'COMP-0',
          computer_partition_id: 'slappart0',
          error_log: 'boom',
        })
      ).status,
    ).toBe(200);
    seen = await computer(node, 'COMP-0');
    expect(seen.partitions.get('slappart0')?._access_status).toBe('#error while instanciating: boom');

    // test_softwareInstanceBang: the partition's timestamp grows, so slapgrid reprocesses it.
    const bang = await node.post('softwareInstanceBang', {
      computer_id: 'COMP-0',
      computer_partition_id: 'slappart0',
      message: 'rerun',
    });
    expect([bang.status, bang.text]).toEqual([200, 'OK']);
    seen = await computer(node, 'COMP-0');
    expect(Number(obj(seen.partitions.get('slappart0')!._parameter_dict).timestamp)).toBeGreaterThan(timestamp);
    expect(seen.partitions.get('slappart0')?._access_status).toBe('#error bang called: rerun');

    // test_destroyedComputerPartition: requested destroyed, the node confirms, the partition is free again.
    const destroy = obj(
      unmarshal(
        (await person.post('requestComputerPartition', requestFields('MyInstance', { state: 'destroyed' }))).text,
      ),
    );
    expect(destroy._requested_state).toBe('destroyed');
    expect((await computer(node, 'COMP-0')).partitions.get('slappart0')?._requested_state).toBe('destroyed');
    expect(
      (await node.post('destroyedComputerPartition', { computer_id: 'COMP-0', computer_partition_id: 'slappart0' }))
        .status,
    ).toBe(200);
    expect((await computer(node, 'COMP-0')).partitions.get('slappart0')).toMatchObject({
      _software_release_document: null,
      _need_modification: 0,
    });
  });

  it('test_request (408): a request with no partition free waits, and the master places it once slapos node format adds one', async () => {
    const m = await env.startMaster();
    const n = await addTestNode(m.admin, 'COMP-1', { partitions: 0, releases: [SR] });
    const node = new SlapClient(portOf(m), { token: n.token });
    const person = new SlapClient(portOf(m), { token: m.adminToken });
    expect((await node.post('loadComputerConfigurationFromXML', { xml: formatXml('COMP-1', 1) })).status).toBe(200);
    expect((await person.post('requestComputerPartition', requestFields('first'))).status).toBe(200);
    const waiting = await person.post('requestComputerPartition', requestFields('second'));
    expect(waiting.status).toBe(408);
    expect(waiting.text).toMatch(/waiting for a partition: no free partition/);
    // The tree exists all the same, as SlapOS's master creates it.
    expect((await m.admin.call('listInstanceTrees', {})).result_list.map((t) => t.title).sort()).toEqual([
      'first',
      'second',
    ]);
    expect((await node.post('loadComputerConfigurationFromXML', { xml: formatXml('COMP-1', 2) })).status).toBe(200);
    await expect
      .poll(async () => (await computer(node, 'COMP-1')).partitions.get('slappart1')?._requested_state, {
        timeout: 20_000,
      })
      .toBe('started');
    const placed = obj(unmarshal((await person.post('requestComputerPartition', requestFields('second'))).text));
    expect(placed.slap_computer_partition_id).toBe('slappart1');
  });

  it('test_request_withSlave, test_destroyedComputerPartition of a waiting one: shared instances answer from their host; a waiting one is destroyed at once', async () => {
    const m = await env.startMaster();
    const n = await addTestNode(m.admin, 'COMP-4', { partitions: 1, releases: [SR] });
    const node = new SlapClient(portOf(m), { token: n.token });
    const person = new SlapClient(portOf(m), { token: m.adminToken });
    // A shared instance with no host waits (408), is hosted once a host runs, and answers with its own tree.
    expect((await person.post('requestComputerPartition', requestFields('site', { shared: true }))).status).toBe(408);
    const host = obj(unmarshal((await person.post('requestComputerPartition', requestFields('frontend'))).text));
    const site = await person.post(
      'requestComputerPartition',
      requestFields('site', { shared: true, parameters: { domain: 'a.example' } }),
    );
    expect(site.status, site.text).toBe(200);
    expect(obj(unmarshal(site.text))).toMatchObject({
      instance_title: 'site',
      root_instance_title: 'site',
      slap_computer_id: 'COMP-4',
      slap_computer_partition_id: host.slap_computer_partition_id,
      _parameter_dict: { domain: 'a.example' },
      slave_instance_list: [],
    });
    const siteGuid = text(obj(unmarshal(site.text))._instance_guid);
    // The host publishes for it, naming it: only from the partition that hosts it.
    const hostPartition = text(host.slap_computer_partition_id);
    const publish = (partition: string) =>
      node.post('setComputerPartitionConnectionXml', {
        computer_id: 'COMP-4',
        computer_partition_id: partition,
        connection_xml: marshal({ url: 'https://a.example/' }),
        slave_reference: siteGuid,
      });
    expect((await publish(hostPartition)).status).toBe(200);
    const again = obj(
      unmarshal(
        (
          await person.post(
            'requestComputerPartition',
            requestFields('site', { shared: true, parameters: { domain: 'a.example' } }),
          )
        ).text,
      ),
    );
    expect(again._connection_dict).toEqual({ url: 'https://a.example/' });
    // Destroying it: answered, not a 404, though it is forgotten in the same call.
    const gone = await person.post(
      'requestComputerPartition',
      requestFields('site', { shared: true, state: 'destroyed' }),
    );
    expect(gone.status, gone.text).toBe(200);
    expect(obj(unmarshal(gone.text))._requested_state).toBe('destroyed');
    // A waiting one (no partition left) is destroyed at once too.
    expect((await person.post('requestComputerPartition', requestFields('later'))).status).toBe(408);
    const cancelled = await person.post('requestComputerPartition', requestFields('later', { state: 'destroyed' }));
    expect(cancelled.status, cancelled.text).toBe(200);
    expect((await m.admin.call('listInstanceTrees', {})).result_list.map((t) => t.title)).toEqual(['frontend']);
    // A field given twice is refused before anything runs.
    const twice = await httpCall(portOf(m), 'POST', '/startedComputerPartition', {
      authorization: `Bearer ${n.token}`,
      body: 'computer_id=COMP-4&computer_id=COMP-4&computer_partition_id=p0',
      contentType: 'application/x-www-form-urlencoded',
    });
    expect(twice.status).toBe(400);
    expect(twice.body.toString()).toContain('computer_id: given more than once');
  });

  it('refuses what is not there (404), malformed marshal XML (400) and callers without a token or certificate (401)', async () => {
    const m = await env.startMaster();
    const n = await addTestNode(m.admin, 'COMP-2', { partitions: 1, releases: [SR] });
    const node = new SlapClient(portOf(m), { token: n.token });
    const admin = new SlapClient(portOf(m), { token: m.adminToken });
    expect((await admin.get('getFullComputerInformation', { computer_id: 'COMP-nope' })).status).toBe(404);
    expect(
      (await node.post('startedComputerPartition', { computer_id: 'COMP-2', computer_partition_id: 'p0' })).status,
    ).toBe(404);
    expect(
      (await node.post('startedComputerPartition', { computer_id: 'COMP-2', computer_partition_id: 'p9' })).status,
    ).toBe(404);
    const bad = await admin.post('requestComputerPartition', {
      ...requestFields('x'),
      partition_parameter_xml:
        '<marshal><object module="os" class="system"><tuple/><dictionary id="i2"/></object></marshal>',
    });
    expect(bad.status).toBe(400);
    expect((await m.admin.call('listInstanceTrees', {})).result_list).toEqual([]);
    const anonymous = new SlapClient(portOf(m), {});
    expect((await anonymous.get('getFullComputerInformation', { computer_id: 'COMP-2' })).status).toBe(401);
    // A node reads its own computer only.
    const other = await addTestNode(m.admin, 'COMP-3', { partitions: 1 });
    expect(
      (
        await new SlapClient(portOf(m), { token: other.token }).get('getFullComputerInformation', {
          computer_id: 'COMP-2',
        })
      ).status,
    ).toBe(403);
  });
});

it('a SlapOS node and its instances authenticate with the certificates the platform issued them, no token', async () => {
  const m = await startTestMaster({ tls: true, requireNodeCertificates: false });
  try {
    const n = await addTestNode(m.admin, 'COMP-9', { partitions: 3, releases: [SR] });
    const nodeCert = await n.client.call('nodeCertificate', { computer_guid: 'COMP-9' });
    const ca = m.ca!;
    const node = new SlapClient(portOf(m), {
      tls: { ca, identity: { key: nodeCert.key, cert: nodeCert.certificate } },
    });
    const seen = await computer(node, 'COMP-9');
    expect([...seen.partitions.keys()].sort()).toEqual(['p0', 'p1', 'p2']);
    // A root requested by a person (JSON API), then its instance requests a child over slap with its own certificate.
    await m.admin.call('requestInstance', { title: 'root', software_release_uri: SR, software_type: 'default' });
    const root = [...(await computer(node, 'COMP-9')).partitions.values()].find(
      (p) => p._requested_state === 'started',
    )!;
    const partitionId = text(root._partition_id);
    const instanceCert = obj(
      await node.getObject('getComputerPartitionCertificate', {
        computer_id: 'COMP-9',
        computer_partition_id: partitionId,
      }),
    );
    const asInstance = new SlapClient(portOf(m), {
      tls: { ca, identity: { key: text(instanceCert.key), cert: text(instanceCert.certificate) } },
    });
    const child = await asInstance.post('requestComputerPartition', {
      ...requestFields('child', { parameters: { size: 's' } }),
      computer_id: 'COMP-9',
      computer_partition_id: partitionId,
    });
    expect(child.status, child.text).toBe(200);
    expect(obj(unmarshal(child.text))).toMatchObject({
      instance_title: 'child',
      root_instance_title: 'root',
      _parameter_dict: { size: 's' },
    });
    const tree = (await m.admin.call('listTreeStatus', { title: 'root' })).result_list[0]!;
    expect(tree.instance_list.map((i) => i.title).sort()).toEqual(['child', 'root']);
    // The instance speaks for its own partition only; the node reads its own computer only.
    const otherPartition = partitionId === 'p0' ? 'p1' : 'p0';
    expect(
      (
        await asInstance.post('startedComputerPartition', {
          computer_id: 'COMP-9',
          computer_partition_id: otherPartition,
        })
      ).status,
    ).toBe(403);
    expect(
      (await asInstance.post('startedComputerPartition', { computer_id: 'COMP-9', computer_partition_id: partitionId }))
        .status,
    ).toBe(200);
    expect((await asInstance.get('getFullComputerInformation', { computer_id: 'COMP-9' })).status).toBe(403);
    // Without a certificate (and no token): refused.
    const none = new SlapClient(portOf(m), { tls: { ca, identity: null } });
    expect((await none.get('getFullComputerInformation', { computer_id: 'COMP-9' })).status).toBe(401);

    // slapos request, as a person: with the certificate `hox user certificate` wrote.
    const { token: aliceToken } = await m.admin.call('createUser', { name: 'alice' });
    const home = mkdtempSync(join(tmpdir(), 'hox-slap-user-'));
    try {
      const caFile = join(home, 'ca.pem');
      writeFileSync(caFile, ca);
      const env = {
        PATH: process.env.PATH,
        HOME: home,
        HOX_MASTER_URL: m.url,
        HOX_TOKEN: aliceToken,
        HOX_CA_FILE: caFile,
      };
      const out = join(home, 'slapos');
      const run = await runHox(['user', 'certificate', '--out', out], env);
      expect(run.code, run.stderr).toBe(0);
      expect(run.stdout).toContain(`cert_file = ${join(out, 'certificate.pem')}`);
      expect(statSync(join(out, 'key.pem')).mode & 0o777).toBe(0o600);
      const alice = new SlapClient(portOf(m), {
        tls: {
          ca,
          identity: {
            key: readFileSync(join(out, 'key.pem'), 'utf8'),
            cert: readFileSync(join(out, 'certificate.pem'), 'utf8'),
          },
        },
      });
      const mine = await alice.post('requestComputerPartition', requestFields('alice-tree'));
      expect(mine.status, mine.text).toBe(200);
      expect(obj(unmarshal(mine.text))).toMatchObject({ instance_title: 'alice-tree', slap_computer_id: 'COMP-9' });
      // Hers: in her scope, not the admin's.
      const trees = (await m.admin.withToken(aliceToken).call('listTreeStatus', {})).result_list;
      expect(trees.map((t) => t.title)).toEqual(['alice-tree']);
      // A person does not read a node's computer.
      expect((await alice.get('getFullComputerInformation', { computer_id: 'COMP-9' })).status).toBe(403);
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  } finally {
    await m.stop();
  }
});
