/**
 * hop3.toml, the app file of Abilian's Hop3 PaaS: its common keys are mapped
 * onto the app manifest, the keys hyper_edge cannot honour are refused by name
 * ("not supported by hyper_edge"). The mapping table is in docs/app-manifest.md.
 */
import type { AppRuntime } from './app-manifest.js';
import { checkAddonCount, readContains, readDir, readHealthPath } from './hox-toml.js';
import {
  DATABASE_NAME,
  FOREIGN_PROCESS_NAMES,
  PROCESS_NAME,
  RUNTIMES,
  addEnvVar,
  addSecret,
  commandProblem,
  emptyDraft,
  type ManifestDraft,
} from './manifest-draft.js';
import { TomlSection, isTable, shown, type TomlValues } from './toml-section.js';

const FILE = 'hop3.toml';

const UNSUPPORTED_SECTIONS = {
  port: 'the web process listens on $PORT, chosen by the platform',
  ports: 'apps cannot claim fixed host ports',
  docker: 'apps are built and run on the node, not in Docker',
  backup: "the app's data lives in its postgres addon, backed up by hyper_db",
  static: 'URL-path mappings are not served; a static site sets build.static-dir',
  domains: "hostnames are not set from the app's files",
  contexts: "deploy targets are not set from the app's files",
  volumes: 'the app directory is replaced on each deploy; keep data in the postgres addon',
  limits: "resource limits are not set from the app's files",
  waf: 'no web application firewall',
  test: "Hop3's test harness metadata",
  nix: 'apps are not built with Nix',
  provider: 'the old name of [[addons]]: use [[addons]] with type = "postgres"',
};

/** Reads a parsed hop3.toml; `present` (the app's top-level names) gives the static default. */
export function readHop3Toml(values: TomlValues, present: ReadonlySet<string>, problems: string[]): ManifestDraft {
  const root = new TomlSection(FILE, '', values, problems);
  const draft = emptyDraft(FILE, {
    web: 'run.start',
    release: 'run.before-run',
    workers: 'run.workers',
    staticRoot: 'build.static-dir',
    runtime: 'build.toolchain',
  });
  // Hop3 serves public/ when build.static-dir is not set.
  draft.defaultStaticRoot = present.has('public') ? 'public' : '.';
  const appId = readMetadata(root.section('metadata'));
  readBuild(root.section('build'), draft);
  const run = root.section('run');
  if (run !== undefined) readRun(run, draft);
  const env = root.section('env');
  if (env !== undefined) readEnv(env, draft);
  readHealthcheck(root.section('healthcheck'), draft);
  const addons = root.sections('addons') ?? [];
  checkAddonCount(root, addons);
  for (const addon of addons) readAddon(addon, appId, draft);
  root.finish({ unsupported: UNSUPPORTED_SECTIONS, aliases: { addon: 'addons' } });
  return draft;
}

/** Informational only: checked for types, unused but `id` (the default addon name). */
function readMetadata(metadata: TomlSection | undefined): string | undefined {
  if (metadata === undefined) return undefined;
  const id = metadata.string('id');
  for (const key of ['version', 'title', 'description', 'author', 'license', 'name', 'homepage']) metadata.string(key);
  metadata.stringList('categories');
  metadata.stringList('tags');
  metadata.finish();
  return id;
}

function readBuild(build: TomlSection | undefined, draft: ManifestDraft): void {
  if (build === undefined) return;
  const builder = build.string('builder');
  if (builder === 'docker' || builder === 'nix') {
    build.unsupportedValue('builder', builder, 'apps are built on the node: "local" or "auto"');
  } else if (builder !== undefined && builder !== 'local' && builder !== 'auto') {
    build.fail('builder', `must be "auto" or "local" (got ${shown(builder)})`);
  }
  const toolchain = build.string('toolchain');
  draft.given.runtime = build.raw('toolchain') !== undefined;
  if (toolchain !== undefined) {
    if ((RUNTIMES as readonly string[]).includes(toolchain)) draft.runtime = toolchain as AppRuntime;
    else build.unsupportedValue('toolchain', toolchain, `only ${RUNTIMES.join(', ')}`);
  }
  draft.staticRoot = readDir(build, 'static-dir');
  draft.staticDeclared = build.raw('static-dir') !== undefined;
  // Hop3 runs before-build ahead of its toolchain's install; hyper_edge has no such hook (see the docs).
  for (const key of ['before-build', 'build', 'after-build', 'test']) draft.build.push(...commands(build, key));
  build.finish({
    unsupported: {
      packages: 'system packages cannot be installed per app',
      'pip-install': 'list Python packages in requirements.txt or pyproject.toml',
      'node-version': "the node's Node.js runs every app",
      ignore: 'the whole source directory is deployed',
    },
  });
}

/** A Hop3 command field (string or array) as a list of commands. */
function commands(section: TomlSection, key: string): string[] {
  const list = section.stringOrList(key) ?? [];
  const bad = list.map(commandProblem).find((problem) => problem !== undefined);
  if (bad === undefined) return list;
  section.fail(key, bad);
  return [];
}

/** An array is one command: Hop3 joins its items with &&. */
function joinedCommand(section: TomlSection, key: string): string | undefined {
  const list = commands(section, key);
  return list.length === 0 ? undefined : list.join(' && ');
}

function readRun(run: TomlSection, draft: ManifestDraft): void {
  draft.web = joinedCommand(run, 'start');
  draft.given.web = run.raw('start') !== undefined;
  draft.release = joinedCommand(run, 'before-run');
  const workers = run.section('workers');
  if (workers !== undefined) for (const [name, command] of workers.entries()) readWorker(workers, name, command, draft);
  draft.healthcheck.timeoutS = run.integer('start-timeout', 1, 600);
  draft.healthcheck.path = readHealthPath(run, 'healthcheck');
  run.finish({
    unsupported: {
      packages: 'system packages cannot be installed per app',
      static: 'URL-path mappings are not served; a static site sets build.static-dir',
      'healthcheck-timeout': 'the wait for a new version is run.start-timeout',
    },
  });
}

function readWorker(workers: TomlSection, name: string, command: unknown, draft: ManifestDraft): void {
  const foreign = FOREIGN_PROCESS_NAMES.get(name);
  const problem = !PROCESS_NAME.test(name)
    ? 'is not a valid worker name (want [a-z][a-z0-9_-]{0,30})'
    : foreign !== undefined
      ? `is a Hop3 process name hyper_edge does not support (${foreign})`
      : name === 'release'
        ? 'is not a worker: use run.before-run'
        : typeof command !== 'string'
          ? `must be a string (got ${shown(command)})`
          : commandProblem(command);
  if (name === 'web') draft.given.web = true;
  if (problem !== undefined) workers.fail(name, problem);
  else if (name !== 'web') draft.workers.set(name, command as string);
  else if (draft.web !== undefined) workers.fail(name, 'and run.start both set the web command: keep one');
  else draft.web = command as string;
}

function readEnv(env: TomlSection, draft: ManifestDraft): void {
  for (const [name, value] of env.entries()) {
    if (name === '_policy') env.unsupported(name, 'the file sets the values on every deploy');
    else if (name === 'HOST_NAME') env.unsupported(name, "hostnames are not set from the app's files");
    else if (!isTable(value)) addEnvVar(env, draft, name, value);
    else if (name === 'computed') env.unsupported(name, 'no ${VAR} interpolation');
    else if (Object.hasOwn(value, 'generate'))
      readGenerated(new TomlSection(FILE, env.path(name), value, env.problems), name, draft);
    else if (['from', 'key', 'external_ip'].some((key) => Object.hasOwn(value, key))) {
      env.unsupported(name, 'no references to addon or app facts');
    } else env.fail(name, 'must be a string or { generate = "urlsafe" }');
  }
}

/** `NAME = { generate = "urlsafe" }`: the platform generates one stable URL-safe value. */
function readGenerated(spec: TomlSection, name: string, draft: ManifestDraft): void {
  const kind = spec.string('generate');
  if (kind !== undefined && kind !== 'urlsafe') {
    spec.unsupportedValue('generate', kind, 'its generated secrets are "urlsafe"');
  } else if (kind !== undefined) {
    const problem = addSecret(draft, name);
    if (problem !== undefined) spec.problems.push(`${FILE}: ${spec.prefix} ${problem}`);
  }
  const fixed = 'generated secrets have a fixed format';
  spec.finish({ unsupported: { length: fixed, prefix: fixed, display: 'generated values are never shown' } });
}

function readHealthcheck(check: TomlSection | undefined, draft: ManifestDraft): void {
  if (check === undefined) return;
  const path = readHealthPath(check, 'path');
  if (path !== undefined && draft.healthcheck.path !== undefined) {
    check.fail('path', 'and run.healthcheck both set the health check path: keep one');
  }
  draft.healthcheck.path ??= path;
  draft.healthcheck.bodyContains = readContains(check);
  const timing = 'the platform probes a new version until run.start-timeout';
  check.finish({ unsupported: { timeout: timing, interval: timing, retries: timing } });
}

function readAddon(addon: TomlSection, appId: string | undefined, draft: ManifestDraft): void {
  const type = addon.string('type');
  const given = addon.string('name');
  if (type === undefined) addon.fail('type', 'is required (type = "postgres")');
  else if (type !== 'postgres') addon.unsupportedValue('type', type, 'only "postgres"');
  // Hop3 names the addon after the app by default; here the name is the database's.
  const name = given ?? appId?.replaceAll('-', '_');
  if (name === undefined) addon.fail('name', 'is required when [metadata] id is not set: the database name');
  else if (!DATABASE_NAME.test(name)) {
    const from = given === undefined ? `, from metadata.id ${shown(appId)},` : '';
    addon.fail('name', `${shown(name)}${from} is not a database name (want [a-z][a-z0-9_]{0,62})`);
  }
  addon.finish({ unsupported: { extensions: 'extensions are managed by the hyper_db cluster' } });
  if (type === 'postgres' && name !== undefined && DATABASE_NAME.test(name)) {
    draft.addons.push({ kind: 'postgres', name, cluster: null });
  }
}
