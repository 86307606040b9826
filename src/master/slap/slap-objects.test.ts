// slap-objects: the builders reproduce, through dumps, the bodies SlapOS's master answers with, copied verbatim
// from testSlapOSSlapTool.py (slapos.core master/bt5/slapos_slap_tool); tests are named after those tests.
import { describe, expect, it } from 'vitest';
import {
  buildAllocatedPartition,
  buildComputer,
  buildFreePartition,
  buildSoftwareInstance,
  calculateDictHash,
  type AllocatedInstance,
} from './slap-objects.js';
import { dumps, isPyDict, isPyList, isSlapObject, loads, pyTuple, type PyValue } from './xml-marshaller.js';

/** Fills testSlapOSSlapTool's `%(name)s` placeholders. */
function substitute(template: string, values: Readonly<Record<string, string>>): string {
  return template.replace(/%\((\w+)\)s/g, (_, name: string) => {
    const value = values[name];
    if (value === undefined) throw new Error(`no value for ${name}`);
    return value;
  });
}

/** The wire bytes behind a pretty-printed expected body (see xml-marshaller.test.ts for why this is exact). */
function wireForm(pretty: string): string {
  return pretty
    .replace(/^<\?xml[^>]*\?>\n/, '')
    .replace(/>\s+</g, '><')
    .trim()
    .replaceAll('<string/>', '<string></string>')
    .replace(/[^\x00-\x7f]/gu, (char) => `&#${char.codePointAt(0)};`);
}

function attribute(value: PyValue | undefined, key: string): PyValue | undefined {
  if (value !== undefined && isSlapObject(value)) return value.state.get(key);
  return value !== undefined && isPyDict(value) ? value.get(key) : undefined;
}

/** A list's item (undefined when `value` is no list or too short). */
function item(value: PyValue | undefined, index: number): PyValue | undefined {
  return value !== undefined && isPyList(value) ? value[index] : undefined;
}

const COMPUTE_NODE_ID = 'TESTCOMP-1';

/** One of `_makeComplexComputeNode`'s instances, as the test's placeholders describe it. */
function instance(partition: number, overrides: Partial<AllocatedInstance> = {}): AllocatedInstance {
  return {
    computerId: COMPUTE_NODE_ID,
    partitionId: `partition${partition}`,
    softwareReleaseUrl: `http://example.org/${partition}/software.cfg`,
    softwareType: `type${partition}`,
    instanceGuid: `SOFTINST-${partition}`,
    instanceTitle: `Instance ${partition}`,
    rootInstanceTitle: `Root ${partition}`,
    requestedState: 'started',
    parameters: { paramé: `param ${partition}` },
    connection: {},
    filter: { paramé: `sla ${partition}` },
    ipList: [['', `ip_address_${partition}`]],
    timestamp: 1700000000000000n + BigInt(partition),
    ...overrides,
  };
}

const SHARED_INSTANCE = {
  title: 'Shared 1',
  softwareType: 'shared-type',
  reference: 'SOFTINST-S1',
  timestamp: 1700000000000001n,
  parameters: { paramé: 'shared param' },
};

describe('buildComputer', () => {
  it('answers getFullComputerInformation as the master (TestSlapOSSlapToolComputeNodeAccess test_getFullComputerInformation)', () => {
    const expected = substitute(COMPUTE_NODE_ACCESS_FULL_COMPUTER_INFORMATION, {
      compute_node_id: COMPUTE_NODE_ID,
      destroy_requested_url: 'http://example.org/destroy/software.cfg',
      start_requested_url: 'http://example.org/start/software.cfg',
      ...placeholders(1),
      ...placeholders(2),
      ...placeholders(3),
      slave_1_param: 'shared param',
      slave_1_software_type: 'shared-type',
      slave_1_instance_guid: 'SOFTINST-S1',
      slave_1_title: 'Shared 1',
    });
    const access = (partition: number): { accessStatus: string } => ({
      accessStatus: `#error no data found for SOFTINST-${partition}`,
    });
    const computer = buildComputer({
      computerId: COMPUTE_NODE_ID,
      softwareReleases: [
        { url: 'http://example.org/destroy/software.cfg', requestedState: 'destroyed' },
        { url: 'http://example.org/start/software.cfg', requestedState: 'available' },
      ],
      partitions: [
        buildFreePartition({ computerId: COMPUTE_NODE_ID, partitionId: 'partition4' }),
        buildAllocatedPartition(instance(3, { requestedState: 'destroyed' }), access(3)),
        buildAllocatedPartition(instance(2, { requestedState: 'stopped' }), access(2)),
        buildAllocatedPartition(instance(1, { sharedInstances: [SHARED_INSTANCE] }), access(1)),
      ],
    });
    expect(dumps(computer)).toBe(wireForm(expected));
    // What slapgrid reads back through loads.
    const partitions = attribute(loads(dumps(computer)), '_computer_partition_list');
    const started = item(partitions, 3);
    expect(attribute(started, '_requested_state')).toBe('started');
    expect(attribute(attribute(started, '_software_release_document'), '_software_release')).toBe(
      'http://example.org/1/software.cfg',
    );
  });
});

describe('buildAllocatedPartition', () => {
  it('answers registerComputerPartition as the master (TestSlapOSSlapToolInstanceAccess test_registerComputerPartition_withSlave)', () => {
    const expected = substitute(REGISTER_COMPUTER_PARTITION_WITH_SLAVE, {
      compute_node_id: COMPUTE_NODE_ID,
      param: 'param 1',
      sla: 'sla 1',
      software_release_url: 'http://example.org/1/software.cfg',
      timestamp: '1700000000000001',
      instance_guid: 'SOFTINST-1',
      instance_title: 'Instance 1',
      root_instance_title: 'Root 1',
      software_type: 'type1',
      slave_1_param: 'shared param',
      slave_1_software_type: 'shared-type',
      slave_1_instance_guid: 'SOFTINST-S1',
      slave_1_title: 'Shared 1',
    });
    const partition = buildAllocatedPartition(instance(1, { sharedInstances: [SHARED_INSTANCE] }), { synced: true });
    expect(dumps(partition)).toBe(wireForm(expected));
  });

  it('takes the largest timestamp and lets master keys win over parameters, as the master does', () => {
    const partition = buildAllocatedPartition(
      instance(1, {
        parameters: { ip_list: 'user value', timestamp: '0', custom: 'kept' },
        sharedInstances: [{ ...SHARED_INSTANCE, timestamp: 1800000000000000n }],
      }),
    );
    const parameters = attribute(partition, '_parameter_dict');
    expect(attribute(parameters, 'timestamp')).toBe(1800000000000000n);
    expect(attribute(parameters, 'custom')).toBe('kept');
    expect(item(attribute(parameters, 'ip_list'), 0)).toEqual(pyTuple('', 'ip_address_1'));
    expect(attribute(partition, '_access_status')).toBeUndefined();
    expect(attribute(partition, '_synced')).toBeUndefined();
  });

  it('merges a shared instance connection with its connection-parameter-hash (SlapOSComputePartitionMixin)', () => {
    const connection = { url: 'http://x', k: null, é: "it's" };
    const partition = buildAllocatedPartition(
      instance(1, { sharedInstances: [{ ...SHARED_INSTANCE, connection, parameters: { url: 'requested' } }] }),
    );
    const sharedList = attribute(attribute(partition, '_parameter_dict'), 'slave_instance_list');
    const shared = item(sharedList, 0);
    expect(attribute(shared, 'connection-parameter-hash')).toBe(calculateDictHash(connection));
    expect(attribute(shared, 'url')).toBe('requested');
    expect(attribute(shared, 'k')).toBeNull();
  });
});

describe('calculateDictHash', () => {
  it("is slapos.util's sha256 of str(sorted(d.items()))", () => {
    // Python 3: hashlib.sha256(str(sorted(d.items())).encode()).hexdigest()
    expect(calculateDictHash({ url: 'http://x', k: null, é: "it's" })).toBe(
      '61ab8f3a15a3c4160cd11ca9e060e48f24486c1f4ac95b8293782e2056316e9c',
    );
    expect(calculateDictHash({})).toBe('4f53cda18c2baa0c0354bb5f9a3ecbe5ed12ab4d8e11ba873c2f11161202b945');
  });
});

describe('buildSoftwareInstance', () => {
  it('answers requestComputerPartition as the master (TestSlapOSSlapToolPersonAccess test_request_allocated_instance)', () => {
    const expected = substitute(REQUEST_ALLOCATED_INSTANCE, {
      instance_guid: 'SOFTINST-1',
      instance_title: 'Instance 1',
      root_instance_title: 'Root 1',
      state: 'started',
      url_string: 'http://example.org/1/software.cfg',
      type: 'type1',
      timestamp: '1700000000000001',
      compute_node_id: COMPUTE_NODE_ID,
      partition_id: 'partition1',
      ip: '10.0.0.1',
    });
    const requested = buildSoftwareInstance(instance(1, { parameters: {}, filter: {}, ipList: [['', '10.0.0.1']] }));
    expect(dumps(requested)).toBe(wireForm(expected));
  });
});

/** The placeholders of partition `n` in COMPUTE_NODE_ACCESS_FULL_COMPUTER_INFORMATION, as {@link instance} fills them. */
function placeholders(partition: number): Record<string, string> {
  const prefix = `partition_${partition}_`;
  return {
    [`${prefix}instance_guid`]: `SOFTINST-${partition}`,
    [`${prefix}instance_title`]: `Instance ${partition}`,
    [`${prefix}root_instance_title`]: `Root ${partition}`,
    [`${prefix}instance_software_type`]: `type${partition}`,
    [`${prefix}param`]: `param ${partition}`,
    [`${prefix}sla`]: `sla ${partition}`,
    [`${prefix}software_release_url`]: `http://example.org/${partition}/software.cfg`,
    [`${prefix}timestamp`]: String(1700000000000000n + BigInt(partition)),
  };
}

// testSlapOSSlapTool.py, TestSlapOSSlapToolComputeNodeAccess.test_getFullComputerInformation (verbatim).
const COMPUTE_NODE_ACCESS_FULL_COMPUTER_INFORMATION = `<?xml version='1.0' encoding='UTF-8'?>
<marshal>
  <object id="i2" module="slapos.slap.slap" class="Computer">
    <tuple>
      <string>%(compute_node_id)s</string>
    </tuple>
    <dictionary id="i3">
      <string>_computer_id</string>
      <string>%(compute_node_id)s</string>
      <string>_computer_partition_list</string>
      <list id="i4">
        <object id="i5" module="slapos.slap.slap" class="ComputerPartition">
          <tuple>
            <string>%(compute_node_id)s</string>
            <string>partition4</string>
            <none/>
          </tuple>
          <dictionary id="i6">
            <string>_computer_id</string>
            <string>%(compute_node_id)s</string>
            <string>_need_modification</string>
            <int>0</int>
            <string>_partition_id</string>
            <string>partition4</string>
            <string>_request_dict</string>
            <none/>
            <string>_requested_state</string>
            <string>destroyed</string>
            <string>_software_release_document</string>
            <none/>
          </dictionary>
        </object>
        <object id="i7" module="slapos.slap.slap" class="ComputerPartition">
          <tuple>
            <string>%(compute_node_id)s</string>
            <string>partition3</string>
            <none/>
          </tuple>
          <dictionary id="i8">
            <string>_access_status</string>
            <string>#error no data found for %(partition_3_instance_guid)s</string>
            <string>_computer_id</string>
            <string>%(compute_node_id)s</string>
            <string>_connection_dict</string>
            <dictionary id="i9"/>
            <string>_filter_dict</string>
            <dictionary id="i10">
              <string>paramé</string>
              <string>%(partition_3_sla)s</string>
            </dictionary>
            <string>_instance_guid</string>
            <string>%(partition_3_instance_guid)s</string>
            <string>_need_modification</string>
            <int>1</int>
            <string>_parameter_dict</string>
            <dictionary id="i11">
              <string>full_ip_list</string>
              <list id="i12"/>
              <string>instance_title</string>
              <string>%(partition_3_instance_title)s</string>
              <string>ip_list</string>
              <list id="i13">
                <tuple>
                  <string/>
                  <string>ip_address_3</string>
                </tuple>
              </list>
              <string>paramé</string>
              <string>%(partition_3_param)s</string>
              <string>root_instance_short_title</string>
              <string/>
              <string>root_instance_title</string>
              <string>%(partition_3_root_instance_title)s</string>
              <string>slap_computer_id</string>
              <string>%(compute_node_id)s</string>
              <string>slap_computer_partition_id</string>
              <string>partition3</string>
              <string>slap_software_release_url</string>
              <string>%(partition_3_software_release_url)s</string>
              <string>slap_software_type</string>
              <string>%(partition_3_instance_software_type)s</string>
              <string>slave_instance_list</string>
              <list id="i14"/>
              <string>timestamp</string>
              <int>%(partition_3_timestamp)s</int>
            </dictionary>
            <string>_partition_id</string>
            <string>partition3</string>
            <string>_request_dict</string>
            <none/>
            <string>_requested_state</string>
            <string>destroyed</string>
            <string>_software_release_document</string>
            <object id="i15" module="slapos.slap.slap" class="SoftwareRelease">
              <tuple>
                <string>%(partition_3_software_release_url)s</string>
                <string>%(compute_node_id)s</string>
              </tuple>
              <dictionary id="i16">
                <string>_computer_guid</string>
                <string>%(compute_node_id)s</string>
                <string>_software_instance_list</string>
                <list id="i17"/>
                <string>_software_release</string>
                <string>%(partition_3_software_release_url)s</string>
              </dictionary>
            </object>
          </dictionary>
        </object>
        <object id="i18" module="slapos.slap.slap" class="ComputerPartition">
          <tuple>
            <string>%(compute_node_id)s</string>
            <string>partition2</string>
            <none/>
          </tuple>
          <dictionary id="i19">
            <string>_access_status</string>
            <string>#error no data found for %(partition_2_instance_guid)s</string>
            <string>_computer_id</string>
            <string>%(compute_node_id)s</string>
            <string>_connection_dict</string>
            <dictionary id="i20"/>
            <string>_filter_dict</string>
            <dictionary id="i21">
              <string>paramé</string>
              <string>%(partition_2_sla)s</string>
            </dictionary>
            <string>_instance_guid</string>
            <string>%(partition_2_instance_guid)s</string>
            <string>_need_modification</string>
            <int>1</int>
            <string>_parameter_dict</string>
            <dictionary id="i22">
              <string>full_ip_list</string>
              <list id="i23"/>
              <string>instance_title</string>
              <string>%(partition_2_instance_title)s</string>
              <string>ip_list</string>
              <list id="i24">
                <tuple>
                  <string/>
                  <string>ip_address_2</string>
                </tuple>
              </list>
              <string>paramé</string>
              <string>%(partition_2_param)s</string>
              <string>root_instance_short_title</string>
              <string/>
              <string>root_instance_title</string>
              <string>%(partition_2_root_instance_title)s</string>
              <string>slap_computer_id</string>
              <string>%(compute_node_id)s</string>
              <string>slap_computer_partition_id</string>
              <string>partition2</string>
              <string>slap_software_release_url</string>
              <string>%(partition_2_software_release_url)s</string>
              <string>slap_software_type</string>
              <string>%(partition_2_instance_software_type)s</string>
              <string>slave_instance_list</string>
              <list id="i25"/>
              <string>timestamp</string>
              <int>%(partition_2_timestamp)s</int>
            </dictionary>
            <string>_partition_id</string>
            <string>partition2</string>
            <string>_request_dict</string>
            <none/>
            <string>_requested_state</string>
            <string>stopped</string>
            <string>_software_release_document</string>
            <object id="i26" module="slapos.slap.slap" class="SoftwareRelease">
              <tuple>
                <string>%(partition_2_software_release_url)s</string>
                <string>%(compute_node_id)s</string>
              </tuple>
              <dictionary id="i27">
                <string>_computer_guid</string>
                <string>%(compute_node_id)s</string>
                <string>_software_instance_list</string>
                <list id="i28"/>
                <string>_software_release</string>
                <string>%(partition_2_software_release_url)s</string>
              </dictionary>
            </object>
          </dictionary>
        </object>
        <object id="i29" module="slapos.slap.slap" class="ComputerPartition">
          <tuple>
            <string>%(compute_node_id)s</string>
            <string>partition1</string>
            <none/>
          </tuple>
          <dictionary id="i30">
            <string>_access_status</string>
            <string>#error no data found for %(partition_1_instance_guid)s</string>
            <string>_computer_id</string>
            <string>%(compute_node_id)s</string>
            <string>_connection_dict</string>
            <dictionary id="i31"/>
            <string>_filter_dict</string>
            <dictionary id="i32">
              <string>paramé</string>
              <string>%(partition_1_sla)s</string>
            </dictionary>
            <string>_instance_guid</string>
            <string>%(partition_1_instance_guid)s</string>
            <string>_need_modification</string>
            <int>1</int>
            <string>_parameter_dict</string>
            <dictionary id="i33">
              <string>full_ip_list</string>
              <list id="i34"/>
              <string>instance_title</string>
              <string>%(partition_1_instance_title)s</string>
              <string>ip_list</string>
              <list id="i35">
                <tuple>
                  <string/>
                  <string>ip_address_1</string>
                </tuple>
              </list>
              <string>paramé</string>
              <string>%(partition_1_param)s</string>
              <string>root_instance_short_title</string>
              <string/>
              <string>root_instance_title</string>
              <string>%(partition_1_root_instance_title)s</string>
              <string>slap_computer_id</string>
              <string>%(compute_node_id)s</string>
              <string>slap_computer_partition_id</string>
              <string>partition1</string>
              <string>slap_software_release_url</string>
              <string>%(partition_1_software_release_url)s</string>
              <string>slap_software_type</string>
              <string>%(partition_1_instance_software_type)s</string>
              <string>slave_instance_list</string>
              <list id="i36">
                <dictionary id="i37">
                  <string>paramé</string>
                  <string>%(slave_1_param)s</string>
                  <string>slap_software_type</string>
                  <string>%(slave_1_software_type)s</string>
                  <string>slave_reference</string>
                  <string>%(slave_1_instance_guid)s</string>
                  <string>slave_title</string>
                  <string>%(slave_1_title)s</string>
                  <string>timestamp</string>
                  <int>%(partition_1_timestamp)s</int>
                </dictionary>
              </list>
              <string>timestamp</string>
              <int>%(partition_1_timestamp)s</int>
            </dictionary>
            <string>_partition_id</string>
            <string>partition1</string>
            <string>_request_dict</string>
            <none/>
            <string>_requested_state</string>
            <string>started</string>
            <string>_software_release_document</string>
            <object id="i38" module="slapos.slap.slap" class="SoftwareRelease">
              <tuple>
                <string>%(partition_1_software_release_url)s</string>
                <string>%(compute_node_id)s</string>
              </tuple>
              <dictionary id="i39">
                <string>_computer_guid</string>
                <string>%(compute_node_id)s</string>
                <string>_software_instance_list</string>
                <list id="i40"/>
                <string>_software_release</string>
                <string>%(partition_1_software_release_url)s</string>
              </dictionary>
            </object>
          </dictionary>
        </object>
      </list>
      <string>_software_release_list</string>
      <list id="i41">
        <object id="i42" module="slapos.slap.slap" class="SoftwareRelease">
          <tuple>
            <string>%(destroy_requested_url)s</string>
            <string>%(compute_node_id)s</string>
          </tuple>
          <dictionary id="i43">
            <string>_computer_guid</string>
            <string>%(compute_node_id)s</string>
            <string>_requested_state</string>
            <string>destroyed</string>
            <string>_software_instance_list</string>
            <list id="i44"/>
            <string>_software_release</string>
            <string>%(destroy_requested_url)s</string>
          </dictionary>
        </object>
        <object id="i45" module="slapos.slap.slap" class="SoftwareRelease">
          <tuple>
            <string>%(start_requested_url)s</string>
            <string>%(compute_node_id)s</string>
          </tuple>
          <dictionary id="i46">
            <string>_computer_guid</string>
            <string>%(compute_node_id)s</string>
            <string>_requested_state</string>
            <string>available</string>
            <string>_software_instance_list</string>
            <list id="i47"/>
            <string>_software_release</string>
            <string>%(start_requested_url)s</string>
          </dictionary>
        </object>
      </list>
    </dictionary>
  </object>
</marshal>
`;

// testSlapOSSlapTool.py, TestSlapOSSlapToolInstanceAccess.test_registerComputerPartition_withSlave (verbatim).
const REGISTER_COMPUTER_PARTITION_WITH_SLAVE = `<?xml version='1.0' encoding='UTF-8'?>
<marshal>
  <object id="i2" module="slapos.slap.slap" class="ComputerPartition">
    <tuple>
      <string>%(compute_node_id)s</string>
      <string>partition1</string>
      <none/>
    </tuple>
    <dictionary id="i3">
      <string>_computer_id</string>
      <string>%(compute_node_id)s</string>
      <string>_connection_dict</string>
      <dictionary id="i4"/>
      <string>_filter_dict</string>
      <dictionary id="i5">
        <string>paramé</string>
        <string>%(sla)s</string>
      </dictionary>
      <string>_instance_guid</string>
      <string>%(instance_guid)s</string>
      <string>_need_modification</string>
      <int>1</int>
      <string>_parameter_dict</string>
      <dictionary id="i6">
        <string>full_ip_list</string>
        <list id="i7"/>
        <string>instance_title</string>
        <string>%(instance_title)s</string>
        <string>ip_list</string>
        <list id="i8">
          <tuple>
            <string/>
            <string>ip_address_1</string>
          </tuple>
        </list>
        <string>paramé</string>
        <string>%(param)s</string>
        <string>root_instance_short_title</string>
        <string/>
        <string>root_instance_title</string>
        <string>%(root_instance_title)s</string>
        <string>slap_computer_id</string>
        <string>%(compute_node_id)s</string>
        <string>slap_computer_partition_id</string>
        <string>partition1</string>
        <string>slap_software_release_url</string>
        <string>%(software_release_url)s</string>
        <string>slap_software_type</string>
        <string>%(software_type)s</string>
        <string>slave_instance_list</string>
        <list id="i9">
          <dictionary id="i10">
            <string>paramé</string>
            <string>%(slave_1_param)s</string>
            <string>slap_software_type</string>
            <string>%(slave_1_software_type)s</string>
            <string>slave_reference</string>
            <string>%(slave_1_instance_guid)s</string>
            <string>slave_title</string>
            <string>%(slave_1_title)s</string>
            <string>timestamp</string>
            <int>%(timestamp)s</int>
          </dictionary>
        </list>
        <string>timestamp</string>
        <int>%(timestamp)s</int>
      </dictionary>
      <string>_partition_id</string>
      <string>partition1</string>
      <string>_request_dict</string>
      <none/>
      <string>_requested_state</string>
      <string>started</string>
      <string>_software_release_document</string>
      <object id="i11" module="slapos.slap.slap" class="SoftwareRelease">
        <tuple>
          <string>%(software_release_url)s</string>
          <string>%(compute_node_id)s</string>
        </tuple>
        <dictionary id="i12">
          <string>_computer_guid</string>
          <string>%(compute_node_id)s</string>
          <string>_software_instance_list</string>
          <list id="i13"/>
          <string>_software_release</string>
          <string>%(software_release_url)s</string>
        </dictionary>
      </object>
      <string>_synced</string>
      <bool>1</bool>
    </dictionary>
  </object>
</marshal>
`;

// testSlapOSSlapTool.py, TestSlapOSSlapToolPersonAccess.test_request_allocated_instance (verbatim).
const REQUEST_ALLOCATED_INSTANCE = `<?xml version='1.0' encoding='UTF-8'?>
<marshal>
  <object id="i2" module="slapos.slap.slap" class="SoftwareInstance">
    <tuple/>
    <dictionary id="i3">
      <string>_connection_dict</string>
      <dictionary id="i4"/>
      <string>_filter_dict</string>
      <dictionary id="i5"/>
      <string>_instance_guid</string>
      <string>%(instance_guid)s</string>
      <string>_parameter_dict</string>
      <dictionary id="i6"/>
      <string>_requested_state</string>
      <string>%(state)s</string>
      <string>full_ip_list</string>
      <list id="i7"/>
      <string>instance_title</string>
      <string>%(instance_title)s</string>
      <string>ip_list</string>
      <list id="i8">
        <tuple>
          <string/>
          <string>%(ip)s</string>
        </tuple>
      </list>
      <string>root_instance_short_title</string>
      <string/>
      <string>root_instance_title</string>
      <string>%(root_instance_title)s</string>
      <string>slap_computer_id</string>
      <string>%(compute_node_id)s</string>
      <string>slap_computer_partition_id</string>
      <string>%(partition_id)s</string>
      <string>slap_software_release_url</string>
      <string>%(url_string)s</string>
      <string>slap_software_type</string>
      <string>%(type)s</string>
      <string>slave_instance_list</string>
      <list id="i9"/>
      <string>timestamp</string>
      <int>%(timestamp)s</int>
    </dictionary>
  </object>
</marshal>
`;
