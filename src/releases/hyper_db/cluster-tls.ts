/**
 * TLS on a cluster's own channels: the keepers' peer API, the router's API (backups, WAL archive,
 * certificates, pause) and the WAL archive command. Every server presents a certificate of the cluster
 * CA for its address, and every client verifies it against that CA and that address (IP SAN): a token
 * never crosses the network in clear, and nobody can stand in for a member.
 *
 * Client certificates (mutual TLS): a member presents its own (the one its PostgreSQL serves, signed by
 * the cluster CA with clientAuth too) and the router its endpoint certificate. The keepers' peer API
 * requires one — only the cluster's own members and router ever call it. The router's API asks for one
 * and refuses a presented certificate that does not verify, but needs none: a member asks it for its
 * first certificate there, and another cluster's members restore from its backups with the backup token.
 *
 * A channel whose URL says `http:` stays plain: only a cluster rendered before TLS (its members'
 * parameters carry no `tls`) has such URLs, until its root renders again.
 */
import { createHash } from 'node:crypto';
import { request as httpRequest, type IncomingMessage, type RequestListener, type Server } from 'node:http';
import { Agent, createServer, request as httpsRequest, type Server as HttpsServer } from 'node:https';
import type { Readable } from 'node:stream';
import type { TLSSocket } from 'node:tls';

/** A key and its certificate (PEM). */
export interface TlsIdentity {
  key: string;
  cert: string;
}

/** What a client needs: the CA that signs the server's certificate, and its own certificate if it has one. */
export interface ChannelTls {
  ca: string;
  identity: TlsIdentity | null;
}

const MIN_VERSION = 'TLSv1.2';

/**
 * An HTTPS server presenting `identity`, asking clients for a certificate of `ca`: `required` refuses a
 * handshake without one; `optional` lets it through (the handler checks {@link clientCertificateProblem}).
 */
export function createTlsServer(
  tls: { ca: string; identity: TlsIdentity },
  clientCertificate: 'required' | 'optional',
  handler: RequestListener,
): Server {
  return createServer(
    {
      key: tls.identity.key,
      cert: tls.identity.cert,
      ca: tls.ca,
      requestCert: true,
      rejectUnauthorized: clientCertificate === 'required',
      minVersion: MIN_VERSION,
    },
    handler,
  );
}

/** A renewed certificate (or CA) for new connections; open ones keep theirs. */
export function renewTlsServer(server: Server, tls: { ca: string; identity: TlsIdentity }): void {
  (server as unknown as HttpsServer).setSecureContext({
    key: tls.identity.key,
    cert: tls.identity.cert,
    ca: tls.ca,
    minVersion: MIN_VERSION,
  });
}

/** Why a request's client certificate is refused: one was presented and does not verify. Null otherwise. */
export function clientCertificateProblem(req: IncomingMessage): string | null {
  const socket = req.socket as TLSSocket;
  if (typeof socket.getPeerCertificate !== 'function' || socket.authorized) return null;
  const presented = socket.getPeerCertificate();
  if (presented === null || Object.keys(presented).length === 0) return null;
  return `client certificate refused: ${String(socket.authorizationError ?? 'not verified')}`;
}

/** Whether the request came with a client certificate of the server's CA. */
export function hasVerifiedClientCertificate(req: IncomingMessage): boolean {
  return (req.socket as TLSSocket).authorized === true;
}

/**
 * One request; resolves with the response (its body not read), rejects on a network or TLS error, after
 * `timeoutMs` of silence on the socket, and when `signal` aborts (the response too is then destroyed).
 * `body` is sent as is (a stream is piped).
 */
export function tlsRequest(
  url: string | URL,
  options: {
    method: 'GET' | 'POST' | 'PUT';
    headers?: Record<string, string | number>;
    body?: string | Buffer | Readable;
    tls: ChannelTls | null;
    timeoutMs: number;
    /** The address connections leave from (a member's own, so network rules on addresses apply). */
    localAddress?: string;
    signal?: AbortSignal;
  },
): Promise<IncomingMessage> {
  const target = typeof url === 'string' ? new URL(url) : url;
  const secure = target.protocol === 'https:';
  if (secure && options.tls === null)
    return Promise.reject(new Error(`${target.origin}: no cluster CA to verify it against`));
  return new Promise((resolve, reject) => {
    const common = { method: options.method, headers: options.headers ?? {}, timeout: options.timeoutMs };
    const req = secure
      ? httpsRequest(target, { ...common, agent: agentFor(options.tls!, options.localAddress) })
      : httpRequest(target, { ...common, ...(options.localAddress ? { localAddress: options.localAddress } : {}) });
    req.on('response', resolve);
    req.on('error', reject);
    const timedOut = (): void => {
      req.destroy(new Error(`${target.origin}${target.pathname}: timed out`));
    };
    req.on('timeout', timedOut);
    options.signal?.addEventListener('abort', timedOut, { once: true });
    const body = options.body;
    if (body === undefined || typeof body === 'string' || Buffer.isBuffer(body)) req.end(body);
    else body.on('error', (error) => req.destroy(error)).pipe(req);
  });
}

/** The whole body of a response, bounded. */
export async function readBody(res: IncomingMessage, maxBytes = 16 * 1024 * 1024): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of res as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxBytes) {
      res.destroy();
      throw new Error(`answer larger than ${maxBytes} bytes`);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/**
 * A JSON call: POST with `body` (GET without); resolves with the parsed answer of a 2xx, rejects with
 * `PATH on HOST: HTTP N …` otherwise.
 */
export async function callJson<T>(
  url: string | URL,
  options: { token: string; body?: unknown; tls: ChannelTls | null; timeoutMs: number; localAddress?: string },
): Promise<T> {
  const target = typeof url === 'string' ? new URL(url) : url;
  const payload = options.body === undefined ? undefined : JSON.stringify(options.body);
  // The whole call, answer included: a socket's idle timeout alone lets a silent TLS handshake last longer.
  const deadline = AbortSignal.timeout(options.timeoutMs);
  const res = await tlsRequest(target, {
    method: payload === undefined ? 'GET' : 'POST',
    headers: {
      authorization: `Bearer ${options.token}`,
      'content-type': 'application/json',
      ...(payload === undefined ? {} : { 'content-length': Buffer.byteLength(payload) }),
    },
    body: payload,
    tls: options.tls,
    timeoutMs: options.timeoutMs,
    signal: deadline,
    ...(options.localAddress ? { localAddress: options.localAddress } : {}),
  });
  const text = (await readBody(res)).toString('utf8');
  const status = res.statusCode ?? 0;
  if (status < 200 || status >= 300)
    throw new HttpStatusError(status, `${target.pathname} on ${target.host}: HTTP ${status} ${text.slice(0, 200)}`);
  return JSON.parse(text) as T;
}

/** A non-2xx answer (its status kept for callers that tell a refusal from a network error). */
export class HttpStatusError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Kept-alive connections per (CA, client certificate, local address): a renewed certificate gets a new
 * agent, and the one it replaces is closed.
 */
const agents = new Map<string, { fingerprint: string; agent: Agent }>();

function agentFor(tls: ChannelTls, localAddress: string | undefined): Agent {
  const slot = `${localAddress ?? ''}|${digest(tls.ca)}`;
  const fingerprint = tls.identity === null ? '' : digest(tls.identity.cert);
  const kept = agents.get(slot);
  if (kept !== undefined && kept.fingerprint === fingerprint) return kept.agent;
  kept?.agent.destroy();
  const agent = new Agent({
    keepAlive: true,
    maxSockets: 8,
    ca: tls.ca,
    minVersion: MIN_VERSION,
    ...(tls.identity === null ? {} : { key: tls.identity.key, cert: tls.identity.cert }),
    ...(localAddress ? { localAddress } : {}),
  });
  agents.set(slot, { fingerprint, agent });
  return agent;
}

function digest(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 32);
}
