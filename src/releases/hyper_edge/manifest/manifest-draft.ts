/**
 * What one TOML file (hox.toml or hop3.toml) says about the app, before it is
 * merged with the Procfile, the runtime is detected and defaults are applied —
 * and the naming rules both formats share.
 */
import type { AppAddon, AppRuntime } from './app-manifest.js';
import { shown, type TomlSection } from './toml-section.js';

/** Process (worker) names: also what the Procfile accepts. */
export const PROCESS_NAME = /^[a-z][a-z0-9_-]{0,30}$/;
/** Environment variable names. */
export const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** Names of generated secrets: stricter than env names, upper case only. */
export const SECRET_NAME = /^[A-Z_][A-Z0-9_]*$/;
/** Database names of postgres addons. */
export const DATABASE_NAME = /^[a-z][a-z0-9_]{0,62}$/;
export const RUNTIMES: readonly AppRuntime[] = ['node', 'python', 'static'];

/** Set by the platform: the app may not set them. */
export function isReservedEnvName(name: string): boolean {
  return (
    name === 'PORT' || name === 'HOST' || name === 'DATABASE_URL' || name.startsWith('PG') || name.startsWith('HOX_')
  );
}
export const RESERVED_ENV_NOTE = 'PORT, HOST, DATABASE_URL, PG* and HOX_* are set by the platform';

/**
 * Process names other Procfile dialects (Hop3, Piku) give a meaning hyper_edge
 * does not have: taken as workers they would run a build step or a crontab
 * line as a daemon, so they are refused. Name → what to do instead.
 */
export const FOREIGN_PROCESS_NAMES: ReadonlyMap<string, string> = new Map([
  ['prebuild', 'build steps go to [build] commands in hox.toml'],
  ['postbuild', 'build steps go to [build] commands in hox.toml'],
  ['prerun', "name it 'release': it runs before a new version takes traffic"],
  ['wsgi', "name the web process 'web'"],
  ['jwsgi', "name the web process 'web'"],
  ['rwsgi', "name the web process 'web'"],
  ['static', 'a static site sets runtime = "static" and [static] root in hox.toml'],
  ['cron', 'scheduled jobs are not available; run a worker that sleeps between runs'],
]);

/** Why a shell command (sh -c) cannot be used, or undefined when it can. */
export function commandProblem(command: string): string | undefined {
  if (command.trim() === '') return 'must not be empty';
  if (command.includes('\0')) return 'must not contain a NUL character';
  return undefined;
}

/** A directory inside the app, normalised ('./public/' → 'public'), or why it is not one. */
export function relativeDir(value: string): { dir: string } | { problem: string } {
  if (value.includes('\0') || value.includes('\\')) return { problem: 'must be a plain relative path' };
  if (value.startsWith('/')) return { problem: `must be relative to the app (got ${JSON.stringify(value)})` };
  const segments = value.split('/').filter((s) => s !== '' && s !== '.');
  if (segments.includes('..')) return { problem: `must stay inside the app: no '..' (got ${JSON.stringify(value)})` };
  return { dir: segments.length === 0 ? '.' : segments.join('/') };
}

export interface ManifestDraft {
  /** The file this draft was read from. */
  file: 'hox.toml' | 'hop3.toml';
  /** How this file names its keys, for messages of the merge step. */
  keys: { web: string; release: string; workers: string; staticRoot: string; runtime: string };
  runtime: AppRuntime | undefined;
  build: string[];
  web: string | undefined;
  release: string | undefined;
  workers: Map<string, string>;
  env: Map<string, string>;
  secrets: string[];
  healthcheck: { path?: string; status?: number; bodyContains?: string; timeoutS?: number };
  addons: AppAddon[];
  scale: { web: number | undefined; workers: Map<string, number> };
  /** Directories of the app kept across releases (hox.toml `[storage] paths`), normalised. */
  storage: string[];
  /** Host names the app is served under by the platform's CDN (hox.toml `[cdn] domains`). */
  cdnDomains: string[] | undefined;
  staticRoot: string | undefined;
  /** The directory a static site serves when the file names none. */
  defaultStaticRoot: string;
  /** The file configures a static site (so one is detected even without index.html). */
  staticDeclared: boolean;
  /** Keys the file has, valid or not: a bad value is reported once, not again as a missing one. */
  given: { runtime: boolean; web: boolean };
}

export function emptyDraft(file: ManifestDraft['file'], keys: ManifestDraft['keys']): ManifestDraft {
  return {
    file,
    keys,
    runtime: undefined,
    build: [],
    web: undefined,
    release: undefined,
    workers: new Map(),
    env: new Map(),
    secrets: [],
    healthcheck: {},
    addons: [],
    scale: { web: undefined, workers: new Map() },
    storage: [],
    cdnDomains: undefined,
    staticRoot: undefined,
    defaultStaticRoot: '.',
    staticDeclared: false,
    given: { runtime: false, web: false },
  };
}

/** A command key of `section`; problems are recorded and give undefined. */
export function readCommand(section: TomlSection, key: string): string | undefined {
  const command = section.string(key);
  if (command === undefined) return undefined;
  const problem = commandProblem(command);
  if (problem === undefined) return command;
  section.fail(key, problem);
  return undefined;
}

/** One `[env]` entry whose value must be a string (numbers and booleans are refused, not converted). */
export function addEnvVar(env: TomlSection, draft: ManifestDraft, name: string, value: unknown): void {
  if (!ENV_NAME.test(name)) env.fail(name, 'is not a valid variable name (want [A-Za-z_][A-Za-z0-9_]*)');
  else if (isReservedEnvName(name)) env.fail(name, `is reserved (${RESERVED_ENV_NOTE})`);
  else if (typeof value !== 'string') {
    const hint = typeof value === 'number' || typeof value === 'boolean' ? `: write ${name} = "${String(value)}"` : '';
    env.fail(name, `must be a string (got ${shown(value)}${hint})`);
  } else if (value.includes('\0')) env.fail(name, 'must not contain a NUL character');
  else draft.env.set(name, value);
}

/** Adds one env var name that gets a generated secret, or says why it cannot. */
export function addSecret(draft: ManifestDraft, name: string): string | undefined {
  const problem = !SECRET_NAME.test(name)
    ? 'is not a valid secret name (want [A-Z_][A-Z0-9_]*)'
    : isReservedEnvName(name)
      ? `is reserved (${RESERVED_ENV_NOTE})`
      : draft.secrets.includes(name)
        ? 'is listed twice'
        : draft.env.has(name)
          ? 'is also set in [env]: a variable is either set or generated'
          : undefined;
  if (problem === undefined) draft.secrets.push(name);
  return problem;
}
