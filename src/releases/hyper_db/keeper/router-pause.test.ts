/**
 * The keeper's pause request and the router's `POST /pause` route (on its backup API): the peer token is
 * required, the answer comes back once the router's pause answered, and a router that does not answer
 * (or refuses) never makes pauseRouter throw or wait past its bound.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../../testing/free-port.js';
import { BackupStore } from '../router/backup-store.js';
import type { KeeperConfig, PauseRequestBody } from '../protocol.js';
import { PAUSE_CALL_TIMEOUT_MS, pauseRouter } from './router-pause.js';

const TOKEN = 'peer-token-0123456789abcdef';

describe('POST /pause and pauseRouter', () => {
  let dir: string;
  let store: BackupStore;
  let port: number;
  const asked: PauseRequestBody[] = [];

  beforeAll(async () => {
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
    await store.start('127.0.0.1', port);
  });

  afterAll(async () => {
    await store?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const config = (url: string, token = TOKEN): KeeperConfig =>
    ({ name: 'member-1', router: { url }, peerToken: token }) as unknown as KeeperConfig;

  it('needs the peer token (the backup token is not enough) and a well-formed body', async () => {
    const post = (token: string, body: string) =>
      fetch(`http://127.0.0.1:${port}/pause`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body,
      });
    expect((await post('backup-token-0123456789', '{"switchoverId":"x","from":"m"}')).status).toBe(401);
    expect((await post(TOKEN, '{"switchoverId":1}')).status).toBe(400);
    expect((await post(TOKEN, 'not json')).status).toBe(400);
    expect(asked).toEqual([]);
  });

  it('pauseRouter returns once the router paused, and logs it', async () => {
    const lines: string[] = [];
    await pauseRouter(config(`http://127.0.0.1:${port}`), 'sw-1', (l) => lines.push(l));
    expect(asked).toEqual([{ switchoverId: 'sw-1', from: 'member-1' }]);
    expect(lines.join('\n')).toMatch(/sw-1: the router paused the read-write endpoint/);
  });

  it('never throws: a wrong token, nothing listening, a router that never answers (bounded)', async () => {
    const lines: string[] = [];
    await pauseRouter(config(`http://127.0.0.1:${port}`, 'wrong-token-0123456789'), 'sw-2', (l) => lines.push(l));
    expect(lines.at(-1)).toMatch(/refused to pause \(HTTP 401\).*going on/);
    await pauseRouter(config(`http://127.0.0.1:${await freePort()}`), 'sw-3', (l) => lines.push(l));
    expect(lines.at(-1)).toMatch(/no pause from the router.*going on/);
    // Accepts the connection and never answers.
    const silent = net.createServer(() => {});
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
    const silentPort = (silent.address() as net.AddressInfo).port;
    const t0 = performance.now();
    await pauseRouter(config(`http://127.0.0.1:${silentPort}`), 'sw-4', (l) => lines.push(l));
    const waited = performance.now() - t0;
    silent.close();
    expect(lines.at(-1)).toMatch(/sw-4: no pause from the router/);
    expect(waited).toBeGreaterThanOrEqual(PAUSE_CALL_TIMEOUT_MS - 100);
    expect(await pauseRouter({ ...config(''), router: null }, 'sw-5', () => {})).toBeUndefined();
  }, 20_000);
});
