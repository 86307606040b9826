/**
 * hyper_db's base backups and restores (docs/hyper-db.md, "Backups and point-in-time restore"), against a
 * real PostgreSQL 15 and the real code, no cluster: the router's BackupStore backs up one server (as it
 * backs up the primary) and serves the backups on 127.0.0.1; a keeper's PostgresControl restores from it.
 *
 * - A listed backup is verified: one that `pg_verifybackup` refuses is not listed and leaves nothing behind.
 * - A second backup asked for while one runs (`backup_now` during a scheduled one) is not started.
 * - A restore picks the named backup, not the newest (checked by its manifest, by `pg_verifybackup`, and by
 *   the rows PostgreSQL started on it returns), and by default the newest one finished before the target.
 *
 * The backup API's token rules: test/hyperdb-apis.test.ts.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, lstatSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { PostgresControl } from '../src/releases/hyper_db/keeper/postgres-control.js';
import { SUPERUSER, type KeeperConfig, type MemberAddress } from '../src/releases/hyper_db/protocol.js';
import { BackupStore, type BackupInfo } from '../src/releases/hyper_db/router/backup-store.js';
import type { ChannelTls } from '../src/releases/hyper_db/cluster-tls.js';
import { clusterTlsFixture, type ClusterTlsFixture } from '../src/testing/cluster-tls-fixture.js';
import { freePort } from '../src/testing/free-port.js';
import { findPostgresBinDir, startPostgres, type PostgresServer } from '../src/testing/postgres-server.js';
import { bearer, httpCall } from './support/http-call.js';

const exec = promisify(execFile);
const HOST = '127.0.0.1';
const MIB = 1024 * 1024;

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
  let cluster: ClusterTlsFixture;
  let client: ChannelTls;
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
        (await httpCall(port, 'GET', '/backups', { authorization: bearer(BACKUP_TOKEN), tls: client })).body.toString(),
      ) as BackupInfo[]
    ).map((b) => b.id);

  beforeAll(async () => {
    cluster = await clusterTlsFixture();
    client = await cluster.client();
    server = await startPostgres();
    await sql(`CREATE ROLE ${SUPERUSER} SUPERUSER REPLICATION LOGIN`);
    await sql('CREATE TABLE marker (v text)');
    partition = await mkdtemp(join(tmpdir(), 'hox-backups-'));
    store = newStore(binDir);
    port = await freePort();
    await store.start(HOST, port, { ca: cluster.ca.certificatePem, identity: await cluster.identity(HOST, 'router') });
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
      url: `https://${HOST}:${port}`,
      token,
      ca: cluster.ca.certificatePem,
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

    it('restores into a data directory whose pg_wal lives elsewhere (a link to it here): the link stays, WAL lands behind it', async () => {
      // Operators keep WAL on a disk of its own (initdb --waldir, or a filesystem mounted on pg_wal): the
      // data directory cannot be replaced whole then, and WAL must not quietly move back to the data disk.
      const control = restoring();
      const walDisk = join(restoreDir, 'wal-disk');
      await mkdir(join(control.dataDir), { recursive: true, mode: 0o700 });
      await mkdir(walDisk, { mode: 0o700 });
      writeFileSync(join(walDisk, '000000010000000000000001'), 'old WAL of a former life');
      writeFileSync(join(control.dataDir, 'PG_VERSION'), '15\n');
      symlinkSync(walDisk, join(control.dataDir, 'pg_wal'));
      expect(await control.restoreBaseBackup(spec(first, new Date().toISOString()))).toBe(first);
      expect(lstatSync(join(control.dataDir, 'pg_wal')).isSymbolicLink()).toBe(true);
      expect(readdirSync(walDisk)).not.toContain('000000010000000000000001');
      expect(readdirSync(walDisk).filter((f) => /^[0-9A-F]{24}$/.test(f)).length).toBeGreaterThan(0);
      expect(existsSync(`${control.dataDir}.restore`)).toBe(false);
      // Its own files count as room a fresh copy would give back, the WAL behind the link included.
      expect(control.freeBytesWithoutOwnData()! - control.freeBytes()!).toBeGreaterThanOrEqual(16 * 2 ** 20);
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
        `no base backup finished before ${a?.startedAt ?? ''} at https://${HOST}:${port}`,
      );
      await expect(restoring().restoreBaseBackup(spec('20200101T000000Z', new Date().toISOString()))).rejects.toThrow(
        `backup '20200101T000000Z' not found at https://${HOST}:${port}`,
      );
    });
  });
});
