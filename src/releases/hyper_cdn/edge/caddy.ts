/**
 * The two Caddy configurations of an edge (pure), each for its own Caddy process:
 *
 * - the **edge** Caddy, on the partition's address: TLS, HTTP/1.1, HTTP/2 and HTTP/3 (QUIC, on the same UDP
 *   port; Caddy advertises it with Alt-Svc). Every request goes to Varnish (a unix socket), without the client's
 *   `X-Hox-*` headers; Varnish finds the site from the Host (vcl.ts). Its configuration never changes while it
 *   runs: the certificates come, at each TLS handshake, from the edge program's certificate endpoint
 *   (`get_certificate` `http`, on the partition's address, with a secret token), so a new site, a renewed
 *   certificate or a removed site never reloads this Caddy. That is on purpose: Debian's Caddy 2.6 keeps its
 *   QUIC listener across reloads with the TLS configuration of the first one (caddyserver/caddy#4849, fixed in
 *   2.7), and turning HTTP/3 off and on at each reload to renew it left HTTP/3 broken after a few reloads.
 * - the **origin** Caddy, on a unix socket only Varnish uses: Varnish's fetches, routed by `X-Hox-Site` to the
 *   site's origin (HTTP or HTTPS), with the origin's own Host, and without the `X-Hox-*` headers. A site or
 *   origin change is a `POST /load` on its admin socket: in-flight fetches finish on the old configuration.
 */
import { ADMIN_ORIGIN } from '../../hyper_edge/caddy-config.js';

/** A site as the origin-side Caddy routes it. */
export interface OriginSite {
  /** The site's id on this edge: what `X-Hox-Site` carries and Varnish keys objects by. */
  id: string;
  /** `http://host:port` or `https://host:port`, with an optional path prefix prepended to every request. */
  origin: string;
}

export interface EdgeCaddyOptions {
  /** Admin API socket (absolute path): readiness only, nothing loads another configuration. */
  adminSocket: string;
  /** Caddy's storage (inside the partition). */
  storageDir: string;
  /** `ip:port` the edge serves on (TCP for HTTP/1.1 and 2, UDP for HTTP/3). */
  listen: string;
  /** Varnish's client listener (a unix socket path). */
  varnishSocket: string;
  /** The edge program's certificate endpoint, token included (`http://ip:port/certificate?token=…`). */
  certificateUrl: string;
}

export interface OriginCaddyOptions {
  adminSocket: string;
  storageDir: string;
  /** The listener Varnish fetches from (a unix socket path). */
  originSocket: string;
  sites: OriginSite[];
}

/** The upstream of a site's origin for Caddy's reverse_proxy: dial address, TLS, Host, path prefix. */
export function originUpstream(origin: string): { dial: string; tls: boolean; host: string; prefix: string } {
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    throw new Error(`origin '${origin}' is not a URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new Error(`origin '${origin}' must be http:// or https://`);
  if (url.username !== '' || url.password !== '' || url.search !== '' || url.hash !== '')
    throw new Error(`origin '${origin}' may not carry credentials, a query or a fragment`);
  const tls = url.protocol === 'https:';
  const port = url.port === '' ? (tls ? '443' : '80') : url.port;
  const hostname = url.hostname.replace(/^\[|\]$/g, '');
  return {
    dial: hostname.includes(':') ? `[${hostname}]:${port}` : `${hostname}:${port}`,
    tls,
    host: url.host,
    prefix: url.pathname === '/' ? '' : url.pathname.replace(/\/$/, ''),
  };
}

const HIDDEN_REQUEST_HEADERS = ['X-Hox-Site', 'X-Hox-Refresh', 'X-Hox-Stale-Ok', 'X-Hox-Pass', 'X-Hox-Range'];

/** What both Caddy processes share: an admin socket, their storage, no trust store edits, quiet logs. */
function base(adminSocket: string, storageDir: string): Record<string, unknown> {
  return {
    admin: { listen: `unix/${adminSocket}`, origins: [ADMIN_ORIGIN], config: { persist: false } },
    logging: { logs: { default: { level: 'WARN' } } },
    storage: { module: 'file_system', root: storageDir },
  };
}

/** Never edit the machine's trust store (Caddy's own CA is not used: the certificates are the CDN's). */
const NO_TRUST_STORE = { certificate_authorities: { local: { install_trust: false } } };

export function edgeCaddyConfig(options: EdgeCaddyOptions): Record<string, unknown> {
  return {
    ...base(options.adminSocket, options.storageDir),
    apps: {
      tls: {
        // No subjects: every server name asks the endpoint, which answers 204 for a name no site has (the
        // handshake then fails). Nothing is obtained or renewed by Caddy itself (automatic HTTPS is off).
        automation: { policies: [{ get_certificate: [{ via: 'http', url: options.certificateUrl }] }] },
      },
      pki: NO_TRUST_STORE,
      http: {
        servers: {
          edge: {
            listen: [options.listen],
            protocols: ['h1', 'h2', 'h3'],
            automatic_https: { disable: true },
            tls_connection_policies: [{}],
            routes: [
              {
                handle: [
                  {
                    handler: 'reverse_proxy',
                    upstreams: [{ dial: `unix/${options.varnishSocket}` }],
                    headers: { request: { delete: HIDDEN_REQUEST_HEADERS }, response: { delete: ['Server'] } },
                  },
                ],
              },
            ],
          },
        },
      },
    },
  };
}

export function originCaddyConfig(options: OriginCaddyOptions): Record<string, unknown> {
  const routes: Record<string, unknown>[] = options.sites.map((site) => {
    const upstream = originUpstream(site.origin);
    const handle: Record<string, unknown>[] = [];
    if (upstream.prefix !== '') handle.push({ handler: 'rewrite', uri: `${upstream.prefix}{http.request.uri}` });
    handle.push({
      handler: 'reverse_proxy',
      upstreams: [{ dial: upstream.dial }],
      ...(upstream.tls ? { transport: { protocol: 'http', tls: {} } } : {}),
      headers: { request: { set: { Host: [upstream.host] }, delete: HIDDEN_REQUEST_HEADERS } },
    });
    return { match: [{ header: { 'X-Hox-Site': [site.id] } }], handle, terminal: true };
  });
  routes.push({
    handle: [{ handler: 'static_response', status_code: 502, body: 'no origin for this site on this edge\n' }],
  });
  return {
    ...base(options.adminSocket, options.storageDir),
    apps: {
      pki: NO_TRUST_STORE,
      http: {
        servers: {
          origin: {
            listen: [`unix/${options.originSocket}`],
            protocols: ['h1'],
            automatic_https: { disable: true },
            routes,
          },
        },
      },
    },
  };
}
