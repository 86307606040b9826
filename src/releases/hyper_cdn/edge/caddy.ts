/**
 * The Caddy configuration of an edge (pure). Two servers in one Caddy:
 *
 * - `edge`, on the partition's address: TLS with each site's certificate (chosen by SNI), HTTP/1.1, HTTP/2 and
 *   HTTP/3 (QUIC, on the same UDP port; Caddy advertises it with Alt-Svc). A request whose Host is a site's
 *   domain goes to Varnish (a unix socket) with `X-Hox-Site` set to the site's id, whatever the client sent;
 *   any other Host gets 421.
 * - `origin`, on a unix socket only Varnish uses: Varnish's fetches, routed by `X-Hox-Site` to the site's
 *   origin (HTTP or HTTPS), with the origin's own Host, and without the `X-Hox-*` headers.
 *
 * A site or origin change is a `POST /load` on the admin socket: in-flight requests finish on the old one.
 */
import { ADMIN_ORIGIN } from '../../hyper_edge/caddy-config.js';

export interface EdgeSite {
  /** The site's id on this edge: what `X-Hox-Site` carries and Varnish keys objects by. */
  id: string;
  /** Host names the site answers (the certificate's names). */
  domains: string[];
  /** `http://host:port` or `https://host:port`, with an optional path prefix prepended to every request. */
  origin: string;
  /** The site's certificate chain and key (PEM files in the partition). */
  certificateFile: string;
  keyFile: string;
}

export interface EdgeCaddyOptions {
  /** Admin API socket (absolute path). */
  adminSocket: string;
  /** Caddy's storage (inside the partition). */
  storageDir: string;
  /** `ip:port` the edge serves on (TCP for HTTP/1.1 and 2, UDP for HTTP/3). */
  listen: string;
  /** Varnish's client listener (a unix socket path). */
  varnishSocket: string;
  /** The origin-side listener Varnish fetches from (a unix socket path). */
  originSocket: string;
  sites: EdgeSite[];
  /** False: HTTP/1.1 and 2 only (the first step of a reload that renews the HTTP/3 listener). @default true */
  http3?: boolean;
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

export function edgeCaddyConfig(options: EdgeCaddyOptions): Record<string, unknown> {
  const edgeRoutes: Record<string, unknown>[] = options.sites.map((site) => ({
    match: [{ host: site.domains }],
    handle: [
      {
        handler: 'reverse_proxy',
        upstreams: [{ dial: `unix/${options.varnishSocket}` }],
        headers: {
          request: { set: { 'X-Hox-Site': [site.id] }, delete: HIDDEN_REQUEST_HEADERS.slice(1) },
          response: { delete: ['Server'] },
        },
      },
    ],
    terminal: true,
  }));
  edgeRoutes.push({
    handle: [
      {
        handler: 'static_response',
        status_code: 421,
        headers: { 'Content-Type': ['text/plain; charset=utf-8'] },
        body: 'no site of this CDN answers for this host\n',
      },
    ],
  });
  const originRoutes: Record<string, unknown>[] = options.sites.map((site) => {
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
  originRoutes.push({
    handle: [{ handler: 'static_response', status_code: 502, body: 'no origin for this site on this edge\n' }],
  });
  return {
    admin: { listen: `unix/${options.adminSocket}`, origins: [ADMIN_ORIGIN], config: { persist: false } },
    logging: { logs: { default: { level: 'WARN' } } },
    storage: { module: 'file_system', root: options.storageDir },
    apps: {
      tls: {
        certificates: {
          load_files: options.sites.map((site) => ({
            certificate: site.certificateFile,
            key: site.keyFile,
            tags: [`site-${site.id}`],
          })),
        },
      },
      // Never edit the machine's trust store (Caddy's own CA is not used: the certificates are given).
      pki: { certificate_authorities: { local: { install_trust: false } } },
      http: {
        servers: {
          edge: {
            listen: [options.listen],
            protocols: options.http3 === false ? ['h1', 'h2'] : ['h1', 'h2', 'h3'],
            automatic_https: { disable: true },
            tls_connection_policies: [{}],
            routes: edgeRoutes,
          },
          origin: {
            listen: [`unix/${options.originSocket}`],
            automatic_https: { disable: true },
            routes: originRoutes,
          },
        },
      },
    },
  };
}
