/**
 * The keeper's API, spoken between members and read by the router: HTTPS with the member's certificate
 * (cluster CA), a client certificate of the cluster CA required (cluster-tls.ts), and the cluster's peer
 * token on every request (`Authorization: Bearer`).
 *
 *   GET  /status      MemberStatus
 *   GET  /metrics     Prometheus text
 *   POST /heartbeat   HeartbeatBody → HeartbeatAnswer   (the leader renewing its lease)
 *   POST /vote        VoteBody → VoteAnswer             (a candidate asking for a vote)
 *   POST /release     {term}                            (the leader giving up its lease: switchover)
 *   POST /takeover    TakeoverBody → {ok, reason?}      (the old primary handing over)
 */
import { timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { callJson, createTlsServer, type ChannelTls, type TlsIdentity } from '../cluster-tls.js';

const MAX_BODY_BYTES = 64 * 1024;

export type HandlerResult = { status?: number; json?: unknown; text?: string };
export type Handler = (body: unknown) => HandlerResult | Promise<HandlerResult>;

export function startPeerServer(options: {
  host: string;
  port: number;
  token: () => string;
  routes: Record<string, Handler>;
  /** The member's certificate and the cluster CA its callers' certificates must chain to; null: plain HTTP. */
  tls: { ca: string; identity: TlsIdentity } | null;
}): Promise<Server> {
  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    void serve(req, res).catch((error: unknown) => {
      if (!res.headersSent) reply(res, 500, { error: (error as Error).message });
      else res.destroy();
    });
  };
  const server = options.tls === null ? createServer(handler) : createTlsServer(options.tls, 'required', handler);
  async function serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const expected = Buffer.from(`Bearer ${options.token()}`);
    const given = Buffer.from(req.headers.authorization ?? '');
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
      reply(res, 401, { error: 'missing or wrong peer token' });
      return;
    }
    const handler = options.routes[`${req.method ?? ''} ${(req.url ?? '').split('?')[0] ?? ''}`];
    if (handler === undefined) {
      reply(res, 404, { error: 'no such route' });
      return;
    }
    let body: unknown = undefined;
    if (req.method === 'POST') {
      const chunks: Buffer[] = [];
      let size = 0;
      for await (const chunk of req as AsyncIterable<Buffer>) {
        size += chunk.length;
        if (size > MAX_BODY_BYTES) {
          reply(res, 413, { error: 'body too large' });
          return;
        }
        chunks.push(chunk);
      }
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        reply(res, 400, { error: 'body is not JSON' });
        return;
      }
    }
    const out = await handler(body);
    if (out.text !== undefined) {
      res.writeHead(out.status ?? 200, { 'content-type': 'text/plain; version=0.0.4' });
      res.end(out.text);
    } else reply(res, out.status ?? 200, out.json ?? {});
  }
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.keepAliveTimeout = 5000;
    server.listen(options.port, options.host, () => resolve(server));
  });
}

function reply(res: ServerResponse, status: number, json: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(json));
}

/** How a member or the router calls a keeper: the peer token, and TLS (the cluster CA, its own certificate). */
export interface PeerAuth {
  token: string;
  tls: ChannelTls | null;
}

/**
 * POST (with a body) or GET a peer keeper; throws on timeout, network or TLS error, or non-2xx.
 * Connections leave from `localAddress` when given (the member's own address): on one
 * machine loopback traffic would otherwise come from 127.0.0.1, and network partitions
 * between members (nftables rules on their addresses) could not be expressed.
 */
export function callPeer<T>(
  peer: { host: string; keeperPort: number },
  auth: PeerAuth,
  path: string,
  body: unknown,
  timeoutMs: number,
  localAddress?: string,
): Promise<T> {
  const scheme = auth.tls === null ? 'http' : 'https';
  return callJson<T>(`${scheme}://${peer.host}:${peer.keeperPort}${path}`, {
    token: auth.token,
    body,
    tls: auth.tls,
    timeoutMs,
    ...(localAddress ? { localAddress } : {}),
  });
}
