// instance-xml: dict2xml / xml2dict against outputs copied verbatim from slapos.core's test_util.py and the
// master's testSlapOSSlapTool.py; tests are named after the test the strings come from.
import { describe, expect, it } from 'vitest';
import { HoxError } from '../../shared/errors.js';
import { dict2xml, pyRepr, pyStr, xml2dict } from './instance-xml.js';
import { loads, pyDict, pyFloat, pyTuple, slapObject, type PyValue } from './xml-marshaller.js';

// test_util.py (slapos.core), TestUtil.xml2dict0_xml.
const XML2DICT0_XML = `<?xml version='1.0' encoding='utf-8'?>
<instance>
  <parameter id="badstr">\u0141</parameter>
  <parameter id="badu">\u0141</parameter>
  <parameter id="emptystr"></parameter>
  <parameter id="int">1</parameter>
  <parameter id="intstr">1</parameter>
  <parameter id="key">str</parameter>
  <parameter id="list">['one', 2]</parameter>
  <parameter id="none">None</parameter>
  <parameter id="ukey">ustr</parameter>
</instance>
`;

// test_util.py (slapos.core), TestUtil.xml2dict1_xml: a json-in-xml release's single `_` parameter.
const XML2DICT1_XML = `<?xml version='1.0' encoding='utf-8'?>
<instance>
  <parameter id="_">{
    "param1": "value1",
    "param2_dict": {
        "param2_param1": "",
        "param2_param2_dict": {},
        "param2_param3_dict": {
            "param": "value"
        }
    }
}</parameter>
</instance>
`;
const XML2DICT1_DICT = {
  _: `{
    "param1": "value1",
    "param2_dict": {
        "param2_param1": "",
        "param2_param2_dict": {},
        "param2_param3_dict": {
            "param": "value"
        }
    }
}`,
};

describe('dict2xml', () => {
  it('writes str() of every value, keys sorted (test_util test_dict2xml0)', () => {
    // xml2dict0_indict; Python's bytes 'badstr' is a plain string here.
    const indict = {
      ukey: 'ustr',
      key: 'str',
      int: 1n,
      intstr: '1',
      emptystr: '',
      none: null,
      list: ['one', 2n],
      badstr: '\u0141',
      badu: '\u0141',
    };
    expect(dict2xml(indict)).toBe(XML2DICT0_XML);
  });

  it('keeps the JSON of `_` verbatim (test_util test_dict2xml1)', () => {
    expect(dict2xml(XML2DICT1_DICT)).toBe(XML2DICT1_XML);
  });

  it('writes the empty form (testSlapOSSlapTool test_request: instance_xml and sla_xml)', () => {
    expect(dict2xml({})).toBe("<?xml version='1.0' encoding='utf-8'?>\n<instance/>\n");
    expect(dict2xml(new Map())).toBe("<?xml version='1.0' encoding='utf-8'?>\n<instance/>\n");
  });

  it('stores what a partition publishes (testSlapOSSlapTool test_setConnectionXml)', () => {
    const connectionXml = `<marshal>
  <dictionary id="i2">
    <string>p1é</string>
    <string>v1é</string>
    <string>p2é</string>
    <string>v2é</string>
  </dictionary>
</marshal>`;
    const storedXml = `<?xml version='1.0' encoding='utf-8'?>
<instance>
  <parameter id="p1é">v1é</parameter>
  <parameter id="p2é">v2é</parameter>
</instance>
`;
    const connection = loads(connectionXml);
    expect(connection).toBeInstanceOf(Map);
    expect(dict2xml(connection as Map<string, string>)).toBe(storedXml);
  });

  it('escapes text and ids as lxml does', () => {
    const dict = { 'a"<&>\t\n': 'x < y & z > "w"\r\nend' };
    expect(dict2xml(dict)).toBe(
      "<?xml version='1.0' encoding='utf-8'?>\n<instance>\n" +
        '  <parameter id="a&quot;&lt;&amp;&gt;&#9;&#10;">x &lt; y &amp; z &gt; "w"&#13;\nend</parameter>\n</instance>\n',
    );
    expect(xml2dict(dict2xml(dict))).toEqual(dict);
  });

  it("stores the master's pull-backup default retention_delay 7.0 as Python does", () => {
    expect(dict2xml({ retention_delay: pyFloat(7) })).toContain('<parameter id="retention_delay">7.0</parameter>');
  });

  it('refuses what str() cannot reproduce; writes U+FFFD for what XML cannot carry', () => {
    const computer = slapObject('Computer', pyDict({ _computer_id: 'C' }));
    expect(() => dict2xml({ computer })).toThrow(TypeError);
    expect(dict2xml({ bad: '\u0002' })).toContain('<parameter id="bad">\ufffd</parameter>');
  });
});

describe('xml2dict', () => {
  it('reads strings back, null for an empty parameter (test_util test_xml2dict0)', () => {
    expect(xml2dict(XML2DICT0_XML)).toEqual({
      badstr: '\u0141',
      badu: '\u0141',
      emptystr: null,
      int: '1',
      intstr: '1',
      key: 'str',
      list: "['one', 2]",
      none: 'None',
      ukey: 'ustr',
    });
  });

  it('returns `_` as text (test_util test_xml2dict1)', () => {
    expect(xml2dict(XML2DICT1_XML)).toEqual(XML2DICT1_DICT);
  });

  it('reads the empty form and the empty string', () => {
    expect(xml2dict("<?xml version='1.0' encoding='utf-8'?>\n<instance/>\n")).toEqual({});
    expect(xml2dict('')).toEqual({});
  });

  it('joins repeated ids with a space and takes the text before any child, as slapos.util does', () => {
    const xml =
      '<instance><parameter id="a">1</parameter><other id="b">x</other><parameter id="a">2</parameter>' +
      '<parameter id="c">t<!-- c -->ail</parameter><parameter id="d"/><parameter id="d">v</parameter></instance>';
    expect(xml2dict(xml)).toEqual({ a: '1 2', c: 't', d: 'v' });
  });

  it('keeps ids such as __proto__ as plain keys', () => {
    const parameters = xml2dict('<instance><parameter id="__proto__">x</parameter></instance>');
    expect(Object.keys(parameters)).toEqual(['__proto__']);
    expect(parameters['__proto__']).toBe('x');
  });

  it('refuses malformed XML, DOCTYPEs, a parameter without id and an empty repeat', () => {
    const refused = (xml: string): string => {
      try {
        xml2dict(xml, { field: 'connection_xml' });
      } catch (error) {
        expect(error).toBeInstanceOf(HoxError);
        return (error as HoxError).message;
      }
      throw new Error('expected a refusal');
    };
    expect(refused('<instance><parameter id="a">x</instance>')).toMatch(
      /^instance XML in 'connection_xml': malformed XML/,
    );
    expect(refused('<!DOCTYPE i [<!ENTITY e "x">]><instance/>')).toMatch(/DOCTYPE/);
    expect(refused('<instance><parameter>x</parameter></instance>')).toMatch(/has no id/);
    expect(refused('<instance><parameter id="a">x</parameter><parameter id="a"/></instance>')).toMatch(
      /repeated empty/,
    );
  });
});

describe('pyStr and pyRepr (Python 3 str() and repr())', () => {
  it('spell values as Python does', () => {
    // Right-hand sides are Python 3's output for the same values.
    expect(pyStr(['one', 2n])).toBe("['one', 2]");
    expect(pyStr(pyTuple('a'))).toBe("('a',)");
    expect(pyStr(pyTuple())).toBe('()');
    expect(pyStr(pyDict({ a: null, b: [pyFloat(1), true] }))).toBe("{'a': None, 'b': [1.0, True]}");
    expect(pyStr('as is')).toBe('as is');
    expect(pyRepr("a'b")).toBe('"a\'b"');
    expect(pyRepr('a"b')).toBe("'a\"b'");
    expect(pyRepr('a\'"b')).toBe("'a\\'\"b'");
    expect(pyRepr('\\')).toBe("'\\\\'");
    expect(pyRepr('\t\n\r\x00\x7f\x80\xa0\xad')).toBe("'\\t\\n\\r\\x00\\x7f\\x80\\xa0\\xad'");
    expect(pyRepr('é€😀\u2028\ud800')).toBe("'é€😀\\u2028\\ud800'");
    expect(pyRepr('\u{e0001}')).toBe("'\\U000e0001'");
  });

  it('writes [...] for a list inside itself, as Python does', () => {
    const list: PyValue[] = ['a'];
    list.push(list);
    expect(pyRepr(list)).toBe("['a', [...]]");
  });
});
