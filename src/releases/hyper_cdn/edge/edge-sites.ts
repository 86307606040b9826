/**
 * What an edge does when its sites change, and its certificate endpoint: shared by the edge program (main.ts)
 * and the tests' edges, so that both run the same steps.
 *
 * A change is applied in this order, so that a site is never half served once it is live:
 * 1. the origin-side Caddy gets the sites' origins (a reload of that Caddy only);
 * 2. the certificates the edge Caddy fetches at each handshake are swapped, all at once;
 * 3. Varnish gets a VCL with the sites' host names, when they changed (compiled beside the running VCL, then
 *    switched to).
 * The edge Caddy itself is never reloaded (see caddy.ts for why).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { writeFileDurably } from '../../../shared/durable-file.js';
import { loadConfig } from '../../hyper_edge/caddy-admin.js';
import { originCaddyConfig } from './caddy.js';
import { useVcl } from './varnish.js';
import { edgeVcl } from './vcl.js';

/** A site as an edge serves it: its host names, its origin, and its certificate's files (PEM). */
export interface ServedSite {
  id: string;
  domains: string[];
  origin: string;
  certificateFile: string;
  keyFile: string;
}

export interface EdgeSitesOptions {
  /** The cache's name in Cache-Status. */
  cacheName: string;
  varnishWorkDir: string;
  /** The VCL file this program writes and loads (in the partition). */
  vclFile: string;
  originSocket: string;
  originAdminSocket: string;
  originStorageDir: string;
}

export class EdgeSites {
  /** Host name → the certificate chain and key (PEM) the edge Caddy presents for it. */
  #certificates = new Map<string, string>();
  /** SHA-256 of the VCL Varnish runs, as loaded by this program (undefined: none loaded yet). */
  #loadedVcl: string | undefined;

  constructor(private readonly options: EdgeSitesOptions) {}

  async apply(sites: ServedSite[]): Promise<void> {
    const o = this.options;
    await loadConfig(
      o.originAdminSocket,
      originCaddyConfig({
        adminSocket: o.originAdminSocket,
        storageDir: o.originStorageDir,
        originSocket: o.originSocket,
        sites: sites.map(({ id, origin }) => ({ id, origin })),
      }),
    );
    const certificates = new Map<string, string>();
    for (const site of sites) {
      const bundle = `${(await readFile(site.certificateFile, 'utf8')).trim()}\n${await readFile(site.keyFile, 'utf8')}`;
      for (const domain of site.domains) certificates.set(domain, bundle);
    }
    this.#certificates = certificates;
    const vcl = edgeVcl({
      originSocket: o.originSocket,
      cacheName: o.cacheName,
      sites: sites.map(({ id, domains }) => ({ id, domains })),
    });
    const hash = createHash('sha256').update(vcl).digest('hex');
    if (hash !== this.#loadedVcl) {
      await writeFileDurably(o.vclFile, vcl, { mode: 0o600 });
      await useVcl(o.varnishWorkDir, o.vclFile);
      this.#loadedVcl = hash;
    }
  }

  /** The PEM bundle for a TLS server name, if a site has that name. */
  certificateFor(serverName: string): string | undefined {
    return this.#certificates.get(serverName.toLowerCase());
  }
}

/**
 * The certificate endpoint the edge Caddy calls at each TLS handshake (`get_certificate` `http`):
 * `GET /certificate?token=…&server_name=…` answers the site's certificate chain and key (PEM), or 204 for a name
 * no site has. It listens on the partition's address only (which only the partition's processes can listen on),
 * and answers only with the token: the keys never leave the machine (Caddy calls it over the loopback).
 */
export async function startCertificateEndpoint(options: {
  host: string;
  port: number;
  token: string;
  sites: Pick<EdgeSites, 'certificateFor'>;
}): Promise<Server> {
  const expected = createHash('sha256').update(options.token).digest();
  const server = createServer((request, response) => {
    const url = new URL(request.url ?? '/', 'http://edge');
    const given = createHash('sha256')
      .update(url.searchParams.get('token') ?? '')
      .digest();
    if (request.method !== 'GET' || url.pathname !== '/certificate') {
      response.writeHead(404).end();
      return;
    }
    if (!timingSafeEqual(given, expected)) {
      response.writeHead(403).end();
      return;
    }
    const bundle = options.sites.certificateFor(url.searchParams.get('server_name') ?? '');
    if (bundle === undefined) {
      response.writeHead(204).end();
      return;
    }
    response.writeHead(200, { 'content-type': 'application/x-pem-file', 'cache-control': 'no-store' });
    response.end(bundle);
  });
  server.requestTimeout = 10_000;
  server.headersTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => resolve());
  });
  return server;
}
