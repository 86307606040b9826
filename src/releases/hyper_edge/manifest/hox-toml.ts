/**
 * hox.toml, hyper_edge's own app file (the reference is docs/app-manifest.md).
 * Every key is known here; anything else is reported by name.
 */
import type { AppRuntime } from './app-manifest.js';
import {
  DATABASE_NAME,
  PROCESS_NAME,
  RUNTIMES,
  addEnvVar,
  addSecret,
  commandProblem,
  emptyDraft,
  readCommand,
  relativeDir,
  type ManifestDraft,
} from './manifest-draft.js';
import { TomlSection, shown, type TomlValues } from './toml-section.js';
import { DNS_NAME } from '../../../shared/dns-name.js';

const FILE = 'hox.toml';
export const MAX_ADDONS = 1;

/** Checks the number of `[[addons]]`: shared with hop3.toml. */
export function checkAddonCount(root: TomlSection, addons: TomlSection[]): void {
  if (addons.length <= MAX_ADDONS) return;
  root.problems.push(
    `${root.file}: addons: at most ${MAX_ADDONS} postgres addon is supported for now (found ${addons.length})`,
  );
}

/** Reads a parsed hox.toml; problems go to `problems`. */
export function readHoxToml(values: TomlValues, problems: string[]): ManifestDraft {
  const root = new TomlSection(FILE, '', values, problems);
  const draft = emptyDraft(FILE, {
    web: 'run.web',
    release: 'run.release',
    workers: 'run.workers',
    staticRoot: 'static.root',
    runtime: 'runtime',
  });
  const runtime = root.string('runtime');
  draft.given.runtime = root.raw('runtime') !== undefined;
  if (runtime !== undefined) {
    if ((RUNTIMES as readonly string[]).includes(runtime)) draft.runtime = runtime as AppRuntime;
    else root.fail('runtime', `must be one of ${RUNTIMES.join(', ')} (got ${shown(runtime)})`);
  }
  readBuild(root.section('build'), draft);
  readRun(root.section('run'), draft);
  const env = root.section('env');
  if (env !== undefined) for (const [name, value] of env.entries()) addEnvVar(env, draft, name, value);
  readSecrets(root.section('secrets'), draft);
  readHealthcheck(root.section('healthcheck'), draft);
  const addons = root.sections('addons') ?? [];
  checkAddonCount(root, addons);
  for (const addon of addons) readAddon(addon, draft);
  readScale(root.section('scale'), draft);
  readStorage(root.section('storage'), draft);
  readCdn(root.section('cdn'), draft);
  const staticSection = root.section('static');
  if (staticSection !== undefined) {
    draft.staticDeclared = true;
    draft.staticRoot = readDir(staticSection, 'root');
    staticSection.finish();
  }
  root.finish({ aliases: { toolchain: 'runtime' } });
  return draft;
}

function readBuild(build: TomlSection | undefined, draft: ManifestDraft): void {
  if (build === undefined) return;
  (build.stringList('commands') ?? []).forEach((command, i) => {
    const problem = commandProblem(command);
    if (problem === undefined) draft.build.push(command);
    else build.fail('commands', `[${i}] ${problem}`);
  });
  build.finish({ aliases: { build: 'build.commands', 'before-build': 'build.commands', toolchain: 'runtime' } });
}

function readRun(run: TomlSection | undefined, draft: ManifestDraft): void {
  if (run === undefined) return;
  draft.web = readCommand(run, 'web');
  draft.given.web = run.raw('web') !== undefined;
  draft.release = readCommand(run, 'release');
  const workers = run.section('workers');
  if (workers !== undefined) {
    for (const [name] of workers.entries()) {
      if (!PROCESS_NAME.test(name)) workers.fail(name, 'is not a valid worker name (want [a-z][a-z0-9_-]{0,30})');
      else if (name === 'web' || name === 'release') workers.fail(name, `is not a worker: use run.${name}`);
      else {
        const command = readCommand(workers, name);
        if (command !== undefined) draft.workers.set(name, command);
      }
    }
  }
  run.finish({ aliases: { start: 'run.web', 'before-run': 'run.release' } });
}

function readSecrets(secrets: TomlSection | undefined, draft: ManifestDraft): void {
  if (secrets === undefined) return;
  for (const name of secrets.stringList('generate') ?? []) {
    const problem = addSecret(draft, name);
    if (problem !== undefined) secrets.fail('generate', `'${name}' ${problem}`);
  }
  secrets.finish();
}

function readHealthcheck(check: TomlSection | undefined, draft: ManifestDraft): void {
  if (check === undefined) return;
  draft.healthcheck = {
    path: readHealthPath(check, 'path'),
    status: check.integer('status', 100, 599),
    bodyContains: readContains(check),
    timeoutS: check.integer('timeout', 1, 600),
  };
  check.finish();
}

/** `[healthcheck] path`: shared with hop3.toml. */
export function readHealthPath(section: TomlSection, key: string): string | undefined {
  const path = section.string(key);
  if (path === undefined || /^\/[^\s\0]*$/.test(path)) return path;
  section.fail(key, `must start with '/' and contain no spaces (got ${shown(path)})`);
  return undefined;
}

/** `[healthcheck] contains`: shared with hop3.toml. */
export function readContains(section: TomlSection): string | undefined {
  const contains = section.string('contains');
  if (contains !== '') return contains;
  section.fail('contains', 'must not be empty (leave it out to check the status only)');
  return undefined;
}

function readAddon(addon: TomlSection, draft: ManifestDraft): void {
  const type = addon.string('type');
  const name = addon.string('name');
  const cluster = addon.string('cluster');
  if (type === undefined) addon.fail('type', 'is required (type = "postgres")');
  else if (type !== 'postgres') addon.unsupportedValue('type', type, 'only "postgres"');
  if (name === undefined) addon.fail('name', 'is required: the database name, e.g. name = "crm"');
  else if (!DATABASE_NAME.test(name))
    addon.fail('name', `${shown(name)} is not a database name (want [a-z][a-z0-9_]{0,62})`);
  if (cluster !== undefined && !/^[^\0-\x1f]{1,64}$/.test(cluster)) {
    addon.fail('cluster', `must be an instance tree title of 1 to 64 characters (got ${shown(cluster)})`);
  }
  addon.finish();
  if (type === 'postgres' && name !== undefined && DATABASE_NAME.test(name)) {
    draft.addons.push({ kind: 'postgres', name, cluster: cluster ?? null });
  }
}

function readScale(scale: TomlSection | undefined, draft: ManifestDraft): void {
  if (scale === undefined) return;
  draft.scale.web = scale.integer('web', 1, 20);
  const workers = scale.section('workers');
  if (workers !== undefined) {
    for (const [name] of workers.entries()) {
      const replicas = workers.integer(name, 0, 8);
      if (replicas !== undefined) draft.scale.workers.set(name, replicas);
    }
  }
  scale.finish();
}

/** At most this many `[storage] paths`. */
export const MAX_STORAGE_PATHS = 10;
/** What the platform itself writes in a release directory: not a place for the app's data. */
const NOT_STORAGE = new Set(['node_modules', '.venv', '.npm', '.hox-built', '.hox-deps']);

function readStorage(storage: TomlSection | undefined, draft: ManifestDraft): void {
  if (storage === undefined) return;
  const paths = storage.stringList('paths') ?? [];
  if (paths.length > MAX_STORAGE_PATHS)
    storage.fail('paths', `at most ${MAX_STORAGE_PATHS} directories (got ${paths.length})`);
  paths.slice(0, MAX_STORAGE_PATHS).forEach((value, i) => {
    const dir = relativeDir(value);
    const problem =
      'problem' in dir
        ? dir.problem
        : dir.dir === '.'
          ? 'must name a directory inside the app, not the app itself'
          : NOT_STORAGE.has(dir.dir.split('/')[0]!)
            ? `'${dir.dir.split('/')[0]!}' is written by the platform's build`
            : draft.storage.find(
                  (other) =>
                    dir.dir === other || `${dir.dir}/`.startsWith(`${other}/`) || `${other}/`.startsWith(`${dir.dir}/`),
                ) !== undefined
              ? `'${dir.dir}' overlaps another path of the list`
              : undefined;
    if (problem !== undefined) storage.fail('paths', `[${i}] ${problem}`);
    else if ('dir' in dir) draft.storage.push(dir.dir);
  });
  storage.finish();
}

/** At most this many `[cdn] domains` (a hyper_cdn site's limit). */
export const MAX_CDN_DOMAINS = 10;

function readCdn(cdn: TomlSection | undefined, draft: ManifestDraft): void {
  if (cdn === undefined) return;
  const domains = cdn.stringList('domains');
  if (domains === undefined) cdn.fail('domains', 'is required: the host names the CDN serves the app under');
  else if (domains.length === 0 || domains.length > MAX_CDN_DOMAINS)
    cdn.fail('domains', `must list 1 to ${MAX_CDN_DOMAINS} host names (got ${domains.length})`);
  else {
    const bad = domains.find((d) => !DNS_NAME.test(d) || d.startsWith('*.'));
    if (bad !== undefined)
      cdn.fail('domains', `has ${shown(bad)}, not a host name (lower case letters, digits, dots and inner hyphens)`);
    else if (new Set(domains).size !== domains.length) cdn.fail('domains', 'lists a host name twice');
    else draft.cdnDomains = domains;
  }
  cdn.finish();
}

/** A directory inside the app: shared with hop3.toml. */
export function readDir(section: TomlSection, key: string): string | undefined {
  const value = section.string(key);
  if (value === undefined) return undefined;
  const dir = relativeDir(value);
  if ('dir' in dir) return dir.dir;
  section.fail(key, dir.problem);
  return undefined;
}
