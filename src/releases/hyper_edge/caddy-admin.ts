/** The side of hyper_edge programs (runner, endpoint) of their Caddy's admin API: a unix socket in the partition. */
import { request } from 'node:http';
import { ADMIN_ORIGIN } from './caddy-config.js';

function call(
  socketPath: string,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = request(
      {
        socketPath,
        method,
        path,
        headers: {
          host: ADMIN_ORIGIN,
          ...(payload === undefined ? {} : { 'content-type': 'application/json' }),
        },
        timeout: 10_000,
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      },
    );
    req.on('timeout', () => req.destroy(new Error(`caddy admin ${method} ${path} timed out`)));
    req.on('error', reject);
    req.end(payload);
  });
}

/** Replaces the whole configuration (Caddy finishes in-flight requests on the old one). */
export async function loadConfig(socketPath: string, config: Record<string, unknown>): Promise<void> {
  const { status, text } = await call(socketPath, 'POST', '/load', config);
  if (status !== 200) throw new Error(`caddy refused the configuration (${status}): ${text.slice(0, 300)}`);
}

/** Requests in flight per upstream address. */
export async function upstreamRequests(socketPath: string): Promise<Map<string, number>> {
  const { status, text } = await call(socketPath, 'GET', '/reverse_proxy/upstreams');
  if (status !== 200) throw new Error(`caddy upstreams (${status}): ${text.slice(0, 200)}`);
  const list = JSON.parse(text) as { address: string; num_requests: number }[];
  return new Map(list.map((u) => [u.address, u.num_requests]));
}

export async function adminReady(socketPath: string): Promise<boolean> {
  try {
    return (await call(socketPath, 'GET', '/config/')).status === 200;
  } catch {
    return false;
  }
}
