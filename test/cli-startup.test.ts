/**
 * `hox` read commands start fast because `hox` builds only the command named
 * (src/cli/program-loader.ts), building it imports only commander, the client
 * and the CLI's light helpers (src/cli/lazy-modules.ts: the master, the agent,
 * the stores and the app manifest reader are imported by the actions that need
 * them), and `npm run build` bundles all that (scripts/bundle-cli.mjs).
 * Asserted on what the process actually loads (a module resolve hook that
 * lists every URL), not on timings: bench/cli-startup prints those.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import type { CommandEnv } from '../src/cli/command-env.js';
import { COMMAND_NAMES, commandNameOf, loadProgram } from '../src/cli/program-loader.js';
import { buildProgram } from '../src/cli/program.js';
import { HOX_VERSION } from '../src/cli/version.js';
import { ROOT } from './support/hox-cli.js';

const dir = mkdtempSync(join(tmpdir(), 'hox-cli-startup-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// The hook appends each resolved module URL to the file HOX_LOADED_LOG names; the register script installs it ahead
// of the program. The hook runs on the loader's own thread: its stderr writes reach the process's stderr through
// the main thread, and a process that exits at once (`--version`) could lose them. A synchronous append cannot be
// lost: the line is in the file before the module is even loaded.
writeFileSync(
  join(dir, 'hook.mjs'),
  `import { appendFileSync } from 'node:fs';
export async function resolve(specifier, context, next) {
  const resolved = await next(specifier, context);
  appendFileSync(process.env.HOX_LOADED_LOG, resolved.url + '\\n');
  return resolved;
}\n`,
);
let runs = 0;
writeFileSync(
  join(dir, 'register.mjs'),
  `import { register } from 'node:module';\nregister(${JSON.stringify(pathToFileURL(join(dir, 'hook.mjs')).href)});\n`,
);

/** Runs `hox ...args` from the sources and returns what it loaded (URLs relative to the repository). */
function loadedBy(
  args: string[],
  env: NodeJS.ProcessEnv = {},
  script = join(ROOT, 'src', 'bin', 'hox.ts'),
): Promise<{ code: number; stdout: string; stderr: string; loaded: string[] }> {
  const log = join(dir, `loaded-${++runs}.txt`);
  writeFileSync(log, '');
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', '--import', join(dir, 'register.mjs'), script, ...args],
      {
        cwd: ROOT,
        timeout: 60_000,
        env: { PATH: process.env.PATH, HOME: dir, HOX_CONFIG: join(dir, 'config.json'), HOX_LOADED_LOG: log, ...env },
      },
      (error, stdout, stderr) => {
        const loaded = readFileSync(log, 'utf8')
          .split('\n')
          .filter((line) => line !== '')
          .map((line) => line.replace(pathToFileURL(ROOT).href + '/', ''));
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : 1;
        resolve({ code, stdout, stderr, loaded });
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
    expect(run.loaded).toContain('src/cli/program-loader.ts');
    expect(run.loaded).toContain('src/cli/commands/app-command.ts');
    expect(run.loaded).toContain('src/cli/commands/db-command.ts');
    expect(heavyIn(run.loaded)).toEqual([]);
  });

  it('list, against an unreachable master, loads the client and its own command, nothing heavy', async () => {
    const run = await loadedBy(['--master', 'http://127.0.0.1:9', 'list'], { HOX_TOKEN: 'hox_user_x' });
    expect(run.code).toBe(3);
    expect(run.loaded).toContain('src/client/master-client.ts');
    expect(run.loaded).toContain('src/cli/commands/list-command.ts');
    // Only the command named is imported: not hox db's or hox app's helpers.
    expect(run.loaded).not.toContain('src/cli/commands/db-command.ts');
    expect(run.loaded).not.toContain('src/cli/commands/app-command.ts');
    expect(run.loaded.filter((url) => url.startsWith('src/cli/db/'))).toEqual([]);
    expect(heavyIn(run.loaded)).toEqual([]);
    // The client's transport is node:http, not Node's fetch (undici), which costs a start-up on its own.
    expect(run.loaded).toContain('src/client/http-transport.ts');
    expect(run.loaded).toContain('node:http');
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
    // Deploy's manifest reader (smol-toml) and source packer are not a read command's; of hyper_edge, only the
    // small health verdict the app view shares with the release.
    expect(heavyIn(run.loaded).filter((url) => !url.endsWith('src/releases/hyper_edge/app-health.ts'))).toEqual([]);
    expect(run.loaded).not.toContain('src/cli/app/app-source.ts');
  });

  it('db status imports the cluster actions when it runs, not the backup, restore, psql or database ones', async () => {
    const run = await loadedBy(['db', 'status', 'crm-db'], {
      HOX_MASTER_URL: 'http://127.0.0.1:9',
      HOX_TOKEN: 'hox_user_x',
    });
    // Unreachable (3), not a failure to load the lazily imported actions (1).
    expect(run.code, run.stderr).toBe(3);
    expect(run.loaded).toContain('src/cli/commands/db-command.ts');
    expect(run.loaded).toContain('src/cli/db/cluster-actions.ts');
    for (const other of ['backup-action', 'backup-parameters', 'cluster-list', 'database-action', 'psql-action'])
      expect(run.loaded).not.toContain(`src/cli/db/${other}.ts`);
    expect(run.loaded).not.toContain('src/cli/commands/app-command.ts');
    expect(heavyIn(run.loaded)).toEqual([]);
  });

  it('db promote and db restore refuse bad input before anything is requested, from their lazily imported checks', async () => {
    // No master at all: the refusal comes first (2), not "no master" (also 2, but another message).
    const promote = await loadedBy(['db', 'promote', 'crm-db', 'member-2']);
    expect(promote.code).toBe(2);
    expect(promote.stderr).toContain('run again with --accept-data-loss');
    const restore = await loadedBy(['db', 'restore', 'crm-db', '--from', 'crm-db']);
    expect(restore.code).toBe(2);
    expect(restore.stderr).toContain("give it a name other than its source 'crm-db'");
  });

  it('builds only the command named, and with none the same program as buildProgram', async () => {
    expect(commandNameOf(['--master', 'http://x', '--json', 'db', 'status', 'crm'])).toBe('db');
    expect(commandNameOf(['--master=http://x', 'list'])).toBe('list');
    expect(commandNameOf(['--help'])).toBeUndefined();
    const env: CommandEnv = {
      adminToken: undefined,
      masterUrl: undefined,
      token: undefined,
      configPath: join(dir, 'config.json'),
      print: () => undefined,
      printErr: () => undefined,
      onStop: () => undefined,
      stopped: new Promise<void>(() => undefined),
    };
    const names = (program: { commands: readonly { name(): string }[] }) => program.commands.map((c) => c.name());
    const full = buildProgram(env);
    const loaded = await loadProgram(env, ['--help']);
    expect(names(loaded)).toEqual(names(full));
    expect(names(full)).toEqual(COMMAND_NAMES);
    expect(loaded.helpInformation()).toBe(full.helpInformation());
    const one = await loadProgram(env, ['--json', 'db', 'status', 'crm']);
    expect(names(one)).toEqual(['db']);
    expect(one.commands[0]!.helpInformation()).toBe(full.commands.find((c) => c.name() === 'db')!.helpInformation());
    // An unknown name gets every command, so commander can suggest the right one.
    expect(names(await loadProgram(env, ['lsit']))).toEqual(COMMAND_NAMES);
  });

  it('the bundle that npm run build makes (scripts/bundle-cli.mjs) answers as the sources do, loading one file per chunk', async () => {
    // --sources: what the bundle leaves outside (src/shared, src/master…) is imported from the .ts files, so this
    // runs without a build, under tsx.
    const out = join(dir, 'bundle');
    await new Promise<void>((resolve, reject) =>
      execFile(
        process.execPath,
        [join(ROOT, 'scripts', 'bundle-cli.mjs'), '--outdir', out, '--sources'],
        { cwd: ROOT, timeout: 60_000 },
        (error, _stdout, stderr) =>
          error === null ? resolve() : reject(new Error(`bundle-cli failed: ${stderr}`, { cause: error })),
      ),
    );
    // As under dist/, whose package.json (the repository's) says ES modules.
    writeFileSync(join(out, 'package.json'), '{ "type": "module" }\n');
    const bundle = join(out, 'hox.js');
    const unreachable = { HOX_MASTER_URL: 'http://127.0.0.1:9', HOX_TOKEN: 'hox_user_x' };
    const cases = [
      [['--help'], {}, 0],
      [['db', 'create', '--help'], {}, 0],
      [['list'], unreachable, 3],
      [['app', 'status', 'crm'], unreachable, 3],
      [['db', 'status', 'crm-db'], unreachable, 3],
    ] as const;
    // All at once: each is a Node start-up under tsx.
    const runs = await Promise.all(
      cases.map(([args, env]) => Promise.all([loadedBy([...args], env, bundle), loadedBy([...args], env)])),
    );
    for (const [i, [args, , code]] of cases.entries()) {
      const [fromBundle, fromSources] = runs[i]!;
      expect({ args, code: fromBundle.code }).toEqual({ args, code });
      expect(fromBundle.stdout).toBe(fromSources.stdout);
      expect(fromBundle.stderr).toBe(fromSources.stderr);
      // The CLI and commander come from the bundle; only server-side and shared modules from elsewhere.
      const outside = fromBundle.loaded.filter((url) => !url.startsWith(pathToFileURL(out).href));
      expect(outside.filter((url) => /^src\/(cli|client|protocol)\/|node_modules\/commander\//.test(url))).toEqual([]);
      expect(fromBundle.loaded).toContain(pathToFileURL(bundle).href);
      expect(
        heavyIn(fromBundle.loaded).filter((url) => !url.endsWith('src/releases/hyper_edge/app-health.ts')),
      ).toEqual([]);
    }
  });
});
