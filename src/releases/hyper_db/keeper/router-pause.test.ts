/**
 * The keeper's pause request and the router's `POST /pause` route (on its backup API, over TLS): the peer
 * token is required, the answer comes back once the router's pause answered, and a router that does not
 * answer (or refuses, or is not the cluster's) never makes pauseRouter throw or wait past its bound.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clusterTlsFixture, type ClusterTlsFixture } from '../../../testing/cluster-tls-fixture.js';
import { freePort } from '../../../testing/free-port.js';
import { callJson, HttpStatusError, type ChannelTls } from '../cluster-tls.js';
import { BackupStore } from '../router/backup-store.js';
import type { KeeperConfig, PauseRequestBody } from '../protocol.js';
import { PAUSE_CALL_TIMEOUT_MS, pauseRouter } from './router-pause.js';

const TOKEN = 'peer-token-0123456789abcdef';

describe('POST /pause and pauseRouter', () => {
  let dir: string;
  let store: BackupStore;
  let port: number;
  const asked: PauseRequestBody[] = [];
  let tls: ClusterTlsFixture;
  let client: ChannelTls;

  beforeAll(async () => {
    tls = await clusterTlsFixture();
    client = await tls.client();
    dir = mkdtempSync(join(tmpdir(), 'hox-pause-'));
    port = await freePort();
    store = new BackupStore({
      partitionPath: dir,
      binDir: '/usr/lib/postgresql/15/bin',
      peerToken: () => TOKEN,
      backupToken: () => 'backup-token-0123456789',
      superuserPassword: () => 'unused',
      tlsEnv: () => ({}),
      issueCertificate: () => ({ refused: 'no', status: 404 }),
      pause: async (body) => {
        asked.push(body);
        await new Promise((r) => setTimeout(r, 200));
        return { paused: true, waitedMs: 200 };
      },
      log: () => {},
    });
    await store.start('127.0.0.1', port, { ca: tls.ca.certificatePem, identity: await tls.identity() });
  });

  afterAll(async () => {
    await store?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const config = (url: string): KeeperConfig =>
    ({ name: 'member-1', router: { url }, peerToken: TOKEN }) as unknown as KeeperConfig;
  const auth = (token = TOKEN) => ({ token, tls: client });

  it('needs the peer token (the backup token is not enough) and a well-formed body', async () => {
    const post = (token: string, body: unknown) =>
      callJson(`https://127.0.0.1:${port}/pause`, { token, body, tls: client, timeoutMs: 5000 }).then(
        () => 200,
        (error: unknown) => (error instanceof HttpStatusError ? error.status : String(error)),
      );
    expect(await post('backup-token-0123456789', { switchoverId: 'x', from: 'm' })).toBe(401);
    expect(await post(TOKEN, { switchoverId: 1 })).toBe(400);
    expect(await post(TOKEN, 'not an object')).toBe(400);
    expect(asked).toEqual([]);
  });

  it('pauseRouter returns once the router paused, and logs it', async () => {
    const lines: string[] = [];
    await pauseRouter(config(`https://127.0.0.1:${port}`), auth(), 'sw-1', (l) => lines.push(l));
    expect(asked).toEqual([{ switchoverId: 'sw-1', from: 'member-1' }]);
    expect(lines.join('\n')).toMatch(/sw-1: the router paused the read-write endpoint/);
  });

  it('never throws: a wrong token, nothing listening, a router that never answers (bounded)', async () => {
    const lines: string[] = [];
    await pauseRouter(config(`https://127.0.0.1:${port}`), auth('wrong-token-0123456789'), 'sw-2', (l) =>
      lines.push(l),
    );
    expect(lines.at(-1)).toMatch(/refused to pause \(HTTP 401\).*going on/);
    // A router whose certificate is not of this cluster's CA is not asked at all.
    const stranger = await clusterTlsFixture('another CA');
    await pauseRouter(
      config(`https://127.0.0.1:${port}`),
      { token: TOKEN, tls: await stranger.client() },
      'sw-2b',
      (l) => lines.push(l),
    );
    expect(lines.at(-1)).toMatch(
      /sw-2b: no pause from the router.*(self-signed|unable to verify|certificate).*going on/i,
    );
    await pauseRouter(config(`https://127.0.0.1:${await freePort()}`), auth(), 'sw-3', (l) => lines.push(l));
    expect(lines.at(-1)).toMatch(/no pause from the router.*going on/);
    // Accepts the connection and never answers.
    const silent = net.createServer(() => {});
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
    const silentPort = (silent.address() as net.AddressInfo).port;
    const t0 = performance.now();
    await pauseRouter(config(`https://127.0.0.1:${silentPort}`), auth(), 'sw-4', (l) => lines.push(l));
    const waited = performance.now() - t0;
    silent.close();
    expect(lines.at(-1)).toMatch(/sw-4: no pause from the router/);
    expect(waited).toBeGreaterThanOrEqual(PAUSE_CALL_TIMEOUT_MS - 100);
    expect(await pauseRouter({ ...config(''), router: null }, auth(), 'sw-5', () => {})).toBeUndefined();
    expect(asked.map((a) => a.switchoverId)).toEqual(['sw-1']);
  }, 20_000);
});
