// xml-marshaller: dumps and loads against bodies copied verbatim from SlapOS's sources — the master's
// testSlapOSSlapTool.py (slapos.core master/bt5/slapos_slap_tool), slapos.core's test_util.py, and
// xml_marshaller's README and test_xml_marshaller.py. Tests are named after the test the bodies come from.
import { describe, expect, it } from 'vitest';
import { HoxError } from '../../shared/errors.js';
import {
  MAX_DEPTH,
  dumps,
  isPyDict,
  isPyList,
  isSlapObject,
  loads,
  pyDict,
  pyFloat,
  pyFloatRepr,
  pyTuple,
  saxEscape,
  slapObject,
  type PyValue,
} from './xml-marshaller.js';

/** Fills testSlapOSSlapTool's `%(name)s` placeholders. */
function substitute(template: string, values: Readonly<Record<string, string>>): string {
  return template.replace(/%\((\w+)\)s/g, (_, name: string) => {
    const value = values[name];
    if (value === undefined) throw new Error(`no value for ${name}`);
    return value;
  });
}

/**
 * The wire bytes behind one of testSlapOSSlapTool's expected bodies: those are the body re-parsed and
 * pretty-printed by lxml (`etree.tostring(etree.fromstring(body), pretty_print=True, encoding="UTF-8",
 * xml_declaration=True)`), so undo exactly that: no declaration, no indentation, the empty text node lxml drops
 * on re-parsing (`<string></string>` shows as `<string/>`), and ASCII output (`é` → `&#233;`).
 */
function wireForm(pretty: string): string {
  return pretty
    .replace(/^<\?xml[^>]*\?>\n/, '')
    .replace(/>\s+</g, '><')
    .trim()
    .replaceAll('<string/>', '<string></string>')
    .replace(/[^\x00-\x7f]/gu, (char) => `&#${char.codePointAt(0)};`);
}

/** A slap object's attribute or a dict's item (undefined when `value` is neither or lacks it). */
function attribute(value: PyValue | undefined, key: string): PyValue | undefined {
  if (value !== undefined && isSlapObject(value)) return value.state.get(key);
  return value !== undefined && isPyDict(value) ? value.get(key) : undefined;
}

/** A list's item (undefined when `value` is no list or too short). */
function item(value: PyValue | undefined, index: number): PyValue | undefined {
  return value !== undefined && isPyList(value) ? value[index] : undefined;
}

function refusal(run: () => unknown): HoxError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(HoxError);
    const hoxError = error as HoxError;
    expect(hoxError.code).toBe('HOX_BAD_REQUEST');
    return hoxError;
  }
  throw new Error('expected a refusal');
}

describe('dumps', () => {
  it('writes the example of xml_marshaller README', () => {
    const value = ['item1', pyDict({ key1: 1n, key2: 'string' })];
    expect(dumps(value)).toBe(
      '<marshal><list id="i2"><string>item1</string><dictionary id="i3"><string>key1</string><int>1</int>' +
        '<string>key2</string><string>string</string></dictionary></list></marshal>',
    );
    expect(dumps('Hello World !')).toBe('<marshal><string>Hello World !</string></marshal>');
  });

  it('writes the request fields slap.py posts (testSlapOSSlapTool test_request / test_request_withSlave)', () => {
    expect(dumps(new Map())).toBe('<marshal><dictionary id="i2"/></marshal>');
    expect(dumps('started')).toBe('<marshal><string>started</string></marshal>');
    expect(dumps(false)).toBe('<marshal><bool>0</bool></marshal>');
    expect(dumps(true)).toBe('<marshal><bool>1</bool></marshal>');
  });

  it('writes an empty list as the master does (test_getSoftwareReleaseListFromSoftwareProduct_emptySoftwareProduct)', () => {
    expect(dumps([])).toBe(
      wireForm(`<?xml version='1.0' encoding='UTF-8'?>\n<marshal>\n  <list id="i2"/>\n</marshal>\n`),
    );
  });

  it('writes a status dict with an empty string (TestSlapOSSlapToolComputeNodeAccess test_not_accessed_getComputerStatus)', () => {
    const expected = substitute(
      `<?xml version='1.0' encoding='UTF-8'?>
<marshal>
  <dictionary id="i2">
    <string>created_at</string>
    <string>%(created_at)s</string>
    <string>no_data</string>
    <int>1</int>
    <string>portal_type</string>
    <string>Compute Node</string>
    <string>reference</string>
    <string>%(compute_node_id)s</string>
    <string>since</string>
    <string>%(since)s</string>
    <string>state</string>
    <string/>
    <string>text</string>
    <string>#error no data found for %(compute_node_id)s</string>
    <string>user</string>
    <string>SlapOS Master</string>
  </dictionary>
</marshal>
`,
      {
        created_at: 'Tue, 01 Jan 2030 00:00:00 GMT',
        since: 'Tue, 01 Jan 2030 00:00:00 GMT',
        compute_node_id: 'COMP-1',
      },
    );
    const status = pyDict({
      user: 'SlapOS Master',
      text: '#error no data found for COMP-1',
      state: '',
      since: 'Tue, 01 Jan 2030 00:00:00 GMT',
      reference: 'COMP-1',
      portal_type: 'Compute Node',
      no_data: 1n,
      created_at: 'Tue, 01 Jan 2030 00:00:00 GMT',
    });
    expect(dumps(status)).toBe(wireForm(expected));
    expect(dumps(status)).toContain('<string>state</string><string></string>');
  });

  it('writes a Computer known by id (TestSlapOSSlapToolPersonAccess test_requestComputeNode)', () => {
    const expected = `<?xml version='1.0' encoding='UTF-8'?>
<marshal>
  <object id="i2" module="slapos.slap.slap" class="Computer">
    <tuple>
      <string>%(compute_node_id)s</string>
    </tuple>
    <dictionary id="i3">
      <string>_computer_id</string>
      <string>%(compute_node_id)s</string>
    </dictionary>
  </object>
</marshal>
`;
    const computer = slapObject('Computer', pyDict({ _computer_id: 'live_comp_1' }));
    expect(dumps(computer)).toBe(wireForm(substitute(expected, { compute_node_id: 'live_comp_1' })));
  });

  it('escapes strings twice, as xml_marshaller then lxml do', () => {
    // m_string is tag_string(escape(value)); lxml escapes that text again.
    expect(dumps('here is a string & a <fake tag>')).toBe(
      '<marshal><string>here is a string &amp;amp; a &amp;lt;fake tag&amp;gt;</string></marshal>',
    );
    // The report's emulation of slapos.util.dumps (stdlib ElementTree, same algorithm).
    expect(dumps(pyDict({ url: 'http://h/?a=1&b=<2>', é: 'ü' }))).toBe(
      '<marshal><dictionary id="i2"><string>url</string><string>http://h/?a=1&amp;amp;b=&amp;lt;2&amp;gt;</string>' +
        '<string>&#233;</string><string>&#252;</string></dictionary></marshal>',
    );
    expect(dumps('quotes " \' stay, \r does not, 😀 is one reference')).toBe(
      '<marshal><string>quotes " \' stay, &#13; does not, &#128512; is one reference</string></marshal>',
    );
    expect(saxEscape('a&b<c>')).toBe('a&amp;b&lt;c&gt;');
  });

  it('sorts dict keys by code point, as Python sorts str', () => {
    const dict = pyDict({ b: null, _b: null, B: null, '\u{1F600}': null, '\uFF5E': null });
    expect(dumps(dict)).toBe(
      '<marshal><dictionary id="i2"><string>B</string><none/><string>_b</string><none/><string>b</string><none/>' +
        '<string>&#65374;</string><none/><string>&#128512;</string><none/></dictionary></marshal>',
    );
  });

  it('numbers containers in document order, the object before its state, tuples never', () => {
    const release = slapObject(
      'SoftwareRelease',
      pyDict({ _software_release: 'http://sr', _computer_guid: 'C', _software_instance_list: [] }),
    );
    expect(dumps([pyTuple('a', []), release, new Map()])).toBe(
      '<marshal><list id="i2"><tuple><string>a</string><list id="i3"/></tuple>' +
        '<object id="i4" module="slapos.slap.slap" class="SoftwareRelease"><tuple><string>http://sr</string>' +
        '<string>C</string></tuple><dictionary id="i5"><string>_computer_guid</string><string>C</string>' +
        '<string>_software_instance_list</string><list id="i6"/><string>_software_release</string>' +
        '<string>http://sr</string></dictionary></object><dictionary id="i7"/></list></marshal>',
    );
  });

  it('writes a container met twice as a reference, as Python does for the same object', () => {
    const shared = ['x'];
    expect(dumps([shared, shared])).toBe(
      '<marshal><list id="i2"><list id="i3"><string>x</string></list><reference id="i3"/></list></marshal>',
    );
  });

  it('writes ints as <int> below 1e24 and <long> from it, floats as Python spells them', () => {
    expect(dumps(999999999999999983222783n)).toBe('<marshal><int>999999999999999983222783</int></marshal>');
    expect(dumps(999999999999999983222784n)).toBe('<marshal><long>999999999999999983222784</long></marshal>');
    expect(dumps(1n << 123n)).toBe('<marshal><long>10633823966279326983230456482242756608</long></marshal>');
    expect(dumps(-5n)).toBe('<marshal><int>-5</int></marshal>');
    expect(dumps(pyFloat(7))).toBe('<marshal><float>7.0</float></marshal>');
    expect(dumps(pyFloat(19.72))).toBe('<marshal><float>19.72</float></marshal>');
  });

  it('spells floats as Python 3 repr does', () => {
    // Left: the float; right: Python 3's repr() of it.
    const cases: [number, string][] = [
      [7, '7.0'],
      [0.1, '0.1'],
      [1e16, '1e+16'],
      [1e15, '1000000000000000.0'],
      [12345678901234567, '1.2345678901234568e+16'],
      [0.0001, '0.0001'],
      [0.00001, '1e-05'],
      [1.5e-7, '1.5e-07'],
      [-0, '-0.0'],
      [0, '0.0'],
      [Infinity, 'inf'],
      [-Infinity, '-inf'],
      [NaN, 'nan'],
      [1e22, '1e+22'],
      [123.456, '123.456'],
      [5e-324, '5e-324'],
      [1.7976931348623157e308, '1.7976931348623157e+308'],
      [0.3 + 0.6, '0.8999999999999999'],
      [9007199254740993, '9007199254740992.0'],
      [1e100, '1e+100'],
    ];
    for (const [value, repr] of cases) expect(pyFloatRepr(value)).toBe(repr);
  });

  it('writes U+FFFD for what XML cannot carry (lxml refuses it; one value must not fail a whole answer)', () => {
    expect(dumps('a\u0001b')).toBe('<marshal><string>a&#65533;b</string></marshal>');
    expect(dumps('\ud800')).toBe('<marshal><string>&#65533;</string></marshal>');
  });
});

describe('loads', () => {
  it("reads what slapos.util's dumps writes (test_util test_dumps_loads)", () => {
    expect(loads(dumps(pyDict({ ok: [true] })))).toEqual(new Map([['ok', [true]]]));
  });

  it('reads the request fields (testSlapOSSlapTool test_request)', () => {
    expect(loads('<marshal><dictionary id="i2"/></marshal>')).toEqual(new Map());
    expect(loads('<marshal><string>started</string></marshal>')).toBe('started');
    expect(loads('<marshal><bool>0</bool></marshal>')).toBe(false);
    expect(loads('<marshal><bool>1</bool></marshal>')).toBe(true);
    expect(loads('<marshal><none/></marshal>')).toBeNull();
  });

  it('reads a list with a leading newline and spaces (test_updateInstanceSuccessorList, _one_child)', () => {
    const instanceListXml = `
<marshal>
  <list id="i2"><string>Instance0</string><string>Instance1</string></list>
</marshal>`;
    expect(loads(instanceListXml, { field: 'instance_reference_xml' })).toEqual(['Instance0', 'Instance1']);
    expect(loads('<marshal><list id="i2" /></marshal>')).toEqual([]);
  });

  it('reads a declaration and indentation (test_loadComputerConfigurationFromXML)', () => {
    const computeNodeXml = substitute(
      `<?xml version='1.0' encoding='UTF-8'?>
<marshal>
  <dictionary id="i2">
    <string>reference</string>
    <string>%(compute_node_reference)s</string>
  </dictionary>
</marshal>
`,
      { compute_node_reference: 'COMP-1' },
    );
    expect(loads(computeNodeXml)).toEqual(new Map([['reference', 'COMP-1']]));
  });

  it('reads raw non-ASCII text (test_setConnectionXml)', () => {
    const connectionXml = `<marshal>
  <dictionary id="i2">
    <string>p1é</string>
    <string>v1é</string>
    <string>p2é</string>
    <string>v2é</string>
  </dictionary>
</marshal>`;
    expect(loads(connectionXml)).toEqual(
      new Map([
        ['p1é', 'v1é'],
        ['p2é', 'v2é'],
      ]),
    );
  });

  it('reads back every value of test_string_serialisation that slap may carry (xml_marshaller)', () => {
    const dataList: PyValue[] = [
      null,
      1n,
      1n << 123n,
      pyFloat(19.72),
      'here is a string & a <fake tag>',
      pyTuple(1n, 2n, 3n),
      ['alpha', 'beta', 'gamma', [null, 1n, 1n << 123n, pyFloat(19.72), '& a <fake tag>']],
      pyDict({ key: 'value' }),
      'éàù^ç',
      true,
      false,
    ];
    for (const item of dataList) expect(loads(dumps(item))).toEqual(item);
  });

  it('reads a whole answer of the master and writes it back byte for byte (TestSlapOSSlapToolInstanceAccess test_getFullComputerInformation)', () => {
    const expected = substitute(INSTANCE_ACCESS_FULL_COMPUTER_INFORMATION, {
      compute_node_id: 'COMP-1',
      instance_guid: 'SOFTINST-1',
      instance_title: 'Instance é',
      root_instance_title: 'Root instance',
      software_release_url: 'http://example.org/software.cfg',
      software_type: 'default',
      param: 'value',
      sla: 'sla',
      timestamp: '1700000000000000',
      slave_1_param: 'shared',
      slave_1_software_type: 'custom',
      slave_1_instance_guid: 'SOFTINST-2',
      slave_1_title: 'Shared 1',
      access_status: '#error no data found for SOFTINST-1',
    });
    const computer = loads(expected);
    expect(dumps(computer)).toBe(wireForm(expected));
    const partitions = attribute(computer, '_computer_partition_list');
    const partition = item(partitions, 0);
    expect(partition).toMatchObject({
      kind: 'object',
      className: 'ComputerPartition',
      args: pyTuple('COMP-1', 'partition1', null),
    });
    expect(attribute(partition, '_instance_guid')).toBe('SOFTINST-1');
    expect(attribute(attribute(partition, '_parameter_dict'), 'timestamp')).toBe(1700000000000000n);
    expect(attribute(attribute(partition, '_filter_dict'), 'paramé')).toBe('sla');
  });

  it('reads a request answer (TestSlapOSSlapToolPersonAccess test_request_allocated_instance)', () => {
    const expected = substitute(REQUEST_ALLOCATED_INSTANCE, {
      instance_guid: 'SOFTINST-1',
      instance_title: 'my instance',
      root_instance_title: 'my instance',
      state: 'started',
      url_string: 'http://example.org/software.cfg',
      type: 'default',
      timestamp: '1700000000000000',
      compute_node_id: 'COMP-1',
      partition_id: 'partition1',
      ip: '10.0.0.1',
    });
    const instance = loads(expected);
    expect(instance).toMatchObject({ kind: 'object', className: 'SoftwareInstance', args: pyTuple() });
    expect(dumps(instance)).toBe(wireForm(expected));
  });

  it('reads namespaced documents (xml_marshaller dumps_ns) and references', () => {
    const namespaced =
      '<marshal:marshal xmlns:marshal="http://www.erp5.org/namespaces/marshaller">' +
      '<marshal:string>Hello World !</marshal:string></marshal:marshal>';
    expect(loads(namespaced)).toBe('Hello World !');
    const value = loads(
      '<marshal><list id="i2"><list id="i3"><string>x</string></list><reference id="i3"/></list></marshal>',
    );
    expect(value).toEqual([['x'], ['x']]);
    const [first, second] = value as PyValue[][];
    expect(first).toBe(second);
  });

  it('reads ints, longs, floats and unicode as Python does', () => {
    expect(loads('<marshal><long>10633823966279326983230456482242756608</long></marshal>')).toBe(1n << 123n);
    expect(loads('<marshal><int> -1_000 </int></marshal>')).toBe(-1000n);
    expect(loads('<marshal><float>1e-05</float></marshal>')).toEqual(pyFloat(0.00001));
    expect(loads('<marshal><float>-inf</float></marshal>')).toEqual(pyFloat(-Infinity));
    expect(loads('<marshal><bool>2</bool></marshal>')).toBe(true);
    expect(loads('<marshal><unicode>a&amp;amp;b</unicode></marshal>')).toBe('a&b');
    expect(loads('<marshal><string><![CDATA[a&amp;b]]></string></marshal>')).toBe('a&b');
    expect(loads('<marshal><string>&#233;&#x1F600;</string></marshal>')).toBe('é😀');
  });

  it('refuses an object of another class (test_util test_dumps_loads)', () => {
    const nasty =
      '<marshal><object id="i2" module="nasty" class="klass"><tuple></tuple><dictionary id="i3"/></object></marshal>';
    expect(refusal(() => loads(nasty)).message).toMatch(/Refusing to unmarshall nasty\.klass/);
    const otherClass =
      '<marshal><object id="i2" module="slapos.slap.slap" class="OpenOrder"><tuple/><dictionary id="i3"/></object></marshal>';
    expect(refusal(() => loads(otherClass)).message).toMatch(/slapos\.slap\.slap\.OpenOrder/);
  });

  it('refuses what slap never sends, naming the element and the field', () => {
    const error = refusal(() =>
      loads('<marshal><dictionary id="i2"><string>k</string><foo/></dictionary></marshal>', { field: 'filter_xml' }),
    );
    expect(error.message).toBe("marshal XML in 'filter_xml': unknown element <foo> at marshal/dictionary/foo[2]");
    expect(error.field).toBe('filter_xml');
    expect(refusal(() => loads('<marshal><set id="i2"/></marshal>')).message).toMatch(/<set> is not part/);
    expect(refusal(() => loads('<marshal><complex>1.0 5.0</complex></marshal>')).message).toMatch(/<complex>/);
    expect(refusal(() => loads('<marshal><code>YQ==</code></marshal>')).message).toMatch(/<code>/);
    expect(
      refusal(() => loads('<marshal><dictionary id="i2"><int>1</int><int>2</int></dictionary></marshal>')).message,
    ).toMatch(/key 1 is not a string/);
    expect(
      refusal(() => loads('<marshal><dictionary id="i2"><string>k</string></dictionary></marshal>')).message,
    ).toMatch(/pairs/);
    expect(refusal(() => loads('<marshal><list id="i2"><reference id="i2"/></list></marshal>')).message).toMatch(
      /unfinished/,
    );
    expect(refusal(() => loads('<marshal><list id="i2"/><list id="i2"/></marshal>')).message).toMatch(
      /exactly one value/,
    );
    expect(refusal(() => loads('<marshal><list id="i2"><list id="i2"/></list></marshal>')).message).toMatch(
      /used twice/,
    );
    expect(refusal(() => loads('<marshal><int>0x10</int></marshal>')).message).toMatch(/not an integer/);
    expect(refusal(() => loads('<marshal><float>1.2.3</float></marshal>')).message).toMatch(/not a float/);
    expect(refusal(() => loads('<marshal><string>a<none/></string></marshal>')).message).toMatch(/holds an element/);
    expect(refusal(() => loads('<marshal>text<none/></marshal>')).message).toMatch(/unexpected text/);
    expect(refusal(() => loads('<string>bare</string>')).message).toMatch(/one <marshal> element/);
    expect(refusal(() => loads('<marshal><marshal><none/></marshal></marshal>')).message).toMatch(
      /unknown element <marshal>/,
    );
    const object =
      '<marshal><object id="i2" module="slapos.slap.slap" class="Computer"><dictionary id="i3"/></object></marshal>';
    expect(refusal(() => loads(object)).message).toMatch(/<tuple> of arguments then a <dictionary>/);
  });

  it('refuses malformed XML, DOCTYPEs and unknown entities', () => {
    expect(refusal(() => loads('<marshal><string>x</marshal>')).message).toMatch(/malformed XML/);
    expect(refusal(() => loads('<marshal><string>a & b</string></marshal>')).message).toMatch(/malformed XML/);
    expect(refusal(() => loads('')).message).toMatch(/malformed XML|one <marshal>/);
    const laughs = '<!DOCTYPE m [<!ENTITY a "aaaaaaaaaa">]><marshal><string>&a;&a;</string></marshal>';
    expect(refusal(() => loads(laughs)).message).toMatch(/DOCTYPE/);
    expect(refusal(() => loads('<marshal><string>&nbsp;</string></marshal>')).message).toMatch(/&nbsp;/);
    expect(refusal(() => loads('<marshal><string>&#1;</string></marshal>')).message).toMatch(/&#1;/);
    expect(refusal(() => loads('<marshal><string>\u0000</string></marshal>')).message).toMatch(/U\+0000/);
  });

  it(`bounds nesting at ${MAX_DEPTH} and reference expansion`, () => {
    const nested = (depth: number): string => `<marshal>${'<list>'.repeat(depth)}${'</list>'.repeat(depth)}</marshal>`;
    expect(loads(nested(MAX_DEPTH))).toBeDefined();
    expect(refusal(() => loads(nested(MAX_DEPTH + 1))).message).toMatch(/deeper than 64/);
    expect(refusal(() => loads(nested(10_000))).message).toMatch(/malformed XML|deeper/);
    // Each list holds the previous one ten times (once, then nine references): 2·10^6 values from 2 kB.
    let laughs = '<list id="i0"><string>lol</string></list>';
    for (let level = 1; level <= 6; level += 1) {
      laughs = `<list id="i${level}">${laughs}${`<reference id="i${level - 1}"/>`.repeat(9)}</list>`;
    }
    expect(refusal(() => loads(`<marshal>${laughs}</marshal>`)).message).toMatch(/more than 4000000 values/);
    // A long string repeated by reference weighs its length each time: 100 kB × 100 is refused.
    const long = `<list id="i2"><string>${'x'.repeat(100_000)}</string></list>`;
    const repeated = `<marshal><list id="i1">${long}${'<reference id="i2"/>'.repeat(40)}</list></marshal>`;
    expect(refusal(() => loads(repeated)).message).toMatch(/more than 4000000 values/);
  });
});

// testSlapOSSlapTool.py, TestSlapOSSlapToolInstanceAccess.test_getFullComputerInformation (verbatim).
const INSTANCE_ACCESS_FULL_COMPUTER_INFORMATION = `<?xml version='1.0' encoding='UTF-8'?>
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
            <string>partition1</string>
            <none/>
          </tuple>
          <dictionary id="i6">
            <string>_access_status</string>
            <string>%(access_status)s</string>
            <string>_computer_id</string>
            <string>%(compute_node_id)s</string>
            <string>_connection_dict</string>
            <dictionary id="i7"/>
            <string>_filter_dict</string>
            <dictionary id="i8">
              <string>paramé</string>
              <string>%(sla)s</string>
            </dictionary>
            <string>_instance_guid</string>
            <string>%(instance_guid)s</string>
            <string>_need_modification</string>
            <int>1</int>
            <string>_parameter_dict</string>
            <dictionary id="i9">
              <string>full_ip_list</string>
              <list id="i10"/>
              <string>instance_title</string>
              <string>%(instance_title)s</string>
              <string>ip_list</string>
              <list id="i11">
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
              <list id="i12">
                <dictionary id="i13">
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
            <object id="i14" module="slapos.slap.slap" class="SoftwareRelease">
              <tuple>
                <string>%(software_release_url)s</string>
                <string>%(compute_node_id)s</string>
              </tuple>
              <dictionary id="i15">
                <string>_computer_guid</string>
                <string>%(compute_node_id)s</string>
                <string>_software_instance_list</string>
                <list id="i16"/>
                <string>_software_release</string>
                <string>%(software_release_url)s</string>
              </dictionary>
            </object>
          </dictionary>
        </object>
      </list>
      <string>_software_release_list</string>
      <list id="i17"/>
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
