/**
 * A client of the slap protocol written from the protocol itself (slap.py's calls, xml_marshaller's format), not
 * from the master's code: what a SlapOS node or `slapos request` sends, and a reader of what they get back. The
 * master's own marshaller is never used here, so the two check each other.
 */
import { XMLParser } from 'fast-xml-parser';
import { httpCall, type HttpAnswer } from './http-call.js';

/** A value as the Python client would hold it. Objects keep their class and attributes. */
export type Py =
  | null
  | boolean
  | number
  | string
  | Py[]
  | { [key: string]: Py }
  | { __class__: string; __args__: Py[]; [attribute: string]: Py };

export interface SlapAnswer {
  status: number;
  contentType: string;
  text: string;
}

/** A value read as text: a string as it is, anything else as JSON (for keys, ids, messages). */
export const text = (value: Py | undefined): string => (typeof value === 'string' ? value : JSON.stringify(value));

/** xml_marshaller's `dumps` for what the client sends: strings, bools, None and dicts of strings. */
export function marshal(value: null | boolean | string | Record<string, string>): string {
  const escape = (s: string) =>
    // Escaped twice, as xml_marshaller does: once by the marshaller, once by the XML writer.
    s
      .replace(/&/g, '&amp;')
      .replace(/</g, '&lt;')
      .replace(/>/g, '&gt;')
      .replace(/&/g, '&amp;')
      .replace(/</g, '&lt;')
      .replace(/>/g, '&gt;');
  const str = (s: string) => `<string>${escape(s)}</string>`;
  if (value === null) return '<marshal><none/></marshal>';
  if (typeof value === 'boolean') return `<marshal><bool>${value ? 1 : 0}</bool></marshal>`;
  if (typeof value === 'string') return `<marshal>${str(value)}</marshal>`;
  const items = Object.keys(value)
    .sort()
    .map((k) => `${str(k)}${str(value[k]!)}`)
    .join('');
  return items === ''
    ? '<marshal><dictionary id="i2"/></marshal>'
    : `<marshal><dictionary id="i2">${items}</dictionary></marshal>`;
}

type Node = Record<string, unknown> & { ':@'?: Record<string, string> };
const nameOf = (n: Node) => Object.keys(n).find((k) => k !== ':@')!;
const childrenOf = (n: Node) => ((n[nameOf(n)] as Node[] | undefined) ?? []).filter((c) => nameOf(c) !== '#text');
const textOf = (n: Node) =>
  ((n[nameOf(n)] as Node[] | undefined) ?? [])
    .filter((c) => nameOf(c) === '#text')
    .map((c) => String(c['#text']))
    .join('');
const unescape = (s: string) => s.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');

function read(n: Node): Py {
  const kind = nameOf(n);
  switch (kind) {
    case 'none':
      return null;
    case 'bool':
      return textOf(n) === '1';
    case 'int':
    case 'long':
    case 'float':
      return Number(textOf(n));
    case 'string':
    case 'unicode':
      return unescape(textOf(n));
    case 'tuple':
    case 'list':
      return childrenOf(n).map(read);
    case 'dictionary': {
      const c = childrenOf(n);
      const out: Record<string, Py> = {};
      for (let i = 0; i < c.length; i += 2) out[text(read(c[i]!))] = read(c[i + 1]!);
      return out;
    }
    case 'object': {
      const [args, state] = childrenOf(n);
      const attrs = n[':@'] ?? {};
      if (attrs['@_module'] !== 'slapos.slap.slap') throw new Error(`object of module ${attrs['@_module']}`);
      return {
        __class__: attrs['@_class'] ?? '',
        __args__: read(args!) as Py[],
        ...(read(state!) as Record<string, Py>),
      };
    }
    default:
      throw new Error(`unknown marshal element <${kind}>`);
  }
}

/** xml_marshaller's `loads`. */
export function unmarshal(xml: string): Py {
  const parser = new XMLParser({
    preserveOrder: true,
    ignoreAttributes: false,
    parseTagValue: false,
    trimValues: false,
    processEntities: true,
    // xml_marshaller writes ASCII: anything else comes as a character reference (`&#246;`).
    htmlEntities: true,
  });
  const top = (parser.parse(xml) as Node[]).filter((n) => nameOf(n) === 'marshal');
  if (top.length !== 1) throw new Error('not a marshal document');
  const values = childrenOf(top[0]!);
  if (values.length !== 1) throw new Error('<marshal> must hold one value');
  return read(values[0]!);
}

/** One master, as slap.py's ConnectionHelper reaches it: with a client certificate, or (tests) a bearer token. */
export class SlapClient {
  constructor(
    private readonly port: number,
    private readonly auth: { token?: string; tls?: { ca: string; identity: { key: string; cert: string } | null } },
  ) {}

  private async call(method: 'GET' | 'POST', path: string, body?: string): Promise<SlapAnswer> {
    const answer: HttpAnswer = await httpCall(this.port, method, path, {
      ...(this.auth.token === undefined ? {} : { authorization: `Bearer ${this.auth.token}` }),
      ...(this.auth.tls === undefined ? {} : { tls: this.auth.tls }),
      ...(body === undefined ? {} : { body, contentType: 'application/x-www-form-urlencoded' }),
    });
    return {
      status: answer.status,
      contentType: String(answer.headers['content-type'] ?? ''),
      text: answer.body.toString('utf8'),
    };
  }

  get(name: string, params: Record<string, string> = {}): Promise<SlapAnswer> {
    const query = new URLSearchParams(params).toString();
    return this.call('GET', `/${name}${query === '' ? '' : `?${query}`}`);
  }

  /** A form POST; `None` for an absent optional field, as slap.py sends it. */
  post(name: string, fields: Record<string, string | null>): Promise<SlapAnswer> {
    const form = new URLSearchParams();
    for (const [k, v] of Object.entries(fields)) form.append(k, v ?? 'None');
    return this.call('POST', `/${name}`, form.toString());
  }

  /** A GET whose answer must be a marshalled value. */
  async getObject(name: string, params: Record<string, string>): Promise<Py> {
    const a = await this.get(name, params);
    if (a.status !== 200) throw new Error(`${name}: HTTP ${a.status}: ${a.text}`);
    return unmarshal(a.text);
  }
}
