// @ts-check
/**
 * PostgreSQL's archive_command and restore_command for hyper_db: WAL goes to
 * (and comes back from) the cluster's backup location, the router's backup
 * API, over HTTPS with a bearer token read from a 0600 file:
 *
 *   { url, token, ca?, identity_dir? }
 *
 * `ca` (PEM) is the CA the router's certificate must chain to (for its address);
 * `identity_dir` is the member's certificate directory (server-certificate.ts):
 * its `server.json` names the current serial, whose `server-<serial>.key` and
 * `.crt` are presented as the client certificate (when it says `clientAuth`). An `http:` url (a cluster
 * rendered before TLS) is plain.
 *
 *   wal-archive.mjs push <archive.json> <path> <name>     (archive_command: %p %f)
 *   wal-archive.mjs fetch <archive.json> <name> <path>    (restore_command: %f %p)
 *
 * Exit status 0 only when the file is safely stored / fully written, as
 * PostgreSQL requires; fetch exits 1 for a file the archive does not have.
 *
 * fetch also leaves `<archive.json>.missing` ({since}) once a WAL segment is missing from the archive,
 * removed by the next successful fetch: a restore to the latest point (no recovery target) stands for
 * election once the archive has had nothing more to give for a while (PostgresControl.archiveExhausted).
 *
 * Plain JavaScript on purpose: PostgreSQL runs it for every WAL file, and a
 * fast start (no TypeScript loader, even when the keeper runs from sources)
 * keeps shutdowns and switchovers short.
 */
import {
  createReadStream,
  createWriteStream,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';

// Idle time allowed on the socket: a stalled upload fails (and PostgreSQL retries it) instead of holding
// the archiver, and with it any shutdown, for a minute.
const TIMEOUT_MS = 20_000;
const [verb, configPath, a, b] = process.argv.slice(2);

/** @param {string} message @param {number} [code] @returns {never} */
function fail(message, code = 2) {
  process.stderr.write(`wal-archive: ${message}\n`);
  process.exit(code);
}

if ((verb !== 'push' && verb !== 'fetch') || !configPath || !a || !b)
  fail('usage: wal-archive push <archive.json> <path> <name> | fetch <archive.json> <name> <path>');
/** @type {{ url: string, token: string, ca?: string, identity_dir?: string }} */
const target = JSON.parse(readFileSync(configPath, 'utf8'));

/** TLS options: the CA, and the member's current certificate when it has one. @returns {import('node:https').RequestOptions} */
function tlsOptions() {
  if (typeof target.ca !== 'string')
    fail(`${configPath}: an https url needs the CA that signs the router's certificate`);
  /** @type {import('node:https').RequestOptions} */
  const options = { ca: target.ca, minVersion: 'TLSv1.2' };
  if (typeof target.identity_dir === 'string')
    try {
      const { serial, clientAuth } = JSON.parse(readFileSync(join(target.identity_dir, 'server.json'), 'utf8'));
      if (clientAuth !== true) return options; // a server-only certificate (issued before mutual TLS)
      options.key = readFileSync(join(target.identity_dir, `server-${serial}.key`));
      options.cert = readFileSync(join(target.identity_dir, `server-${serial}.crt`));
    } catch {
      // no certificate yet: the router's API does not require one
    }
  return options;
}

/**
 * @param {'PUT' | 'GET'} method
 * @param {string} name
 * @returns {Promise<import('node:http').IncomingMessage>}
 */
function call(method, name) {
  const url = new URL(`/wal/${encodeURIComponent(name)}`, target.url);
  return new Promise((resolve, reject) => {
    const options = { method, headers: { authorization: `Bearer ${target.token}` }, timeout: TIMEOUT_MS };
    const req =
      url.protocol === 'https:' ? httpsRequest(url, { ...options, ...tlsOptions() }) : httpRequest(url, options);
    req.on('response', resolve);
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error('timed out')));
    if (method === 'PUT') {
      req.setHeader('content-length', statSync(String(a)).size);
      createReadStream(String(a)).on('error', reject).pipe(req);
    } else req.end();
  });
}

try {
  if (verb === 'push') {
    const res = await call('PUT', String(b));
    res.resume();
    if (res.statusCode !== 200 && res.statusCode !== 201) fail(`archiving ${b}: HTTP ${res.statusCode}`, 1);
  } else {
    const res = await call('GET', String(a));
    const missing = `${configPath}.missing`;
    if (res.statusCode === 404) {
      res.resume();
      // A segment (not a history file, which PostgreSQL probes for): since when, kept across retries.
      if (/^[0-9A-F]{24}$/.test(String(a)))
        try {
          writeFileSync(missing, JSON.stringify({ since: new Date().toISOString(), name: a }), {
            mode: 0o600,
            flag: 'wx',
          });
        } catch {
          // already there: the archive has had nothing since then
        }
      process.exit(1);
    }
    if (res.statusCode !== 200) fail(`fetching ${a}: HTTP ${res.statusCode}`, 1);
    const tmp = `${b}.hyper_db.tmp`;
    await pipeline(res, createWriteStream(tmp, { mode: 0o600 }));
    renameSync(tmp, String(b));
    rmSync(missing, { force: true });
  }
} catch (error) {
  fail(error instanceof Error ? error.message : String(error), 1);
}
