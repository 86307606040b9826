/**
 * hyper_cdn's edge (issue 15): the real Caddy (TLS, HTTP/1.1, 2, 3) in front of the real Varnish (with
 * varnish-modules' xkey), configured as the release renders them, in front of a real origin (a Node server whose
 * answers the test controls). What a demanding client of a CDN checks:
 *
 * - a miss then hits, with `Age` and `Cache-Status` (RFC 9211), the origin asked once;
 * - Range requests (video segments) answered from the cached object; If-None-Match answered 304 by the edge;
 * - Vary honoured; `private` never kept;
 * - stale-while-revalidate: the stale copy at once, refreshed in the background;
 * - an expired object with an ETag revalidated by a conditional fetch (304 from the origin, no body);
 * - stale-if-error: the origin failing, the stale copy is served within its window; nothing cached: the origin's
 *   error;
 * - purge by URL, prefix and tag (Surrogate-Key), each only on its site;
 * - sites by Host (SNI certificate per site), an unknown Host refused (421), a client's `X-Hox-Site` ignored;
 * - HTTP/2 over TLS, HTTP/3 advertised (Alt-Svc), and HTTP/3 for real: Debian's Chromium with QUIC forced
 *   reports `h3` as the page's nextHopProtocol.
 */
import { createHash, generateKeyPairSync } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { connect as http2Connect } from 'node:http2';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLocalCa, issueServerCertificate, type LocalCa } from '../src/shared/pki/local-ca.js';
import { freePort } from '../src/testing/free-port.js';
import { purge } from '../src/releases/hyper_cdn/edge/varnish.js';
import type { ServedSite } from '../src/releases/hyper_cdn/edge/edge-sites.js';
import { haveEdgeBinaries, loadInChromium, spkiHash, startTestEdge, type TestEdge } from './support/cdn-edge.js';

const IP = '127.0.0.1';
const SEGMENT = Buffer.from(Array.from({ length: 256 * 1024 }, (_, i) => (i * 7) % 251));

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

describe.runIf(haveEdgeBinaries() || process.env['CI'] === 'true')('hyper_cdn edge: Caddy + Varnish', () => {
  let origin: Server;
  let originPort: number;
  let edge: TestEdge;
  let ca: LocalCa;
  const hits = new Map<string, number>();
  let failing = false;
  let certificates: string | undefined;
  /** SHA-256 of each site certificate's key (SPKI), base64: what Chromium is told to accept. */
  const spkiHashes: string[] = [];

  const count = (path: string): number => hits.get(path) ?? 0;

  /** A GET through the edge over HTTPS (HTTP/1.1), as `host`. */
  const get = (host: string, path: string, headers: Record<string, string> = {}): Promise<Answer> =>
    new Promise((resolve, reject) => {
      const [ip, port] = edge.listen.split(':');
      const req = httpsRequest(
        { host: ip, port: Number(port), path, servername: host, headers: { host, ...headers }, ca: ca.certificatePem },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () =>
            resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
          );
        },
      );
      req.setTimeout(20_000, () => req.destroy(new Error(`GET ${host}${path} timed out`)));
      req.on('error', reject);
      req.end();
    });
  const cacheStatus = (a: Answer): string => String(a.headers['cache-status'] ?? '');

  /** A site's certificate from the test CA, in `dir`; its key's hash goes to the list Chromium accepts. */
  const siteCertificate = async (dir: string, id: string, domains: string[]): Promise<ServedSite> => {
    const keys = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const certificate = await issueServerCertificate({
      ca,
      publicKeyPem: keys.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
      commonName: domains[0]!,
      dnsNames: domains,
      ipAddresses: [],
      validityMs: 86_400_000,
    });
    spkiHashes.push(
      createHash('sha256')
        .update(keys.publicKey.export({ type: 'spki', format: 'der' }))
        .digest('base64'),
    );
    const certificateFile = join(dir, `${id}.crt`);
    const keyFile = join(dir, `${id}.key`);
    writeFileSync(certificateFile, certificate);
    writeFileSync(keyFile, keys.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), { mode: 0o600 });
    return { id, domains, origin: '', certificateFile, keyFile };
  };

  beforeAll(async () => {
    if (!haveEdgeBinaries()) throw new Error('varnishd and caddy are needed (sh scripts/install-system-deps.sh)');
    origin = createServer((req, res) => {
      const url = req.url ?? '/';
      const path = url.split('?')[0]!;
      hits.set(path, count(path) + 1);
      if (failing) {
        res.writeHead(503, { 'content-type': 'text/plain' });
        return res.end('origin down\n');
      }
      const etag = `"${createHash('sha256').update(path).digest('hex').slice(0, 16)}"`;
      // Segments stay fresh for the whole file; `/short/` ones for a second (revalidations).
      if (path.startsWith('/seg/') || path.startsWith('/short/')) {
        const cacheControl = path.startsWith('/seg/') ? 'max-age=600' : 'max-age=1';
        if (req.headers['if-none-match'] === etag) {
          res.writeHead(304, { etag, 'cache-control': cacheControl });
          return res.end();
        }
        res.writeHead(200, {
          'content-type': 'video/mp2t',
          'cache-control': cacheControl,
          etag,
          'surrogate-key': `video ${path.replace(/\W/g, '-')}`,
        });
        return res.end(SEGMENT);
      }
      const bodies: Record<string, [string, Record<string, string>]> = {
        '/swr': ['swr', { 'cache-control': 'max-age=1, stale-while-revalidate=30' }],
        '/sie': ['sie', { 'cache-control': 'max-age=1, stale-if-error=60' }],
        '/private': ['mine', { 'cache-control': 'private, max-age=60' }],
        '/vary': [
          `lang ${req.headers['accept-language'] ?? '-'}`,
          { 'cache-control': 'max-age=60', vary: 'Accept-Language' },
        ],
        '/b/page': ['site two', { 'cache-control': 'max-age=60', 'surrogate-key': 'video' }],
        '/page': ['site one', { 'cache-control': 'max-age=60' }],
      };
      const known = bodies[path];
      if (known === undefined) {
        res.writeHead(404, { 'content-type': 'text/plain' });
        return res.end('no such page\n');
      }
      res.writeHead(200, { 'content-type': 'text/plain', ...known[1] });
      res.end(`${known[0]} #${count(path)}\n`);
    });
    await new Promise<void>((resolve) => origin.listen(0, IP, resolve));
    originPort = (origin.address() as AddressInfo).port;

    ca = await createLocalCa('test CDN CA', 'HyperOpenX tests');
    certificates = mkdtempSync(join(tmpdir(), 'hox-cdn-certs-'));
    const sites = [
      { ...(await siteCertificate(certificates, 's1', ['video.test'])), origin: `http://${IP}:${originPort}` },
      {
        ...(await siteCertificate(certificates, 's2', ['two.test', 'www.two.test'])),
        origin: `http://${IP}:${originPort}/b`,
      },
    ];
    // Started without sites, then given them, as the edge program does: the edge Caddy is never reloaded, and
    // must still present the new sites' certificates over HTTP/3 too (the Chromium test below checks it).
    edge = await startTestEdge({ ip: IP, port: await freePort(), cacheName: 'edge-1' });
    await edge.setSites(sites);
  }, 60_000);

  afterAll(async () => {
    await edge?.stop();
    await new Promise((resolve) => origin?.close(resolve));
    if (certificates !== undefined) rmSync(certificates, { recursive: true, force: true });
  });

  it('caches: a miss, then hits with Age and Cache-Status; Range and If-None-Match answered from the cache', async () => {
    const first = await get('video.test', '/seg/1.ts');
    expect(first.status).toBe(200);
    expect(first.body.equals(SEGMENT)).toBe(true);
    expect(cacheStatus(first)).toBe('edge-1; fwd=miss; stored');
    const second = await get('video.test', '/seg/1.ts');
    expect(second.body.equals(SEGMENT)).toBe(true);
    expect(cacheStatus(second)).toMatch(/^edge-1; hit; ttl=\d+$/);
    expect(second.headers['age']).toMatch(/^\d+$/);
    // The client never sees the tags nor Varnish's own headers.
    expect(second.headers['surrogate-key']).toBeUndefined();
    expect(second.headers['x-varnish']).toBeUndefined();

    const range = await get('video.test', '/seg/1.ts', { range: 'bytes=1000-1999' });
    expect(range.status).toBe(206);
    expect(range.headers['content-range']).toBe(`bytes 1000-1999/${SEGMENT.length}`);
    expect(range.body.equals(SEGMENT.subarray(1000, 2000))).toBe(true);
    expect(cacheStatus(range)).toMatch(/; hit;/);

    const conditional = await get('video.test', '/seg/1.ts', { 'if-none-match': String(first.headers['etag']) });
    expect(conditional.status).toBe(304);
    expect(count('/seg/1.ts')).toBe(1);

    // A Range request on a miss: the edge fetches the whole segment once and answers the range.
    const cold = await get('video.test', '/seg/2.ts', { range: 'bytes=0-99' });
    expect(cold.status).toBe(206);
    expect(cold.body.equals(SEGMENT.subarray(0, 100))).toBe(true);
    expect((await get('video.test', '/seg/2.ts')).body.equals(SEGMENT)).toBe(true);
    expect(count('/seg/2.ts')).toBe(1);
  });

  it('honours Vary and private; revalidates an expired object with its ETag (a 304 from the origin)', async () => {
    const fr = await get('video.test', '/vary', { 'accept-language': 'fr' });
    const en = await get('video.test', '/vary', { 'accept-language': 'en' });
    expect(fr.body.toString()).toContain('lang fr');
    expect(en.body.toString()).toContain('lang en');
    expect(cacheStatus(await get('video.test', '/vary', { 'accept-language': 'fr' }))).toMatch(/; hit;/);
    expect(count('/vary')).toBe(2);

    await get('video.test', '/private');
    const again = await get('video.test', '/private');
    expect(cacheStatus(again)).toBe('edge-1; fwd=uri-miss');
    expect(count('/private')).toBe(2);

    await get('video.test', '/short/3.ts');
    await sleep(1_500); // past max-age=1
    const revalidated = await get('video.test', '/short/3.ts');
    expect(revalidated.body.equals(SEGMENT)).toBe(true);
    expect(cacheStatus(revalidated)).toBe('edge-1; fwd=stale; fwd-status=304; stored');
    expect(count('/short/3.ts')).toBe(2);
  });

  it('stale-while-revalidate serves the stale copy at once and refreshes it; stale-if-error covers a failing origin', async () => {
    const one = await get('video.test', '/swr');
    expect(one.body.toString()).toBe('swr #1\n');
    await sleep(1_500);
    const stale = await get('video.test', '/swr');
    expect(stale.body.toString()).toBe('swr #1\n');
    expect(cacheStatus(stale)).toMatch(/; hit;/);
    await expect
      .poll(async () => (await get('video.test', '/swr')).body.toString(), { timeout: 5_000 })
      .toBe('swr #2\n');

    await get('video.test', '/sie');
    await sleep(1_500);
    failing = true;
    try {
      const served = await get('video.test', '/sie');
      expect(served.status).toBe(200);
      expect(served.body.toString()).toBe('sie #1\n');
      expect(cacheStatus(served)).toMatch(/^edge-1; hit; ttl=-?\d+; detail=stale-if-error$/);
      // Nothing cached to fall back on: the origin's own error.
      const none = await get('video.test', '/page');
      expect(none.status).toBe(503);
      expect(none.body.toString()).toBe('origin down\n');
    } finally {
      failing = false;
    }
    expect((await get('video.test', '/sie')).body.toString()).toMatch(/^sie #\d+\n$/);
  });

  it('purges by URL, prefix and tag, each only on its own site', async () => {
    const warm = async (host: string, path: string) => {
      await get(host, path);
      expect(cacheStatus(await get(host, path))).toMatch(/; hit;/);
    };
    await warm('video.test', '/seg/10.ts');
    await warm('video.test', '/seg/11.ts');
    await warm('two.test', '/page');

    await purge(edge.purgeSocket, 's1', { kind: 'url', path: '/seg/10.ts' });
    expect(cacheStatus(await get('video.test', '/seg/10.ts'))).toBe('edge-1; fwd=miss; stored');
    expect(cacheStatus(await get('video.test', '/seg/11.ts'))).toMatch(/; hit;/);

    await purge(edge.purgeSocket, 's1', { kind: 'prefix', prefix: '/seg/1' });
    expect(cacheStatus(await get('video.test', '/seg/11.ts'))).toBe('edge-1; fwd=miss; stored');

    // Both sites tag with `video`; a tag purge of site 1 leaves site 2's object.
    await warm('video.test', '/seg/12.ts');
    await purge(edge.purgeSocket, 's1', { kind: 'tag', tags: ['video'] });
    expect(cacheStatus(await get('video.test', '/seg/12.ts'))).toBe('edge-1; fwd=miss; stored');
    expect(cacheStatus(await get('two.test', '/page'))).toMatch(/; hit;/);

    await expect(purge(edge.purgeSocket, 's1', { kind: 'url', path: 'no-slash' })).rejects.toThrow(/not a path/);
    await expect(purge(edge.purgeSocket, 's1', { kind: 'tag', tags: ['a b'] })).rejects.toThrow(/not allowed/);
  });

  it('routes by Host with each site’s certificate; an unknown Host is refused; a client’s X-Hox-Site is ignored', async () => {
    const two = await get('www.two.test', '/page');
    expect(two.body.toString()).toMatch(/^site two #\d+\n$/);
    const one = await get('video.test', '/page', { 'x-hox-site': 's2' });
    expect(one.body.toString()).toMatch(/^site one #\d+\n$/);
    // No certificate for that name: the handshake fails; with a site's name in SNI and another Host: 421.
    expect(await get('nobody.test', '/page').catch((e: Error) => e)).toBeInstanceOf(Error);
    const [ip, port] = edge.listen.split(':');
    const misdirected = await new Promise<number>((resolve, reject) => {
      const req = httpsRequest(
        {
          host: ip,
          port: Number(port),
          path: '/',
          servername: 'video.test',
          headers: { host: 'nobody.test' },
          ca: ca.certificatePem,
        },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on('error', reject);
      req.end();
    });
    expect(misdirected).toBe(421);
  });

  it('speaks HTTP/2 over TLS and advertises HTTP/3', async () => {
    const session = http2Connect(`https://${edge.listen}`, { servername: 'video.test', ca: ca.certificatePem });
    try {
      const answer = await new Promise<{ status: number; altSvc: string; body: string }>((resolve, reject) => {
        const stream = session.request({ ':path': '/page', ':authority': 'video.test' });
        let status = 0;
        let altSvc = '';
        let body = '';
        stream.on('response', (headers) => {
          status = Number(headers[':status']);
          altSvc = String(headers['alt-svc'] ?? '');
        });
        stream.setEncoding('utf8');
        stream.on('data', (c: string) => (body += c));
        stream.on('end', () => resolve({ status, altSvc, body }));
        stream.on('error', reject);
      });
      expect(answer.status, answer.body).toBe(200);
      expect(answer.body).toMatch(/^site one/);
      expect(answer.altSvc).toContain(`h3=":${edge.listen.split(':')[1]}"`);
    } finally {
      session.close();
    }
  });

  it('serves HTTP/3 to Chromium with QUIC forced (nextHopProtocol h3), and HTTP/2 to one without', async () => {
    const port = Number(edge.listen.split(':')[1]);
    const load = (quic: boolean) =>
      loadInChromium({ ip: IP, port, domain: 'video.test', path: '/page', spki: spkiHashes, quic });
    const h3 = await load(true);
    expect(h3.protocol).toBe('h3');
    expect(h3.body).toMatch(/^site one #\d+/);
    expect(h3.cacheStatus).toMatch(/^edge-1; /);
    const h2 = await load(false);
    expect(h2.protocol).toBe('h2');
    expect(h2.body).toBe(h3.body); // the same cached object
  }, 120_000);

  it('keeps HTTP/3 through site changes: twelve loads, each adding a site and renewing a certificate, Caddy never reloaded', async () => {
    const origin = `http://${IP}:${originPort}`;
    const port = Number(edge.listen.split(':')[1]);
    let sites: ServedSite[] = [];
    for (let i = 0; i < 12; i++) {
      // video.test gets a new key each time (a renewal); one more site each time.
      const video = { ...(await siteCertificate(certificates!, 's1', ['video.test'])), origin };
      const added = await Promise.all(
        Array.from({ length: i + 1 }, (_, n) => siteCertificate(certificates!, `n${n}`, [`n${n}.test`])),
      );
      sites = [video, ...added.map((site) => ({ ...site, origin: `${origin}/b` }))];
      await edge.setSites(sites);
      const answer = await get('video.test', '/page');
      expect(answer.status).toBe(200);
      expect(String(answer.headers['alt-svc'])).toContain(`h3=":${port}"`);
    }
    // The renewed certificate is the one presented, over TCP…
    const presented = await new Promise<string>((resolve, reject) => {
      const socket = tlsConnect({ host: IP, port, servername: 'video.test', ca: ca.certificatePem }, () => {
        resolve(socket.getPeerX509Certificate()!.toString());
        socket.end();
      });
      socket.on('error', reject);
    });
    expect(spkiHash(presented)).toBe(spkiHash(readFileSync(sites[0]!.certificateFile, 'utf8')));
    // …and over QUIC: Chromium accepts only the newest keys, for the first site and the newest one.
    const newest = sites.map((site) => spkiHash(readFileSync(site.certificateFile, 'utf8')));
    for (const domain of ['video.test', 'n11.test']) {
      const h3 = await loadInChromium({ ip: IP, port, domain, path: '/page', spki: newest, quic: true });
      expect(h3.protocol, domain).toBe('h3');
      expect(h3.body, domain).toMatch(domain === 'video.test' ? /^site one #\d+/ : /^site two #\d+/);
    }
    // A removed site: its name no longer has a certificate, its Host no longer a site.
    await edge.setSites(sites.slice(0, 1));
    expect(await get('n11.test', '/page').catch((e: Error) => e)).toBeInstanceOf(Error);
    expect((await get('video.test', '/page', {})).status).toBe(200);
    expect(edge.output()).not.toMatch(/no port can be announced/);
  }, 180_000);

  it("Varnish's management port (VCL loads) does nothing for whoever lacks the secret in the partition", async () => {
    const [host, port] = edge.management.split(':');
    const said = await new Promise<string>((resolve, reject) => {
      const socket = netConnect({ host, port: Number(port) });
      let text = '';
      socket.setEncoding('utf8');
      socket.on('data', (chunk: string) => {
        text += chunk;
        // Asked for authentication: try to switch the VCL without it, as another partition could.
        if (text.includes('Authentication required') && !text.includes('vcl.use')) {
          text += '> vcl.use boot\n';
          socket.write('vcl.use boot\n');
        }
        if (/> vcl\.use boot\n[\s\S]*\n\n$/.test(text)) socket.end();
      });
      socket.on('end', () => resolve(text));
      socket.on('error', reject);
      setTimeout(() => socket.destroy(new Error(`no answer: ${JSON.stringify(text)}`)), 10_000).unref();
    });
    expect(said).toMatch(/^107 /); // a challenge first
    const answer = said.split('> vcl.use boot\n')[1] ?? '';
    expect(answer).toMatch(/^101 /); // not a command for the unauthenticated
    // The site is still served by the VCL this edge loaded.
    expect((await get('video.test', '/page')).status).toBe(200);
  });
});
