/**
 * hyper_cdn on a platform (issue 15): a master and two real `hox node` processes; the admin's CDN (`cdn`, two
 * edges, one per node); sites requested by users as shared instances of it, against a real origin.
 *
 * - a site becomes live on every edge, and each edge serves it over HTTPS with its own certificate of the CDN's
 *   CA, caching it (a miss, then hits), the origin asked once per edge;
 * - a purge on every edge's control API (the site's token) makes the next request a miss on each;
 * - each edge counts the site's requests, hits and bytes (from Varnish's log), readable with the token only;
 * - a site naming a host name another site serves, or with a bad origin, is refused with the reason, and the
 *   other sites are unaffected; another user's token opens nothing of the site.
 */
import { createServer, request as httpRequest, type Server } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { isIP, type AddressInfo } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isNotReady, type MasterClient } from '../src/client/master-client.js';
import { caPin } from '../src/shared/pki/ca-pin.js';
import type { PurgeAnswer, SiteStats } from '../src/releases/hyper_cdn/protocol.js';
import { startHyperDbPlatform, type HyperDbPlatform } from '../src/testing/hyperdb-platform.js';
import { haveEdgeBinaries, loadInChromium, spkiHash } from './support/cdn-edge.js';
import { runHox } from './support/hox-cli.js';
import { havePebble, startPebble } from './support/pebble.js';

interface SiteAnswer {
  state?: string;
  error?: string;
  site_id?: string;
  live_edges?: number;
  edges?: { name: string; url: string; control_url: string }[];
  ca_cert?: string;
  purge_token?: string;
}

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** An HTTPS request to `url` (an edge) as `host` (SNI and Host), trusting `ca`. */
function fetchVia(
  url: string,
  host: string,
  path: string,
  ca: string,
  options: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<Answer> {
  const target = new URL(url);
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      {
        host: target.hostname,
        port: Number(target.port),
        path,
        method: options.method ?? 'GET',
        // SNI carries names, not addresses (RFC 6066): none for the control API, reached by address.
        ...(isIP(host) === 0 ? { servername: host } : {}),
        headers: { host, ...options.headers },
        ca,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      },
    );
    req.setTimeout(20_000, () => req.destroy(new Error(`${url}${path} timed out`)));
    req.on('error', reject);
    req.end(options.body);
  });
}

describe.runIf(haveEdgeBinaries() || process.env['CI'] === 'true')('hyper_cdn on a platform', () => {
  let p: HyperDbPlatform;
  let origin: Server;
  let originUrl: string;
  let alice: MasterClient;
  let bob: MasterClient;
  const originHits = new Map<string, number>();
  let aliceToken: string;
  let home: string;
  let adminEnv: NodeJS.ProcessEnv;
  let aliceEnv: NodeJS.ProcessEnv;

  const requestSite = (client: MasterClient, title: string, parameters: Record<string, unknown>) =>
    client.call('requestInstance', {
      title,
      software_release_uri: 'hyper_cdn',
      software_type: 'cdn',
      shared: true,
      parameters,
    });

  /** The site's connection parameters once `until` holds (requesting it again, as `hox request` does). */
  async function waitForSite(
    client: MasterClient,
    title: string,
    parameters: Record<string, unknown>,
    until: (s: SiteAnswer) => boolean,
  ): Promise<SiteAnswer> {
    let last: unknown;
    for (let i = 0; i < 600; i++) {
      const answer = await requestSite(client, title, parameters);
      last = answer;
      if (!isNotReady(answer) && until(answer.connection_parameters)) return answer.connection_parameters;
      await sleep(200);
    }
    throw new Error(`site ${title}: not as expected within 120 s: ${JSON.stringify(last)}\n${await p.logs('cdn')}`);
  }

  beforeAll(async () => {
    if (!haveEdgeBinaries()) throw new Error('varnishd and caddy are needed (sh scripts/install-system-deps.sh)');
    origin = createServer((req, res) => {
      const path = req.url ?? '/';
      originHits.set(path, (originHits.get(path) ?? 0) + 1);
      res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'max-age=300', 'surrogate-key': 'all' });
      res.end(`origin ${path} #${originHits.get(path)}\n`);
    });
    await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve));
    originUrl = `http://127.0.0.1:${(origin.address() as AddressInfo).port}`;
    p = await startHyperDbPlatform({
      nodes: 2,
      partitions: 5,
      nodeIdPrefix: 'cdn-node',
      releases: ['hyper_cdn', 'hyper_edge'],
    });
    aliceToken = (await p.admin.call('createUser', { name: 'alice' })).token;
    alice = p.admin.withToken(aliceToken);
    bob = p.admin.withToken((await p.admin.call('createUser', { name: 'bob' })).token);
    home = mkdtempSync(join(tmpdir(), 'hox-cdn-cli-'));
    const base = { ...process.env, HOX_CONFIG: join(home, 'config.json'), HOX_MASTER_URL: p.master.url };
    adminEnv = { ...base, HOX_TOKEN: p.master.adminToken };
    aliceEnv = { ...base, HOX_TOKEN: aliceToken };
    // The admin's CDN, as an operator makes it: returns once both edges are up.
    const created = await runHox(['cdn', 'create', '--edges', '2'], adminEnv);
    expect(created.code, `${created.stdout}\n${created.stderr}\n${await p.logs('cdn')}`).toBe(0);
    expect(created.stdout).toContain('cdn: 2 edge(s) up');
  }, 180_000);

  afterAll(async () => {
    await p?.stop();
    await new Promise((resolve) => origin?.close(resolve));
    if (home !== undefined) rmSync(home, { recursive: true, force: true });
  });

  it("serves a user's site on every edge, cached, with the CDN's certificates", async () => {
    const parameters = { domains: ['video.test'], origin: originUrl };
    const site = await waitForSite(alice, 'video', parameters, (s) => s.state === 'live');
    expect(site.live_edges).toBe(2);
    expect(site.edges).toHaveLength(2);
    expect(new Set(site.edges!.map((e) => new URL(e.url).hostname)).size).toBe(2); // one edge per node
    for (const edge of site.edges!) {
      const first = await fetchVia(edge.url, 'video.test', '/index.m3u8', site.ca_cert!);
      expect(first.status, first.body).toBe(200);
      expect(first.body).toMatch(/^origin \/index\.m3u8 #\d\n$/);
      expect(first.headers['cache-status']).toBe(`${edge.name}; fwd=miss; stored`);
      const second = await fetchVia(edge.url, 'video.test', '/index.m3u8', site.ca_cert!);
      expect(second.body).toBe(first.body);
      expect(String(second.headers['cache-status'])).toMatch(new RegExp(`^${edge.name}; hit;`));
      expect(second.headers['alt-svc']).toContain('h3=');
    }
    expect(originHits.get('/index.m3u8')).toBe(2); // once per edge

    // The certificates come from the master's sites CA: not the platform's root, and its key is on no edge.
    const sitesRoot = new X509Certificate(site.ca_cert!);
    expect(sitesRoot.subject).toContain('HyperOpenX sites root CA');
    expect(caPin(site.ca_cert!)).not.toBe(p.master.master.pki.pin);
    for (const edge of ['edge-1', 'edge-2']) {
      const dir = await p.partitionPath('cdn', edge);
      expect(readFileSync(join(dir, 'edge.json'), 'utf8')).not.toContain('PRIVATE KEY');
      const keys = readdirSync(join(dir, 'certificates')).filter((f) => f.endsWith('.key'));
      expect(keys).toContain('control.key');
      expect(keys).toContain(`site-${site.site_id}.key`);
      for (const key of keys) {
        // Each key is a leaf's: its certificate, beside it, is no CA and was signed under the sites root.
        const chain = readFileSync(join(dir, 'certificates', key.replace(/\.key$/, '.crt')), 'utf8');
        const [leafPem, issuerPem] = chain.split(/(?=-----BEGIN)/);
        const leaf = new X509Certificate(leafPem!);
        expect(leaf.ca).toBe(false);
        expect(leaf.checkPrivateKey(createPrivateKey(readFileSync(join(dir, 'certificates', key))))).toBe(true);
        expect(new X509Certificate(issuerPem!).verify(sitesRoot.publicKey)).toBe(true);
      }
    }
  }, 240_000);

  it('purges on every edge with the site’s token, and counts the site’s traffic per edge', async () => {
    const site = await waitForSite(
      alice,
      'video',
      { domains: ['video.test'], origin: originUrl },
      (s) => s.state === 'live',
    );
    const control = (edge: { control_url: string }, method: string, path: string, token: string, body?: unknown) =>
      fetchVia(edge.control_url, new URL(edge.control_url).hostname, path, site.ca_cert!, {
        method,
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
    for (const edge of site.edges!) {
      const purged = await control(edge, 'POST', '/purge', site.purge_token!, {
        site: site.site_id,
        kind: 'url',
        values: ['/index.m3u8'],
      });
      expect(purged.status, purged.body).toBe(200);
      expect(JSON.parse(purged.body) as PurgeAnswer).toMatchObject({ edge: edge.name, kind: 'url', purged: 1 });
      const after = await fetchVia(edge.url, 'video.test', '/index.m3u8', site.ca_cert!);
      expect(after.headers['cache-status']).toBe(`${edge.name}; fwd=miss; stored`);
    }
    // Another token (bob's site's, or none) opens nothing of alice's site.
    const bobs = await waitForSite(
      bob,
      'bob-site',
      { domains: ['bob.test'], origin: originUrl },
      (s) => s.state === 'live',
    );
    const refused = await control(site.edges![0]!, 'POST', '/purge', bobs.purge_token!, {
      site: site.site_id,
      kind: 'tag',
      values: ['all'],
    });
    expect(refused.status).toBe(401);
    expect((await control(site.edges![0]!, 'GET', `/stats?site=${site.site_id}`, 'x'.repeat(20))).status).toBe(401);

    // The counters come from Varnish's log, a moment behind the requests.
    for (const edge of site.edges!) {
      let stats: SiteStats | undefined;
      for (let i = 0; i < 50; i++) {
        const answer = await control(edge, 'GET', `/stats?site=${site.site_id}`, site.purge_token!);
        expect(answer.status, answer.body).toBe(200);
        stats = JSON.parse(answer.body) as SiteStats;
        if (stats.requests >= 3 && stats.origin_fetches >= 2) break;
        await sleep(200);
      }
      expect(stats).toMatchObject({
        edge: edge.name,
        site: site.site_id,
        requests: 3,
        hits: 1,
        misses: 2,
        origin_fetches: 2,
      });
      expect(stats!.bytes_served).toBeGreaterThan(stats!.bytes_from_origin / 2);
      expect(stats!.ttfb_buckets.reduce((a, b) => a + b, 0)).toBe(3);
    }
    // HTTP/3 for real, in Chromium with QUIC forced, on an edge the site was added to after it started (after the counts above: it is a request too).
    const edge = new URL(site.edges![0]!.url);
    const certificate = await new Promise<string>((resolve, reject) => {
      const socket = tlsConnect(
        { host: edge.hostname, port: Number(edge.port), servername: 'video.test', ca: site.ca_cert! },
        () => {
          resolve(socket.getPeerX509Certificate()!.toString());
          socket.end();
        },
      );
      socket.on('error', reject);
    });
    const h3 = await loadInChromium({
      ip: edge.hostname,
      port: Number(edge.port),
      domain: 'video.test',
      path: '/index.m3u8',
      spki: [spkiHash(certificate)],
      quic: true,
    });
    expect(h3.protocol).toBe('h3');
    expect(h3.body).toMatch(/^origin \/index\.m3u8 #\d/);
  }, 240_000);

  it('refuses a site naming a host name another site serves, or a bad origin, and says why', async () => {
    const taken = await waitForSite(
      bob,
      'thief',
      { domains: ['video.test'], origin: originUrl },
      (s) => s.state !== undefined,
    );
    expect(taken).toMatchObject({ state: 'refused', error: "domains: 'video.test' is already served by site 'video'" });
    const bad = await waitForSite(
      bob,
      'bad',
      { domains: ['bad.test'], origin: 'ftp://x' },
      (s) => s.state !== undefined,
    );
    expect(bad.state).toBe('refused');
    expect(bad.error).toContain('must be http:// or https://');
    // alice's site is still served.
    const site = await waitForSite(
      alice,
      'video',
      { domains: ['video.test'], origin: originUrl },
      (s) => s.state === 'live',
    );
    const again = await fetchVia(site.edges![0]!.url, 'video.test', '/index.m3u8', site.ca_cert!);
    expect(again.status).toBe(200);
  }, 240_000);

  it('hox cdn: site add follows the site until live, status sums the edges, purge reports every edge, a refusal exits 2', async () => {
    const added = await runHox(
      ['cdn', 'site', 'add', 'clip', '--origin', originUrl, '--domain', 'clip.test'],
      aliceEnv,
    );
    expect(added.code, `${added.stdout}\n${added.stderr}`).toBe(0);
    expect(added.stdout).toMatch(/^clip: live on 2\/2 edges/m);
    expect(added.stdout).toContain('curl --cacert cdn-ca.pem --connect-to clip.test:443:');

    const ca = await runHox(['cdn', 'ca', 'clip'], aliceEnv);
    expect(ca.stdout).toMatch(/^-----BEGIN CERTIFICATE-----/);
    const site = await waitForSite(
      alice,
      'clip',
      { domains: ['clip.test'], origin: originUrl },
      (s) => s.state === 'live',
    );
    for (const edge of site.edges!) {
      await fetchVia(edge.url, 'clip.test', '/a.ts', ca.stdout);
      await fetchVia(edge.url, 'clip.test', '/a.ts', ca.stdout);
    }

    const purged = await runHox(['cdn', 'purge', 'clip', '--url', '/a.ts', '--tag', 'all'], aliceEnv);
    expect(purged.code, purged.stderr).toBe(0);
    expect(purged.stdout).toMatch(/clip: purged url \/a\.ts on 2\/2 edges/);
    expect(purged.stdout).toMatch(/clip: purged tag all on 2\/2 edges/);
    const badPath = await runHox(['cdn', 'purge', 'clip', '--url', 'a.ts'], aliceEnv);
    expect(badPath.code).toBe(2);
    expect(badPath.stderr).toContain('is not a path');

    // Four requests, two hits over both edges; no secret printed.
    let status: { totals: { requests: number; hits: number; hit_ratio: number }; edges: unknown[] } | undefined;
    for (let i = 0; i < 50; i++) {
      const run = await runHox(['--json', 'cdn', 'status', 'clip'], aliceEnv);
      expect(run.code, run.stderr).toBe(0);
      expect(run.stdout).not.toContain(site.purge_token!);
      status = JSON.parse(run.stdout) as typeof status;
      if (status!.totals.requests >= 4) break;
      await sleep(200);
    }
    expect(status!.totals).toMatchObject({ requests: 4, hits: 2, hit_ratio: 0.5 });
    expect(status!.edges).toHaveLength(2);
    const human = await runHox(['cdn', 'status', 'clip'], aliceEnv);
    expect(human.stdout).toMatch(/traffic: 4 requests, hit ratio 50\.0 %/);

    const listed = await runHox(['cdn', 'site', 'list'], aliceEnv);
    expect(listed.stdout).toMatch(/^clip {2}live {2}2\/2 edges {2}clip\.test/m);
    const refused = await runHox(
      ['cdn', 'site', 'add', 'dup', '--origin', originUrl, '--domain', 'clip.test'],
      aliceEnv,
    );
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain("site 'dup' refused: domains: 'clip.test' is already served by site 'clip'");
    const removed = await runHox(['cdn', 'site', 'remove', 'clip', '--yes'], aliceEnv);
    expect(removed.code, removed.stderr).toBe(0);
  }, 240_000);

  it('an app with [cdn] in its hox.toml puts itself behind the CDN: its site goes live and the edges serve the app', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hox-cdn-app-'));
    try {
      writeFileSync(join(dir, 'index.html'), '<h1>behind the cdn</h1>\n');
      writeFileSync(join(dir, 'hox.toml'), 'runtime = "static"\n[cdn]\ndomains = ["web.test"]\n');
      const deploy = await runHox(['app', 'deploy', 'web', dir], aliceEnv, 300_000);
      expect(deploy.code, `${deploy.stdout}\n${deploy.stderr}`).toBe(0);
      type CdnView = { state: string; domains: string[]; live_edges: number } | null;
      const cdnOf = async (): Promise<CdnView> => {
        const status = await runHox(['--json', 'app', 'status', 'web'], aliceEnv);
        expect(status.code, status.stderr).toBe(0);
        return (JSON.parse(status.stdout) as { cdn: CdnView }).cdn;
      };
      let cdn = await cdnOf();
      for (let i = 0; i < 300 && cdn?.state !== 'live'; i++) {
        await sleep(200);
        cdn = await cdnOf();
      }
      expect(cdn).toMatchObject({ state: 'live', domains: ['web.test'], live_edges: 2 });
      const human = await runHox(['app', 'status', 'web'], aliceEnv);
      expect(human.stdout).toContain('  cdn: web.test live on 2/2 edges');

      // Every edge serves the app's page for its domain, with the CDN's certificate.
      const root = (await p.admin.call('listTreeStatus', { title: 'cdn' })).result_list[0]!.instance_list.find(
        (i) => i.requester_guid === null,
      )!;
      const published = root.connection_parameters as { edges: { url: string }[]; ca_cert: string };
      for (const edge of published.edges) {
        const page = await fetchVia(edge.url, 'web.test', '/', published.ca_cert);
        expect(page.status).toBe(200);
        expect(page.body).toContain('behind the cdn');
      }
      // The app's site is one of alice's sites for hox cdn, but hers to remove through the manifest only.
      const listed = await runHox(['--json', 'cdn', 'site', 'list'], aliceEnv);
      expect(JSON.parse(listed.stdout)).toContainEqual(
        expect.objectContaining({ site: 'cdn-web', requested_by: 'web', state: 'live' }),
      );
      const purged = await runHox(['cdn', 'purge', 'cdn-web', '--url', '/'], aliceEnv);
      expect(purged.stdout, purged.stderr).toMatch(/cdn-web: purged url \/ on 2\/2 edges/);
      const removal = await runHox(['cdn', 'site', 'remove', 'cdn-web', '--yes'], aliceEnv);
      expect(removal.code).toBe(1);
      expect(removal.stderr).toContain("belongs to 'web', which requests it");

      // [cdn] taken out of the manifest: the next deploy removes the site; the edges stop answering for its
      // domain (a new connection finds no certificate for it; a kept-alive one gets 421).
      writeFileSync(join(dir, 'hox.toml'), 'runtime = "static"\n');
      const redeploy = await runHox(['app', 'deploy', 'web', dir], aliceEnv, 300_000);
      expect(redeploy.code, `${redeploy.stdout}\n${redeploy.stderr}`).toBe(0);
      const stillServed = async () =>
        fetchVia(published.edges[0]!.url, 'web.test', '/', published.ca_cert).then(
          (answer) => answer.status !== 421,
          () => false,
        );
      await expect.poll(stillServed, { timeout: 30_000, interval: 300 }).toBe(false);
      const destroyed = await runHox(['app', 'destroy', 'web', '--yes'], aliceEnv, 300_000);
      expect(destroyed.code, destroyed.stderr).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 360_000);

  it("takes the sites' certificates from an ACME CA when given one: pebble validates http-01 through an edge, every edge serves them", async () => {
    if (!havePebble()) throw new Error('pebble is needed (sh scripts/install-system-deps.sh)');
    // A second CDN, of two edges, first with the sites CA.
    const created = await runHox(['cdn', 'create', 'cdn-acme', '--edges', '2'], adminEnv);
    expect(created.code, `${created.stdout}\n${created.stderr}`).toBe(0);
    const rootOf = async () =>
      (await p.admin.call('listTreeStatus', { title: 'cdn-acme' })).result_list[0]!.instance_list.find(
        (i) => i.requester_guid === null,
      )!.connection_parameters as { edges: { name: string; url: string; http_url: string | null }[] };
    let edges = (await rootOf()).edges;
    for (let i = 0; i < 100 && edges.some((e) => e.http_url === null); i++) {
      await sleep(200);
      edges = (await rootOf()).edges;
    }
    // The names point at edge-1 (pebble's DNS), whose plain HTTP port is where pebble validates, as a public CA
    // validates at port 80.
    const first = new URL(edges.find((e) => e.name === 'edge-1')!.http_url!);
    const pebble = await startPebble({ address: first.hostname, httpPort: Number(first.port) });
    try {
      const caFile = join(home, 'pebble-ca.pem');
      writeFileSync(caFile, pebble.caPem);
      const acme = await runHox(
        ['cdn', 'create', 'cdn-acme', '--edges', '2', '--acme-directory', pebble.directory, '--acme-ca-file', caFile],
        adminEnv,
      );
      expect(acme.code, `${acme.stdout}\n${acme.stderr}`).toBe(0);
      const added = await runHox(
        ['cdn', 'site', 'add', 'shop', '--origin', originUrl, '--domain', 'shop.test', '--cdn', 'cdn-acme'],
        adminEnv,
        180_000,
      );
      expect(added.code, `${added.stdout}\n${added.stderr}\n${pebble.output()}\n${await p.logs('cdn-acme')}`).toBe(0);
      expect(added.stdout).toMatch(/^shop: live on 2\/2 edges/m);
      expect(added.stdout).toContain('curl --connect-to shop.test:443:');
      expect(added.stdout).not.toContain('--cacert');

      // Both edges present pebble's certificate (one order, validated through edge-1): trusted with pebble's
      // roots alone, not with the sites CA.
      const roots = await pebble.issuedRoots();
      const site = (await p.admin.call('listTreeStatus', { title: 'shop' })).result_list[0]!.instance_list[0]!
        .connection_parameters as SiteAnswer;
      expect(site.state).toBe('live');
      expect(site.edges).toHaveLength(2);
      for (const edge of site.edges!) {
        const page = await fetchVia(edge.url, 'shop.test', '/shop.html', roots);
        expect(page.status, page.body).toBe(200);
        expect(page.body).toMatch(/^origin \/shop\.html/);
        await expect(fetchVia(edge.url, 'shop.test', '/shop.html', site.ca_cert!)).rejects.toThrow();
        const url = new URL(edge.url);
        const presented = await new Promise<X509Certificate>((resolve, reject) => {
          const socket = tlsConnect(
            { host: url.hostname, port: Number(url.port), servername: 'shop.test', ca: roots },
            () => {
              resolve(socket.getPeerX509Certificate()!);
              socket.end();
            },
          );
          socket.on('error', reject);
        });
        expect(presented.subjectAltName).toBe('DNS:shop.test');
        expect(presented.issuer).toMatch(/Pebble/);
      }
      // Plain HTTP on an edge: the redirect to HTTPS (the challenges were the only other thing it answered).
      const redirect = await new Promise<{ status: number; location: string | undefined }>((resolve, reject) => {
        const req = httpRequest(`${edges[1]!.http_url}/a/b?c=1`, { headers: { host: 'shop.test' } }, (res) => {
          res.resume();
          resolve({ status: res.statusCode ?? 0, location: res.headers.location });
        });
        req.on('error', reject);
        req.end();
      });
      expect(redirect).toEqual({ status: 308, location: 'https://shop.test/a/b?c=1' });
    } finally {
      await pebble.stop();
    }
  }, 360_000);
});
