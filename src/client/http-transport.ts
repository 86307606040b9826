/**
 * One HTTP exchange with the master: the only place the client touches the
 * network. It uses `node:http` rather than the global `fetch`: loading undici
 * and the web streams behind `fetch` costs a CLI call about half a bare Node
 * start (bench/cli-startup, docs/benchmarks.md), and every `hox` read command
 * pays it. Bodies are small JSON documents or artifacts held in memory, so a
 * buffered request and answer is all the client needs.
 *
 * Connections use Node's global agent (keep-alive, idle sockets unreferenced,
 * so a CLI call still ends as soon as its work is done). `https:` URLs go
 * through `node:https`, loaded only when one is used, verifying the server
 * against the given CA (the platform's roots) or the system's.
 *
 * @example
 * const answer = await exchange({ method: 'POST', url, headers, body: '{}', signal: AbortSignal.timeout(30_000) });
 */
import { request as httpRequest, type IncomingMessage, type RequestOptions } from 'node:http';
import type { PeerCertificate } from 'node:tls';

export interface HttpExchange {
  method: 'GET' | 'HEAD' | 'POST' | 'PUT';
  /** Absolute `http:` or `https:` URL. */
  url: string;
  headers: Record<string, string>;
  body?: string | Uint8Array;
  /** Ends the exchange (connect, send and the whole answer) when it aborts: timeouts and callers' cancels. */
  signal: AbortSignal;
  /** `https:` only: the PEM roots the server's certificate must chain to, instead of the system's. */
  ca?: string;
  /** `https:` only: the client's own certificate chain and key (PEM), for mutual TLS. */
  clientCertificate?: { cert: string; key: string };
  /**
   * `https:` only: accept any server certificate. Only to fetch public material that is checked afterwards
   * (the trust bundle, against a CA pin); never with a token.
   */
  unverified?: boolean;
}

export interface HttpAnswer {
  status: number;
  /** The whole body (empty for HEAD). */
  body: Buffer;
}

/**
 * The host name check, plus: a certificate the platform CA issued (O=HyperOpenX) must be a master's (OU=master).
 * The same CA issues hyper_db members' server certificates for addresses they choose; none of them may pass for
 * the master. A certificate from another CA (the operator's, `--tls-cert`) only needs the host name check.
 */
async function masterIdentityCheck(): Promise<(host: string, cert: PeerCertificate) => Error | undefined> {
  const { checkServerIdentity } = await import('node:tls');
  return (host, cert) => {
    const failed = checkServerIdentity(host, cert);
    if (failed !== undefined) return failed;
    const field = (value: string | string[] | undefined) => (Array.isArray(value) ? value.join(',') : value);
    if (field(cert.subject.O) === 'HyperOpenX' && field(cert.subject.OU) !== 'master')
      return Object.assign(new Error(`the certificate presented is a ${field(cert.subject.OU)}'s, not a master's`), {
        code: 'CERT_NOT_A_MASTER',
      });
    return undefined;
  };
}

/**
 * Sends one request and reads its whole answer. Rejects (with the underlying
 * error) when the master cannot be reached, the connection breaks before the
 * answer is complete, or the signal aborts; any HTTP status resolves.
 */
export async function exchange(message: HttpExchange): Promise<HttpAnswer> {
  const url = new URL(message.url);
  const send =
    url.protocol === 'http:'
      ? httpRequest
      : url.protocol === 'https:'
        ? (await import('node:https')).request
        : undefined;
  if (send === undefined) throw new TypeError(`unsupported protocol '${url.protocol}' in ${message.url}`);
  message.signal.throwIfAborted();
  const body =
    message.body === undefined
      ? undefined
      : typeof message.body === 'string'
        ? Buffer.from(message.body)
        : // A view on the caller's bytes, not a copy: artifacts can be large.
          Buffer.from(message.body.buffer, message.body.byteOffset, message.body.byteLength);
  if (message.unverified === true && message.headers.authorization !== undefined)
    throw new TypeError('an unverified exchange carries no token');
  const options: RequestOptions & {
    ca?: string;
    cert?: string;
    key?: string;
    rejectUnauthorized?: boolean;
    checkServerIdentity?: (host: string, cert: PeerCertificate) => Error | undefined;
  } = {
    method: message.method,
    headers: { ...message.headers, ...(body === undefined ? {} : { 'content-length': String(body.length) }) },
    signal: message.signal,
    ...(url.protocol === 'https:' && message.ca !== undefined
      ? { ca: message.ca, checkServerIdentity: await masterIdentityCheck() }
      : {}),
    ...(url.protocol === 'https:' && message.unverified === true ? { rejectUnauthorized: false } : {}),
    ...(url.protocol === 'https:' && message.clientCertificate !== undefined ? message.clientCertificate : {}),
  };
  const response = await new Promise<IncomingMessage>((resolve, reject) => {
    const req = send(url, options, resolve);
    req.on('error', reject);
    req.end(body);
  });
  // Throws when the connection breaks or the signal aborts before the end of the body.
  const chunks: Buffer[] = [];
  for await (const chunk of response) chunks.push(chunk as Buffer);
  return { status: response.statusCode ?? 0, body: Buffer.concat(chunks) };
}
