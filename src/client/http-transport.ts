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
import type { Agent as HttpsAgent } from 'node:https';
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
  /**
   * `https:` with `ca`: whom the server must be. `master` (the default): the host name, and a platform certificate
   * must be a master's. `site`: the host name only (a hyper_cdn edge's control API, whose certificate comes from the
   * sites CA, given as `ca`).
   */
  server?: 'master' | 'site';
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
    rejectUnauthorized?: boolean;
    checkServerIdentity?: (host: string, cert: PeerCertificate) => Error | undefined;
  } = {
    method: message.method,
    headers: { ...message.headers, ...(body === undefined ? {} : { 'content-length': String(body.length) }) },
    signal: message.signal,
    ...(url.protocol === 'https:' && message.ca !== undefined && message.server !== 'site'
      ? { checkServerIdentity: await masterIdentityCheck() }
      : {}),
    ...(url.protocol === 'https:' && message.unverified === true ? { rejectUnauthorized: false } : {}),
    ...(url.protocol === 'https:' && (message.ca !== undefined || message.clientCertificate !== undefined)
      ? { agent: await tlsAgent(message.ca, message.clientCertificate) }
      : {}),
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

/**
 * A kept-alive agent per TLS identity (the CA trusted, the certificate presented), with its secure context built
 * once: Node would otherwise parse the CA and the key again for every new connection (about 2 ms each), and a
 * pool of its own per identity means a connection made with one certificate never carries another's requests.
 * Idle sockets do not keep a CLI process alive (Node's agent unrefs them).
 */
const agents = new Map<string, HttpsAgent>();
const MAX_AGENTS = 1024;

async function tlsAgent(
  ca: string | undefined,
  clientCertificate: { cert: string; key: string } | undefined,
): Promise<HttpsAgent> {
  const [{ createHash }, { Agent }, { createSecureContext }] = await Promise.all([
    import('node:crypto'),
    import('node:https'),
    import('node:tls'),
  ]);
  const key = createHash('sha256')
    .update(`${ca ?? ''}\0${clientCertificate?.cert ?? ''}\0${clientCertificate?.key ?? ''}`)
    .digest('hex');
  const kept = agents.get(key);
  if (kept !== undefined) {
    // Most recently used last: the first is the one to drop when there are too many.
    agents.delete(key);
    agents.set(key, kept);
    return kept;
  }
  const agent = new Agent({
    keepAlive: true,
    secureContext: createSecureContext({ ...(ca === undefined ? {} : { ca }), ...(clientCertificate ?? {}) }),
  });
  agents.set(key, agent);
  if (agents.size > MAX_AGENTS) {
    const [oldest] = agents;
    if (oldest !== undefined) {
      agents.delete(oldest[0]);
      oldest[1].destroy();
    }
  }
  return agent;
}
