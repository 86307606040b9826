/**
 * What docs/hyper-db.md says of hyper_db's two HTTPS APIs, proved against the real code with no cluster:
 * the router's BackupStore and the keeper's peer server run in-process on 127.0.0.1, with certificates of
 * a cluster CA made here (as the router signs them).
 *
 * - TLS: both speak HTTPS only (plain HTTP gets no answer); the peer API refuses a handshake without a
 *   client certificate of the cluster CA; the backup API needs none but refuses one of another CA; a
 *   client refuses a server whose certificate is not of the cluster CA (callPeer, wal-archive.mjs).
 *
 * - The backup API: the peer token may do everything; the read-only backup token (published for restores)
 *   may list and download base backups and fetch WAL, and nothing else — no WAL upload (also through
 *   `wal-archive.mjs push`, as PostgreSQL's archive_command runs it), no certificate, no pause. No token or
 *   a wrong one is refused on every route before anything happens; WAL names and backup ids that could
 *   leave their directory are refused; bodies are bounded; an archived name is taken again only with
 *   identical content.
 * - The peer API: no token or a wrong one is refused on every route before any handler runs; the token is
 *   read for each request; bodies are bounded at 64 KiB; a body that is not JSON is refused.
 *
 * Base backups and restores against a real PostgreSQL: test/hyperdb-backups.test.ts.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChannelTls } from '../src/releases/hyper_db/cluster-tls.js';
import { callPeer, startPeerServer, type Handler } from '../src/releases/hyper_db/keeper/peer-api.js';
import type { PauseRequestBody } from '../src/releases/hyper_db/protocol.js';
import { BackupStore, type BackupInfo } from '../src/releases/hyper_db/router/backup-store.js';
import { clusterTlsFixture, type ClusterTlsFixture } from '../src/testing/cluster-tls-fixture.js';
import { freePort } from '../src/testing/free-port.js';
import { badAuthorizations, bearer, httpCall } from './support/http-call.js';

const exec = promisify(execFile);
const HOST = '127.0.0.1';
const WAL_ARCHIVE = fileURLToPath(new URL('../src/releases/hyper_db/keeper/wal-archive.mjs', import.meta.url));
const SEGMENT = '000000010000000000000001';
const NEW_SEGMENT = '000000010000000000000002';
const FAKE_BACKUP = '20260101T000000Z';
const KIB = 1024;
const MIB = 1024 * KIB;

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

let cluster: ClusterTlsFixture;
/** A member of the cluster: the CA and its own certificate. */
let client: ChannelTls;
beforeAll(async () => {
  cluster = await clusterTlsFixture();
  client = await cluster.client();
});

/** One request as a member of the cluster makes it (HTTPS, its certificate presented). */
const call: typeof httpCall = (port, method, path, options = {}) =>
  httpCall(port, method, path, { tls: client, ...options });

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
    await store.start(HOST, port, { ca: cluster.ca.certificatePem, identity: await cluster.identity(HOST, 'router') });
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
        writeFileSync(path, JSON.stringify({ url: `https://${HOST}:${port}`, token, ca: cluster.ca.certificatePem }), {
          mode: 0o600,
        });
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
      // Names that would leave the archive's directory: refused (the name is sent URL-encoded, then checked).
      const before = tree(partition);
      expect((await walArchive(['push', peer, segment, '../router.json'])).code).toBe(1);
      expect((await walArchive(['fetch', peer, '../router.json', join(dir, 'escaped')])).code).toBe(1);
      expect(tree(partition)).toEqual(before);
      expect(readdirSync(dir).filter((f) => /^(wrong-fetch|missing|escaped)/.test(f))).toEqual([]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('speaks HTTPS only: plain HTTP gets no answer, a client certificate of another CA is refused, none is needed', async () => {
    const auth = { authorization: bearer(BACKUP_TOKEN) };
    await expect(httpCall(port, 'GET', '/backups', auth)).rejects.toThrow();
    const stranger = await clusterTlsFixture('another cluster CA');
    // A certificate that does not chain to the cluster CA: refused before the token is even looked at.
    const foreign = await call(port, 'GET', '/backups', {
      ...auth,
      tls: { ca: cluster.ca.certificatePem, identity: await stranger.identity(HOST) },
    });
    expect([foreign.status, foreign.body.toString()]).toEqual([
      403,
      expect.stringMatching(/client certificate refused/),
    ]);
    // None at all (a restoring member of another cluster, a member asking for its first one): the token decides.
    expect(
      (await call(port, 'GET', '/backups', { ...auth, tls: { ca: cluster.ca.certificatePem, identity: null } })).status,
    ).toBe(200);
    // A client that does not trust the router's CA stops at the handshake: no token leaves it.
    await expect(call(port, 'GET', '/backups', { ...auth, tls: await stranger.client() })).rejects.toThrow(
      /certificate/,
    );
  });

  it('wal-archive.mjs presents the member certificate named by identity_dir, and trusts only its CA', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hox-wal-tls-'));
    try {
      const identity = await cluster.identity(HOST, 'member-1');
      const tlsDir = join(dir, 'tls');
      mkdirSync(tlsDir);
      writeFileSync(join(tlsDir, 'server.json'), JSON.stringify({ serial: 'AB01', clientAuth: true }));
      writeFileSync(join(tlsDir, 'server-AB01.key'), identity.key);
      writeFileSync(join(tlsDir, 'server-AB01.crt'), identity.cert);
      const segment = join(dir, 'segment');
      writeFileSync(segment, randomBytes(16 * KIB));
      const config = (name: string, extra: Record<string, unknown>): string => {
        const path = join(dir, name);
        writeFileSync(path, JSON.stringify({ url: `https://${HOST}:${port}`, token: PEER_TOKEN, ...extra }));
        return path;
      };
      const name = '000000010000000000000005';
      const stranger = await clusterTlsFixture('another cluster CA');
      const untrusting = await walArchive([
        'push',
        config('stranger.json', { ca: stranger.ca.certificatePem }),
        segment,
        name,
      ]);
      expect([untrusting.code, untrusting.stderr]).toEqual([1, expect.stringMatching(/certificate/)]);
      const noCa = await walArchive(['push', config('no-ca.json', {}), segment, name]);
      expect([noCa.code, noCa.stderr]).toEqual([2, expect.stringMatching(/needs the CA/)]);
      expect(readdirSync(walDir())).not.toContain(name);
      const withIdentity = config('member.json', { ca: cluster.ca.certificatePem, identity_dir: tlsDir });
      expect(await walArchive(['push', withIdentity, segment, name])).toEqual({ code: 0, stderr: '' });
      // The certificate really went along: one of another CA in its place is refused by the router.
      const foreign = await stranger.identity(HOST);
      writeFileSync(join(tlsDir, 'server-AB01.key'), foreign.key);
      writeFileSync(join(tlsDir, 'server-AB01.crt'), foreign.cert);
      const refused = await walArchive(['push', withIdentity, segment, '000000010000000000000006']);
      expect([refused.code, refused.stderr]).toEqual([1, expect.stringMatching(/HTTP 403/)]);
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
    server = await startPeerServer({
      host: HOST,
      port,
      token: () => token,
      routes,
      tls: { ca: cluster.ca.certificatePem, identity: await cluster.identity(HOST, 'member-2') },
    });
  });
  afterAll(async () => {
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  });

  it('speaks HTTPS only and needs a client certificate of the cluster CA, before any token is read', async () => {
    const auth = { authorization: bearer(token) };
    await expect(httpCall(port, 'GET', '/status', auth)).rejects.toThrow();
    // No client certificate, or one of another CA: the handshake fails, no route runs.
    await expect(
      call(port, 'GET', '/status', { ...auth, tls: { ca: cluster.ca.certificatePem, identity: null } }),
    ).rejects.toThrow();
    const stranger = await clusterTlsFixture('another cluster CA');
    await expect(
      call(port, 'GET', '/status', {
        ...auth,
        tls: { ca: cluster.ca.certificatePem, identity: await stranger.identity(HOST) },
      }),
    ).rejects.toThrow();
    // callPeer refuses a keeper whose certificate is not of the cluster CA.
    await expect(
      callPeer({ host: HOST, keeperPort: port }, { token, tls: await stranger.client() }, '/status', undefined, 5000),
    ).rejects.toThrow(/certificate/);
    expect(calls).toEqual([]);
    expect((await call(port, 'GET', '/status', auth)).status).toBe(200);
    calls.length = 0;
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
    await expect(
      callPeer({ host: HOST, keeperPort: port }, { token: `${token}x`, tls: client }, '/status', undefined, 5000),
    ).rejects.toThrow(`/status on ${HOST}:${port}: HTTP 401`);
    expect(calls).toEqual([]);
  });

  it('serves every route with the token it holds now, bodies parsed', async () => {
    const auth = { authorization: bearer(token) };
    for (const route of ROUTES) {
      const [method = '', path = ''] = route.split(' ');
      const answer = await call(port, method, path, {
        ...auth,
        ...(method === 'POST' ? { body: '{"term":7}' } : {}),
      });
      expect([route, answer.status]).toEqual([route, 200]);
    }
    expect(calls).toEqual(ROUTES.map((route) => ({ route, body: route.startsWith('POST') ? { term: 7 } : undefined })));
    expect(
      await callPeer({ host: HOST, keeperPort: port }, { token, tls: client }, '/vote', { term: 8 }, 5000),
    ).toEqual({
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
