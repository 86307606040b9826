/**
 * One HTTP request as a test sends it to a server it started on 127.0.0.1: the path goes out exactly as
 * given (no normalisation, so `..` and `%2F` reach the server), and the answer comes back whole.
 */
import { request } from 'node:http';
import { request as httpsRequest } from 'node:https';

const HOST = '127.0.0.1';

export interface HttpAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/** `Authorization` header value for a bearer token. */
export const bearer = (token: string): string => `Bearer ${token}`;

/**
 * One request to 127.0.0.1:`port` (HTTPS when `tls` is given: the server verified against `tls.ca`, and
 * `tls.identity` presented as the client certificate); rejects on a network or TLS error (a server that
 * closes the connection without answering) and after 30 s without an answer.
 */
export function httpCall(
  port: number,
  method: string,
  path: string,
  options: {
    authorization?: string;
    body?: string | Buffer;
    contentType?: string;
    /** More request headers (`x-forwarded-proto`, …). */
    headers?: Record<string, string>;
    tls?: { ca: string; identity: { key: string; cert: string } | null };
  } = {},
): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = {};
    if (options.authorization !== undefined) headers['authorization'] = options.authorization;
    if (options.body !== undefined) headers['content-length'] = Buffer.byteLength(options.body);
    if (options.contentType !== undefined) headers['content-type'] = options.contentType;
    Object.assign(headers, options.headers ?? {});
    const common = { host: HOST, port, method, path, headers, agent: false as const, timeout: 30_000 };
    const tls = options.tls;
    const send = tls === undefined ? request : httpsRequest;
    const tlsOptions = tls === undefined ? {} : { ca: tls.ca, ...(tls.identity ?? {}) };
    const req = send({ ...common, ...tlsOptions }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${path}: timed out`)));
    req.on('error', reject);
    req.end(options.body);
  });
}

/**
 * `Authorization` headers that must not pass for `token`: none, empty, another token, one of the same
 * length, a prefix, the token without its scheme, Basic. (Trailing blanks are not among them: HTTP strips
 * them from header values before any server sees them.)
 */
export function badAuthorizations(token: string): (string | undefined)[] {
  const sameLength = token.slice(0, -1) + (token.endsWith('0') ? '1' : '0');
  return [
    undefined,
    '',
    'Bearer ',
    'Bearer wrong',
    bearer(sameLength),
    bearer(token.slice(0, -1)),
    token,
    `Basic ${Buffer.from(`hox:${token}`).toString('base64')}`,
  ];
}
