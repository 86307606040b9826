/**
 * xml_marshaller, as SlapOS's "slap" XML protocol speaks it: `dumps` and `loads` of slapos.util (the safe
 * variants of xml_marshaller 1.0.x, Python 3), for the values slap.py and slapgrid exchange with a master.
 *
 * What this module upholds:
 * - `dumps` writes byte for byte what `slapos.util.dumps` writes (lxml's `etree.tostring`: ASCII, no
 *   declaration, no whitespace): container ids `i2`, `i3`, … in document order, dictionary keys sorted by
 *   code point, strings escaped twice (xml.sax.saxutils.escape, then lxml's own escaping), `<string></string>`
 *   for the empty string, `<reference>` where the same array, Map or object is met again.
 * - `loads` accepts what `dumps` (Python's or ours) writes, in any indentation, and refuses everything else with
 *   a `HOX_BAD_REQUEST` naming the element: unknown or unsupported elements (`set`, `complex`, `code`), objects
 *   of a class other than the four of `slapos.slap.slap`, DOCTYPEs (so no entity expansion), malformed XML.
 *   It never evaluates anything, nests at most {@link MAX_DEPTH} deep and expands references to at most
 *   {@link MAX_EXPANDED_VALUES} values; the caller bounds the input size.
 *
 * The XML reading both this module and `instance-xml.ts` use ({@link readXmlDocument}) and lxml's escaping
 * ({@link escapeXml}) live here too: the file list of this package was fixed, hence a file over 400 lines.
 */
import { XMLParser, XMLValidator, type EntityDecoderOptions } from 'fast-xml-parser';
import { HoxError } from '../../shared/errors.js';

// ---------------------------------------------------------------------------------------------------------------
// The model: Python values as TypeScript sees them
// ---------------------------------------------------------------------------------------------------------------

/** The module of every class the protocol may carry (slapos.util's `_ALLOWED_CLASS_SET`). */
export const SLAP_MODULE = 'slapos.slap.slap';
/** The only classes the protocol may carry. */
export const SLAP_CLASS_NAMES = ['Computer', 'ComputerPartition', 'SoftwareRelease', 'SoftwareInstance'] as const;
export type SlapClassName = (typeof SLAP_CLASS_NAMES)[number];

/** A Python `float` (a JS number alone would be ambiguous: Python `int`s are `bigint`s here). */
export interface PyFloat {
  readonly kind: 'float';
  readonly value: number;
}
/** A Python `tuple` (arrays are lists). */
export interface PyTuple {
  readonly kind: 'tuple';
  readonly items: readonly PyValue[];
}
/** A Python `list`. */
export type PyList = readonly PyValue[];
/** A Python `dict`; slap only ever uses `str` keys, and {@link loads} refuses others. */
export type PyDict = ReadonlyMap<string, PyValue>;
/**
 * An instance of one of the four slap classes, as xml_marshaller carries it: the constructor arguments (pickle's
 * `__getinitargs__`) and the state (`__dict__`), which Python sets attribute by attribute after construction.
 */
export interface SlapObject {
  readonly kind: 'object';
  readonly className: SlapClassName;
  readonly args: PyTuple;
  readonly state: PyDict;
}
/**
 * A Python value: `None` is `null`, `bool` is `boolean`, `int` (and Python 2's `long`) is `bigint`, `str` is
 * `string`, `list` is an array; `float`, `tuple` and slap objects are tagged with `kind`; `dict` is a Map.
 */
export type PyValue = null | boolean | bigint | string | PyFloat | PyTuple | PyList | PyDict | SlapObject;

export const pyFloat = (value: number): PyFloat => ({ kind: 'float', value });
export const pyTuple = (...items: PyValue[]): PyTuple => ({ kind: 'tuple', items });

/**
 * A dict from a record; `undefined` entries are left out (an attribute the object does not have).
 * @example pyDict({ certificate: pem, key: keyPem })
 */
export function pyDict(record: Readonly<Record<string, PyValue | undefined>>): Map<string, PyValue> {
  const dict = new Map<string, PyValue>();
  for (const [key, value] of Object.entries(record)) if (value !== undefined) dict.set(key, value);
  return dict;
}

/** The state attributes each class's `__getinitargs__` returns, as in slap.py (the newest XML-speaking one). */
const INIT_ARG_KEYS: Readonly<Record<SlapClassName, readonly string[]>> = {
  Computer: ['_computer_id'],
  // Older slap.py returned only the first two; a third `None` is what the master sends and every client accepts.
  ComputerPartition: ['_computer_id', '_partition_id', '_request_dict'],
  SoftwareRelease: ['_software_release', '_computer_guid'],
  SoftwareInstance: [],
};

/**
 * A slap object whose constructor arguments are taken from its state, as `__getinitargs__` does.
 * @throws TypeError when the state lacks an attribute the constructor arguments need.
 */
export function slapObject(className: SlapClassName, state: PyDict): SlapObject {
  const args = INIT_ARG_KEYS[className].map((key) => {
    const value = state.get(key);
    if (value === undefined)
      throw new TypeError(`slap ${className} needs '${key}' in its state (constructor argument)`);
    return value;
  });
  return { kind: 'object', className, args: pyTuple(...args), state };
}

export const isPyList = (value: PyValue): value is PyList => Array.isArray(value);
export const isPyDict = (value: PyValue): value is PyDict => value instanceof Map;
const hasKind = (value: PyValue, kind: string): boolean =>
  typeof value === 'object' && value !== null && !isPyList(value) && !isPyDict(value) && value.kind === kind;
export const isPyFloat = (value: PyValue): value is PyFloat => hasKind(value, 'float');
export const isPyTuple = (value: PyValue): value is PyTuple => hasKind(value, 'tuple');
export const isSlapObject = (value: PyValue): value is SlapObject => hasKind(value, 'object');

// ---------------------------------------------------------------------------------------------------------------
// Python's spellings
// ---------------------------------------------------------------------------------------------------------------

/**
 * Python's `repr(float)` (= `str(float)`): the shortest round-tripping digits, like JS, but in fixed notation
 * only while the decimal exponent is in [-4, 16), always with a fraction (`7.0`), and `1e-05`, `inf`, `nan`.
 */
export function pyFloatRepr(value: number): string {
  if (Number.isNaN(value)) return 'nan';
  if (!Number.isFinite(value)) return value > 0 ? 'inf' : '-inf';
  if (value === 0) return Object.is(value, -0) ? '-0.0' : '0.0';
  const sign = value < 0 ? '-' : '';
  // toExponential() without digits gives the shortest digits that round-trip, as Python's repr does.
  const [mantissa = '', exponent = ''] = Math.abs(value).toExponential().split('e');
  const digits = mantissa.replace('.', '');
  const pointAt = Number(exponent) + 1; // value = 0.<digits> × 10^pointAt, Python's `decpt`
  if (pointAt > -4 && pointAt <= 16) {
    if (pointAt <= 0) return `${sign}0.${'0'.repeat(-pointAt)}${digits}`;
    if (pointAt >= digits.length) return `${sign}${digits}${'0'.repeat(pointAt - digits.length)}.0`;
    return `${sign}${digits.slice(0, pointAt)}.${digits.slice(pointAt)}`;
  }
  const shownExponent = pointAt - 1;
  const head = digits.length === 1 ? digits : `${digits[0]}.${digits.slice(1)}`;
  return `${sign}${head}e${shownExponent < 0 ? '-' : '+'}${String(Math.abs(shownExponent)).padStart(2, '0')}`;
}

/** xml.sax.saxutils.escape: xml_marshaller's first escaping of every string. */
export const saxEscape = (text: string): string =>
  text.replaceAll('&', '&amp;').replaceAll('>', '&gt;').replaceAll('<', '&lt;');
/** xml.sax.saxutils.unescape: what xml_marshaller's loads applies after the XML parser's own unescaping. */
export const saxUnescape = (text: string): string =>
  text.replaceAll('&lt;', '<').replaceAll('&gt;', '>').replaceAll('&amp;', '&');

const isXmlChar = (codePoint: number): boolean =>
  codePoint === 0x9 ||
  codePoint === 0xa ||
  codePoint === 0xd ||
  (codePoint >= 0x20 && codePoint <= 0xd7ff) ||
  (codePoint >= 0xe000 && codePoint <= 0xfffd) ||
  (codePoint >= 0x10000 && codePoint <= 0x10ffff);

/** How lxml (libxml2) serialises: text or attribute value, to an ASCII or a UTF-8 document. */
export interface XmlEscapeMode {
  readonly attribute: boolean;
  /** ASCII output (`etree.tostring()` without encoding): every non-ASCII character as a decimal `&#N;`. */
  readonly ascii: boolean;
}

/**
 * Text or an attribute value as lxml serialises it: `& < >` and `\r` always escaped, `" \n \t` too in attributes,
 * quotes never in text.
 * A character XML cannot carry (lxml refuses them) is written as U+FFFD: one value must not make a whole node's
 * answer fail.
 */
export function escapeXml(text: string, mode: XmlEscapeMode): string {
  return text.replace(/[&<>"\t\n\r]|[^\x20-\x7f]/gu, (char) => {
    switch (char) {
      case '&':
        return '&amp;';
      case '<':
        return '&lt;';
      case '>':
        return '&gt;';
      case '\r':
        return '&#13;';
      case '"':
        return mode.attribute ? '&quot;' : char;
      case '\n':
        return mode.attribute ? '&#10;' : char;
      case '\t':
        return mode.attribute ? '&#9;' : char;
    }
    const codePoint = char.codePointAt(0) ?? 0;
    // lxml refuses these; a master cannot refuse to answer a node because one value holds one: U+FFFD stands in.
    if (!isXmlChar(codePoint)) return mode.ascii ? '&#65533;' : '\ufffd';
    return mode.ascii ? `&#${codePoint};` : char;
  });
}

/** Python's ordering of `str`s: by code point (JS's `<` compares UTF-16 units, which differs beyond U+FFFF). */
export function compareCodePoints(a: string, b: string): number {
  const left = a[Symbol.iterator]();
  const right = b[Symbol.iterator]();
  for (;;) {
    const l = left.next();
    const r = right.next();
    if (l.done === true || r.done === true) return (l.done === true ? 0 : 1) - (r.done === true ? 0 : 1);
    const difference = (l.value.codePointAt(0) ?? 0) - (r.value.codePointAt(0) ?? 0);
    if (difference !== 0) return difference;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// dumps
// ---------------------------------------------------------------------------------------------------------------

/** `BigInt(1e24)`: m_int writes `<int>` when `-1e24 < value < 1e24` (compared with that float), else `<long>`. */
const LONG_BOUND = 999999999999999983222784n;
const MARSHAL_TEXT: XmlEscapeMode = { attribute: false, ascii: true };

interface DumpState {
  readonly parts: string[];
  /** xml_marshaller's `kw['id']`: starts at 1 and is incremented before each use, so the first id is `i2`. */
  lastId: number;
  /** Containers already written, so that meeting one again writes a `<reference>` (Python's `id()` check). */
  readonly idOf: Map<object, number>;
}

/**
 * `slapos.util.dumps(value)`: the marshal XML, byte for byte (ASCII; send it as `text/xml; charset=utf-8`).
 * @throws TypeError on a string XML cannot carry, or an object of a class outside the four slap classes.
 * @example dumps(pyDict({ foo: 'bar', n: 1n })) // '<marshal><dictionary id="i2"><string>foo</string>…'
 */
export function dumps(value: PyValue): string {
  const state: DumpState = { parts: ['<marshal>'], lastId: 1, idOf: new Map() };
  writeValue(value, state);
  state.parts.push('</marshal>');
  return state.parts.join('');
}

function writeValue(value: PyValue, state: DumpState): void {
  const { parts } = state;
  if (value === null) parts.push('<none/>');
  else if (typeof value === 'boolean') parts.push(value ? '<bool>1</bool>' : '<bool>0</bool>');
  else if (typeof value === 'bigint') {
    const tag = -LONG_BOUND < value && value < LONG_BOUND ? 'int' : 'long';
    parts.push(`<${tag}>${value}</${tag}>`);
  } else if (typeof value === 'string') {
    // Escaped twice, as xml_marshaller does: saxutils.escape, then lxml. '' gives <string></string> (lxml keeps
    // the empty text node), which re-parsed and pretty-printed copies show as <string/>.
    parts.push(`<string>${escapeXml(saxEscape(value), MARSHAL_TEXT)}</string>`);
  } else if (isPyFloat(value)) parts.push(`<float>${pyFloatRepr(value.value)}</float>`);
  else if (isPyTuple(value)) writeChildren('tuple', '', value.items, state);
  else writeContainer(value, state);
}

/** Lists, dicts and objects: the ones xml_marshaller numbers, and references when met again. */
function writeContainer(value: PyList | PyDict | SlapObject, state: DumpState): void {
  const seen = state.idOf.get(value);
  if (seen !== undefined) {
    state.parts.push(`<reference id="i${seen}"/>`);
    return;
  }
  const id = ++state.lastId;
  state.idOf.set(value, id);
  if (isPyList(value)) writeChildren('list', ` id="i${id}"`, value, state);
  else if (isPyDict(value)) writeChildren('dictionary', ` id="i${id}"`, sortedItems(value), state);
  else {
    if (!SLAP_CLASS_NAMES.includes(value.className)) {
      throw new TypeError(`Refusing to marshall ${SLAP_MODULE}.${String(value.className)}`);
    }
    state.parts.push(`<object id="i${id}" module="${SLAP_MODULE}" class="${value.className}">`);
    writeValue(value.args, state);
    writeValue(value.state, state);
    state.parts.push('</object>');
  }
}

function writeChildren(tag: string, attributes: string, children: readonly PyValue[], state: DumpState): void {
  if (children.length === 0) {
    state.parts.push(`<${tag}${attributes}/>`);
    return;
  }
  state.parts.push(`<${tag}${attributes}>`);
  for (const child of children) writeValue(child, state);
  state.parts.push(`</${tag}>`);
}

/** A dict's keys and values alternating, keys in Python's sorted order. */
function sortedItems(dict: PyDict): PyValue[] {
  const keys = [...dict.keys()].sort(compareCodePoints);
  return keys.flatMap((key) => [key, dict.get(key) ?? null]);
}

// ---------------------------------------------------------------------------------------------------------------
// Reading XML (shared with instance-xml.ts)
// ---------------------------------------------------------------------------------------------------------------

/** A node of a parsed document: elements, text (CDATA included), and the rest (comments, PIs, declarations). */
export type XmlNode =
  | {
      readonly type: 'element';
      readonly name: string;
      readonly attributes: ReadonlyMap<string, string>;
      readonly children: readonly XmlNode[];
    }
  | { readonly type: 'text'; readonly text: string }
  | { readonly type: 'other'; readonly name: string };
export type XmlElement = Extract<XmlNode, { type: 'element' }>;

export interface ReadXmlOptions {
  /** What the document is, for error messages (`marshal XML`, `instance XML`). */
  readonly what: string;
  /** Request field it came from, if any; named in the error. */
  readonly field?: string | undefined;
  /** Drop namespace prefixes (xml_marshaller matches local names; lxml's `iterfind` does not). */
  readonly stripNamespaces: boolean;
  /** Deepest element nesting the parser accepts, the root element being at depth 1. */
  readonly maxDepth: number;
}

/** Builds the `HOX_BAD_REQUEST` every refusal of an input document is. */
export function xmlRefusal(options: Pick<ReadXmlOptions, 'what' | 'field'>, reason: string, cause?: unknown): HoxError {
  const where = options.field === undefined ? options.what : `${options.what} in '${options.field}'`;
  return new HoxError('HOX_BAD_REQUEST', `${where}: ${reason}`, {
    ...(options.field === undefined ? {} : { field: options.field }),
    ...(cause === undefined ? {} : { cause }),
  });
}

/** XML's five entities and character references; anything else (DOCTYPE entities, HTML names) is refused. */
const XML_ENTITY_DECODER: EntityDecoderOptions = {
  setExternalEntities: () => undefined,
  addInputEntities: () => {
    throw new Error('a DOCTYPE is not accepted');
  },
  reset: () => undefined,
  setXmlVersion: () => undefined,
  decode: (text) => text.replace(/&([^;&]*);/g, (_, name: string) => decodeEntity(name)),
};
const NAMED_ENTITIES: ReadonlyMap<string, string> = new Map([
  ['amp', '&'],
  ['lt', '<'],
  ['gt', '>'],
  ['quot', '"'],
  ['apos', "'"],
]);

function decodeEntity(name: string): string {
  const named = NAMED_ENTITIES.get(name);
  if (named !== undefined) return named;
  const reference = /^#(?:x([0-9a-fA-F]+)|([0-9]+))$/.exec(name);
  const codePoint = reference === null ? NaN : parseInt(reference[1] ?? reference[2] ?? '', reference[1] ? 16 : 10);
  if (!isXmlChar(codePoint)) throw new Error(`unknown or invalid entity '&${name};'`);
  return String.fromCodePoint(codePoint);
}

/**
 * Parses and checks a whole document with fast-xml-parser (validator first: the parser alone is lenient).
 * @throws HoxError `HOX_BAD_REQUEST` when the document is not well-formed XML, holds a character XML forbids, a
 *   DOCTYPE, an unknown entity, or nests deeper than `maxDepth`.
 */
export function readXmlDocument(xml: string, options: ReadXmlOptions): readonly XmlNode[] {
  const forbidden = /[^\t\n\r\x20-\ud7ff\ue000-\ufffd\u{10000}-\u{10ffff}]/u.exec(xml);
  if (forbidden !== null) {
    const codePoint = (forbidden[0].codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, '0');
    throw xmlRefusal(options, `character U+${codePoint} at offset ${forbidden.index} is not allowed in XML`);
  }
  const validity = XMLValidator.validate(xml);
  if (validity !== true) {
    const { msg, line, col } = validity.err;
    throw xmlRefusal(options, `malformed XML (line ${line}, column ${col}): ${msg}`);
  }
  const parser = new XMLParser({
    preserveOrder: true,
    ignoreAttributes: false,
    attributeNamePrefix: '',
    parseTagValue: false,
    parseAttributeValue: false,
    trimValues: false,
    removeNSPrefix: options.stripNamespaces,
    commentPropName: '#comment',
    entityDecoder: XML_ENTITY_DECODER,
    // fast-xml-parser refuses to open a tag while more than maxNestedTags are open.
    maxNestedTags: options.maxDepth - 1,
  });
  let parsed: unknown;
  try {
    parsed = parser.parse(xml);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw xmlRefusal(options, `malformed XML: ${reason}`, error);
  }
  return toNodes(parsed);
}

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** fast-xml-parser's `preserveOrder` output (`[{tag: [...children], ':@': {attrs}}, {'#text': '…'}]`), typed. */
function toNodes(raw: unknown): XmlNode[] {
  if (!Array.isArray(raw)) throw new Error('fast-xml-parser returned an unexpected shape');
  return raw.map((entry): XmlNode => {
    if (!isRecord(entry)) throw new Error('fast-xml-parser returned an unexpected node');
    const name = Object.keys(entry).find((key) => key !== ':@') ?? '';
    const content = entry[name];
    if (name === '#text') return { type: 'text', text: String(content) };
    if (name === '#comment' || name.startsWith('?')) return { type: 'other', name };
    const attributes = new Map<string, string>();
    const rawAttributes = entry[':@'];
    if (isRecord(rawAttributes))
      for (const [key, value] of Object.entries(rawAttributes)) attributes.set(key, String(value));
    return { type: 'element', name, attributes, children: toNodes(content) };
  });
}

const isBlank = (node: XmlNode): boolean =>
  node.type === 'other' || (node.type === 'text' && /^[ \t\n\r]*$/.test(node.text));

/**
 * The element children of `nodes`, where only whitespace, comments and PIs may sit between them.
 * @throws HoxError when other text does.
 */
export function elementChildren(nodes: readonly XmlNode[], where: string, options: ReadXmlOptions): XmlElement[] {
  const elements: XmlElement[] = [];
  for (const node of nodes) {
    if (node.type === 'element') elements.push(node);
    else if (!isBlank(node)) throw xmlRefusal(options, `unexpected text in ${where}`);
  }
  return elements;
}

// ---------------------------------------------------------------------------------------------------------------
// loads
// ---------------------------------------------------------------------------------------------------------------

/** Deepest nesting of values `loads` accepts (`<marshal>` not counted). */
export const MAX_DEPTH = 64;
/** Most values a loaded document may stand for once its `<reference>`s are followed (no "billion laughs"). */
export const MAX_EXPANDED_VALUES = 4_000_000;

export interface LoadsOptions {
  /** The request field the XML came from (e.g. `partition_parameter_xml`), named in errors. */
  readonly field?: string;
}

interface LoadState {
  readonly options: ReadXmlOptions;
  /** Finished lists, dicts and objects by id, with how many values each stands for. */
  readonly byId: Map<string, { readonly value: PyValue; readonly size: number }>;
}

interface Loaded {
  readonly value: PyValue;
  /** Values this one stands for, references followed. */
  readonly size: number;
}

/**
 * `slapos.util.loads(xml)`: the value a marshal document holds. Decode the HTTP body as UTF-8 before, and bound
 * its size: this function bounds depth and reference expansion, not input length.
 * @throws HoxError `HOX_BAD_REQUEST` naming the element at fault.
 * @example loads('<marshal><string>started</string></marshal>') // 'started'
 */
export function loads(xml: string, options: LoadsOptions = {}): PyValue {
  const readOptions: ReadXmlOptions = {
    what: 'marshal XML',
    field: options.field,
    stripNamespaces: true,
    // <marshal>, MAX_DEPTH values, and one more level so that readValue refuses it with a clear message.
    maxDepth: MAX_DEPTH + 2,
  };
  const roots = elementChildren(readXmlDocument(xml, readOptions), 'the document', readOptions);
  const root = roots[0];
  if (roots.length !== 1 || root === undefined || root.name !== 'marshal') {
    throw xmlRefusal(readOptions, 'the document must be one <marshal> element');
  }
  const values = elementChildren(root.children, 'marshal', readOptions);
  const first = values[0];
  if (values.length !== 1 || first === undefined)
    throw xmlRefusal(readOptions, '<marshal> must hold exactly one value');
  return readValue(first, `marshal/${first.name}`, 1, { options: readOptions, byId: new Map() }).value;
}

/** `path` names the element in errors: `marshal/dictionary/list[4]` is the 4th value of the dictionary. */
function readValue(element: XmlElement, path: string, depth: number, state: LoadState): Loaded {
  if (depth > MAX_DEPTH) throw xmlRefusal(state.options, `values nest deeper than ${MAX_DEPTH} at ${path}`);
  switch (element.name) {
    case 'none':
      return { value: null, size: 1 };
    case 'bool':
      return { value: parseInteger(scalarText(element, path, state), path, state) !== 0n, size: 1 };
    case 'int':
    case 'long':
      return { value: parseInteger(scalarText(element, path, state), path, state), size: 1 };
    case 'float':
      return { value: pyFloat(parseFloatText(scalarText(element, path, state), path, state)), size: 1 };
    case 'string':
    case 'unicode': {
      // xml_marshaller's BBB alias
      const text = saxUnescape(scalarText(element, path, state));
      // A string weighs its length: a <reference> repeating a long one must not multiply it past the bound.
      return { value: text, size: 1 + text.length };
    }
    case 'tuple': {
      const items = readItems(element, path, depth, state);
      return { value: pyTuple(...items.map((item) => item.value)), size: totalSize(items, path, state) };
    }
    case 'list':
    case 'dictionary':
    case 'object':
      return register(element, path, readContainer(element, path, depth, state), state);
    case 'reference':
      return followReference(element, path, state);
    case 'set':
    case 'complex':
    case 'code':
      throw xmlRefusal(state.options, `<${element.name}> is not part of the slap protocol (at ${path})`);
    default:
      throw xmlRefusal(state.options, `unknown element <${element.name}> at ${path}`);
  }
}

function readContainer(element: XmlElement, path: string, depth: number, state: LoadState): Loaded {
  const items = readItems(element, path, depth, state);
  const size = totalSize(items, path, state);
  if (element.name === 'list') return { value: items.map((item) => item.value), size };
  if (element.name === 'dictionary') return { value: readDict(items, path, state), size };
  return { value: readObject(element, items, path, state), size };
}

function readItems(element: XmlElement, path: string, depth: number, state: LoadState): Loaded[] {
  const children = elementChildren(element.children, path, state.options);
  return children.map((child, index) => readValue(child, `${path}/${child.name}[${index + 1}]`, depth + 1, state));
}

function totalSize(items: readonly Loaded[], path: string, state: LoadState): number {
  const size = items.reduce((sum, item) => sum + item.size, 1);
  if (size > MAX_EXPANDED_VALUES) {
    throw xmlRefusal(state.options, `stands for more than ${MAX_EXPANDED_VALUES} values at ${path}`);
  }
  return size;
}

/** Keys and values alternate; Python would accept any hashable key, slap only ever sends `str`s. */
function readDict(items: readonly Loaded[], path: string, state: LoadState): Map<string, PyValue> {
  if (items.length % 2 !== 0) throw xmlRefusal(state.options, `a dictionary needs key/value pairs at ${path}`);
  const dict = new Map<string, PyValue>();
  for (let index = 0; index < items.length; index += 2) {
    const key = items[index]?.value;
    if (typeof key !== 'string')
      throw xmlRefusal(state.options, `dictionary key ${index / 2 + 1} is not a string at ${path}`);
    dict.set(key, items[index + 1]?.value ?? null);
  }
  return dict;
}

/** slapos.util's SafeXMLUnmrshaller.find_class: one of the four classes, or a refusal; nothing is imported. */
function readObject(element: XmlElement, items: readonly Loaded[], path: string, state: LoadState): SlapObject {
  const module = element.attributes.get('module');
  const className = element.attributes.get('class');
  const allowed = SLAP_CLASS_NAMES.find((name) => name === className);
  if (module !== SLAP_MODULE || allowed === undefined) {
    throw xmlRefusal(state.options, `Refusing to unmarshall ${module ?? '?'}.${className ?? '?'} at ${path}`);
  }
  const [args, objectState] = items.map((item) => item.value);
  if (
    items.length !== 2 ||
    args === undefined ||
    !isPyTuple(args) ||
    objectState === undefined ||
    !isPyDict(objectState)
  ) {
    throw xmlRefusal(state.options, `an <object> holds a <tuple> of arguments then a <dictionary> of state at ${path}`);
  }
  return { kind: 'object', className: allowed, args, state: objectState };
}

/** Records a finished container under its id; references may only point at finished ones (no cycles). */
function register(element: XmlElement, path: string, loaded: Loaded, state: LoadState): Loaded {
  const id = element.attributes.get('id');
  if (id === undefined) return loaded;
  if (state.byId.has(id)) throw xmlRefusal(state.options, `id '${id}' is used twice (at ${path})`);
  state.byId.set(id, loaded);
  return loaded;
}

function followReference(element: XmlElement, path: string, state: LoadState): Loaded {
  const id = element.attributes.get('id') ?? '';
  const target = state.byId.get(id);
  if (target === undefined) throw xmlRefusal(state.options, `reference to unknown or unfinished id '${id}' at ${path}`);
  return target;
}

/** The text of a scalar element, which may hold no element. */
function scalarText(element: XmlElement, path: string, state: LoadState): string {
  let text = '';
  for (const node of element.children) {
    if (node.type === 'element') throw xmlRefusal(state.options, `<${element.name}> holds an element at ${path}`);
    if (node.type === 'text') text += node.text;
  }
  return text;
}

/** Python's `int(text)` for ASCII digits: surrounding whitespace, a sign, `_` between digits. */
function parseInteger(text: string, path: string, state: LoadState): bigint {
  const match = /^\s*([+-]?)([0-9](?:_?[0-9])*)\s*$/.exec(text);
  if (match === null) throw xmlRefusal(state.options, `'${text}' is not an integer at ${path}`);
  const magnitude = BigInt((match[2] ?? '').replaceAll('_', ''));
  return match[1] === '-' ? -magnitude : magnitude;
}

const DIGITS = '[0-9](?:_?[0-9])*';
const PY_FLOAT = new RegExp(
  `^[+-]?(?:(?:${DIGITS}(?:\\.(?:${DIGITS})?)?|\\.${DIGITS})(?:[eE][+-]?${DIGITS})?|inf|infinity|nan)$`,
  'i',
);

/** Python's `float(text)`: decimal notation, `inf`, `infinity`, `nan` (any case), `_` between digits. */
function parseFloatText(text: string, path: string, state: LoadState): number {
  const trimmed = text.trim();
  if (!PY_FLOAT.test(trimmed)) throw xmlRefusal(state.options, `'${text}' is not a float at ${path}`);
  const plain = trimmed.replaceAll('_', '').toLowerCase();
  const unsigned = plain.replace(/^[+-]/, '');
  const negative = plain.startsWith('-');
  if (unsigned === 'nan') return NaN;
  if (unsigned === 'inf' || unsigned === 'infinity') return negative ? -Infinity : Infinity;
  return Number(plain);
}
