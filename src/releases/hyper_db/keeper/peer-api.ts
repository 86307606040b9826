/**
 * The keeper's HTTP API, spoken between members and read by the router:
 * every request carries the cluster's peer token (`Authorization: Bearer`).
 *
 *   GET  /status      MemberStatus
 *   GET  /metrics     Prometheus text
 *   POST /heartbeat   HeartbeatBody → HeartbeatAnswer   (the leader renewing its lease)
 *   POST /vote        VoteBody → VoteAnswer             (a candidate asking for a vote)
 *   POST /release     {term}                            (the leader giving up its lease: switchover)
 *   POST /takeover    TakeoverBody → {ok, reason?}      (the old primary handing over)
 */
import { timingSafeEqual } from 'node:crypto';
import { Agent, createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';

const MAX_BODY_BYTES = 64 * 1024;

export type HandlerResult = { status?: number; json?: unknown; text?: string };
export type Handler = (body: unknown) => HandlerResult | Promise<HandlerResult>;

export function startPeerServer(options: {
  host: string;
  port: number;
  token: () => string;
  routes: Record<string, Handler>;
}): Promise<Server> {
  const server = createServer((req, res) => {
    void serve(req, res).catch((error: unknown) => {
      if (!res.headersSent) reply(res, 500, { error: (error as Error).message });
      else res.destroy();
    });
  });
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

/**
 * POST (with a body) or GET a peer keeper; throws on timeout, network error or non-2xx.
 * Connections leave from `localAddress` when given (the member's own address): on one
 * machine loopback traffic would otherwise come from 127.0.0.1, and network partitions
 * between members (nftables rules on their addresses) could not be expressed.
 */
export function callPeer<T>(
  peer: { host: string; keeperPort: number },
  token: string,
  path: string,
  body: unknown,
  timeoutMs: number,
  localAddress?: string,
): Promise<T> {
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise<T>((resolve, reject) => {
    const req = request(
      {
        host: peer.host,
        port: peer.keeperPort,
        path,
        method: payload === undefined ? 'GET' : 'POST',
        agent: agentFor(localAddress),
        headers: {
          authorization: `Bearer ${token}`,
          'content-type': 'application/json',
          ...(payload === undefined ? {} : { 'content-length': Buffer.byteLength(payload) }),
        },
        timeout: timeoutMs,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          clearTimeout(timer);
          if ((res.statusCode ?? 0) < 200 || (res.statusCode ?? 0) >= 300) {
            reject(new Error(`${path} on ${peer.host}:${peer.keeperPort}: HTTP ${res.statusCode ?? '?'}`));
            return;
          }
          try {
            resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')) as T);
          } catch (error) {
            reject(error instanceof Error ? error : new Error(String(error)));
          }
        });
        res.on('error', reject);
      },
    );
    const timer = setTimeout(
      () => req.destroy(new Error(`${path} on ${peer.host}:${peer.keeperPort}: timed out`)),
      timeoutMs,
    );
    req.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    req.end(payload);
  });
}

const agents = new Map<string, Agent>();

function agentFor(localAddress: string | undefined): Agent {
  const key = localAddress ?? '';
  let agent = agents.get(key);
  if (agent === undefined) {
    agent = new Agent({ keepAlive: true, maxSockets: 8, ...(localAddress ? { localAddress } : {}) });
    agents.set(key, agent);
  }
  return agent;
}
