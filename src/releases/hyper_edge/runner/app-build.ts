/**
 * Turns a release's source archive into a runnable directory: unpack, read
 * the manifest, the runtime's install step (Node: `npm ci`/`npm install`;
 * Python: a virtualenv with the system's site packages, `pip install -r
 * requirements.txt`), then the manifest's build commands. A directory is
 * built once: a marker file records success, and a failed build is redone.
 */
import { existsSync, statSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { readAppManifest, type AppManifest } from '../manifest/app-manifest.js';
import { runToCompletion } from './app-process.js';

const BUILT_MARKER = '.hox-built';
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
}

/** The PATH an app's commands see: its virtualenv first (Python), then Node's and the system's. */
export function appPath(dir: string, manifest: AppManifest): string {
  const venv = manifest.runtime === 'python' ? [join(dir, '.venv', 'bin')] : [];
  return [...venv, dirname(process.execPath), '/usr/local/bin', '/usr/bin', '/bin'].join(':');
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
  const env = { ...ctx.env, PATH: appPath(ctx.dir, manifest) };
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
    case 'node':
      if (existsSync(join(ctx.dir, 'package.json')))
        await run(
          'build',
          existsSync(join(ctx.dir, 'package-lock.json'))
            ? 'npm ci --no-audit --no-fund --loglevel=error'
            : 'npm install --no-audit --no-fund --loglevel=error',
        );
      break;
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
  await writeFile(join(ctx.dir, BUILT_MARKER), `${new Date().toISOString()}\n`);
  return manifest;
}

function nonEmpty(path: string): boolean {
  try {
    return statSync(path).size > 0;
  } catch {
    return false;
  }
}
