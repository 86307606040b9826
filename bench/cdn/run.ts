/**
 * bench/cdn: hyper_cdn on a platform of three nodes (one edge each), as root, measured in one run against its
 * peer, the origin served directly:
 *
 * 1. a video-like workload: HLS-style segments of 1–4 MB, Zipf popularity (s = 1), many concurrent clients,
 *    through the three edges (clients spread over them) and straight to the origin: throughput, time to first
 *    byte (p50/p99), hit ratio (from Cache-Status), bytes the origin sent;
 * 2. purge latency: a cached object changes at the origin; the purge is sent to every edge at once; measured until
 *    every edge serves the new version (p50/p99), and the purge call alone;
 * 3. new-site latency: from the site's request to the master until every edge answers for its host name;
 * 4. page load in Debian's Chromium over HTTP/3 (QUIC forced) and HTTP/2: a page with its assets, cached at the edge,
 *    a fresh browser context each time (median of the loads).
 *
 * The origin answers after `--origin-delay-ms` (a distant origin's first byte); everything runs on this machine
 * (loopback, 2 cores shared by the clients, the edges and the origin): figures compare, they are not a WAN.
 *
 * npx tsx bench/cdn/run.ts [--requests 600] [--clients 24] [--segments 100] [--origin-delay-ms 20]
 *                          [--purges 20] [--sites 5] [--page-loads 5] [--json]
 */
import { createHash, randomBytes, X509Certificate } from 'node:crypto';
import { existsSync } from 'node:fs';
import { Agent as HttpAgent, createServer, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { chromium } from 'playwright-core';
import { isNotReady, type MasterClient } from '../../src/client/master-client.js';
import { CHROMIUM, CHROMIUM_FLAGS } from '../../src/testing/chromium.js';
import { startHyperDbPlatform, type HyperDbPlatform } from '../../src/testing/hyperdb-platform.js';
import { log, markdownTable, percentileOfSorted } from '../support/report.js';

const { values: args } = parseArgs({
  options: {
    requests: { type: 'string', default: '600' },
    clients: { type: 'string', default: '24' },
    segments: { type: 'string', default: '100' },
    'origin-delay-ms': { type: 'string', default: '20' },
    purges: { type: 'string', default: '20' },
    sites: { type: 'string', default: '5' },
    'page-loads': { type: 'string', default: '5' },
    json: { type: 'boolean', default: false },
  },
});
const REQUESTS = Number(args.requests);
const CLIENTS = Number(args.clients);
const SEGMENTS = Number(args.segments);
const ORIGIN_DELAY_MS = Number(args['origin-delay-ms']);
const PURGES = Number(args.purges);
const SITES = Number(args.sites);
const PAGE_LOADS = Number(args['page-loads']);
const MiB = 1048576;
const ASSETS = 30;

// ---- the origin ----

const BLOB = randomBytes(4 * MiB);
const segmentSize = (n: number): number => MiB + ((n * 7_919_333) % (3 * MiB));
let originBytes = 0;
const versions = new Map<string, number>();

const origin = createServer((req, res) => {
  const path = (req.url ?? '/').split('?')[0]!;
  setTimeout(() => {
    let body: Buffer;
    let type = 'application/octet-stream';
    if (path.startsWith('/seg/')) {
      body = BLOB.subarray(0, segmentSize(Number(path.slice(5).replace('.ts', ''))));
      type = 'video/mp2t';
    } else if (path.startsWith('/fresh/')) {
      body = Buffer.from(`version ${versions.get(path) ?? 1}\n`);
      type = 'text/plain';
    } else if (path === '/page.html') {
      const items = Array.from({ length: ASSETS }, (_, i) => `<img src="/asset/${i}.png" width="8" height="8">`);
      body = Buffer.from(`<!doctype html><html><body><h1>page</h1>${items.join('')}</body></html>`);
      type = 'text/html';
    } else if (path.startsWith('/asset/')) {
      body = BLOB.subarray(0, 20_000);
    } else {
      res.writeHead(404);
      res.end();
      return;
    }
    originBytes += body.length;
    res.writeHead(200, { 'content-type': type, 'content-length': body.length, 'cache-control': 'max-age=3600' });
    res.end(body);
  }, ORIGIN_DELAY_MS);
});

// ---- clients ----

interface Fetched {
  status: number;
  ttfbMs: number;
  bytes: number;
  cacheStatus: string;
  body?: string;
}

type Target =
  { kind: 'http'; host: string; port: number } | { kind: 'https'; url: URL; servername: string; ca: string };

function get(target: Target, path: string, agent: HttpAgent | HttpsAgent, keepBody = false): Promise<Fetched> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const onResponse = (res: IncomingMessage) => {
      const ttfbMs = performance.now() - started;
      let bytes = 0;
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => {
        bytes += c.length;
        if (keepBody) chunks.push(c);
      });
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          ttfbMs,
          bytes,
          cacheStatus: String(res.headers['cache-status'] ?? ''),
          ...(keepBody ? { body: Buffer.concat(chunks).toString('utf8') } : {}),
        }),
      );
    };
    const req =
      target.kind === 'http'
        ? httpRequest({ host: target.host, port: target.port, path, agent: agent }, onResponse)
        : httpsRequest(
            {
              host: target.url.hostname,
              port: Number(target.url.port),
              path,
              servername: target.servername,
              headers: { host: target.servername },
              ca: target.ca,
              agent: agent as HttpsAgent,
            },
            onResponse,
          );
    req.setTimeout(60_000, () => req.destroy(new Error(`GET ${path} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

/** A deterministic Zipf(s = 1) sampler over `n` items. */
function zipf(n: number, seed: number): () => number {
  const weights = Array.from({ length: n }, (_, i) => 1 / (i + 1));
  const total = weights.reduce((a, b) => a + b, 0);
  const cdf: number[] = [];
  let acc = 0;
  for (const w of weights) cdf.push((acc += w / total));
  let state = seed >>> 0;
  const random = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return () => {
    const r = random();
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cdf[mid]! < r) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
}

interface WorkloadResult {
  peer: string;
  requests: number;
  seconds: number;
  mibPerSecond: number;
  ttfbP50: number;
  ttfbP99: number;
  hitRatio: number | null;
  originMiB: number;
  servedMiB: number;
}

async function workload(peer: string, targets: Target[], agents: (HttpAgent | HttpsAgent)[]): Promise<WorkloadResult> {
  const pick = zipf(SEGMENTS, 42);
  const paths = Array.from({ length: REQUESTS }, () => `/seg/${pick()}.ts`);
  const originBefore = originBytes;
  const ttfb: number[] = [];
  let served = 0;
  let hits = 0;
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: CLIENTS }, async (_, client) => {
      const target = targets[client % targets.length]!;
      const agent = agents[client % agents.length]!;
      for (let i = next++; i < paths.length; i = next++) {
        const answer = await get(target, paths[i]!, agent);
        if (answer.status !== 200) throw new Error(`${peer}: ${paths[i]} answered ${answer.status}`);
        ttfb.push(answer.ttfbMs);
        served += answer.bytes;
        if (/; hit/.test(answer.cacheStatus)) hits += 1;
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  ttfb.sort((a, b) => a - b);
  return {
    peer,
    requests: REQUESTS,
    seconds,
    mibPerSecond: served / MiB / seconds,
    ttfbP50: percentileOfSorted(ttfb, 0.5),
    ttfbP99: percentileOfSorted(ttfb, 0.99),
    hitRatio: targets[0]!.kind === 'https' ? hits / REQUESTS : null,
    originMiB: (originBytes - originBefore) / MiB,
    servedMiB: served / MiB,
  };
}

// ---- the platform ----

interface SiteAnswer {
  state?: string;
  site_id?: string;
  edges?: { name: string; url: string; control_url: string }[];
  ca_cert?: string;
  purge_token?: string;
}

async function requestSite(client: MasterClient, title: string, domain: string, originUrl: string) {
  return client.call('requestInstance', {
    title,
    software_release_uri: 'hyper_cdn',
    software_type: 'cdn',
    shared: true,
    parameters: { domains: [domain], origin: originUrl },
  });
}

async function waitLive(client: MasterClient, title: string, domain: string, originUrl: string): Promise<SiteAnswer> {
  for (let i = 0; i < 1200; i++) {
    const answer = await requestSite(client, title, domain, originUrl);
    const site = isNotReady(answer) ? undefined : (answer.connection_parameters as SiteAnswer);
    if (site?.state === 'live') return site;
    await sleep(100);
  }
  throw new Error(`site ${title} not live within 120 s`);
}

function controlCall(site: SiteAnswer, edge: { control_url: string }, body: unknown): Promise<number> {
  const url = new URL(edge.control_url);
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      {
        host: url.hostname,
        port: Number(url.port),
        path: '/purge',
        method: 'POST',
        ca: site.ca_cert!,
        headers: { authorization: `Bearer ${site.purge_token!}`, 'content-type': 'application/json' },
      },
      (res) => {
        res.resume();
        res.on('end', () =>
          res.statusCode === 200 ? resolve(performance.now() - started) : reject(new Error(`purge: ${res.statusCode}`)),
        );
      },
    );
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

const stats = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  return { p50: percentileOfSorted(sorted, 0.5), p99: percentileOfSorted(sorted, 0.99), n: sorted.length };
};
const fmt = (v: number, digits = 1) => (Number.isFinite(v) ? v.toFixed(digits) : '-');

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('bench/cdn runs a platform with partition users: run it as root');
  await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve));
  const originPort = (origin.address() as AddressInfo).port;
  const originUrl = `http://127.0.0.1:${originPort}`;
  log(`origin on ${originUrl} (first byte after ${ORIGIN_DELAY_MS} ms); starting a master and 3 nodes…`);
  let p: HyperDbPlatform | undefined;
  try {
    p = await startHyperDbPlatform({ nodes: 3, partitions: 2, nodeIdPrefix: 'cdnb-node', releases: ['hyper_cdn'] });
    const admin = p.admin;
    await admin.call('requestInstance', {
      title: 'cdn',
      software_release_uri: 'hyper_cdn',
      software_type: 'cdn',
      parameters: { edges: 3, cache_mib: 1024 },
    });
    const site = await waitLive(admin, 'video', 'video.test', originUrl);
    const edges = site.edges!;
    log(`site live on ${edges.map((e) => e.url).join(', ')}`);

    // 1. The workload, through the edges, then straight to the origin.
    const edgeTargets: Target[] = edges.map((e) => ({
      kind: 'https',
      url: new URL(e.url),
      servername: 'video.test',
      ca: site.ca_cert!,
    }));
    const edgeAgents = edges.map(() => new HttpsAgent({ keepAlive: true, maxSockets: CLIENTS }));
    log(`workload: ${REQUESTS} requests of ${SEGMENTS} segments (1–4 MB, Zipf), ${CLIENTS} clients…`);
    const cdn = await workload('hyper_cdn (3 edges, cold cache)', edgeTargets, edgeAgents);
    const warm = await workload('hyper_cdn (3 edges, warm cache)', edgeTargets, edgeAgents);
    const direct = await workload(
      'origin, direct',
      [{ kind: 'http', host: '127.0.0.1', port: originPort }],
      [new HttpAgent({ keepAlive: true, maxSockets: CLIENTS })],
    );

    // 2. Purge latency.
    log(`purges: ${PURGES}…`);
    const purgeCall: number[] = [];
    const untilFresh: number[] = [];
    const agent = new HttpsAgent({ keepAlive: true });
    for (let k = 0; k < PURGES; k++) {
      const path = `/fresh/${k}`;
      for (const target of edgeTargets) await get(target, path, agent);
      versions.set(path, 2);
      const started = performance.now();
      const calls = await Promise.all(
        edges.map((e) => controlCall(site, e, { site: site.site_id, kind: 'url', values: [path] })),
      );
      purgeCall.push(Math.max(...calls));
      await Promise.all(
        edgeTargets.map(async (target) => {
          for (let i = 0; i < 200; i++) {
            if ((await get(target, path, agent, true)).body === 'version 2\n') return;
            await sleep(5);
          }
          throw new Error(`${path} never fresh`);
        }),
      );
      untilFresh.push(performance.now() - started);
    }

    // 3. New-site latency.
    log(`new sites: ${SITES}…`);
    const newSite: number[] = [];
    for (let s = 0; s < SITES; s++) {
      const domain = `s${s}.test`;
      const started = performance.now();
      await requestSite(admin, `new-${s}`, domain, originUrl);
      const ca = site.ca_cert!;
      await Promise.all(
        edges.map(async (e) => {
          const target: Target = { kind: 'https', url: new URL(e.url), servername: domain, ca };
          for (let i = 0; i < 2000; i++) {
            try {
              if ((await get(target, '/fresh/x', new HttpsAgent({ keepAlive: false }))).status === 200) return;
            } catch {
              // no certificate for it yet: the handshake fails
            }
            await sleep(20);
          }
          throw new Error(`${domain} never served by ${e.name}`);
        }),
      );
      newSite.push(performance.now() - started);
    }

    // 4. HTTP/3 vs HTTP/2 page load in Chromium.
    const pageLoads: { protocol: string; loadMs: number[]; seen: string }[] = [];
    if (existsSync(CHROMIUM) && PAGE_LOADS > 0) {
      log(`page loads in Chromium: ${PAGE_LOADS} per protocol…`);
      const edgeUrl = new URL(edges[0]!.url);
      // Warm the edge's cache with the page and its assets.
      await get(edgeTargets[0]!, '/page.html', agent);
      for (let i = 0; i < ASSETS; i++) await get(edgeTargets[0]!, `/asset/${i}.png`, agent);
      // The CDN's CA is not the system's: Chromium accepts the site's certificate by its key (SPKI pin).
      const certificate = await new Promise<string>((resolve, reject) => {
        const req = httpsRequest(
          {
            host: edgeUrl.hostname,
            port: Number(edgeUrl.port),
            servername: 'video.test',
            ca: site.ca_cert!,
            path: '/',
          },
          (res) => {
            const peer = (res.socket as TLSSocket).getPeerCertificate();
            res.resume();
            const spki = new X509Certificate(peer.raw).publicKey.export({ type: 'spki', format: 'der' });
            resolve(createHash('sha256').update(spki).digest('base64'));
          },
        );
        req.on('error', reject);
        req.end();
      });
      for (const [protocol, flags] of [
        ['h3', ['--enable-quic', `--origin-to-force-quic-on=video.test:${edgeUrl.port}`]],
        ['h2', ['--disable-quic']],
      ] as const) {
        const browser = await chromium.launch({
          executablePath: CHROMIUM,
          timeout: 60_000,
          args: [
            ...CHROMIUM_FLAGS,
            `--host-resolver-rules=MAP video.test ${edgeUrl.hostname}`,
            `--ignore-certificate-errors-spki-list=${certificate}`,
            ...flags,
          ],
        });
        const loads: number[] = [];
        let seen = '';
        try {
          for (let i = 0; i < PAGE_LOADS + 1; i++) {
            const context = await browser.newContext();
            const page = await context.newPage();
            await page.goto(`https://video.test:${edgeUrl.port}/page.html`, { waitUntil: 'load', timeout: 30_000 });
            const timing = await page.evaluate(() => {
              const nav = performance.getEntriesByType('navigation')[0] as PerformanceNavigationTiming;
              return { load: nav.loadEventEnd - nav.startTime, protocol: nav.nextHopProtocol };
            });
            seen = timing.protocol;
            if (i > 0) loads.push(timing.load); // the first load of a browser pays its start-up
            await context.close();
          }
        } finally {
          await browser.close();
        }
        pageLoads.push({ protocol, loadMs: loads, seen });
      }
    }

    const results = {
      parameters: { requests: REQUESTS, clients: CLIENTS, segments: SEGMENTS, origin_delay_ms: ORIGIN_DELAY_MS },
      workload: [cdn, warm, direct],
      purge_ms: { call: stats(purgeCall), until_every_edge_fresh: stats(untilFresh) },
      new_site_ms: stats(newSite),
      page_load_ms: pageLoads.map((l) => ({ protocol: l.protocol, seen: l.seen, ...stats(l.loadMs) })),
    };
    if (args.json) {
      process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
      return;
    }
    process.stdout.write(
      `\n${markdownTable(
        ['peer', 'MiB/s', 'TTFB p50 ms', 'TTFB p99 ms', 'hit ratio', 'served MiB', 'origin MiB', 'origin saved'],
        results.workload.map((w) => [
          w.peer,
          fmt(w.mibPerSecond),
          fmt(w.ttfbP50),
          fmt(w.ttfbP99),
          w.hitRatio === null ? '-' : `${fmt(w.hitRatio * 100)} %`,
          fmt(w.servedMiB, 0),
          fmt(w.originMiB, 0),
          `${fmt((1 - w.originMiB / w.servedMiB) * 100)} %`,
        ]),
        1,
      )}\n\n`,
    );
    process.stdout.write(
      `${markdownTable(
        ['what', 'p50 ms', 'p99 ms', 'n'],
        [
          ['purge call, every edge', fmt(results.purge_ms.call.p50), fmt(results.purge_ms.call.p99), String(PURGES)],
          [
            'purge until every edge serves the new version',
            fmt(results.purge_ms.until_every_edge_fresh.p50),
            fmt(results.purge_ms.until_every_edge_fresh.p99),
            String(PURGES),
          ],
          [
            'new site until every edge serves it',
            fmt(results.new_site_ms.p50, 0),
            fmt(results.new_site_ms.p99, 0),
            String(SITES),
          ],
          ...results.page_load_ms.map((l) => [
            `page load in Chromium, ${l.protocol} (seen: ${l.seen}), ${ASSETS} assets`,
            fmt(l.p50),
            fmt(l.p99),
            String(l.n),
          ]),
        ],
        1,
      )}\n`,
    );
  } finally {
    await p?.stop();
    origin.close();
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`${(error as Error).stack ?? String(error)}\n`);
  process.exitCode = 1;
});
