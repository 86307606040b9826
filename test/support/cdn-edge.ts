/**
 * One hyper_cdn edge for tests, outside any node agent: the real Varnish and the real Caddy (two: the edge and the
 * origin side), with the VCL and the Caddy configurations the release renders, in a temporary directory, and the
 * edge program's own steps (EdgeSites, the certificate endpoint). Under `CI=true` a missing varnishd or caddy
 * fails the test (the setup script installs both).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes, X509Certificate } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { adminReady } from '../../src/releases/hyper_edge/caddy-admin.js';
import { edgeCaddyConfig, originCaddyConfig } from '../../src/releases/hyper_cdn/edge/caddy.js';
import { EdgeSites, startCertificateEndpoint, type ServedSite } from '../../src/releases/hyper_cdn/edge/edge-sites.js';
import { freePort } from '../../src/testing/free-port.js';
import { varnishdCommand } from '../../src/releases/hyper_cdn/edge/varnish.js';
import { CHROMIUM, CHROMIUM_FLAGS } from '../../src/testing/chromium.js';
import { edgeVcl } from '../../src/releases/hyper_cdn/edge/vcl.js';

export interface TestEdge {
  dir: string;
  listen: string;
  purgeSocket: string;
  /** `ip:port` of Varnish's management port. */
  management: string;
  /** Loads another site list (what the edge program does when its configuration changes). */
  setSites(sites: ServedSite[]): Promise<void>;
  output(): string;
  stop(): Promise<void>;
}

/** Whether an HTTP server answers on the socket (any status). */
function answers(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request({ socketPath, path: '/', timeout: 2000 }, (res) => {
      res.resume();
      resolve(true);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
    req.end();
  });
}

/** SHA-256 of a certificate's key (SPKI DER), base64: what Chromium's --ignore-certificate-errors-spki-list takes. */
export function spkiHash(certificatePem: string): string {
  const spki = new X509Certificate(certificatePem).publicKey.export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(spki).digest('base64');
}

/**
 * Loads `https://<domain>:<port><path>` in Debian's Chromium (a fresh headless browser), the domain mapped to `ip`,
 * the certificate accepted by its key; with `quic`, QUIC forced on that origin, else disabled. What the page's
 * navigation entry says: its protocol (`h3`, `h2`), its body, its Cache-Status.
 */
export async function loadInChromium(options: {
  ip: string;
  port: number;
  domain: string;
  path: string;
  spki: string[];
  quic: boolean;
}): Promise<{ protocol: string; body: string; cacheStatus: string }> {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: scripts/install-system-deps.sh installs it`);
  const { chromium } = await import('playwright-core');
  const origin = `${options.domain}:${options.port}`;
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    timeout: 60_000,
    args: [
      ...CHROMIUM_FLAGS,
      `--host-resolver-rules=MAP ${options.domain} ${options.ip}`,
      // The CDN's CA is not the system's: its certificate is accepted by its key, over TCP and QUIC alike.
      `--ignore-certificate-errors-spki-list=${options.spki.join(',')}`,
      ...(options.quic ? ['--enable-quic', `--origin-to-force-quic-on=${origin}`] : ['--disable-quic']),
    ],
  });
  try {
    const page = await browser.newPage();
    const response = await page.goto(`https://${origin}${options.path}`, { timeout: 30_000 });
    return {
      protocol: await page.evaluate(
        () => (performance.getEntriesByType('navigation')[0] as PerformanceNavigationTiming).nextHopProtocol,
      ),
      body: (await page.textContent('body')) ?? '',
      cacheStatus: (await response?.headerValue('cache-status')) ?? '',
    };
  } finally {
    await browser.close();
  }
}

export function haveEdgeBinaries(): boolean {
  return ['varnishd', 'caddy'].every((b) => spawnSync('sh', ['-c', `command -v ${b}`]).status === 0);
}

export async function startTestEdge(options: { ip: string; port: number; cacheName: string }): Promise<TestEdge> {
  const dir = mkdtempSync(join(tmpdir(), 'hox-cdn-edge-'));
  const run = join(dir, 'run');
  mkdirSync(run);
  const paths = {
    vcl: join(dir, 'edge.vcl'),
    work: join(dir, 'varnish'),
    varnishSocket: join(run, 'varnish.sock'),
    purgeSocket: join(run, 'purge.sock'),
    originSocket: join(run, 'origin.sock'),
    edgeAdminSocket: join(run, 'caddy-edge-admin.sock'),
    originAdminSocket: join(run, 'caddy-origin-admin.sock'),
  };
  // As the edge program does: Varnish starts with a VCL, the origin-side Caddy with no site, and the sites come
  // with `setSites` (EdgeSites.apply); the edge Caddy asks the certificate endpoint at each handshake.
  writeFileSync(paths.vcl, edgeVcl({ originSocket: paths.originSocket, cacheName: options.cacheName, sites: [] }));
  const sites = new EdgeSites({
    cacheName: options.cacheName,
    varnishWorkDir: paths.work,
    vclFile: join(run, 'live.vcl'),
    originSocket: paths.originSocket,
    originAdminSocket: paths.originAdminSocket,
    originStorageDir: join(dir, 'caddy-origin'),
  });
  const token = randomBytes(24).toString('base64url');
  const certificatePort = await freePort();
  const endpoint = await startCertificateEndpoint({ host: options.ip, port: certificatePort, token, sites });
  let output = '';
  const children: ChildProcess[] = [];
  const start = (argv: string[]): void => {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env } });
    child.stdout.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr.on('data', (c: Buffer) => (output += c.toString()));
    children.push(child);
  };
  const listen = `${options.ip}:${options.port}`;
  const management = `${options.ip}:${await freePort()}`;
  const edgeConfig = join(dir, 'caddy-edge.json');
  writeFileSync(
    edgeConfig,
    JSON.stringify(
      edgeCaddyConfig({
        adminSocket: paths.edgeAdminSocket,
        storageDir: join(dir, 'caddy-edge'),
        listen,
        varnishSocket: paths.varnishSocket,
        certificateUrl: `http://${options.ip}:${certificatePort}/certificate?token=${token}`,
      }),
    ),
  );
  const originConfig = join(dir, 'caddy-origin.json');
  writeFileSync(
    originConfig,
    JSON.stringify(
      originCaddyConfig({
        adminSocket: paths.originAdminSocket,
        storageDir: join(dir, 'caddy-origin'),
        originSocket: paths.originSocket,
        sites: [],
      }),
    ),
  );
  start(['caddy', 'run', '--config', edgeConfig]);
  start(['caddy', 'run', '--config', originConfig]);
  start(
    varnishdCommand({
      workDir: paths.work,
      vclFile: paths.vcl,
      clientSocket: paths.varnishSocket,
      purgeSocket: paths.purgeSocket,
      cacheMiB: 64,
      management,
    }),
  );
  const stop = async (): Promise<void> => {
    for (const child of children) if (child.exitCode === null) child.kill('SIGTERM');
    await Promise.all(
      children.map((child) =>
        child.exitCode !== null ? Promise.resolve() : new Promise<void>((done) => child.once('exit', () => done())),
      ),
    );
    endpoint.close();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    // Varnish binds its sockets before its child (which compiles the VCL) accepts on them: ready once it answers.
    const ready = async () =>
      (await answers(paths.varnishSocket)) &&
      (await adminReady(paths.edgeAdminSocket)) &&
      (await adminReady(paths.originAdminSocket));
    for (let i = 0; i < 150 && !(await ready()); i++) await sleep(100);
    if (!(await ready())) throw new Error(`the edge did not start:\n${output}`);
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    dir,
    listen,
    purgeSocket: paths.purgeSocket,
    management,
    setSites: (served) => sites.apply(served),
    output: () => output,
    stop,
  };
}
