/**
 * SlapOS's "instance XML": how a master stores instance parameters, SLA (filter) and connection parameters
 * (`instance_xml`, `sla_xml`, `connection_xml`), exactly as `slapos.util.dict2xml` / `xml2dict` write and read it:
 *
 *   <?xml version='1.0' encoding='utf-8'?>
 *   <instance>
 *     <parameter id="key">value</parameter>
 *   </instance>
 *
 * This is not the wire format of the slap API (that is marshal XML, `xml-marshaller.ts`): a master `loads` what a
 * client posts, then stores `dict2xml(...)` of it, and hands stored XML back through `xml2dict`.
 *
 * What slapos.util does, and so what this module does:
 * - keys sorted by code point; values written as Python's `str(value)`: `1` → `"1"`, `None` → `"None"`,
 *   `['one', 2]` → `"['one', 2]"` (see {@link pyStr}); so every value reads back as a string;
 * - an empty value is written `<parameter id="k"></parameter>` and reads back as `null` (Python's `None`);
 * - a repeated id reads back as the values joined by a space;
 * - `_` is an ordinary key: a release declaring `"serialisation": "json-in-xml"` gets one parameter `_` holding
 *   JSON text, stored and returned verbatim (current test_util.py; an older one expected xml2dict to decode it).
 */
import {
  compareCodePoints,
  elementChildren,
  escapeXml,
  isPyFloat,
  isPyList,
  isPyTuple,
  isSlapObject,
  pyFloatRepr,
  readXmlDocument,
  xmlRefusal,
  type PyDict,
  type PyValue,
  type ReadXmlOptions,
  type XmlNode,
} from './xml-marshaller.js';

/** Parameters as xml2dict returns them: strings, `null` for an empty `<parameter>`. */
export type InstanceParameters = Readonly<Record<string, string | null>>;

const DECLARATION = "<?xml version='1.0' encoding='utf-8'?>\n";

/**
 * `slapos.util.dict2xml`: the stored form of a parameter dict (what a client posted, after `loads`).
 * @throws TypeError for a value `str()` would spell with a memory address (a slap object), or a character XML
 *   cannot carry.
 * @example dict2xml({}) // "<?xml version='1.0' encoding='utf-8'?>\n<instance/>\n"
 */
export function dict2xml(dictionary: PyDict | Readonly<Record<string, PyValue>>): string {
  const entries = isMap(dictionary) ? [...dictionary.entries()] : Object.entries(dictionary);
  if (entries.length === 0) return `${DECLARATION}<instance/>\n`;
  entries.sort(([a], [b]) => compareCodePoints(a, b));
  // lxml's pretty print: one element per line, two spaces a level; the UTF-8 output keeps non-ASCII as is.
  const lines = entries.map(
    ([key, value]) =>
      `  <parameter id="${escapeXml(key, { attribute: true, ascii: false })}">` +
      `${escapeXml(pyStr(value), { attribute: false, ascii: false })}</parameter>\n`,
  );
  return `${DECLARATION}<instance>\n${lines.join('')}</instance>\n`;
}

/**
 * `slapos.util.xml2dict`: the parameters stored XML holds. The root element's name is not checked (as lxml's
 * `iterfind('parameter')` does not); only its `<parameter>` children count, by their text before any child node.
 * @throws HoxError `HOX_BAD_REQUEST` on malformed XML, a `<parameter>` without `id`, or an empty `<parameter>`
 *   repeating a non-empty one (Python fails there too: `str + None`).
 */
export function xml2dict(xml: string, options: { readonly field?: string } = {}): InstanceParameters {
  const readOptions: ReadXmlOptions = {
    what: 'instance XML',
    field: options.field,
    stripNamespaces: false,
    maxDepth: 64,
  };
  // A null-prototype record: parameter ids are user data ('__proto__' included).
  const result = Object.create(null) as Record<string, string | null>;
  if (xml === '') return result;
  const roots = elementChildren(readXmlDocument(xml, readOptions), 'the document', readOptions);
  const root = roots[0];
  if (roots.length !== 1 || root === undefined)
    throw xmlRefusal(readOptions, 'the document must have one root element');
  for (const parameter of root.children) {
    if (parameter.type !== 'element' || parameter.name !== 'parameter') continue;
    const key = parameter.attributes.get('id');
    if (key === undefined) throw xmlRefusal(readOptions, 'a <parameter> has no id');
    const text = leadingText(parameter.children);
    const previous = result[key] ?? null;
    if (previous !== null && text === null) {
      throw xmlRefusal(readOptions, `parameter '${key}' is repeated empty after a value`);
    }
    result[key] = previous === null ? text : `${previous} ${text ?? ''}`;
  }
  return result;
}

const isMap = (dictionary: PyDict | Readonly<Record<string, PyValue>>): dictionary is PyDict =>
  dictionary instanceof Map;

/** lxml's `element.text`: the text before the first child node, `null` when there is none. */
function leadingText(children: readonly XmlNode[]): string | null {
  let text = '';
  for (const child of children) {
    if (child.type !== 'text') break;
    text += child.text;
  }
  return text === '' ? null : text;
}

// ---------------------------------------------------------------------------------------------------------------
// Python's str() and repr()
// ---------------------------------------------------------------------------------------------------------------

/**
 * Python's `str(value)`: a string as is, anything else as its `repr`.
 * @throws TypeError for a slap object (Python would print its memory address, which nothing can reproduce).
 */
export function pyStr(value: PyValue): string {
  return typeof value === 'string' ? value : pyRepr(value);
}

/**
 * Python 3's `repr(value)`: `None`, `True`, `1`, `7.0`, `'it'`, `"it's"`, `['a', 2]`, `('a',)`, `{'k': 'v'}`
 * (dict items in insertion order, as Python keeps them), `[...]` for a container inside itself.
 * @throws TypeError for a slap object.
 */
export function pyRepr(value: PyValue, open: Set<object> = new Set()): string {
  if (value === null) return 'None';
  if (typeof value === 'boolean') return value ? 'True' : 'False';
  if (typeof value === 'bigint') return value.toString();
  if (typeof value === 'string') return reprString(value);
  if (isPyFloat(value)) return pyFloatRepr(value.value);
  if (isSlapObject(value)) throw new TypeError(`str() of a slap ${value.className} object cannot be reproduced`);
  // Python's Py_ReprEnter: a container met again inside itself is written `[...]`, `(...)` or `{...}`.
  if (open.has(value)) return isPyList(value) ? '[...]' : isPyTuple(value) ? '(...)' : '{...}';
  open.add(value);
  try {
    if (isPyTuple(value)) {
      const items = value.items.map((item) => pyRepr(item, open)).join(', ');
      return value.items.length === 1 ? `(${items},)` : `(${items})`;
    }
    if (isPyList(value)) return `[${value.map((item) => pyRepr(item, open)).join(', ')}]`;
    const items = [...value.entries()].map(([key, item]) => `${reprString(key)}: ${pyRepr(item, open)}`);
    return `{${items.join(', ')}}`;
  } finally {
    open.delete(value);
  }
}

/** Code points `str.isprintable()` rejects beyond ASCII: categories C* and Z* (space aside). */
const NOT_PRINTABLE = /[\p{Cc}\p{Cf}\p{Cs}\p{Co}\p{Cn}\p{Zl}\p{Zp}\p{Zs}]/u;

/** Python 3's `repr(str)`: single quotes unless the text has `'` and no `"`, escapes as `unicode_repr` writes. */
function reprString(text: string): string {
  const quote = text.includes("'") && !text.includes('"') ? '"' : "'";
  let out = quote;
  for (const char of text) {
    const codePoint = char.codePointAt(0) ?? 0;
    if (char === quote || char === '\\') out += `\\${char}`;
    else if (char === '\t') out += '\\t';
    else if (char === '\n') out += '\\n';
    else if (char === '\r') out += '\\r';
    else if (codePoint < 0x20 || codePoint === 0x7f) out += `\\x${hex(codePoint, 2)}`;
    else if (codePoint < 0x7f || !NOT_PRINTABLE.test(char)) out += char;
    else if (codePoint <= 0xff) out += `\\x${hex(codePoint, 2)}`;
    else if (codePoint <= 0xffff) out += `\\u${hex(codePoint, 4)}`;
    else out += `\\U${hex(codePoint, 8)}`;
  }
  return out + quote;
}

const hex = (codePoint: number, width: number): string => codePoint.toString(16).padStart(width, '0');
