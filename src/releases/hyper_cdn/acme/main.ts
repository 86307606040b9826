/**
 * The ACME service of a CDN's root partition (acme-certificates.ts says what it does and why), with its HTTPS API
 * for the CDN's edges, each call with the edges' token:
 * - `GET /certificate?site=ID`: the site's certificate chain and key (`{certificate, key, not_after}`), or 404 with
 *   why there is none yet (`{error}`);
 * - `GET /challenge/TOKEN`: the answer to an `http-01` challenge in progress (the edge that the CA reached relays
 *   it), or 404.
 *
 * `node acme/main.js <acme.json> <partition path>`
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync, unwatchFile, watchFile } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { createServer } from 'node:https';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import acme from 'acme-client';
import { oneAtATime } from '../../../release-kit/one-at-a-time.js';
import { runProgram, type StopProgram } from '../../../release-kit/run-program.js';
import { writeFileDurably } from '../../../shared/durable-file.js';
import {
  orderCertificate,
  orderDue,
  retryAtMs,
  usable,
  type AcmeConfig,
  type SiteAcmeState,
} from './acme-certificates.js';

const REFRESH_MS = 60_000;

const [configPath, partitionPath] = process.argv.slice(2);
if (configPath === undefined || partitionPath === undefined) {
  process.stderr.write('usage: acme <acme.json> <partition path>\n');
  process.exit(2);
}
const log = (line: string) => process.stdout.write(`${new Date().toISOString()} ${line}\n`);
const readConfig = (): AcmeConfig => JSON.parse(readFileSync(configPath, 'utf8')) as AcmeConfig;
let config = readConfig();

/** Answers to the challenges in progress, by token. */
const challenges = new Map<string, string>();
const states = new Map<string, SiteAcmeState>();

const stateFile = (siteId: string) => join(config.stateDir, `${siteId}.json`);

async function loadState(siteId: string): Promise<SiteAcmeState | undefined> {
  if (states.has(siteId)) return states.get(siteId);
  try {
    const state = JSON.parse(await readFile(stateFile(siteId), 'utf8')) as SiteAcmeState;
    states.set(siteId, state);
    return state;
  } catch {
    return undefined;
  }
}

async function saveState(siteId: string, state: SiteAcmeState): Promise<void> {
  states.set(siteId, state);
  await writeFileDurably(stateFile(siteId), JSON.stringify(state), { mode: 0o600 });
}

/** The CDN's ACME account key, made once and kept in the partition. */
async function accountKey(): Promise<string> {
  const file = join(config.stateDir, 'account.key');
  try {
    return await readFile(file, 'utf8');
  } catch {
    const key = (await acme.crypto.createPrivateEcdsaKey('P-256')).toString();
    await writeFileDurably(file, key, { mode: 0o600 });
    return key;
  }
}

/** Orders what is due, one site at a time. */
async function renew(): Promise<void> {
  config = readConfig();
  await mkdir(config.stateDir, { recursive: true, mode: 0o700 });
  for (const site of config.sites) {
    const state = await loadState(site.id);
    if (!orderDue(state, site.domains, Date.now())) continue;
    const started = Date.now();
    try {
      const account = {
        directory: config.directory,
        accountKeyPem: await accountKey(),
        ...(config.email === undefined ? {} : { email: config.email }),
        ...(config.caPem === undefined ? {} : { caPem: config.caPem }),
      };
      const issued = await orderCertificate(account, site.domains, {
        publish: (token, answer) => challenges.set(token, answer),
        withdraw: (token) => challenges.delete(token),
      });
      await saveState(site.id, issued);
      log(
        `certificate for ${site.domains.join(', ')} obtained in ${Date.now() - started} ms (until ${new Date(issued.notAfterMs!).toISOString()})`,
      );
    } catch (error) {
      const message = (error as Error).message;
      const failures = (state?.failures ?? 0) + 1;
      log(`certificate for ${site.domains.join(', ')} not obtained (${failures} in a row): ${message}`);
      // A certificate still valid for the same names keeps serving.
      await saveState(site.id, {
        ...(state !== undefined && usable(state, site.domains, Date.now()) ? state : {}),
        domains: site.domains,
        error: message,
        failedAtMs: Date.now(),
        failures,
      });
    }
  }
}

const poke = oneAtATime(renew, (error) => log(`renewal pass failed: ${error.message}`));

function authorized(header: string | undefined): boolean {
  const token = /^Bearer (\S{16,512})$/.exec(header ?? '')?.[1];
  if (token === undefined) return false;
  const given = createHash('sha256').update(token).digest();
  const expected = createHash('sha256').update(config.token).digest();
  return timingSafeEqual(given, expected);
}

async function serverCertificate(): Promise<{ cert: Buffer; key: Buffer }> {
  for (let attempt = 0; ; attempt++) {
    try {
      return { cert: readFileSync(config.certificateFile), key: readFileSync(config.keyFile) };
    } catch {
      if (attempt === 0) log('API waiting for its certificate');
      await sleep(2000);
    }
  }
}

async function main(): Promise<StopProgram> {
  const server = createServer({ ...(await serverCertificate()), minVersion: 'TLSv1.2' }, (request, response) => {
    const url = new URL(request.url ?? '/', 'https://root');
    const answer = (status: number, body: unknown) => {
      response.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      response.end(`${JSON.stringify(body)}\n`);
    };
    if (request.method !== 'GET') return answer(405, { error: 'GET only' });
    if (!authorized(request.headers.authorization)) return answer(401, { error: 'wrong token' });
    const challenge = /^\/challenge\/([A-Za-z0-9_-]{1,256})$/.exec(url.pathname)?.[1];
    if (challenge !== undefined) {
      const keyAuthorization = challenges.get(challenge);
      return keyAuthorization === undefined
        ? answer(404, { error: 'no such challenge in progress' })
        : answer(200, { key_authorization: keyAuthorization });
    }
    if (url.pathname === '/certificate') {
      const site = config.sites.find((s) => s.id === url.searchParams.get('site'));
      if (site === undefined) return answer(404, { error: 'no such site on this CDN' });
      const state = states.get(site.id);
      if (state !== undefined && usable(state, site.domains, Date.now()))
        return answer(200, {
          certificate: state.chainPem,
          key: state.keyPem,
          not_after: new Date(state.notAfterMs!).toISOString(),
        });
      // `pending`: no order failed yet (the edges ask again soon); after a failure, when the next order is due.
      const retryAt = retryAtMs(state);
      return answer(404, {
        error: state?.error === undefined ? 'not obtained yet' : `not obtained: ${state.error}`,
        pending: state?.error === undefined,
        ...(retryAt === undefined ? {} : { retry_at: new Date(retryAt).toISOString() }),
      });
    }
    return answer(404, { error: `no ${url.pathname}` });
  });
  server.requestTimeout = 10_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.ip, () => resolve());
  });
  log(`ACME (${config.directory}) for ${config.sites.length} site(s); API on https://${config.ip}:${config.port}`);
  // A renewed API certificate (sites CA) for new connections.
  const reload = setInterval(() => {
    void serverCertificate().then((pair) => server.setSecureContext(pair));
  }, REFRESH_MS);
  watchFile(configPath!, { interval: 200 }, poke);
  poke();
  const timer = setInterval(poke, REFRESH_MS);
  return () => {
    clearInterval(timer);
    clearInterval(reload);
    unwatchFile(configPath!);
    server.close();
  };
}

runProgram(main);
