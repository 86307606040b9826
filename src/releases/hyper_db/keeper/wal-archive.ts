/**
 * PostgreSQL's archive_command and restore_command for hyper_db: WAL goes to
 * (and comes back from) the cluster's backup location, the router's backup
 * API, over HTTP with a bearer token read from a 0600 file.
 *
 *   wal-archive push <archive.json> <path> <name>     (archive_command: %p %f)
 *   wal-archive fetch <archive.json> <name> <path>    (restore_command: %f %p)
 *
 * Exit status 0 only when the file is safely stored / fully written, as
 * PostgreSQL requires; fetch exits 1 for a file the archive does not have.
 */
import { createReadStream, createWriteStream, readFileSync, renameSync, statSync } from 'node:fs';
import { request, type IncomingMessage } from 'node:http';
import { pipeline } from 'node:stream/promises';

interface ArchiveTarget {
  url: string;
  token: string;
}

const [verb, configPath, a, b] = process.argv.slice(2);
const TIMEOUT_MS = 60_000;

function fail(message: string, code = 2): never {
  process.stderr.write(`wal-archive: ${message}\n`);
  process.exit(code);
}

if ((verb !== 'push' && verb !== 'fetch') || configPath === undefined || a === undefined || b === undefined)
  fail('usage: wal-archive push <archive.json> <path> <name> | fetch <archive.json> <name> <path>');
const target = JSON.parse(readFileSync(configPath, 'utf8')) as ArchiveTarget;

function call(method: 'PUT' | 'GET', name: string): Promise<IncomingMessage> {
  const url = new URL(`/wal/${encodeURIComponent(name)}`, target.url);
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers: { authorization: `Bearer ${target.token}` }, timeout: TIMEOUT_MS });
    req.on('response', resolve);
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error('timed out')));
    if (method === 'PUT') {
      req.setHeader('content-length', statSync(a as string).size);
      createReadStream(a as string)
        .on('error', reject)
        .pipe(req);
    } else req.end();
  });
}

try {
  if (verb === 'push') {
    const res = await call('PUT', b);
    res.resume();
    if (res.statusCode !== 200 && res.statusCode !== 201) fail(`archiving ${b}: HTTP ${res.statusCode ?? '?'}`, 1);
  } else {
    const res = await call('GET', a);
    if (res.statusCode === 404) {
      res.resume();
      process.exit(1);
    }
    if (res.statusCode !== 200) fail(`fetching ${a}: HTTP ${res.statusCode ?? '?'}`, 1);
    const tmp = `${b}.hyper_db.tmp`;
    await pipeline(res, createWriteStream(tmp, { mode: 0o600 }));
    renameSync(tmp, b);
  }
} catch (error) {
  fail((error as Error).message, 1);
}
