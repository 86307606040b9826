/**
 * examples/flask-notes, the Python example, run as hyper_edge runs it — the
 * Procfile's `release:` then `web:` with Debian's python3 (Flask and psycopg2
 * from python3-flask and python3-psycopg2) against a real PostgreSQL.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readAppManifest, type AppManifest } from '../src/releases/hyper_edge/manifest/app-manifest.js';
import { startPostgres, type PostgresServer } from '../src/testing/postgres-server.js';
import {
  appEnv,
  createAddonDatabase,
  freePort,
  postForm,
  runCommand,
  startApp,
  type AddonDatabase,
  type AppProcess,
} from './support/example-app.js';

const NOTES_DIR = fileURLToPath(new URL('../examples/flask-notes/', import.meta.url));
const ADDON: AddonDatabase = { name: 'notes', user: 'notes', password: 'notes-secret' };
/** The system python3 first on PATH: the platform's virtualenv is made from it, with the system site packages. */
const PATH_WITH_SYSTEM_PYTHON = `/usr/bin:${process.env['PATH'] ?? ''}`;
const hasSystemPython = existsSync('/usr/bin/python3');

let server: PostgresServer | undefined;
let app: AppProcess | undefined;
let manifest: AppManifest;

function env(extra: Record<string, string> = {}) {
  return appEnv(server!.port, ADDON, { PATH: PATH_WITH_SYSTEM_PYTHON, ...extra });
}

async function get(urlPath: string): Promise<{ status: number; body: string }> {
  const response = await fetch(app!.baseUrl + urlPath);
  return { status: response.status, body: await response.text() };
}

beforeAll(async () => {
  if (!hasSystemPython) return;
  // Read as hyper_edge reads it (Procfile + hox.toml): the example stays a valid app.
  manifest = await readAppManifest(NOTES_DIR);
  server = await startPostgres();
  await createAddonDatabase(server, ADDON);
  const migrated = await runCommand(manifest.release!, NOTES_DIR, env());
  expect(migrated.code, migrated.output).toBe(0);
  const port = await freePort();
  app = await startApp(manifest.web!, NOTES_DIR, env({ HOST: '127.0.0.1', PORT: String(port), HOX_APP_VERSION: 'v2' }));
}, 120_000);

afterAll(async () => {
  await app?.stop(2_000);
  await server?.stop();
});

describe.skipIf(!hasSystemPython)('examples/flask-notes', () => {
  it('describes itself to hyper_edge: python runtime, Procfile processes, health check, postgres addon', () => {
    expect(manifest).toMatchObject({
      runtime: 'python',
      web: 'python3 app.py',
      release: 'python3 migrate.py',
      healthcheck: { path: '/healthz', status: 200, bodyContains: 'ok' },
      addons: [{ kind: 'postgres', name: 'notes' }],
    });
  });

  it('release: runs again, and concurrently, without failing', async () => {
    const runs = await Promise.all([1, 2, 3].map(() => runCommand(manifest.release!, NOTES_DIR, env())));
    for (const run of runs) expect(run.code, run.output).toBe(0);
  });

  it('adds a note and lists it, escaped, with the version in the footer', async () => {
    const added = await postForm(`${app!.baseUrl}/notes`, { body: 'Call <b>Globex</b> & "friends"' });
    expect(added.status).toBe(303);
    const { status, body } = await get('/');
    expect(status).toBe(200);
    expect(body).toContain('Call &lt;b&gt;Globex&lt;/b&gt; &amp; &#34;friends&#34;');
    expect(body).not.toContain('<b>Globex');
    expect(body).toContain('version <span class="version">v2</span>');
  });

  it('refuses an empty note with 422 and a message', async () => {
    const empty = await postForm(`${app!.baseUrl}/notes`, { body: '   ' });
    expect(empty.status).toBe(422);
    expect(await empty.text()).toContain('Note is required.');
  });

  it('answers the health check: 200 ok, then 503 once PostgreSQL is down', async () => {
    expect(await get('/healthz')).toEqual({ status: 200, body: 'ok\n' });
    await server!.stop();
    expect((await get('/healthz')).status).toBe(503);
    const page = await get('/');
    expect(page.status).toBe(503);
    expect(page.body).toContain('database unavailable, try again');
  });

  it('exits 0 on SIGTERM', async () => {
    const startedAt = Date.now();
    // 0, not the hard exit's 1 after 9 s nor SIGKILL after 10 s: it stopped on its own.
    expect(await app!.stop(10_000)).toBe(0);
    console.log(`flask-notes exited ${Date.now() - startedAt} ms after SIGTERM`);
    expect(app!.output()).toContain('SIGTERM: no new connections');
  });
});
