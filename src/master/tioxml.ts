/**
 * TioXML, the usage report a compute node sends (`slapos.post.v0.compute_node_usage`): checked against SlapOS's
 * TioFormat XSD (slapos.core's documentation of it) before it is stored, as SlapOS's master does, which refuses
 * anything else with `INVALIDATE_TIOXML`.
 *
 * The XSD, in words: a `journal` of one or more `transaction`s (attribute `type`), each the sequence title?,
 * start_date, stop_date, reference, currency, payment_mode, category*, arrow+ (attribute `type`; source?,
 * destination?), movement+ (resource, title?, reference?, quantity: float, price: float, VAT, category*).
 */
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { HoxError } from '../shared/errors.js';

/** One element of a sequence: its name, how many times it may come, and what it holds. */
interface Particle {
  name: string;
  min: number;
  max: number;
  /** Children (a complex type), or a text check (a simple type). */
  content?: Particle[];
  float?: true;
  /** A required attribute. */
  attribute?: string;
}

const text = (name: string, min = 1, max = 1): Particle => ({ name, min, max });
const MANY = Number.POSITIVE_INFINITY;

const MOVEMENT: Particle[] = [
  text('resource'),
  text('title', 0),
  text('reference', 0),
  { name: 'quantity', min: 1, max: 1, float: true },
  { name: 'price', min: 1, max: 1, float: true },
  text('VAT'),
  text('category', 0, MANY),
];
const TRANSACTION: Particle[] = [
  text('title', 0),
  text('start_date'),
  text('stop_date'),
  text('reference'),
  text('currency'),
  text('payment_mode'),
  text('category', 0, MANY),
  { name: 'arrow', min: 1, max: MANY, attribute: 'type', content: [text('source', 0), text('destination', 0)] },
  { name: 'movement', min: 1, max: MANY, content: MOVEMENT },
];
const JOURNAL: Particle = {
  name: 'journal',
  min: 1,
  max: 1,
  content: [{ name: 'transaction', min: 1, max: MANY, attribute: 'type', content: TRANSACTION }],
};

/** xs:float's lexical space. */
const FLOAT = /^\s*([+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?|[+-]?INF|NaN)\s*$/;

/** A parsed element in document order (fast-xml-parser's `preserveOrder` shape). */
type Ordered = Record<string, unknown> & { ':@'?: Record<string, string> };

const invalid = (reason: string): HoxError =>
  new HoxError('HOX_INVALID_TIOXML', `tioxml: ${reason}`, {
    field: 'tioxml',
    slaposTitle: 'The tioxml does not validate the xsd',
  });

const nameOf = (node: Ordered): string => Object.keys(node).find((k) => k !== ':@') ?? '';

/** Checks `children` (elements and text) against the sequence `particles` inside `where`. */
function checkSequence(children: Ordered[], particles: Particle[], where: string): void {
  const elements = children.filter((c) => !['#text', '#comment'].includes(nameOf(c)));
  if (children.some((c) => nameOf(c) === '#text' && String(c['#text']).trim() !== ''))
    throw invalid(`<${where}> holds text outside its elements`);
  let i = 0;
  for (const p of particles) {
    let count = 0;
    while (i < elements.length && nameOf(elements[i]!) === p.name && count < p.max) {
      checkElement(elements[i]!, p, where);
      count += 1;
      i += 1;
    }
    if (count < p.min)
      throw invalid(
        `<${where}> lacks <${p.name}>${i < elements.length ? ` (found <${nameOf(elements[i]!)}> instead)` : ''}`,
      );
  }
  if (i < elements.length) throw invalid(`<${where}> has an unexpected <${nameOf(elements[i]!)}>`);
}

function checkElement(node: Ordered, p: Particle, parent: string): void {
  const where = `${parent}/${p.name}`;
  if (p.attribute !== undefined && node[':@']?.[`@_${p.attribute}`] === undefined)
    throw invalid(`<${where}> lacks its ${p.attribute} attribute`);
  const children = (node[p.name] ?? []) as Ordered[];
  if (p.content !== undefined) return checkSequence(children, p.content, where);
  if (children.some((c) => !['#text', '#comment'].includes(nameOf(c)))) throw invalid(`<${where}> must hold text only`);
  const value = children
    .filter((c) => nameOf(c) === '#text')
    .map((c) => String(c['#text']))
    .join('');
  if (p.float === true && !FLOAT.test(value)) throw invalid(`<${where}> is not a number: '${value}'`);
}

/** Throws `HOX_INVALID_TIOXML` (SlapOS's `INVALIDATE_TIOXML`) unless `xml` is a TioXML journal. */
export function checkTioXml(xml: string): void {
  // No entity definitions to expand: TioXML has no DOCTYPE.
  if (/<!DOCTYPE/i.test(xml)) throw invalid('a DOCTYPE is not part of TioXML');
  const wellFormed = XMLValidator.validate(xml);
  if (wellFormed !== true) throw invalid(`not well-formed XML (line ${wellFormed.err.line}: ${wellFormed.err.msg})`);
  const parser = new XMLParser({
    preserveOrder: true,
    ignoreAttributes: false,
    parseTagValue: false,
    trimValues: false,
    processEntities: true,
    ignoreDeclaration: true,
    ignorePiTags: true,
    commentPropName: '#comment',
  });
  let parsed: Ordered[];
  try {
    parsed = parser.parse(xml) as Ordered[];
  } catch (error) {
    // Too deep, or entities expanding too far: the parser's own bounds, as refusals.
    throw invalid(error instanceof Error ? error.message : String(error));
  }
  const top = parsed.filter((n) => {
    const name = nameOf(n);
    return name !== '#comment' && !(name === '#text' && String(n['#text']).trim() === '');
  });
  if (top.length !== 1 || nameOf(top[0]!) !== 'journal')
    throw invalid(`the root element must be <journal>, not ${top.length === 1 ? `<${nameOf(top[0]!)}>` : 'absent'}`);
  checkElement(top[0]!, JOURNAL, '');
}
