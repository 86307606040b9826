/**
 * `hox` read commands start fast because building the program imports only
 * commander, the client and the CLI's light helpers (src/cli/lazy-modules.ts):
 * the master, the agent, the stores and the app manifest reader are imported by
 * the actions that need them. Asserted on what the process actually loads (a
 * module resolve hook that lists every URL), not on timings:
 * bench/cli-startup prints those.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { HOX_VERSION } from '../src/cli/version.js';
import { ROOT } from './support/hox-cli.js';

const dir = mkdtempSync(join(tmpdir(), 'hox-cli-startup-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// The hook prints each resolved module URL on stderr; the register script installs it ahead of the program.
writeFileSync(
  join(dir, 'hook.mjs'),
  `export async function resolve(specifier, context, next) {
  const resolved = await next(specifier, context);
  process.stderr.write('LOADED ' + resolved.url + '\\n');
  return resolved;
}\n`,
);
writeFileSync(
  join(dir, 'register.mjs'),
  `import { register } from 'node:module';\nregister(${JSON.stringify(pathToFileURL(join(dir, 'hook.mjs')).href)});\n`,
);

/** Runs `hox ...args` from the sources and returns what it loaded (URLs relative to the repository). */
function loadedBy(
  args: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<{ code: number; stdout: string; loaded: string[] }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', '--import', join(dir, 'register.mjs'), join(ROOT, 'src', 'bin', 'hox.ts'), ...args],
      {
        cwd: ROOT,
        timeout: 60_000,
        env: { PATH: process.env.PATH, HOME: dir, HOX_CONFIG: join(dir, 'config.json'), ...env },
      },
      (error, stdout, stderr) => {
        const loaded = stderr
          .split('\n')
          .filter((line) => line.startsWith('LOADED '))
          .map((line) => line.slice('LOADED '.length).replace(pathToFileURL(ROOT).href + '/', ''));
        resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : 1, stdout, loaded });
      },
    );
  });
}

// What read commands must not pull in: server-side packages and the server-side code of the repository.
const HEAVY = [
  /node_modules\/(fastify|kysely|better-sqlite3|pg|ajv|ajv-formats|pino|@sinclair\/typebox|smol-toml)\//,
  /^src\/(master|agent|store|release-kit)\//,
  /^src\/releases\/hyper_edge\//,
];
const heavyIn = (loaded: string[]): string[] => loaded.filter((url) => HEAVY.some((re) => re.test(url)));

describe('hox start-up', () => {
  it('--help builds every command without importing the master, the agent or the stores', async () => {
    const run = await loadedBy(['--help']);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('Usage: hox');
    // The hook saw the program being built (so an empty heavy list means something).
    expect(run.loaded).toContain('src/cli/program.ts');
    expect(run.loaded).toContain('src/cli/commands/app-command.ts');
    expect(heavyIn(run.loaded)).toEqual([]);
  });

  it('list, against an unreachable master, loads the client but nothing heavy', async () => {
    const run = await loadedBy(['list'], { HOX_MASTER_URL: 'http://127.0.0.1:9', HOX_TOKEN: 'hox_user_x' });
    expect(run.code).toBe(3);
    expect(run.loaded).toContain('src/client/master-client.ts');
    expect(heavyIn(run.loaded)).toEqual([]);
  });

  it('--version answers before importing the program', async () => {
    const run = await loadedBy(['--version']);
    expect(run.stdout).toBe(`${HOX_VERSION}\n`);
    expect(run.loaded).toContain('src/cli/version.ts');
    expect(run.loaded).not.toContain('src/cli/program.ts');
  });

  it('prints the version of package.json', () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    expect(HOX_VERSION).toBe(pkg.version);
  });

  it('an app action imports its module when it runs: app status reaches the master', async () => {
    const run = await loadedBy(['app', 'status', 'crm'], {
      HOX_MASTER_URL: 'http://127.0.0.1:9',
      HOX_TOKEN: 'hox_user_x',
    });
    // Unreachable (3), not a failure to load the lazily imported actions (1).
    expect(run.code).toBe(3);
    expect(run.loaded).toContain('src/cli/app/app-actions.ts');
  });
});
