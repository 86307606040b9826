/**
 * Unpacking a release's source archive never shows the archive's name on a
 * command line: the archive is named after its hash in this test (as replicas
 * used to name it) and is a FIFO, so tar stays blocked on it, half fed, while
 * every process's command line is scanned.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, expect, it } from 'vitest';
import { watchCommandLines } from '../../../testing/command-line-watch.js';
import { buildRelease, nodeHeadersPrefix } from './app-build.js';

const roots: string[] = [];
afterEach(() => {
  while (roots.length > 0) rmSync(roots.pop()!, { recursive: true, force: true });
});

/** Pids of processes whose working directory is `dir`. */
function processesIn(dir: string): number[] {
  return readdirSync('/proc')
    .filter((e) => /^\d+$/.test(e))
    .filter((e) => {
      try {
        return readlinkSync(`/proc/${e}/cwd`) === dir;
      } catch {
        return false;
      }
    })
    .map(Number);
}

it("unpacks the archive from standard input: its hash-named path is on no process's command line", async () => {
  const root = mkdtempSync(join(tmpdir(), 'hox-unpack-'));
  roots.push(root);
  const app = join(root, 'app-source');
  mkdirSync(app);
  writeFileSync(join(app, 'index.html'), '<h1>hello</h1>\n');
  const archive = execFileSync('tar', ['-czf', '-', '-C', app, '.']);
  const sha256 = createHash('sha256').update(archive).digest('hex');
  mkdirSync(join(root, 'sources'));
  const fifo = join(root, 'sources', `${sha256}.tar.gz`);
  execFileSync('mkfifo', ['-m', '0600', fifo]);
  const dir = join(root, 'releases', 'v1');

  const watch = watchCommandLines([sha256, sha256.slice(0, 16)]);
  const log: string[] = [];
  const built = buildRelease({
    dir,
    archive: fifo,
    label: 'v1',
    env: { PATH: '/usr/bin:/bin' },
    log: (l) => log.push(l),
    step: () => undefined,
    storageDir: join(root, 'storage'),
  });
  // Opening the FIFO's write end waits for the unpacking to open its read end.
  const writer = await open(fifo, 'w');
  await writer.write(archive.subarray(0, archive.length >> 1));
  // tar is running, blocked on the rest of its input: let the scan see every command line a few times.
  for (let i = 0; i < 200 && processesIn(dir).length === 0; i++) await sleep(10);
  const unpacking = processesIn(dir);
  const scansBefore = watch.scans;
  while (watch.scans < scansBefore + 20) await sleep(5);
  await writer.write(archive.subarray(archive.length >> 1));
  await writer.close();
  const manifest = await built;
  const { hits } = watch.stop();

  expect(unpacking.length, 'tar was seen running on the half-fed archive').toBeGreaterThan(0);
  expect(hits, 'command lines naming the archive').toEqual([]);
  expect(manifest.runtime).toBe('static');
  expect(readFileSync(join(dir, 'index.html'), 'utf8')).toBe('<h1>hello</h1>\n');
  expect(existsSync(join(dir, '.hox-built'))).toBe(true);
});

/** A source directory with `files`, packed as a release archive at `<root>/<name>.tar.gz`. */
function packApp(root: string, name: string, files: Record<string, string | Buffer>): string {
  const app = join(root, `${name}-source`);
  mkdirSync(app);
  for (const [file, text] of Object.entries(files)) writeFileSync(join(app, file), text);
  const archive = join(root, `${name}.tar.gz`);
  execFileSync('tar', ['-czf', archive, '-C', app, '.']);
  return archive;
}

/** What install and build commands get from a runner, with no way to download anything from nodejs.org. */
function offlineEnv(root: string): Record<string, string> {
  const home = join(root, 'home');
  mkdirSync(home, { recursive: true });
  return {
    PATH: '/usr/bin:/bin',
    HOME: home,
    npm_config_cache: join(home, '.npm'),
    npm_config_update_notifier: 'false',
    // Where node-gyp would download the headers from: nothing listens there.
    npm_config_dist_url: 'http://127.0.0.1:9',
  };
}

const NATIVE_ADDON = {
  'package.json': '{ "name": "native", "version": "1.0.0", "private": true }\n',
  'binding.gyp': '{ "targets": [ { "target_name": "addon", "sources": [ "addon.c" ] } ] }\n',
  'addon.c': `#include <node_api.h>
static napi_value Hello(napi_env env, napi_callback_info info) {
  napi_value out;
  napi_create_string_utf8(env, "native hello", NAPI_AUTO_LENGTH, &out);
  return out;
}
NAPI_MODULE_INIT() {
  napi_value fn;
  napi_create_function(env, "hello", NAPI_AUTO_LENGTH, Hello, NULL, &fn);
  napi_set_named_property(env, exports, "hello", fn);
  return exports;
}
`,
};

it("compiles a native module against the node's own Node.js headers, downloading nothing", async () => {
  const root = mkdtempSync(join(tmpdir(), 'hox-native-'));
  roots.push(root);
  // The machine has them (Debian's nodejs, or an official build's include/): else this would download them.
  expect(nodeHeadersPrefix()).toBeDefined();
  const dir = join(root, 'releases', 'v1');
  const log: string[] = [];
  await buildRelease({
    dir,
    archive: packApp(root, 'native', NATIVE_ADDON),
    label: 'v1',
    env: offlineEnv(root),
    log: (l) => log.push(l),
    step: () => undefined,
    storageDir: join(root, 'storage'),
  });
  const loaded = execFileSync(process.execPath, ['-p', "require('./build/Release/addon.node').hello()"], {
    cwd: dir,
    encoding: 'utf8',
  });
  expect(loaded.trim(), log.join('\n')).toBe('native hello');
}, 180_000);

it("a release with the same package.json and lock file reuses the earlier build's node_modules", async () => {
  const root = mkdtempSync(join(tmpdir(), 'hox-reuse-'));
  roots.push(root);
  // A dependency from a tarball in the app (no registry needed); the lock file written by npm itself.
  const dep = join(root, 'dep');
  mkdirSync(dep);
  writeFileSync(join(dep, 'package.json'), '{ "name": "dep", "version": "1.0.0" }\n');
  writeFileSync(join(dep, 'index.js'), "module.exports = 'dep v1';\n");
  const lockDir = join(root, 'lock');
  mkdirSync(lockDir);
  execFileSync('npm', ['pack', dep, '--pack-destination', lockDir], {
    env: { ...process.env, ...offlineEnv(root) },
    stdio: 'pipe',
  });
  const pkg = '{ "name": "app", "version": "1.0.0", "dependencies": { "dep": "file:dep-1.0.0.tgz" } }\n';
  writeFileSync(join(lockDir, 'package.json'), pkg);
  execFileSync('npm', ['install', '--package-lock-only', '--no-audit', '--no-fund'], {
    cwd: lockDir,
    env: { ...process.env, ...offlineEnv(root) },
    stdio: 'pipe',
  });
  const files = (serverText: string, packageJson = pkg): Record<string, string | Buffer> => ({
    'package.json': packageJson,
    'package-lock.json': readFileSync(join(lockDir, 'package-lock.json'), 'utf8'),
    'dep-1.0.0.tgz': readFileSync(join(lockDir, 'dep-1.0.0.tgz')),
    'server.js': serverText,
  });
  const build = async (name: string, appFiles: Record<string, string | Buffer>) => {
    const log: string[] = [];
    const dir = join(root, 'releases', name);
    await buildRelease({
      dir,
      archive: packApp(root, name, appFiles),
      label: name,
      env: offlineEnv(root),
      log: (l) => log.push(l),
      step: () => undefined,
      storageDir: join(root, 'storage'),
    });
    return { dir, log: log.join('\n') };
  };
  const reused = /node_modules reused from an earlier build/;

  const v1 = await build('v1', files('// v1\n'));
  expect(v1.log).not.toMatch(reused);
  expect(readFileSync(join(v1.dir, 'node_modules', 'dep', 'index.js'), 'utf8')).toContain('dep v1');
  // Other code, same dependencies: no npm ci.
  const v2 = await build('v2', files('// v2\n'));
  expect(v2.log).toMatch(reused);
  expect(v2.log).not.toMatch(/npm ci/);
  expect(readFileSync(join(v2.dir, 'node_modules', 'dep', 'index.js'), 'utf8')).toContain('dep v1');
  // Another package.json: installed again.
  const v3 = await build('v3', files('// v3\n', pkg.replace('"1.0.0"', '"1.0.1"')));
  expect(v3.log).not.toMatch(reused);
  expect(readFileSync(join(v3.dir, 'node_modules', 'dep', 'index.js'), 'utf8')).toContain('dep v1');
}, 180_000);

it('storage paths live outside the release: linked into each one, seeded once, kept across releases', async () => {
  const root = mkdtempSync(join(tmpdir(), 'hox-storage-'));
  roots.push(root);
  const files = (version: string): Record<string, string> => ({
    'index.js': `// ${version}\n`,
    'hox.toml': 'runtime = "node"\n[run]\nweb = "node index.js"\n[storage]\npaths = ["uploads", "data/cache"]\n',
  });
  const build = (name: string, appFiles: Record<string, string>, archiveFiles: string[] = []) => {
    const archive = packApp(root, name, appFiles);
    if (archiveFiles.length > 0) {
      // Files inside a storage path of the source: the seed.
      const source = join(root, `${name}-source`);
      mkdirSync(join(source, 'uploads'), { recursive: true });
      for (const f of archiveFiles) writeFileSync(join(source, 'uploads', f), `${f} from the source\n`);
      execFileSync('tar', ['-czf', archive, '-C', source, '.']);
    }
    return buildRelease({
      dir: join(root, 'releases', name),
      archive,
      label: name,
      env: { PATH: '/usr/bin:/bin' },
      log: () => undefined,
      step: () => undefined,
      storageDir: join(root, 'storage'),
    });
  };
  const manifest = await build('v1', files('v1'), ['logo.png']);
  expect(manifest.storage).toEqual(['uploads', 'data/cache']);
  const v1 = join(root, 'releases', 'v1');
  expect(readlinkSync(join(v1, 'uploads'))).toBe(join(root, 'storage', 'uploads'));
  expect(readlinkSync(join(v1, 'data', 'cache'))).toBe(join(root, 'storage', 'data', 'cache'));
  expect(readFileSync(join(v1, 'uploads', 'logo.png'), 'utf8')).toBe('logo.png from the source\n');
  // What the app writes through v1's link…
  writeFileSync(join(v1, 'uploads', 'avatar.png'), 'uploaded\n');
  // …is there in v2, whose source has another seed file: the stored files win, no second seeding.
  await build('v2', files('v2'), ['other.png']);
  const v2 = join(root, 'releases', 'v2');
  expect(readFileSync(join(v2, 'uploads', 'avatar.png'), 'utf8')).toBe('uploaded\n');
  expect(readdirSync(join(v2, 'uploads')).sort()).toEqual(['avatar.png', 'logo.png']);
  rmSync(v1, { recursive: true, force: true }); // a pruned release takes nothing with it
  expect(readdirSync(join(root, 'storage', 'uploads')).sort()).toEqual(['avatar.png', 'logo.png']);
});
