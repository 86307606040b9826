/**
 * Rules of the backup API and the restore that did not hold (issue 12, "tests that prove what the docs
 * claim"), each proved against the real code: a null JSON body is answered, two uploads of one WAL name
 * at once store one whole file, an oversized upload leaves nothing behind, and a restore with a refused
 * token says HTTP 401 rather than a JSON parse error.
 */
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { request as httpsRequest, type RequestOptions } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PostgresControl } from '../src/releases/hyper_db/keeper/postgres-control.js';
import type { KeeperConfig } from '../src/releases/hyper_db/protocol.js';
import { BackupStore } from '../src/releases/hyper_db/router/backup-store.js';
import { clusterTlsFixture, type ClusterTlsFixture } from '../src/testing/cluster-tls-fixture.js';
import { freePort } from '../src/testing/free-port.js';

const HOST = '127.0.0.1';
const TOKEN = randomBytes(32).toString('base64url');
let cluster: ClusterTlsFixture;

/** A request to the router's API as a member sends it: HTTPS, the cluster CA trusted. */
const request = (options: RequestOptions) => httpsRequest({ ...options, ca: cluster.ca.certificatePem });

function put(port: number, name: string, size: number) {
  const req = request({
    host: HOST,
    port,
    method: 'PUT',
    path: `/wal/${name}`,
    agent: false,
    headers: { authorization: `Bearer ${TOKEN}`, 'content-length': size },
  });
  const answer = new Promise<number | string>((resolve) => {
    req.on('response', (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', (e) => resolve(e.message));
  });
  return { req, answer };
}

describe('backup API and restore: rules that did not hold', () => {
  let partition: string;
  let store: BackupStore;
  let port: number;
  beforeAll(async () => {
    cluster = await clusterTlsFixture();
    partition = await mkdtemp(join(tmpdir(), 'hox-todo-'));
    store = new BackupStore({
      partitionPath: partition,
      binDir: '/nonexistent',
      peerToken: () => TOKEN,
      backupToken: () => 'b',
      superuserPassword: () => '',
      tlsEnv: () => ({}),
      issueCertificate: () => ({ certificate: 'c' }),
      pause: () => Promise.resolve({ paused: true, waitedMs: 0 }),
      log: () => {},
    });
    port = await freePort();
    await store.start(HOST, port, { ca: cluster.ca.certificatePem, identity: await cluster.identity(HOST, 'router') });
  });
  afterAll(async () => {
    await store.stop();
    await rm(partition, { recursive: true, force: true });
  });
  const walDir = (): string => join(partition, 'backups', 'wal');

  it('answers a JSON body that is null (400), instead of leaving the request unanswered', async () => {
    for (const path of ['/tls/certificate', '/pause']) {
      const req = request({
        host: HOST,
        port,
        method: 'POST',
        path,
        agent: false,
        timeout: 2000,
        headers: { authorization: `Bearer ${TOKEN}`, 'content-length': 4 },
      });
      const status = await new Promise<number | string>((resolve) => {
        req.on('response', (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on('timeout', () => {
          req.destroy();
          resolve('no answer within 2 s');
        });
        req.on('error', (e) => resolve(e.message));
        req.end('null');
      });
      expect([path, status]).toEqual([path, 400]);
    }
  });

  it('two uploads of one name at once: the one told "archived" is what is stored', async () => {
    const name = '000000010000000000000007';
    const half = 512 * 1024;
    const a = put(port, name, 2 * half);
    const b = put(port, name, 2 * half);
    a.req.write(Buffer.alloc(half, 'A'));
    const tmpSize = (): number => {
      const tmp = readdirSync(walDir()).find((f) => f.endsWith('.tmp'));
      return tmp === undefined ? -1 : statSync(join(walDir(), tmp)).size;
    };
    for (let i = 0; i < 100 && tmpSize() < half; i += 1) await sleep(20);
    b.req.write(Buffer.alloc(half, 'B'));
    await sleep(300);
    a.req.end(Buffer.alloc(half, 'A'));
    const aStatus = await a.answer;
    b.req.end(Buffer.alloc(half, 'B'));
    const bStatus = await b.answer;
    const stored = readFileSync(join(walDir(), name));
    const outcome = stored.equals(Buffer.alloc(2 * half, 'A'))
      ? 'A'
      : stored.equals(Buffer.alloc(2 * half, 'B'))
        ? 'B'
        : 'mixed';
    // One is stored whole and acknowledged; the other, different, is refused (409).
    expect([aStatus, bStatus, outcome]).toEqual(outcome === 'A' ? [201, 409, 'A'] : [409, 201, 'B']);
  });

  it('an upload over 64 MiB leaves nothing behind', async () => {
    const big = put(port, '000000010000000000000008', 64 * 1024 * 1024 + 1);
    big.req.end(Buffer.alloc(64 * 1024 * 1024 + 1));
    expect(await big.answer).not.toBe(201);
    expect(readdirSync(walDir()).filter((f) => f.startsWith('000000010000000000000008'))).toEqual([]);
  });

  it('a restore with a refused token says so (HTTP 401), not a JSON syntax error', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hox-todo-restore-'));
    try {
      const control = new PostgresControl({ partitionPath: dir } as KeeperConfig);
      await expect(
        control.restoreBaseBackup({
          url: `https://${HOST}:${port}`,
          token: 'wrong',
          ca: cluster.ca.certificatePem,
          backup: null,
          targetTime: new Date().toISOString(),
        }),
      ).rejects.toThrow(/HTTP 401/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
