/**
 * The edge program of hyper_cdn, one per edge partition, beside its Caddy and its Varnish:
 *
 * - hands the sites' certificates to the edge Caddy at each TLS handshake (its certificate endpoint). The node's
 *   agent gets them from the master's sites CA and writes them in `certificates/` (with `status.json`); the edge
 *   holds no CA key. A site the master refused a certificate is not served, and published as such;
 * - applies the sites (edge-sites.ts: origins to the origin-side Caddy, host names to Varnish) whenever
 *   `edge.json` changes, and every minute (a no-op unless a renewal or a restart calls for one);
 * - answers the control API on HTTPS: purges (`POST /purge`) and statistics (`GET /stats?site=ID`), each with
 *   the site's purge token, and `GET /health`;
 * - counts each site's requests, hits, bytes served and fetched from the origin, and times to first byte, from
 *   Varnish's log (varnishncsa);
 * - publishes which sites it serves (`.hox/publish.json`), so that the CDN says when a site is live everywhere.
 *
 * `node edge/main.js <edge.json> <partition path>`
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, timingSafeEqual, X509Certificate } from 'node:crypto';
import { readFileSync, unwatchFile, watchFile } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createServer, get as httpsGet, type Server } from 'node:https';
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server as HttpServer,
  type ServerResponse,
} from 'node:http';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { oneAtATime } from '../../../release-kit/one-at-a-time.js';
import { runProgram, type StopProgram } from '../../../release-kit/run-program.js';
import { writeFileDurably } from '../../../shared/durable-file.js';
import { adminReady } from '../../hyper_edge/caddy-admin.js';
import {
  CONTROL_CERTIFICATE,
  siteCertificateName,
  type EdgeConfig,
  type EdgeSiteSpec,
  type EdgeStatus,
  type PurgeAnswer,
  type PurgeKind,
} from '../protocol.js';
import { EdgeSites, startCertificateEndpoint } from './edge-sites.js';
import { NCSA_FORMAT, SiteCounters } from './stats.js';
import { checkPurge, purge, type Purge } from './varnish.js';

const REFRESH_MS = 60_000;
const RETRY_MS = 2_000;
const MAX_BODY = 64 * 1024;

const [configPath, partitionPath] = process.argv.slice(2);
if (configPath === undefined || partitionPath === undefined) {
  process.stderr.write('usage: edge <edge.json> <partition path>\n');
  process.exit(2);
}
const log = (line: string) => process.stdout.write(`${new Date().toISOString()} ${line}\n`);
const readConfig = (): EdgeConfig => JSON.parse(readFileSync(configPath, 'utf8')) as EdgeConfig;

let config = readConfig();

// ---- certificates (the node's agent writes them, from the master's sites CA) ----

interface CertificateFiles {
  certificateFile: string;
  keyFile: string;
}

type CertificateStatus =
  { ok: true; not_after: string; warning?: string } | { ok: false; error: string; refused: boolean };

const certificateFiles = (name: string): CertificateFiles => ({
  certificateFile: join(config.certificateDir, `${name}.crt`),
  keyFile: join(config.certificateDir, `${name}.key`),
});
const statusFile = () => join(config.certificateDir, 'status.json');

/** What the agent last said of each certificate; none before it wrote any. */
async function certificateStatus(): Promise<Record<string, CertificateStatus>> {
  try {
    return JSON.parse(await readFile(statusFile(), 'utf8')) as Record<string, CertificateStatus>;
  } catch {
    return {};
  }
}

/**
 * A site's certificate from the CDN's ACME service (the root partition: acme/main.ts), kept in the partition
 * (`acme-<site>.crt` and `.key`); the kept one when the root cannot be asked and it is still valid for the names.
 */
async function acmeCertificate(
  site: EdgeSiteSpec,
  acme: NonNullable<EdgeConfig['acme']>,
): Promise<CertificateFiles | { error: string; askAgainMs: number }> {
  const files = certificateFiles(`acme-${site.id}`);
  let error: string;
  // A first order under way: soon; after a failure: once the root orders again; else at the next minute.
  let askAgainMs = REFRESH_MS;
  try {
    const ca = (await caCertificate()) ?? undefined;
    const answer = await fetchJson(`${acme.url}/certificate?site=${site.id}`, acme.token, ca);
    if (answer.status === 200 && typeof answer.body.certificate === 'string' && typeof answer.body.key === 'string') {
      const kept = await readFile(files.certificateFile, 'utf8').catch(() => '');
      if (kept !== answer.body.certificate) {
        await writeFileDurably(files.keyFile, answer.body.key, { mode: 0o600 });
        await writeFileDurably(files.certificateFile, answer.body.certificate, { mode: 0o600 });
        log(`ACME certificate for ${site.domains.join(', ')} (until ${String(answer.body.not_after)})`);
      }
      return files;
    }
    error = typeof answer.body.error === 'string' ? answer.body.error : `HTTP ${answer.status}`;
    const retryAt = typeof answer.body.retry_at === 'string' ? Date.parse(answer.body.retry_at) : NaN;
    if (answer.body.pending === true) askAgainMs = RETRY_MS;
    else if (Number.isFinite(retryAt))
      askAgainMs = Math.min(REFRESH_MS, Math.max(RETRY_MS, retryAt - Date.now() + 3000));
  } catch (e) {
    error = `the CDN's ACME service did not answer: ${(e as Error).message}`;
  }
  try {
    const kept = new X509Certificate(await readFile(files.certificateFile, 'utf8'));
    const names = new Set((kept.subjectAltName ?? '').split(', '));
    if (Date.now() < Date.parse(kept.validTo) && site.domains.every((d) => names.has(`DNS:${d}`))) return files;
  } catch {
    // none kept
  }
  return { error: `ACME certificate ${error}`, askAgainMs };
}

/** A GET with a bearer token, verified against `ca` (the sites CA); the answer's status and JSON body. */
async function fetchJson(
  url: string,
  token: string,
  ca: string | undefined,
): Promise<{ status: number; body: Record<string, unknown> }> {
  return await new Promise((resolve, reject) => {
    const request = httpsGet(
      url,
      { headers: { authorization: `Bearer ${token}` }, ...(ca === undefined ? {} : { ca }), timeout: 5000 },
      (response) => {
        let text = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => {
          text += chunk;
          if (text.length > 256 * 1024) response.destroy(new Error('answer too large'));
        });
        response.on('end', () => {
          try {
            resolve({ status: response.statusCode ?? 0, body: JSON.parse(text) as Record<string, unknown> });
          } catch {
            reject(new Error(`HTTP ${response.statusCode}: not JSON`));
          }
        });
        response.on('error', reject);
      },
    );
    request.on('timeout', () => request.destroy(new Error('timed out')));
    request.on('error', reject);
  });
}

/** The sites CA's roots, as the agent got them; null before it got any. */
async function caCertificate(): Promise<string | null> {
  try {
    return await readFile(join(config.certificateDir, 'ca.crt'), 'utf8');
  } catch {
    return null;
  }
}

// ---- applying the configuration ----

let lastError: string | null = null;
let siteErrors: EdgeStatus['site_errors'] = {};
let applied: { sites: string[]; hash: string; at: string } | null = null;
let published = '';
const edgeSites = new EdgeSites({
  cacheName: config.name,
  varnishWorkDir: config.varnishWorkDir,
  vclFile: config.vclFile,
  originSocket: config.originSocket,
  originAdminSocket: config.originAdminSocket,
  originStorageDir: config.originStorageDir,
});

async function publish(): Promise<void> {
  const status: EdgeStatus = {
    url: `https://${config.ip}:${config.port}`,
    http_url: `http://${config.ip}:${config.httpPort}`,
    control_url: `https://${config.ip}:${config.controlPort}`,
    sites: applied?.sites ?? [],
    config_sha256: applied?.hash ?? '',
    applied_at: applied?.at ?? '',
    site_errors: siteErrors,
    ca_cert: await caCertificate(),
    error: lastError,
  };
  const text = JSON.stringify(status);
  if (text === published) return;
  await writeFileDurably(join(partitionPath!, '.hox', 'publish.json'), `${text}\n`, { mode: 0o640 });
  published = text;
}

async function apply(): Promise<void> {
  config = readConfig();
  try {
    // A site is served once it has its certificate (written by the agent, or from the CDN's ACME service); a
    // site without one is said, not served.
    const status = await certificateStatus();
    const sites = [];
    const errors: EdgeStatus['site_errors'] = {};
    let askAgainMs: number | undefined;
    for (const site of config.sites) {
      if (config.acme !== undefined) {
        const got = await acmeCertificate(site, config.acme);
        if ('error' in got) {
          errors[site.id] = { message: got.error, refused: false };
          askAgainMs = Math.min(askAgainMs ?? got.askAgainMs, got.askAgainMs);
        } else sites.push({ ...site, ...got });
        continue;
      }
      const certificate = status[siteCertificateName(site.id)];
      if (certificate?.ok === true) sites.push({ ...site, ...certificateFiles(siteCertificateName(site.id)) });
      else
        errors[site.id] = {
          message: `no certificate: ${certificate?.error ?? 'not issued yet'}`,
          refused: certificate?.refused ?? false,
        };
    }
    // The certificates are part of what is applied: a renewal is applied (re-read) at once.
    const hash = createHash('sha256').update(JSON.stringify(sites)).update(JSON.stringify(status));
    for (const site of sites) hash.update(await readFile(site.certificateFile));
    await edgeSites.apply(sites);
    for (const [id, { message }] of Object.entries(errors))
      if (siteErrors[id]?.message !== message)
        log(`site ${config.sites.find((s) => s.id === id)?.title ?? id}: ${message}`);
    siteErrors = errors;
    const digest = hash.digest('hex');
    if (applied?.hash !== digest) log(`serving ${sites.length} site(s): ${sites.map((s) => s.title).join(', ')}`);
    applied = {
      sites: sites.map((s) => s.id),
      hash: digest,
      at: applied?.hash === digest ? applied.at : new Date().toISOString(),
    };
    lastError = null;
    // A site still waiting for its ACME certificate: asked again when the root may have it, not at the next minute.
    if (askAgainMs !== undefined && askAgainMs < REFRESH_MS) setTimeout(poke, askAgainMs).unref();
  } catch (error) {
    const message = `configuration not applied: ${(error as Error).message}`;
    if (message !== lastError) log(`${message} (trying again every ${RETRY_MS / 1000} s)`);
    lastError = message;
    // E.g. Varnish still starting: again soon, not at the next minute.
    setTimeout(poke, RETRY_MS).unref();
  }
  await publish();
}

/** One application at a time; a change meanwhile runs another. */
const poke = oneAtATime(apply, (error) => log(`could not apply: ${error.message}`));

// ---- statistics, from Varnish's log ----

const counters = new SiteCounters(config.name);

let reader: ChildProcess | undefined;
let stopping = false;
function readVarnishLog(): void {
  const child = spawn(
    'varnishncsa',
    [
      '-n',
      config.varnishWorkDir,
      '-c',
      '-b',
      // Purges are not requests of a site.
      '-q',
      'not ReqMethod ~ "^(PURGE|BAN|XKEY)$"',
      '-F',
      NCSA_FORMAT,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  reader = child;
  createInterface({ input: child.stdout }).on('line', (line) =>
    counters.count(line, new Set(config.sites.map((s) => s.id))),
  );
  child.stderr.on('data', (chunk: Buffer) => log(`varnishncsa: ${chunk.toString().trim()}`));
  child.on('exit', (code) => {
    if (stopping) return;
    log(`varnishncsa exited (${code}); reading Varnish's log again in 2 s`);
    setTimeout(readVarnishLog, 2000).unref();
  });
}

// ---- the control API ----

class Refusal extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** The site the token opens; the same refusal for an unknown site and a wrong token. */
function authorize(request: IncomingMessage, siteId: unknown): EdgeSiteSpec {
  const header = request.headers.authorization ?? '';
  const token = /^Bearer (\S{16,512})$/.exec(header)?.[1];
  const site = config.sites.find((s) => s.id === siteId);
  if (token === undefined || site === undefined) throw new Refusal(401, 'unknown site or wrong token');
  const given = createHash('sha256').update(token).digest();
  if (!timingSafeEqual(given, Buffer.from(site.token_sha256, 'hex')))
    throw new Refusal(401, 'unknown site or wrong token');
  return site;
}

async function readJson(request: IncomingMessage): Promise<Record<string, unknown>> {
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const chunk of request) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY) throw new Refusal(413, `the body is over ${MAX_BODY} bytes`);
    chunks.push(chunk as Buffer);
  }
  try {
    const value = JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) return value as Record<string, unknown>;
  } catch {
    // below
  }
  throw new Refusal(400, 'the body must be a JSON object');
}

async function handle(request: IncomingMessage, response: ServerResponse): Promise<unknown> {
  const url = new URL(request.url ?? '/', 'https://edge');
  if (request.method === 'GET' && url.pathname === '/health')
    return { edge: config.name, sites: config.sites.length, error: lastError };
  if (request.method === 'GET' && url.pathname === '/stats') {
    const site = authorize(request, url.searchParams.get('site'));
    return counters.of(site.id);
  }
  if (request.method === 'POST' && url.pathname === '/purge') {
    const body = await readJson(request);
    const site = authorize(request, body.site);
    const kind = body.kind as PurgeKind;
    const values = body.values;
    if (!['url', 'prefix', 'tag'].includes(kind)) throw new Refusal(400, 'kind: url, prefix or tag');
    if (
      !Array.isArray(values) ||
      values.length === 0 ||
      values.length > 256 ||
      values.some((v) => typeof v !== 'string')
    )
      throw new Refusal(400, 'values: 1 to 256 strings');
    const strings = values as string[];
    const purges: Purge[] =
      kind === 'tag'
        ? [{ kind: 'tag', tags: strings }]
        : strings.map((v) => (kind === 'url' ? { kind: 'url', path: v } : { kind: 'prefix', prefix: v }));
    try {
      for (const p of purges) checkPurge(p);
    } catch (error) {
      throw new Refusal(400, (error as Error).message);
    }
    for (const p of purges) await purge(config.purgeSocket, site.id, p);
    log(`purged ${kind} ${strings.length === 1 ? strings[0] : `×${strings.length}`} of ${site.title}`);
    const answer: PurgeAnswer = {
      edge: config.name,
      site: site.id,
      kind,
      purged: strings.length,
      at: new Date().toISOString(),
    };
    return answer;
  }
  response.setHeader('allow', 'GET /health, GET /stats, POST /purge');
  throw new Refusal(404, `no ${request.method ?? ''} ${url.pathname}`);
}

/** The control API's certificate and key, once the agent wrote them (waits for them, saying so once). */
async function controlCertificate(): Promise<{ cert: Buffer; key: Buffer }> {
  const { certificateFile, keyFile } = certificateFiles(CONTROL_CERTIFICATE);
  for (let attempt = 0; ; attempt++) {
    const status = (await certificateStatus())[CONTROL_CERTIFICATE];
    if (status?.ok === true) {
      try {
        return { cert: readFileSync(certificateFile), key: readFileSync(keyFile) };
      } catch {
        // written just now: read again below
      }
    }
    if (attempt === 0)
      log(`control API waiting for its certificate (${status?.ok === false ? status.error : 'not issued yet'})`);
    await sleep(RETRY_MS);
  }
}

async function startControl(): Promise<Server> {
  const server = createServer({ ...(await controlCertificate()), minVersion: 'TLSv1.2' }, (request, response) => {
    handle(request, response)
      .then((body) => {
        response.writeHead(200, { 'content-type': 'application/json' });
        response.end(`${JSON.stringify(body)}\n`);
      })
      .catch((error: unknown) => {
        const status = error instanceof Refusal ? error.status : 500;
        const message = error instanceof Error ? error.message : String(error);
        if (status === 500) log(`control API: ${message}`);
        if (!response.headersSent) response.writeHead(status, { 'content-type': 'application/json' });
        response.end(`${JSON.stringify({ error: message, edge: config.name })}\n`);
      });
  });
  server.requestTimeout = 30_000;
  server.headersTimeout = 10_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.controlPort, config.ip, () => resolve());
  });
  // A renewed control certificate is served to new connections without a restart.
  setInterval(() => {
    void controlCertificate()
      .then((pair) => server.setSecureContext(pair))
      .catch((error: unknown) => log(`control certificate not reloaded: ${(error as Error).message}`));
  }, REFRESH_MS).unref();
  return server;
}

/**
 * The edge's plain HTTP port: the answers to ACME `http-01` challenges (relayed from the CDN's ACME service, the
 * only thing served over plain HTTP), and a permanent redirect to HTTPS for everything else.
 */
async function startHttp(): Promise<HttpServer> {
  const server = createHttpServer((request, response) => {
    const path = request.url ?? '/';
    const token = /^\/\.well-known\/acme-challenge\/([A-Za-z0-9_-]{1,256})$/.exec(path)?.[1];
    if (token !== undefined) {
      const acme = config.acme;
      if (acme === undefined) return void response.writeHead(404).end();
      void caCertificate()
        .then((ca) => fetchJson(`${acme.url}/challenge/${token}`, acme.token, ca ?? undefined))
        .then(({ status, body }) => {
          if (status !== 200 || typeof body.key_authorization !== 'string') return void response.writeHead(404).end();
          response.writeHead(200, { 'content-type': 'text/plain' });
          response.end(body.key_authorization);
        })
        .catch((error: unknown) => {
          log(`ACME challenge not relayed: ${(error as Error).message}`);
          response.writeHead(502).end();
        });
      return;
    }
    const host = /^([a-z0-9.-]{1,253})(:\d+)?$/i.exec(request.headers.host ?? '')?.[1];
    if (host === undefined) return void response.writeHead(400).end('a Host is needed\n');
    response.writeHead(308, { location: `https://${host.toLowerCase()}${path.startsWith('/') ? path : '/'}` });
    response.end();
  });
  server.requestTimeout = 10_000;
  server.headersTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.httpPort, config.ip, () => resolve());
  });
  return server;
}

async function main(): Promise<StopProgram> {
  // The edge Caddy asks for certificates from its first handshake on.
  const certificates = await startCertificateEndpoint({
    host: config.ip,
    port: config.certificatePort,
    token: config.certificateToken,
    sites: edgeSites,
  });
  for (let i = 0; i < 300 && !(await adminReady(config.originAdminSocket)); i++) await sleep(100);
  const server = await startControl();
  log(`control API on https://${config.ip}:${config.controlPort}`);
  const http = await startHttp();
  readVarnishLog();
  watchFile(configPath!, { interval: 200 }, poke);
  // New or renewed certificates: the agent writes them with status.json last.
  watchFile(statusFile(), { interval: 200 }, poke);
  poke();
  const timer = setInterval(poke, REFRESH_MS);
  return () => {
    stopping = true;
    clearInterval(timer);
    unwatchFile(configPath!);
    unwatchFile(statusFile());
    reader?.kill('SIGTERM');
    server.close();
    http.close();
    certificates.close();
  };
}

runProgram(main);
