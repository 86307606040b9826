/**
 * An app's configuration through the `hox` CLI, on a master and one real `hox node` with hyper_edge supplied
 * (no database): hox.toml's [env] reaching the app's processes under config vars, config set before the first
 * deploy (`hox app create`, `deploy --env`), APP_URL, generated secrets read back by their owner and logged
 * nowhere, and a node app with no start script failing with npm's own line and the fix.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHyperDbPlatform, type HyperDbPlatform } from '../src/testing/hyperdb-platform.js';
import { appLogs } from '../src/testing/app-logs.js';
import { runHox, type HoxRun } from './support/hox-cli.js';

/** An app that shows the variables it was started with (and what its build saw), as JSON on GET /env. */
const ENV_APP = {
  'hox.toml': `runtime = "node"
[run]
web = "node server.js"
[build]
commands = ["printf '%s' \\"$DB_CLIENT\\" > build-saw.txt"]
[env]
DB_CLIENT = "pg"
GREETING = "from hox.toml"
[secrets]
generate = ["ADMIN_PASSWORD"]
[healthcheck]
path = "/healthz"
timeout = 30
`,
  'server.js': `const { createServer } = require('node:http');
const { readFileSync } = require('node:fs');
const names = ['DB_CLIENT', 'GREETING', 'FROM_CREATE', 'LATER', 'VIA_DEPLOY', 'APP_URL', 'ADMIN_PASSWORD', 'NODE_ENV'];
createServer((req, res) => {
  if (req.url === '/healthz') return res.end('ok');
  const env = Object.fromEntries(names.map((n) => [n, process.env[n] ?? null]));
  env.BUILD_SAW = readFileSync('build-saw.txt', 'utf8');
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify(env));
}).listen(Number(process.env.PORT), process.env.HOST);
`,
};

/** An app that keeps uploads: POST /upload?name=N writes uploads/N, GET /uploads lists them with its version. */
const STORAGE_APP = (version: string): Record<string, string> => ({
  'hox.toml': `runtime = "node"
[run]
web = "node server.js"
[storage]
paths = ["uploads"]
[healthcheck]
path = "/healthz"
timeout = 30
`,
  'server.js': `const { createServer } = require('node:http');
const { readdirSync, writeFileSync } = require('node:fs');
createServer((req, res) => {
  const url = new URL(req.url, 'http://x');
  if (url.pathname === '/healthz') return res.end('ok');
  if (req.method === 'POST' && url.pathname === '/upload' && /^[a-z]+$/.test(url.searchParams.get('name') ?? '')) {
    writeFileSync('uploads/' + url.searchParams.get('name'), 'data');
    return res.end('stored');
  }
  res.end(JSON.stringify({ version: '${version}', files: readdirSync('uploads').sort() }));
}).listen(Number(process.env.PORT), process.env.HOST);
`,
});

/** Every file under `dir`, recursively. */
function filesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir)) {
    const path = join(dir, entry);
    const info = statSync(path, { throwIfNoEntry: false });
    if (info?.isDirectory()) out.push(...filesUnder(path));
    else if (info?.isFile()) out.push(path);
  }
  return out;
}

describe('hyper_edge: app config through the CLI', () => {
  let p: HyperDbPlatform;
  let home: string;
  let env: NodeJS.ProcessEnv;

  const hox = (args: string[], timeoutMs = 240_000): Promise<HoxRun> => runHox(args, env, timeoutMs);

  const ok = async (args: string[], app?: string): Promise<string> => {
    const run = await hox(args);
    if (run.code !== 0)
      throw new Error(
        `hox ${args.join(' ')} exited ${run.code}\n${run.stdout}\n${run.stderr}\n${app ? await appLogs(p, app) : ''}`,
      );
    return run.stdout;
  };

  const appDir = (files: Record<string, string>): string => {
    const dir = mkdtempSync(join(home, 'app-'));
    for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
    return dir;
  };

  const seen = async (app: string): Promise<Record<string, string | null>> => {
    const { url } = JSON.parse(await ok(['app', 'status', app, '--json'])) as { url: string };
    return (await (await fetch(new URL('/env', url))).json()) as Record<string, string | null>;
  };

  beforeAll(async () => {
    p = await startHyperDbPlatform({
      nodes: 1,
      partitions: 8,
      nodeIdPrefix: 'appcfg-node',
      releases: ['hyper_edge'],
    });
    home = mkdtempSync(join(tmpdir(), 'hox-edge-config-'));
    env = {
      ...process.env,
      HOX_CONFIG: join(home, 'config.json'),
      HOX_MASTER_URL: p.master.url,
      HOX_TOKEN: p.master.adminToken,
    };
  }, 120_000);

  afterAll(async () => {
    await p?.stop();
    if (home !== undefined) rmSync(home, { recursive: true, force: true });
  }, 120_000);

  it('config before the first deploy, [env] under config vars, APP_URL, generated secrets read back', async () => {
    // hox app create: the URL at once, config vars kept for the first deploy.
    const created = await ok(['app', 'create', 'cfg', '--env', 'FROM_CREATE=yes', '--env', 'GREETING=from config']);
    const url = /url (http:\/\/\S+) /.exec(created)?.[1];
    expect(url, created).toMatch(/^http:\/\/127\.\d+\.\d+\.\d+:\d+\/$/);
    const again = await hox(['app', 'create', 'cfg']);
    expect(again.code).not.toBe(0);
    expect(again.stderr).toContain("app 'cfg' already exists");
    expect(await ok(['app', 'config', 'set', 'cfg', 'LATER=1'])).toContain('the first deploy takes it');
    const before = JSON.parse(await ok(['app', 'config', 'list', 'cfg', '--json', '--reveal'])) as {
      env: Record<string, string>;
    };
    expect(before.env).toEqual({ FROM_CREATE: 'yes', GREETING: 'from config', LATER: '1' });

    const out = await ok(['app', 'deploy', 'cfg', appDir(ENV_APP), '--env', 'VIA_DEPLOY=2'], 'cfg');
    expect(out).toMatch(/v1 deployed and serving at http:\/\//);
    const vars = await seen('cfg');
    expect(vars).toMatchObject({
      DB_CLIENT: 'pg', // hox.toml [env]
      GREETING: 'from config', // a config var wins over [env]
      FROM_CREATE: 'yes',
      LATER: '1',
      VIA_DEPLOY: '2',
      APP_URL: url!.replace(/\/$/, ''),
      NODE_ENV: 'production',
      BUILD_SAW: 'pg', // the build commands see [env] too
    });
    const secret = vars.ADMIN_PASSWORD;
    expect(secret).toMatch(/^[A-Za-z0-9_-]{43}$/);

    // The owner reads the generated secret back; masked without --reveal.
    const revealed = JSON.parse(await ok(['app', 'config', 'list', 'cfg', '--json', '--reveal'])) as {
      env: Record<string, string>;
      generated: Record<string, string>;
    };
    expect(revealed.env).toEqual({ FROM_CREATE: 'yes', GREETING: 'from config', LATER: '1', VIA_DEPLOY: '2' });
    expect(revealed.generated).toEqual({ ADMIN_PASSWORD: secret });
    expect(await ok(['app', 'config', 'list', 'cfg', '--reveal'])).toContain(`ADMIN_PASSWORD=${secret}  (generated)`);
    const masked = await hox(['app', 'config', 'list', 'cfg']);
    expect(masked.stdout).toContain('ADMIN_PASSWORD=********  (generated)');
    expect(masked.stdout + masked.stderr).not.toContain(secret);
    const shown = await hox(['show', 'cfg', '--json']);
    expect(shown.code).toBe(0);
    expect(shown.stdout).not.toContain(secret);
    // Logged nowhere on the node: not by the agent, not by the runner.
    for (const file of filesUnder(p.nodes[0]!.dataDir).filter((f) => /\.log$|\/logs\//.test(f)))
      expect(readFileSync(file, 'utf8').includes(secret!), file).toBe(false);

    // A config var may also replace APP_URL (a domain in front of the platform).
    await ok(['app', 'config', 'set', 'cfg', 'APP_URL=https://cfg.example.org'], 'cfg');
    expect((await seen('cfg')).APP_URL).toBe('https://cfg.example.org');
  }, 400_000);

  it('refuses a platform variable in --env before anything is requested', async () => {
    const run = await hox(['app', 'deploy', 'bad', appDir(ENV_APP), '--env', 'PORT=80']);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain("'PORT' is set by the platform");
    const create = await hox(['app', 'create', 'bad', '--env', 'NOT=AN=ISSUE', '--env', '1X=2']);
    expect(create.code).toBe(2);
    expect(create.stderr).toContain("'1X' is not a valid environment variable name");
    await expect(p.admin.call('listTreeStatus', { title: 'bad' })).rejects.toThrow(/not found/);
  }, 60_000);

  it('files written in a storage path survive a deploy of new code', async () => {
    await ok(['app', 'deploy', 'files', appDir(STORAGE_APP('v1'))], 'files');
    const { url } = JSON.parse(await ok(['app', 'status', 'files', '--json'])) as { url: string };
    expect(await (await fetch(new URL('/upload?name=avatar', url), { method: 'POST' })).text()).toBe('stored');
    await ok(['app', 'deploy', 'files', appDir(STORAGE_APP('v2'))], 'files');
    expect(await (await fetch(url)).json()).toEqual({ version: 'v2', files: ['avatar'] });
    // With several replicas, the deploy says the storage is not shared (here it then stops: no such cluster).
    const scaled = appDir({
      ...STORAGE_APP('v3'),
      'hox.toml': `${STORAGE_APP('v3')['hox.toml']}[[addons]]\ntype = "postgres"\nname = "files"\ncluster = "nodb"\n`,
    });
    const run = await hox(['app', 'deploy', 'files', scaled, '--scale', '2']);
    expect(run.code).toBe(1);
    expect(run.stdout).toContain(
      'warning: storage (uploads) is per replica: each of the 2 replicas keeps its own files, not shared with the others',
    );
    expect(run.stderr).toContain("needs the hyper_db cluster 'nodb', which does not exist");
  }, 300_000);

  it("a node app with no start script: refused before upload; run anyway, npm's own error and the fix", async () => {
    const pkg = '{ "name": "nostart", "version": "1.0.0" }\n';
    const early = await hox(['app', 'deploy', 'nostart', appDir({ 'package.json': pkg })]);
    expect(early.code).toBe(2);
    expect(early.stderr).toContain(
      'nothing to start: the web command is `npm start` (the default without a Procfile web line), but package.json has no "start" script and there is no server.js',
    );
    await expect(p.admin.call('listTreeStatus', { title: 'nostart' })).rejects.toThrow(/not found/);
    // Another command that runs the missing script gets as far as the replica: the failure shows npm's line.
    const dir = appDir({ 'package.json': pkg, Procfile: 'web: npm run start\n' });
    const run = await hox(['app', 'deploy', 'nostart', dir]);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(
      /v1 failed on replica-1: web exited before it was healthy \(1\): npm error Missing script: "start" — add a "start" script to package\.json, or a Procfile line/,
    );
    expect(run.stderr).not.toMatch(/Did you mean|Mark your favorite|complete log/);
  }, 300_000);
});
