/**
 * Software installation: a release URL becomes a directory on the node.
 *
 * URLs: a built-in name (`demo`), an absolute path or `file://` URL of a
 * release directory or a `.tar.gz`, or an `https://` / `http://` tarball.
 * Each goes into `<software-dir>/<sha256(url)[:16]>/` (content addressed by
 * URL) with a completion marker written last, so a crash mid-install is
 * simply redone. A built-in is used in place; its marker is keyed by its name
 * and manifest version, so its install step runs once per data dir and again
 * when hox ships a new version of it. A release directory holds
 * `release.json` (the manifest) and the entry module it names.
 */
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { chmod, cp, mkdir, open, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { pathToFileURL, fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { ReleaseDefinition } from '../../release-kit/types.js';

const exec = promisify(execFile);

export interface ReleaseManifest {
  name: string;
  version: string;
  /** Module (ESM) whose default export is a `defineRelease(...)` value. */
  entry: string;
  /** Optional argv run once in the installed directory (build step, or checks of what the release needs). */
  install?: string[];
  /**
   * Software types only the release's own instances may request (a cluster's members, an app's replicas):
   * the master refuses them to anyone else, and the agent never runs one that is a root or a shared instance.
   */
  internalSoftwareTypes?: string[];
}

export interface InstalledRelease {
  url: string;
  /** Directory holding release.json and the entry. */
  path: string;
  manifest: ReleaseManifest;
  definition: ReleaseDefinition;
}

export interface InstallerOptions {
  softwareDir: string;
  /** Directory of the built-in releases (one folder per name). */
  builtinDir: string;
  /** @default 1_800_000 */
  installTimeoutMs?: number;
}

const MARKER = '.hox-installed.json';
const INSTALL_LOG = '.hox-install.log';
const BUILTIN = /^[a-z][a-z0-9_-]{0,62}$/;

export class InstallError extends Error {
  constructor(
    message: string,
    readonly logTail: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'InstallError';
  }
}

export class Installer {
  private readonly loaded = new Map<string, Promise<InstalledRelease>>();
  private readonly installing = new Map<string, Promise<void>>();
  /** Manifest versions of the built-ins, which never change under a running agent. */
  private readonly builtinVersions = new Map<string, string>();

  constructor(private readonly options: InstallerOptions) {}

  /** Where a URL installs (built-ins are used in place). */
  locate(url: string): string {
    if (BUILTIN.test(url)) return join(this.options.builtinDir, url);
    return join(this.options.softwareDir, hash16(url));
  }

  /**
   * The completion marker: `<software-dir>/<sha256(url)[:16]>.hox-installed.json`, or for a built-in
   * `<sha256(name@version)[:16]>…`. Undefined for a built-in without a readable manifest (not installed).
   */
  private markerPath(url: string): string | undefined {
    const key = this.installKey(url);
    return key === undefined ? undefined : join(this.options.softwareDir, `${hash16(key)}${MARKER}`);
  }

  private installKey(url: string): string | undefined {
    if (!BUILTIN.test(url)) return url;
    let version = this.builtinVersions.get(url);
    if (version === undefined) {
      try {
        const manifest = JSON.parse(readFileSync(join(this.locate(url), 'release.json'), 'utf8')) as {
          version?: unknown;
        };
        if (typeof manifest.version === 'string') version = manifest.version;
      } catch {
        // No such built-in, or a broken manifest: installing it says which.
      }
      if (version === undefined) return undefined;
      this.builtinVersions.set(url, version);
    }
    return `${url}@${version}`;
  }

  isInstalled(url: string): boolean {
    const marker = this.markerPath(url);
    return marker !== undefined && existsSync(marker);
  }

  /** Installs once; concurrent calls share the work. Throws {@link InstallError} with the log tail. */
  install(url: string): Promise<void> {
    let pending = this.installing.get(url);
    if (pending === undefined) {
      pending = this.doInstall(url).finally(() => this.installing.delete(url));
      this.installing.set(url, pending);
    }
    return pending;
  }

  private async doInstall(url: string): Promise<void> {
    if (this.isInstalled(url)) return;
    await mkdir(this.options.softwareDir, { recursive: true });
    await chmod(this.options.softwareDir, 0o755);
    const target = this.locate(url);
    const log: string[] = [];
    try {
      const builtin = BUILTIN.test(url);
      if (builtin) {
        if (!existsSync(join(target, 'release.json'))) throw new Error(`no built-in release named '${url}'`);
      } else {
        await rm(target, { recursive: true, force: true });
        await this.fetchInto(url, target, log);
      }
      const manifest = await readManifest(target);
      const marker = this.markerPath(url);
      if (marker === undefined) throw new Error(`cannot read the version of built-in release '${url}'`);
      if (manifest.install !== undefined) {
        // A built-in's directory ships with hox (maybe read-only, shared by agents): its log stays in the data dir.
        const logPath = builtin ? marker.replace(MARKER, INSTALL_LOG) : join(target, INSTALL_LOG);
        await this.runInstallStep(manifest.install, target, log, logPath);
      }
      await writeFile(
        marker,
        JSON.stringify({
          url,
          path: target,
          version: manifest.version,
          installedAt: new Date().toISOString(),
        }),
      );
    } catch (error) {
      const tail = log.join('').split('\n').slice(-20).join('\n');
      throw new InstallError(
        `installing '${url}' failed: ${error instanceof Error ? error.message : String(error)}`,
        tail,
        { cause: error },
      );
    }
  }

  private async fetchInto(url: string, target: string, log: string[]): Promise<void> {
    const tmp = `${target}.partial`;
    await rm(tmp, { recursive: true, force: true });
    await mkdir(tmp, { recursive: true });
    if (/^https?:\/\//.test(url)) {
      const response = await fetch(url, { signal: AbortSignal.timeout(this.options.installTimeoutMs ?? 1_800_000) });
      if (!response.ok) throw new Error(`download answered HTTP ${response.status}`);
      const archive = `${tmp}.tar.gz`;
      await writeFile(archive, Buffer.from(await response.arrayBuffer()));
      await extract(archive, tmp, log);
      await rm(archive, { force: true });
    } else {
      const path = url.startsWith('file://') ? fileURLToPath(url) : url;
      if (!path.startsWith('/'))
        throw new Error('a release path must be absolute (or a file://, https:// URL, or a built-in name)');
      if (/\.(tar\.gz|tgz)$/.test(path)) await extract(path, tmp, log);
      else await cp(resolve(path), tmp, { recursive: true });
    }
    await exec('chmod', ['-R', 'a+rX', tmp]);
    await rename(tmp, target);
  }

  /**
   * Runs the manifest's `install` argv as the agent's user in the release directory, with a clean
   * environment (`PATH`, `LANG`: nothing of the agent's own, such as tokens), output to `logPath` and `log`.
   */
  private async runInstallStep(argv: string[], cwd: string, log: string[], logPath: string): Promise<void> {
    const [command, ...args] = argv;
    if (command === undefined) return;
    const logFile = await open(logPath, 'a');
    const env = { PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin', LANG: 'C.UTF-8' };
    try {
      await new Promise<void>((resolvePromise, reject) => {
        const child = spawn(command, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
        const timer = setTimeout(() => child.kill('SIGKILL'), this.options.installTimeoutMs ?? 1_800_000);
        const collect = (chunk: Buffer): void => {
          log.push(chunk.toString());
          void logFile.write(chunk);
        };
        child.stdout.on('data', collect);
        child.stderr.on('data', collect);
        child.on('error', reject);
        child.on('close', (code, signal) => {
          clearTimeout(timer);
          if (code === 0) resolvePromise();
          else reject(new Error(`install step ${JSON.stringify(argv)} exited with ${code ?? signal}`));
        });
      });
    } finally {
      await logFile.close();
    }
  }

  /** Loads an installed release's definition (cached per URL). */
  load(url: string): Promise<InstalledRelease> {
    let pending = this.loaded.get(url);
    if (pending === undefined) {
      pending = this.doLoad(url);
      pending.catch(() => this.loaded.delete(url));
      this.loaded.set(url, pending);
    }
    return pending;
  }

  private async doLoad(url: string): Promise<InstalledRelease> {
    const path = this.locate(url);
    const manifest = await readManifest(path);
    let entry = join(path, manifest.entry);
    // Running from TypeScript sources (tests): the built-in's entry is still .ts.
    if (!existsSync(entry) && entry.endsWith('.js') && existsSync(entry.replace(/\.js$/, '.ts')))
      entry = entry.replace(/\.js$/, '.ts');
    // Node caches modules by URL: a reinstalled release must not run the previous code.
    // (Built-ins ship with hox and never change under a running agent.)
    const href = pathToFileURL(entry).href;
    const marker = this.markerPath(url);
    const version = BUILTIN.test(url) || marker === undefined ? '' : `?v=${Math.round((await stat(marker)).mtimeMs)}`;
    const module = (await import(`${href}${version}`)) as { default?: ReleaseDefinition };
    const definition = module.default;
    if (definition === undefined || typeof definition.softwareTypes !== 'object')
      throw new Error(`release '${url}': ${manifest.entry} has no default export from defineRelease()`);
    return { url, path, manifest, definition };
  }

  async remove(url: string): Promise<void> {
    this.loaded.delete(url);
    const marker = this.markerPath(url);
    if (marker !== undefined) await rm(marker, { force: true });
    if (!BUILTIN.test(url)) await rm(this.locate(url), { recursive: true, force: true });
  }
}

function hash16(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 16);
}

async function readManifest(dir: string): Promise<ReleaseManifest> {
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(join(dir, 'release.json'), 'utf8'));
  } catch (error) {
    throw new Error(`cannot read release.json in ${dir}`, { cause: error });
  }
  const m = raw as Partial<ReleaseManifest>;
  if (typeof m.name !== 'string' || typeof m.version !== 'string' || typeof m.entry !== 'string')
    throw new Error('release.json must have string fields name, version and entry');
  if (m.install !== undefined && !(Array.isArray(m.install) && m.install.every((a) => typeof a === 'string')))
    throw new Error('release.json: install must be an array of strings (argv)');
  if (m.entry.includes('..')) throw new Error('release.json: entry must stay inside the release');
  if (
    m.internalSoftwareTypes !== undefined &&
    !(Array.isArray(m.internalSoftwareTypes) && m.internalSoftwareTypes.every((t) => typeof t === 'string'))
  )
    throw new Error('release.json: internalSoftwareTypes must be an array of software type names');
  return m as ReleaseManifest;
}

async function extract(archive: string, into: string, log: string[]): Promise<void> {
  try {
    const { stdout, stderr } = await exec('tar', ['-xzf', archive, '-C', into, '--no-same-owner']);
    log.push(stdout, stderr);
  } catch (error) {
    throw new Error(`cannot extract ${archive}`, { cause: error });
  }
  // A tarball with a single top-level folder: use its content.
  const entries = await readdir(into);
  if (entries.length === 1 && !existsSync(join(into, 'release.json'))) {
    const only = join(into, entries[0]!);
    if (existsSync(join(only, 'release.json'))) {
      for (const name of await readdir(only)) await rename(join(only, name), join(into, name));
      await rm(only, { recursive: true, force: true });
    }
  }
}
