/**
 * What docs/hyper-db.md says of hyper_db's two HTTP APIs and of its backups, proved against the real code
 * (no cluster: the router's BackupStore and the keeper's peer server run in-process on 127.0.0.1) and, for
 * backups, a real PostgreSQL 15:
 *
 * - the backup API: the peer token may do everything; the read-only backup token (published for restores)
 *   may list and download base backups and fetch WAL, and nothing else — no WAL upload (also through
 *   `wal-archive.mjs push`, as PostgreSQL's archive_command runs it), no certificate, no pause; no token or a
 *   wrong one is refused on every route; WAL names and backup ids that could leave their directory are
 *   refused; bodies are bounded; an archived name is taken again only with identical content;
 * - the peer API: no token or a wrong one is refused on every route before anything runs; bodies are bounded
 *   at 64 KiB; a body that is not JSON is refused;
 * - base backups: a listed backup is verified (one `pg_verifybackup` refuses is not listed, and leaves
 *   nothing behind); a second backup asked for while one runs is not started; a restore picks the named
 *   backup (checked by its manifest, by `pg_verifybackup` and by starting PostgreSQL on it), else the newest
 *   one finished before the target time.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { request, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { callPeer, startPeerServer, type Handler } from '../src/releases/hyper_db/keeper/peer-api.js';
import { PostgresControl } from '../src/releases/hyper_db/keeper/postgres-control.js';
import {
  SUPERUSER,
  type KeeperConfig,
  type MemberAddress,
  type PauseRequestBody,
} from '../src/releases/hyper_db/protocol.js';
import { BackupStore, type BackupInfo } from '../src/releases/hyper_db/router/backup-store.js';
import { freePort } from '../src/testing/free-port.js';
import { findPostgresBinDir, startPostgres, type PostgresServer } from '../src/testing/postgres-server.js';

const exec = promisify(execFile);
const HOST = '127.0.0.1';
const WAL_ARCHIVE = fileURLToPath(new URL('../src/releases/hyper_db/keeper/wal-archive.mjs', import.meta.url));
const SEGMENT = '000000010000000000000001';
const NEW_SEGMENT = '000000010000000000000002';
const FAKE_BACKUP = '20260101T000000Z';
const KIB = 1024;
const MIB = 1024 * KIB;

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/** One HTTP request to 127.0.0.1:port, the path sent as given (no normalisation). */
function call(
  port: number,
  method: string,
  path: string,
  options: { authorization?: string; body?: string | Buffer } = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = {};
    if (options.authorization !== undefined) headers['authorization'] = options.authorization;
    if (options.body !== undefined) headers['content-length'] = Buffer.byteLength(options.body);
    const req = request({ host: HOST, port, method, path, headers, agent: false, timeout: 30_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${path}: timed out`)));
    req.on('error', reject);
    req.end(options.body);
  });
}

const bearer = (token: string): string => `Bearer ${token}`;

/** Every file under `dir` with its size, for "nothing was written" checks. */
function tree(dir: string): Record<string, number> {
  const out: Record<string, number> = {};
  const walk = (d: string): void => {
    for (const entry of readdirSync(d, { withFileTypes: true })) {
      const path = join(d, entry.name);
      if (entry.isDirectory()) walk(path);
      else out[relative(dir, path)] = statSync(path).size;
    }
  };
  walk(dir);
  return out;
}

/** `wal-archive.mjs` as PostgreSQL runs it (archive_command / restore_command): its exit code and stderr. */
async function walArchive(args: string[]): Promise<{ code: number; stderr: string }> {
  try {
    const { stderr } = await exec(process.execPath, [WAL_ARCHIVE, ...args], { timeout: 90_000 });
    return { code: 0, stderr };
  } catch (error) {
    const failed = error as { code?: unknown; stderr?: string };
    if (typeof failed.code !== 'number') throw error;
    return { code: failed.code, stderr: failed.stderr ?? '' };
  }
}

/** Bad `Authorization` headers for a token: none, empty, wrong, same length, other schemes. */
function badAuthorizations(token: string): (string | undefined)[] {
  const sameLength = token.slice(0, -1) + (token.endsWith('0') ? '1' : '0');
  return [
    undefined,
    '',
    'Bearer ',
    'Bearer wrong',
    bearer(sameLength),
    bearer(token.slice(0, -1)),
    token,
    `Basic ${Buffer.from(`hox:${token}`).toString('base64')}`,
  ];
}

describe('hyper_db backup API: tokens, names, bounds', () => {
  const PEER_TOKEN = randomBytes(32).toString('base64url');
  const BACKUP_TOKEN = randomBytes(32).toString('base64url');
  let partition: string;
  let store: BackupStore;
  let port: number;
  const certificateRequests: { member: string; publicKey: string }[] = [];
  const pauses: PauseRequestBody[] = [];
  const walDir = (): string => join(partition, 'backups', 'wal');

  beforeAll(async () => {
    partition = await mkdtemp(join(tmpdir(), 'hox-backup-api-'));
    store = new BackupStore({
      partitionPath: partition,
      binDir: '/nonexistent',
      peerToken: () => PEER_TOKEN,
      backupToken: () => BACKUP_TOKEN,
      superuserPassword: () => 'unused',
      tlsEnv: () => ({}),
      issueCertificate: (member, publicKey) => {
        certificateRequests.push({ member, publicKey });
        return { certificate: `certificate for ${member}` };
      },
      pause: (body) => {
        pauses.push(body);
        return Promise.resolve({ paused: true, waitedMs: 3 });
      },
      log: () => {},
    });
    port = await freePort();
    await store.start(HOST, port);
    // A WAL segment and a listed base backup, in the store's own layout, for the read routes.
    writeFileSync(join(walDir(), SEGMENT), 'segment one');
    const backupDir = join(partition, 'backups', 'base', FAKE_BACKUP);
    mkdirSync(backupDir);
    writeFileSync(join(backupDir, 'PG_VERSION'), '15\n');
    const info: BackupInfo = {
      id: FAKE_BACKUP,
      startedAt: '2026-01-01T00:00:00.000Z',
      finishedAt: '2026-01-01T00:00:01.000Z',
      member: 'member-1',
      bytes: 3,
      verified: true,
    };
    writeFileSync(join(backupDir, 'hyper_db-backup.json'), JSON.stringify(info));
    // Outside the WAL and base directories: no route may reach it.
    writeFileSync(join(partition, 'router.json'), 'TOP SECRET');
  });
  afterAll(async () => {
    await store?.stop();
    if (partition !== undefined) await rm(partition, { recursive: true, force: true });
  });

  const certificateBody = JSON.stringify({ member: 'member-1', publicKey: 'PUBLIC KEY' });
  const pauseBody = JSON.stringify({ switchoverId: 's1', from: 'member-1' });

  it('refuses every route, before doing anything, without the right token', async () => {
    const before = tree(partition);
    const routes: [string, string, string?][] = [
      ['GET', '/backups'],
      ['GET', `/backups/${FAKE_BACKUP}.tar`],
      ['GET', `/wal/${SEGMENT}`],
      ['PUT', `/wal/${NEW_SEGMENT}`, 'a new segment'],
      ['PUT', `/wal/${SEGMENT}`, 'segment one'],
      ['POST', '/tls/certificate', certificateBody],
      ['POST', '/pause', pauseBody],
      ['DELETE', `/wal/${SEGMENT}`],
      ['GET', '/no-such-route'],
    ];
    const answers: string[] = [];
    for (const authorization of [...badAuthorizations(PEER_TOKEN), ...badAuthorizations(BACKUP_TOKEN)])
      for (const [method, path, body] of routes) {
        const answer = await call(port, method, path, {
          ...(authorization === undefined ? {} : { authorization }),
          ...(body === undefined ? {} : { body }),
        });
        answers.push(`${method} ${path} ${answer.status} ${answer.body.toString()}`);
      }
    expect(answers.filter((a) => !a.endsWith(' 401 missing or wrong token'))).toEqual([]);
    expect(answers.length).toBe(routes.length * 16);
    expect(certificateRequests).toEqual([]);
    expect(pauses).toEqual([]);
    expect(tree(partition)).toEqual(before);
  });

  it('lets the read-only backup token list and download backups and fetch WAL, and nothing else', async () => {
    const auth = { authorization: bearer(BACKUP_TOKEN) };
    const list = await call(port, 'GET', '/backups', auth);
    expect(list.status).toBe(200);
    expect((JSON.parse(list.body.toString()) as BackupInfo[]).map((b) => b.id)).toEqual([FAKE_BACKUP]);
    const tar = await call(port, 'GET', `/backups/${FAKE_BACKUP}.tar`, auth);
    expect(tar.status).toBe(200);
    expect(tar.headers['content-type']).toBe('application/x-tar');
    expect(tar.body.toString('latin1')).toContain('./PG_VERSION');
    expect(tar.body.toString('latin1')).not.toContain('hyper_db-backup.json');
    const wal = await call(port, 'GET', `/wal/${SEGMENT}`, auth);
    expect([wal.status, wal.body.toString()]).toEqual([200, 'segment one']);

    const before = tree(partition);
    const refused = [
      await call(port, 'PUT', `/wal/${NEW_SEGMENT}`, { ...auth, body: 'a new segment' }),
      await call(port, 'PUT', `/wal/${SEGMENT}`, { ...auth, body: 'segment one' }),
      await call(port, 'PUT', `/wal/00000002.history`, { ...auth, body: 'history' }),
      await call(port, 'POST', '/tls/certificate', { ...auth, body: certificateBody }),
      await call(port, 'POST', '/pause', { ...auth, body: pauseBody }),
    ];
    expect(refused.map((a) => a.status)).toEqual([401, 401, 401, 401, 401]);
    expect(certificateRequests).toEqual([]);
    expect(pauses).toEqual([]);
    expect(tree(partition)).toEqual(before);
  });

  it('lets the peer token archive WAL (identical content only, for a name already taken), sign and pause', async () => {
    const auth = { authorization: bearer(PEER_TOKEN) };
    expect((await call(port, 'PUT', `/wal/${NEW_SEGMENT}`, { ...auth, body: 'segment two' })).status).toBe(201);
    expect((await call(port, 'GET', `/wal/${NEW_SEGMENT}`, auth)).body.toString()).toBe('segment two');
    expect((await call(port, 'PUT', `/wal/${NEW_SEGMENT}`, { ...auth, body: 'segment two' })).status).toBe(200);
    const clash = await call(port, 'PUT', `/wal/${NEW_SEGMENT}`, { ...auth, body: 'segment 2!!' });
    expect([clash.status, clash.body.toString()]).toEqual([409, 'a different file has that name']);
    expect(readFileSync(join(walDir(), NEW_SEGMENT), 'utf8')).toBe('segment two');
    expect((await call(port, 'GET', '/backups', auth)).status).toBe(200);
    expect((await call(port, 'GET', `/backups/${FAKE_BACKUP}.tar`, auth)).status).toBe(200);

    const certificate = await call(port, 'POST', '/tls/certificate', { ...auth, body: certificateBody });
    expect([certificate.status, JSON.parse(certificate.body.toString())]).toEqual([
      200,
      { certificate: 'certificate for member-1' },
    ]);
    expect(certificateRequests).toEqual([{ member: 'member-1', publicKey: 'PUBLIC KEY' }]);
    const pause = await call(port, 'POST', '/pause', { ...auth, body: pauseBody });
    expect([pause.status, JSON.parse(pause.body.toString())]).toEqual([200, { paused: true, waitedMs: 3 }]);
    expect(pauses).toEqual([{ switchoverId: 's1', from: 'member-1' }]);
    certificateRequests.length = 0;
    pauses.length = 0;
  });

  it('takes WAL from wal-archive.mjs push only with the peer token, and serves it to fetch with either', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hox-wal-archive-'));
    try {
      const config = (name: string, token: string): string => {
        const path = join(dir, name);
        writeFileSync(path, JSON.stringify({ url: `http://${HOST}:${port}`, token }), { mode: 0o600 });
        return path;
      };
      const peer = config('peer.json', PEER_TOKEN);
      const backup = config('backup.json', BACKUP_TOKEN);
      const wrong = config('wrong.json', `${PEER_TOKEN}x`);
      const segment = join(dir, 'segment');
      writeFileSync(segment, randomBytes(256 * KIB));
      const name = '000000010000000000000003';

      const asBackup = await walArchive(['push', backup, segment, name]);
      expect(asBackup).toEqual({ code: 1, stderr: `wal-archive: archiving ${name}: HTTP 401\n` });
      expect((await walArchive(['push', wrong, segment, name])).code).toBe(1);
      expect(readdirSync(walDir())).not.toContain(name);

      expect(await walArchive(['push', peer, segment, name])).toEqual({ code: 0, stderr: '' });
      expect(readFileSync(join(walDir(), name)).equals(readFileSync(segment))).toBe(true);
      // PostgreSQL may archive a file again after a crash: the same content succeeds, another fails.
      expect((await walArchive(['push', peer, segment, name])).code).toBe(0);
      const other = join(dir, 'other');
      writeFileSync(other, randomBytes(256 * KIB));
      expect((await walArchive(['push', peer, other, name])).code).toBe(1);
      expect(readFileSync(join(walDir(), name)).equals(readFileSync(segment))).toBe(true);

      for (const token of [backup, peer]) {
        const fetched = join(dir, `fetched-${relative(dir, token)}`);
        expect(await walArchive(['fetch', token, name, fetched])).toEqual({ code: 0, stderr: '' });
        expect(readFileSync(fetched).equals(readFileSync(segment))).toBe(true);
      }
      const wrongFetch = join(dir, 'wrong-fetch');
      expect((await walArchive(['fetch', wrong, name, wrongFetch])).code).toBe(1);
      const missing = join(dir, 'missing');
      expect(await walArchive(['fetch', backup, '000000010000000000000009', missing])).toEqual({
        code: 1,
        stderr: '',
      });
      expect(readdirSync(dir).filter((f) => f.startsWith('wrong-fetch') || f.startsWith('missing'))).toEqual([]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('refuses WAL names and backup ids that could leave their directory, even with the peer token', async () => {
    const auth = { authorization: bearer(PEER_TOKEN) };
    const before = tree(partition);
    const walPaths = [
      '/wal/..%2Frouter.json',
      '/wal/..%2F..%2Frouter.json',
      '/wal/%2e%2e%2f%2e%2e%2frouter.json',
      '/wal/../../router.json',
      `/wal/${SEGMENT}/../../../router.json`,
      `/wal/${SEGMENT}%2F..%2F..%2F..%2Frouter.json`,
      `/wal/..%2Fbase%2F${FAKE_BACKUP}%2Fhyper_db-backup.json`,
      '/wal/..',
      '/wal/.',
      `/wal/${SEGMENT}.tmp`,
      `/wal/${SEGMENT}%00`,
      '/wal/00000001000000000000000a',
      '/wal//router.json',
    ];
    for (const path of walPaths) {
      const got = await call(port, 'GET', path, auth);
      expect([path, got.status, got.body.toString()]).toEqual([path, 404, '']);
      const put = await call(port, 'PUT', path, { ...auth, body: 'overwritten' });
      expect([path, put.status]).toEqual([path, 404]);
    }
    const backupPaths = [
      '/backups/..%2F..%2F.tar',
      '/backups/..%2Fwal.tar',
      '/backups/../wal.tar',
      `/backups/${FAKE_BACKUP}%2F..%2F...tar`,
      `/backups/${FAKE_BACKUP}/../${FAKE_BACKUP}.tar`,
      '/backups/%2e%2e.tar',
      `/backups/${FAKE_BACKUP}`,
      `/backups/${FAKE_BACKUP}.tmp.tar`,
    ];
    for (const path of backupPaths) {
      const got = await call(port, 'GET', path, auth);
      expect([path, got.status, got.body.length]).toEqual([path, 404, 0]);
    }
    expect(tree(partition)).toEqual(before);
    expect(readFileSync(join(partition, 'router.json'), 'utf8')).toBe('TOP SECRET');
  });

  it('bounds request bodies and refuses malformed ones', async () => {
    const auth = { authorization: bearer(PEER_TOKEN) };
    const big = (bytes: number): string => JSON.stringify({ member: 'member-1', publicKey: 'k'.repeat(bytes) });
    const tooBigCertificate = await call(port, 'POST', '/tls/certificate', { ...auth, body: big(16 * KIB) });
    expect([tooBigCertificate.status, tooBigCertificate.body.toString()]).toEqual([413, 'body too large']);
    const tooBigPause = await call(port, 'POST', '/pause', { ...auth, body: ' '.repeat(4 * KIB + 1) + pauseBody });
    expect(tooBigPause.status).toBe(413);
    for (const path of ['/tls/certificate', '/pause']) {
      for (const body of ['', '{', 'member-1', '{"member": 1}', '[]', '7']) {
        const answer = await call(port, 'POST', path, { ...auth, body });
        expect([path, body, answer.status]).toEqual([path, body, 400]);
      }
    }
    expect(certificateRequests).toEqual([]);
    expect(pauses).toEqual([]);

    // A WAL file over 64 MiB: the upload is cut (500 or a reset connection) and nothing is stored.
    const name = '000000010000000000000004';
    const outcome = await call(port, 'PUT', `/wal/${name}`, { ...auth, body: Buffer.alloc(64 * MIB + 1) }).then(
      (answer) => answer.status,
      (error: Error) => error.message,
    );
    expect(outcome).not.toBe(201);
    expect(outcome).not.toBe(200);
    expect((await call(port, 'GET', `/wal/${name}`, auth)).status).toBe(404);
    // Exactly 64 MiB is a WAL file's size bound, not over it.
    const atBound = await call(port, 'PUT', `/wal/${name}`, { ...auth, body: Buffer.alloc(64 * MIB) });
    expect(atBound.status).toBe(201);
    expect(statSync(join(walDir(), name)).size).toBe(64 * MIB);
  });
});

describe('hyper_db peer API (keeper): tokens and bodies', () => {
  let token = randomBytes(32).toString('base64url');
  let server: Server;
  let port: number;
  const calls: { route: string; body: unknown }[] = [];
  const ROUTES = ['GET /status', 'GET /metrics', 'POST /heartbeat', 'POST /vote', 'POST /release', 'POST /takeover'];

  beforeAll(async () => {
    port = await freePort();
    const routes: Record<string, Handler> = {};
    for (const route of ROUTES)
      routes[route] = (body) => {
        calls.push({ route, body });
        return route === 'GET /metrics' ? { text: 'hyperdb_term 3\n' } : { json: { ok: true, route } };
      };
    server = await startPeerServer({ host: HOST, port, token: () => token, routes });
  });
  afterAll(async () => {
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  });

  it('refuses every route, and unknown ones, without the right token, before any handler runs', async () => {
    const answers: string[] = [];
    for (const authorization of badAuthorizations(token))
      for (const route of [...ROUTES, 'GET /nothing', 'POST /nothing', 'DELETE /status']) {
        const [method = '', path = ''] = route.split(' ');
        const answer = await call(port, method, path, {
          ...(authorization === undefined ? {} : { authorization }),
          ...(method === 'POST' ? { body: '{"term": 7}' } : {}),
        });
        answers.push(`${route} ${answer.status} ${answer.body.toString()}`);
      }
    expect(answers.filter((a) => !a.endsWith(' 401 {"error":"missing or wrong peer token"}'))).toEqual([]);
    expect(answers.length).toBe(8 * 9);
    expect(calls).toEqual([]);
    await expect(callPeer({ host: HOST, keeperPort: port }, `${token}x`, '/status', undefined, 5000)).rejects.toThrow(
      `/status on ${HOST}:${port}: HTTP 401`,
    );
    expect(calls).toEqual([]);
  });

  it('serves every route with the token it holds now, bodies parsed', async () => {
    const auth = { authorization: bearer(token) };
    for (const route of ROUTES) {
      const [method = '', path = ''] = route.split(' ');
      const answer = await call(port, method, path, { ...auth, ...(method === 'POST' ? { body: '{"term":7}' } : {}) });
      expect([route, answer.status]).toEqual([route, 200]);
    }
    expect(calls).toEqual(ROUTES.map((route) => ({ route, body: route.startsWith('POST') ? { term: 7 } : undefined })));
    expect(await callPeer({ host: HOST, keeperPort: port }, token, '/vote', { term: 8 }, 5000)).toEqual({
      ok: true,
      route: 'POST /vote',
    });
    calls.length = 0;
    // The token is read for each request: once it changes, the old one is refused.
    const old = token;
    token = randomBytes(32).toString('base64url');
    expect((await call(port, 'GET', '/status', { authorization: bearer(old) })).status).toBe(401);
    expect((await call(port, 'GET', '/status', { authorization: bearer(token) })).status).toBe(200);
    expect(calls.length).toBe(1);
    calls.length = 0;
  });

  it('takes bodies up to 64 KiB and refuses larger or malformed ones without calling the handler', async () => {
    const auth = { authorization: bearer(token) };
    // A JSON string of exactly 64 KiB (quotes included) is taken.
    const atBound = JSON.stringify('x'.repeat(64 * KIB - 2));
    expect(Buffer.byteLength(atBound)).toBe(64 * KIB);
    expect((await call(port, 'POST', '/heartbeat', { ...auth, body: atBound })).status).toBe(200);
    expect(calls.length).toBe(1);
    calls.length = 0;
    const overBound = JSON.stringify('x'.repeat(64 * KIB - 1));
    const refused = await call(port, 'POST', '/vote', { ...auth, body: overBound });
    expect([refused.status, refused.body.toString()]).toEqual([413, '{"error":"body too large"}']);
    // Far over: the server answers without reading the rest, so the client may meet a closed connection.
    const far = await call(port, 'POST', '/vote', { ...auth, body: JSON.stringify('x'.repeat(4 * MIB)) }).then(
      (answer) => answer.status,
      (error: Error) => error.message,
    );
    expect(far === 413 || /EPIPE|ECONNRESET|socket hang up/.test(String(far))).toBe(true);
    for (const body of ['', '{', '{"term": 7', 'term=7', '\u0000']) {
      const answer = await call(port, 'POST', '/vote', { ...auth, body });
      expect([body, answer.status, answer.body.toString()]).toEqual([body, 400, '{"error":"body is not JSON"}']);
    }
    expect(calls).toEqual([]);
  });
});

/** The uid/gid PostgreSQL runs as under root (it refuses root), from /etc/passwd; null when not root. */
function postgresUser(): { uid: number; gid: number } | null {
  if (process.getuid?.() !== 0) return null;
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('postgres:'));
  const [, , uid, gid] = line?.split(':') ?? [];
  if (uid === undefined || gid === undefined) throw new Error('no postgres system user to run PostgreSQL as');
  return { uid: Number(uid), gid: Number(gid) };
}

/** Starts PostgreSQL on a restored data directory, runs one query, stops it. */
async function queryRestored(
  binDir: string,
  dataDir: string,
  owned: string,
  text: string,
): Promise<Record<string, unknown>[]> {
  const user = postgresUser();
  if (user !== null) await exec('chown', ['-R', `${user.uid}:${user.gid}`, owned]);
  const port = await freePort();
  const child: ChildProcess = spawn(
    join(binDir, 'postgres'),
    ['-D', dataDir, '-p', String(port), '-k', '', '-c', 'listen_addresses=127.0.0.1'],
    { stdio: ['ignore', 'ignore', 'pipe'], ...(user ?? {}) },
  );
  let log = '';
  child.stderr?.on('data', (d: Buffer) => (log += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    for (let attempt = 0; ; attempt += 1) {
      const client = new pg.Client({ host: HOST, port, user: 'hox', database: 'postgres' });
      client.on('error', () => {});
      try {
        await client.connect();
        return (await client.query<Record<string, unknown>>(text)).rows;
      } catch (error) {
        if (attempt >= 150 || child.exitCode !== null) throw new Error(`restored PostgreSQL: ${String(error)}\n${log}`);
      } finally {
        await client.end().catch(() => {});
      }
      await sleep(200);
    }
  } finally {
    child.kill('SIGINT');
    await exited;
  }
}

describe('hyper_db base backups against a real PostgreSQL 15', () => {
  const PEER_TOKEN = randomBytes(32).toString('base64url');
  const BACKUP_TOKEN = randomBytes(32).toString('base64url');
  const binDir = findPostgresBinDir() ?? '/usr/lib/postgresql/15/bin';
  let server: PostgresServer;
  let partition: string;
  let store: BackupStore;
  let port: number;
  let primary: MemberAddress;
  const logs: string[] = [];

  const newStore = (bin: string): BackupStore =>
    new BackupStore({
      partitionPath: partition,
      binDir: bin,
      peerToken: () => PEER_TOKEN,
      backupToken: () => BACKUP_TOKEN,
      superuserPassword: () => '',
      tlsEnv: () => ({}),
      issueCertificate: () => ({ refused: 'not in this test', status: 404 }),
      pause: () => Promise.resolve({ paused: false, waitedMs: 0 }),
      log: (line) => logs.push(line),
    });
  const sql = async (text: string): Promise<void> => {
    const client = new pg.Client({ connectionString: server.connectionString });
    await client.connect();
    try {
      await client.query(text);
    } finally {
      await client.end();
    }
  };
  /** Backup ids are to the second: the next one must start in a later second. */
  const nextSecond = async (after: string): Promise<void> => {
    const id = (): string =>
      new Date()
        .toISOString()
        .replace(/[-:]/g, '')
        .replace(/\.\d+Z$/, 'Z');
    for (let i = 0; i < 30 && id() <= after; i += 1) await sleep(100);
  };
  const listed = async (): Promise<string[]> =>
    (
      JSON.parse(
        (await call(port, 'GET', '/backups', { authorization: bearer(BACKUP_TOKEN) })).body.toString(),
      ) as BackupInfo[]
    ).map((b) => b.id);

  beforeAll(async () => {
    server = await startPostgres();
    await sql(`CREATE ROLE ${SUPERUSER} SUPERUSER REPLICATION LOGIN`);
    await sql('CREATE TABLE marker (v text)');
    partition = await mkdtemp(join(tmpdir(), 'hox-backups-'));
    store = newStore(binDir);
    port = await freePort();
    await store.start(HOST, port);
    primary = { name: 'member-1', host: HOST, pgPort: server.port, keeperPort: 1 };
  });
  afterAll(async () => {
    await store?.stop();
    await server?.stop();
    if (partition !== undefined) await rm(partition, { recursive: true, force: true });
  });

  let first: string;
  let second: string;

  it('lists a backup only once verified, and starts no second one while one runs', async () => {
    await sql(`INSERT INTO marker VALUES ('first')`);
    const running = store.takeBaseBackup(primary);
    expect(store.isRunning()).toBe(true);
    expect(await store.takeBaseBackup(primary)).toBeNull();
    const id = await running;
    expect(id).toMatch(/^\d{8}T\d{6}Z$/);
    first = id ?? '';
    expect(store.isRunning()).toBe(false);
    expect(store.list()).toEqual([expect.objectContaining({ id: first, member: 'member-1', verified: true })]);
    expect(store.list()[0]?.bytes).toBeGreaterThan(1 * MIB);
    expect(store.status()).toMatchObject({ count: 1, error: null, last: { id: first } });
    expect(await listed()).toEqual([first]);
    // The stored directory passes pg_verifybackup again (a complete backup, manifest included).
    await exec(join(binDir, 'pg_verifybackup'), [
      '--ignore=hyper_db-backup.json',
      join(partition, 'backups', 'base', first),
    ]);
    expect(
      logs.some((l) => l.startsWith(`base backup ${first} from member-1: `) && l.endsWith(' bytes, verified')),
    ).toBe(true);
  });

  it('does not list a backup that pg_verifybackup refuses, and leaves nothing of it behind', async () => {
    // pg_verifybackup itself, run on a backup one byte of which changed after pg_basebackup wrote it.
    const bin = await mkdtemp(join(tmpdir(), 'hox-bin-'));
    try {
      symlinkSync(join(binDir, 'pg_basebackup'), join(bin, 'pg_basebackup'));
      const wrapper = join(bin, 'pg_verifybackup');
      writeFileSync(
        wrapper,
        [
          '#!/bin/sh',
          `printf '16\\n' > "$1/PG_VERSION"`,
          `'${join(binDir, 'pg_verifybackup')}' "$@" > '${bin}/verify.out' 2>&1`,
          'rc=$?',
          `echo $rc > '${bin}/verify.rc'`,
          'exit $rc',
          '',
        ].join('\n'),
      );
      chmodSync(wrapper, 0o755);
      await nextSecond(first);
      const corrupting = newStore(bin);
      expect(await corrupting.takeBaseBackup(primary)).toBeNull();
      expect(readFileSync(join(bin, 'verify.rc'), 'utf8').trim()).toBe('1');
      expect(readFileSync(join(bin, 'verify.out'), 'utf8')).toMatch(/checksum mismatch for file "PG_VERSION"/);
      expect(corrupting.status().error).toMatch(/^base backup failed: Command failed: .*pg_verifybackup /);
      expect(logs.at(-1)).toBe(corrupting.status().error);
      expect(readdirSync(join(partition, 'backups', 'base'))).toEqual([first]);
      expect(store.list().map((b) => b.id)).toEqual([first]);
      expect(await listed()).toEqual([first]);
    } finally {
      await rm(bin, { recursive: true, force: true });
    }
  });

  describe('restore', () => {
    let restoreDir: string;
    const restoring = (): PostgresControl =>
      // restoreBaseBackup reads partitionPath only (its data directory is partitionPath/pgdata).
      new PostgresControl({ partitionPath: restoreDir, binDir, name: 'member-1' } as KeeperConfig);
    const spec = (backup: string | null, targetTime: string, token = BACKUP_TOKEN) => ({
      url: `http://${HOST}:${port}`,
      token,
      backup,
      targetTime,
    });
    const manifest = (dir: string): string => readFileSync(join(dir, 'backup_manifest'), 'utf8');

    beforeAll(async () => {
      await nextSecond(first);
      await sql(`UPDATE marker SET v = 'second'`);
      second = (await store.takeBaseBackup(primary)) ?? '';
      expect(store.list().map((b) => b.id)).toEqual([first, second]);
    });
    beforeEach(async () => {
      restoreDir = await mkdtemp(join(tmpdir(), 'hox-restore-'));
    });
    afterEach(async () => {
      await rm(restoreDir, { recursive: true, force: true });
    });

    it('restores the named backup, not the newest, with the read-only token', async () => {
      const control = restoring();
      expect(await control.restoreBaseBackup(spec(first, new Date().toISOString()))).toBe(first);
      const stored = (id: string): string => manifest(join(partition, 'backups', 'base', id));
      expect(manifest(control.dataDir)).toBe(stored(first));
      expect(manifest(control.dataDir)).not.toBe(stored(second));
      await exec(join(binDir, 'pg_verifybackup'), [control.dataDir]);
      expect(await queryRestored(binDir, control.dataDir, restoreDir, 'SELECT v FROM marker')).toEqual([
        { v: 'first' },
      ]);
    });

    it('restores by default the newest backup finished before the target time', async () => {
      const [a, b] = store.list();
      const between = new Date(Date.parse(a?.finishedAt ?? '') + 1).toISOString();
      expect(Date.parse(between)).toBeLessThan(Date.parse(b?.finishedAt ?? ''));
      expect(await restoring().restoreBaseBackup(spec(null, between))).toBe(first);
      expect(await restoring().restoreBaseBackup(spec(null, new Date(Date.now() + 60_000).toISOString()))).toBe(second);
      expect(manifest(restoring().dataDir)).toBe(manifest(join(partition, 'backups', 'base', second)));
      await expect(restoring().restoreBaseBackup(spec(null, a?.startedAt ?? ''))).rejects.toThrow(
        `no base backup finished before ${a?.startedAt ?? ''} at http://${HOST}:${port}`,
      );
      await expect(restoring().restoreBaseBackup(spec('20200101T000000Z', new Date().toISOString()))).rejects.toThrow(
        `backup '20200101T000000Z' not found at http://${HOST}:${port}`,
      );
    });
  });
});
