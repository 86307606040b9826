/**
 * Turns a release's source archive into a runnable directory: unpack, read
 * the manifest, the runtime's install step (Node: `npm ci`/`npm install`;
 * Python: a virtualenv with the system's site packages, `pip install -r
 * requirements.txt`), then the manifest's build commands. A directory is
 * built once: a marker file records success, and a failed build is redone.
 *
 * Native modules compile against the Node.js headers installed on the node
 * (`npm_config_nodedir`), so a build needs no host but the npm registry. A
 * release whose package.json and package-lock.json are those of an earlier
 * build in the same place (the replica's partition) reuses that build's
 * node_modules instead of running `npm ci` again.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { cp, lstat, mkdir, readFile, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { readAppManifest, type AppManifest } from '../manifest/app-manifest.js';
import { runToCompletion } from './app-process.js';

const BUILT_MARKER = '.hox-built';
/** What the node_modules of a built directory were installed from (see {@link dependencyKey}). */
const DEPS_MARKER = '.hox-deps';
/** npm runs these scripts of the app itself on install: their effects outside node_modules cannot be copied. */
const INSTALL_SCRIPTS = ['preinstall', 'install', 'postinstall', 'prepare'];
const BUILD_TIMEOUT_MS = 15 * 60_000;

export interface BuildContext {
  /** Where the release's directory goes. */
  dir: string;
  archive: string;
  label: string;
  /** Environment for the install and build commands. */
  env: Record<string, string>;
  log: (line: string) => void;
  step: (name: string) => void;
  /** Each command's process group, as soon as it starts (see ProcessOptions.onSpawn). */
  onSpawn?: (group: number, exited: Promise<unknown>) => void;
  /** Where the manifest's `[storage] paths` live, outside every release directory. */
  storageDir: string;
}

/** The PATH an app's commands see: its virtualenv first (Python), then Node's and the system's. */
export function appPath(dir: string, manifest: AppManifest): string {
  const venv = manifest.runtime === 'python' ? [join(dir, '.venv', 'bin')] : [];
  return [...venv, dirname(process.execPath), '/usr/local/bin', '/usr/bin', '/bin'].join(':');
}

/**
 * The prefix of the Node.js installation running this program when its headers are there and of its very
 * version (`<prefix>/include/node/node_version.h`), for node-gyp's `nodedir`: without it, node-gyp downloads
 * the headers from nodejs.org. Undefined when they are missing or of another version.
 */
export function nodeHeadersPrefix(execPath: string = process.execPath): string | undefined {
  const prefix = dirname(dirname(execPath));
  let header: string;
  try {
    header = readFileSync(join(prefix, 'include', 'node', 'node_version.h'), 'utf8');
  } catch {
    return undefined;
  }
  const part = (name: string) => new RegExp(`#define NODE_${name}_VERSION (\\d+)`).exec(header)?.[1];
  const version = `v${part('MAJOR')}.${part('MINOR')}.${part('PATCH')}`;
  return version === process.version ? prefix : undefined;
}

/**
 * What decides a node app's node_modules: its package.json and package-lock.json, the Node.js version and
 * architecture. Null when they cannot be reused: no lock file, or install scripts of the app's own.
 */
async function dependencyKey(dir: string): Promise<string | null> {
  let pkg: string;
  let lock: string;
  try {
    [pkg, lock] = await Promise.all([
      readFile(join(dir, 'package.json'), 'utf8'),
      readFile(join(dir, 'package-lock.json'), 'utf8'),
    ]);
  } catch {
    return null;
  }
  try {
    const scripts = (JSON.parse(pkg) as { scripts?: Record<string, unknown> }).scripts ?? {};
    // binding.gyp: npm runs `node-gyp rebuild` as the app's own install script.
    if (INSTALL_SCRIPTS.some((name) => name in scripts) || existsSync(join(dir, 'binding.gyp'))) return null;
  } catch {
    return null; // npm ci says what is wrong with it
  }
  return createHash('sha256')
    .update(JSON.stringify([pkg, lock, process.version, process.arch, nodeHeadersPrefix() ?? null]))
    .digest('hex');
}

/** A built sibling of `dir` whose node_modules came from the same {@link dependencyKey}, if any. */
async function reusableModules(dir: string, key: string): Promise<string | undefined> {
  const parent = dirname(dir);
  for (const name of await readdir(parent).catch(() => [])) {
    const other = join(parent, name);
    if (other === dir || !existsSync(join(other, BUILT_MARKER))) continue;
    const theirs = await readFile(join(other, DEPS_MARKER), 'utf8').catch(() => '');
    if (theirs.trim() === key && existsSync(join(other, 'node_modules'))) return join(other, 'node_modules');
  }
  return undefined;
}

export async function buildRelease(ctx: BuildContext): Promise<AppManifest> {
  const built = existsSync(join(ctx.dir, BUILT_MARKER));
  if (!built) {
    ctx.step('unpack');
    // The agent copies the archive in before it rewrites runner.json; after a restart, give it a moment.
    for (let i = 0; i < 100 && !existsSync(ctx.archive); i++) await sleep(100);
    await rm(ctx.dir, { recursive: true, force: true });
    await mkdir(ctx.dir, { recursive: true });
    await runToCompletion({
      label: `unpack ${ctx.label}`,
      // The archive on standard input: its path would show on tar's command line, readable by every user.
      command: 'tar -xzf - --no-same-owner -C .',
      stdinPath: ctx.archive,
      cwd: ctx.dir,
      env: ctx.env,
      log: ctx.log,
      timeoutMs: 120_000,
      ...(ctx.onSpawn ? { onSpawn: ctx.onSpawn } : {}),
    });
  }
  const manifest = await readAppManifest(ctx.dir);
  if (built) return manifest;
  const headers = nodeHeadersPrefix();
  const env = {
    ...(headers === undefined ? {} : { npm_config_nodedir: headers }),
    ...ctx.env,
    PATH: appPath(ctx.dir, manifest),
  };
  // The install step runs without the manifest's [env] (NODE_ENV=production there would make `npm ci` leave out
  // the devDependencies a build needs); the build commands see it, as the app's processes do.
  const run = (label: string, command: string, withEnv = false) =>
    runToCompletion({
      label: `${label} ${ctx.label}`,
      command,
      cwd: ctx.dir,
      env: withEnv ? { ...ctx.env, ...manifest.env, PATH: env.PATH } : env,
      log: ctx.log,
      timeoutMs: BUILD_TIMEOUT_MS,
      ...(ctx.onSpawn ? { onSpawn: ctx.onSpawn } : {}),
    });
  ctx.step('build');
  switch (manifest.runtime) {
    case 'node': {
      if (!existsSync(join(ctx.dir, 'package.json'))) break;
      const key = await dependencyKey(ctx.dir);
      const earlier = key === null ? undefined : await reusableModules(ctx.dir, key);
      if (earlier !== undefined) {
        ctx.log(`[build ${ctx.label}] node_modules reused from an earlier build (same package.json and lock file)`);
        await cp(earlier, join(ctx.dir, 'node_modules'), { recursive: true, verbatimSymlinks: true });
      } else
        await run(
          'build',
          existsSync(join(ctx.dir, 'package-lock.json'))
            ? 'npm ci --no-audit --no-fund --loglevel=error'
            : 'npm install --no-audit --no-fund --loglevel=error',
        );
      if (key !== null) await writeFile(join(ctx.dir, DEPS_MARKER), `${key}\n`);
      break;
    }
    case 'python':
      // The system's packages (Debian's python3-*) are visible; pip only when there is something to install.
      if (nonEmpty(join(ctx.dir, 'requirements.txt'))) {
        await run('build', 'python3 -m venv --system-site-packages .venv');
        await run('build', '.venv/bin/pip install --disable-pip-version-check -r requirements.txt');
      } else await run('build', 'python3 -m venv --system-site-packages --without-pip .venv');
      break;
    case 'static':
      break;
  }
  for (const command of manifest.build) await run('build', command, true);
  await linkStorage(ctx.dir, ctx.storageDir, manifest.storage, ctx.log);
  await writeFile(join(ctx.dir, BUILT_MARKER), `${new Date().toISOString()}\n`);
  return manifest;
}

/**
 * Replaces each storage path of a release directory by a symbolic link to its directory under `storageDir`,
 * created when missing and seeded, while empty, with what the source has at that path.
 */
async function linkStorage(dir: string, storageDir: string, paths: string[], log: (line: string) => void) {
  for (const path of paths) {
    const kept = join(storageDir, path);
    const inRelease = join(dir, path);
    // A link in the source on the way would put the link, or the seeding, anywhere.
    const segments = path.split('/');
    for (let i = 1; i <= segments.length; i++) {
      const info = await lstat(join(dir, ...segments.slice(0, i))).catch(() => undefined);
      if (info?.isSymbolicLink())
        throw new Error(`storage path '${path}': '${segments.slice(0, i).join('/')}' is a symbolic link in the app`);
      if (info !== undefined && !info.isDirectory())
        throw new Error(`storage path '${path}': '${segments.slice(0, i).join('/')}' is a file in the app`);
    }
    await mkdir(kept, { recursive: true, mode: 0o700 });
    if (existsSync(inRelease)) {
      if ((await readdir(kept)).length === 0) {
        await cp(inRelease, kept, { recursive: true, verbatimSymlinks: true });
        log(`storage: '${path}' seeded from the release`);
      }
      await rm(inRelease, { recursive: true, force: true });
    }
    await mkdir(dirname(inRelease), { recursive: true });
    await symlink(kept, inRelease);
  }
}

function nonEmpty(path: string): boolean {
  try {
    return statSync(path).size > 0;
  } catch {
    return false;
  }
}
