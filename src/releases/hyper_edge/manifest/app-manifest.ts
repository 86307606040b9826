/**
 * The app manifest of hyper_edge: what an application deployed from a source
 * directory runs, read from its `Procfile` and/or `hox.toml` (or a Hop3
 * `hop3.toml`). The user reference is docs/app-manifest.md.
 *
 * {@link parseAppManifest} is pure; {@link readAppManifest} reads the files.
 * Nothing is silently ignored: an unknown or unsupported key, a bad value or
 * a contradiction between files is a problem naming the file and the key (or
 * the Procfile line), and all problems are reported together.
 */
import { constants } from 'node:fs';
import { open, readdir, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { readHop3Toml } from './hop3-toml.js';
import { readHoxToml } from './hox-toml.js';
import { emptyDraft, type ManifestDraft } from './manifest-draft.js';
import { parseProcfile, type ProcfileEntry } from './procfile.js';
import { parseTomlFile } from './toml-section.js';

export type AppRuntime = 'node' | 'python' | 'static';

export interface AppHealthcheck {
  /** @default '/' */
  path: string;
  /** The HTTP status the probe expects. @default 200 */
  status: number;
  /** A text the response body must contain; null: the status alone decides. @default null */
  bodyContains: string | null;
  /** Seconds a new version has to answer the probe before the deploy fails. @default 60 */
  timeoutS: number;
}

export interface AppAddon {
  kind: 'postgres';
  /** The database name. */
  name: string;
  /** The hyper_db cluster (instance tree title); null = chosen at deploy. */
  cluster: string | null;
}

export interface AppManifest {
  runtime: AppRuntime;
  /** Which files the manifest was read from, e.g. ['Procfile', 'hox.toml']. */
  sources: string[];
  /** Shell commands (sh -c) run after the runtime's own install step, in order, cwd = app root. */
  build: string[];
  /** The web process command (sh -c), must listen on $HOST:$PORT. null for a static site. */
  web: string | null;
  /** Static sites: the directory (relative, inside the app) the platform serves. null otherwise. */
  staticRoot: string | null;
  /** Worker process commands by name ([a-z][a-z0-9_-]{0,30}). */
  workers: Record<string, string>;
  /** Release-phase command run before a new version takes traffic (migrations). */
  release: string | null;
  env: Record<string, string>;
  /** Env var names that get a generated, stable secret value. */
  secrets: string[];
  healthcheck: AppHealthcheck;
  /** At most one postgres addon for now (more is an error naming the limit). */
  addons: AppAddon[];
  scale: { web: number; workers: Record<string, number> };
  /**
   * Directories of the app (relative, normalised) that live outside the release directory and are linked into
   * each release: what the app writes there survives deploys. Per replica: not shared between replicas.
   */
  storage: string[];
  /** `[cdn]`: the app behind the platform's CDN for these host names (a hyper_cdn site), or null. */
  cdn: { domains: string[] } | null;
}

/** The app's files describe no valid app. `message` is the problems, one per line. */
export class AppManifestError extends Error {
  override readonly name = 'AppManifestError';
  readonly problems: string[];

  constructor(problems: string[], options?: ErrorOptions) {
    super(problems.join('\n'), options);
    this.problems = problems;
  }
}

/** Largest Procfile, hox.toml or hop3.toml read. */
export const MANIFEST_FILE_MAX_BYTES = 64 * 1024;

const PYTHON_MARKERS = ['requirements.txt', 'pyproject.toml', 'app.py', 'wsgi.py', 'manage.py'];
const DETECTED_FROM = ['package.json', ...PYTHON_MARKERS, 'index.html'];
/** The web command of a node app that names none: runs package.json's "start" script (or `node server.js`). */
export const NODE_DEFAULT_WEB = 'npm start';

/**
 * The manifest of an app from the texts of its files (each undefined when absent).
 * Pure. `present` = names of the entries at the top of the app's source directory (for runtime detection).
 * @throws {AppManifestError} naming every problem found.
 * @example
 * parseAppManifest({ procfile: 'web: node server.js\n', present: new Set(['package.json', 'Procfile']) })
 * // { runtime: 'node', web: 'node server.js', sources: ['Procfile'], ... }
 */
export function parseAppManifest(files: {
  procfile?: string;
  hoxToml?: string;
  hop3Toml?: string;
  present: ReadonlySet<string>;
}): AppManifest {
  if (files.hoxToml !== undefined && files.hop3Toml !== undefined) {
    throw new AppManifestError(['both hox.toml and hop3.toml are present: keep one of them']);
  }
  const problems: string[] = [];
  const sources: string[] = [];
  let entries: ProcfileEntry[] = [];
  if (files.procfile !== undefined) {
    sources.push('Procfile');
    entries = parseProcfile(files.procfile, problems);
  }
  let draft: ManifestDraft | undefined;
  let unreadable = false;
  if (files.hoxToml !== undefined) {
    sources.push('hox.toml');
    const values = parseTomlFile('hox.toml', files.hoxToml, problems);
    if (values === undefined) unreadable = true;
    else draft = readHoxToml(values, problems);
  } else if (files.hop3Toml !== undefined) {
    sources.push('hop3.toml');
    const values = parseTomlFile('hop3.toml', files.hop3Toml, problems);
    if (values === undefined) unreadable = true;
    else draft = readHop3Toml(values, files.present, problems);
  }
  // Without the file's content, every check across files would be guesswork.
  if (unreadable) throw new AppManifestError(problems);
  const { runtime, ...rest } = assemble(
    entries,
    draft ?? emptyDraft('hox.toml', NO_FILE_KEYS),
    files.present,
    problems,
  );
  if (problems.length > 0) throw new AppManifestError(problems);
  return { runtime, sources, ...rest };
}

const NO_FILE_KEYS: ManifestDraft['keys'] = {
  web: 'run.web',
  release: 'run.release',
  workers: 'run.workers',
  staticRoot: 'static.root',
  runtime: 'runtime',
};

interface Process {
  command: string;
  /** Where it was defined, for messages: 'Procfile line 3', 'hox.toml run.web'. */
  origin: string;
}

interface Processes {
  web: Process | undefined;
  release: Process | undefined;
  workers: Map<string, Process>;
}

/** The Procfile's processes with the file's: its web and release win, a worker in both is an error. */
function mergeProcesses(entries: ProcfileEntry[], draft: ManifestDraft, problems: string[]): Processes {
  const { file, keys } = draft;
  const fromProcfile = (name: string): Process | undefined => {
    const entry = entries.find((e) => e.name === name);
    return entry && { command: entry.command, origin: `Procfile line ${entry.line}` };
  };
  const fromFile = (command: string | undefined, key: string): Process | undefined =>
    command === undefined ? undefined : { command, origin: `${file} ${key}` };
  const workers = new Map<string, Process>();
  for (const entry of entries) {
    if (entry.name !== 'web' && entry.name !== 'release') {
      workers.set(entry.name, { command: entry.command, origin: `Procfile line ${entry.line}` });
    }
  }
  for (const [name, command] of draft.workers) {
    const other = workers.get(name);
    if (other !== undefined) {
      problems.push(
        `${file}: ${keys.workers}.${name} is also defined in the Procfile (${other.origin}): define it once`,
      );
    } else workers.set(name, { command, origin: `${file} ${keys.workers}.${name}` });
  }
  return {
    web: fromFile(draft.web, keys.web) ?? fromProcfile('web'),
    release: fromFile(draft.release, keys.release) ?? fromProcfile('release'),
    workers,
  };
}

/** Merges the Procfile with the file's draft, detects the runtime, applies defaults. */
function assemble(
  entries: ProcfileEntry[],
  draft: ManifestDraft,
  present: ReadonlySet<string>,
  problems: string[],
): Omit<AppManifest, 'sources'> {
  const { web, release, workers } = mergeProcesses(entries, draft, problems);
  // A runtime key with a bad value is already reported: detecting one instead would only add noise.
  const runtime = draft.runtime ?? (draft.given.runtime ? undefined : detectRuntime(present, web, draft, problems));
  const served = runtime === 'static' ? staticChecks(draft, { web, release, workers }, problems) : null;
  let command = web?.command ?? null;
  if (runtime === 'node' || runtime === 'python') {
    if (draft.staticRoot !== undefined) {
      problems.push(
        `${draft.file}: ${draft.keys.staticRoot} is only for static sites (the runtime is ${runtime}${how(draft)})`,
      );
    }
    if (command === null && runtime === 'node' && present.has('package.json')) command = NODE_DEFAULT_WEB;
    if (command === null && !draft.given.web) problems.push(noWebProblem(draft));
  }
  const scaleWorkers: Record<string, number> = {};
  for (const name of workers.keys()) scaleWorkers[name] = draft.scale.workers.get(name) ?? 1;
  for (const name of draft.scale.workers.keys()) {
    if (!workers.has(name)) problems.push(`${draft.file}: scale.workers.${name}: '${name}' is not a worker`);
  }
  return {
    // Undefined only with a problem recorded: the caller throws before anyone sees it.
    runtime: runtime ?? 'static',
    build: draft.build,
    web: served === null ? command : null,
    staticRoot: served,
    workers: Object.fromEntries([...workers].map(([name, worker]) => [name, worker.command])),
    release: release?.command ?? null,
    env: Object.fromEntries(draft.env),
    secrets: draft.secrets,
    healthcheck: {
      path: draft.healthcheck.path ?? '/',
      status: draft.healthcheck.status ?? 200,
      bodyContains: draft.healthcheck.bodyContains ?? null,
      timeoutS: draft.healthcheck.timeoutS ?? 60,
    },
    addons: draft.addons,
    scale: { web: draft.scale.web ?? 1, workers: scaleWorkers },
    storage: draft.storage,
    cdn: draft.cdnDomains === undefined ? null : { domains: draft.cdnDomains },
  };
}

/** A static site runs no process of its own and has no database; gives the directory served. */
function staticChecks(draft: ManifestDraft, processes: Processes, problems: string[]): string {
  const refuse = (what: string, origin: string): void => {
    problems.push(`static site: ${what} is not allowed (${origin})`);
  };
  if (processes.web !== undefined) refuse('a web process', processes.web.origin);
  if (processes.release !== undefined) refuse('a release command', processes.release.origin);
  for (const [name, worker] of processes.workers) refuse(`worker '${name}'`, worker.origin);
  if (draft.addons.length > 0) refuse('an addon', `${draft.file} addons`);
  if (draft.storage.length > 0) refuse('persistent storage', `${draft.file} storage.paths`);
  return draft.staticRoot ?? draft.defaultStaticRoot;
}

function how(draft: ManifestDraft): string {
  return draft.runtime === undefined ? ', detected' : `, from ${draft.keys.runtime}`;
}

function noWebProblem(draft: ManifestDraft): string {
  const where = draft.file === 'hop3.toml' ? '[run] start to hop3.toml' : '[run] web to hox.toml';
  return `no web process: add \`web: ...\` to the Procfile or ${where}`;
}

/**
 * The runtime from the names at the top of the app: package.json → node; a
 * Python file → python; index.html or a static section without a web process → static.
 */
function detectRuntime(
  present: ReadonlySet<string>,
  web: Process | undefined,
  draft: ManifestDraft,
  problems: string[],
): AppRuntime | undefined {
  if (present.has('package.json')) return 'node';
  if (PYTHON_MARKERS.some((name) => present.has(name))) return 'python';
  const staticHint = draft.staticDeclared ? `${draft.file} ${draft.keys.staticRoot}` : 'index.html';
  if (present.has('index.html') || draft.staticDeclared) {
    if (web === undefined) return 'static';
    problems.push(
      `cannot detect the runtime: ${staticHint} says static site but a web process is declared (${web.origin}) ` +
        `and there is no package.json or Python file; set ${draft.keys.runtime} in ${draft.file}`,
    );
    return undefined;
  }
  problems.push(
    `cannot detect the runtime: none of ${DETECTED_FROM.join(', ')} is at the top of the app; ` +
      `set ${draft.keys.runtime} in ${draft.file}`,
  );
  return undefined;
}

const MANIFEST_FILES = [
  ['procfile', 'Procfile'],
  ['hoxToml', 'hox.toml'],
  ['hop3Toml', 'hop3.toml'],
] as const;

/**
 * Reads Procfile / hox.toml / hop3.toml at the top of `dir` (each optional, at most
 * {@link MANIFEST_FILE_MAX_BYTES}, regular files only: a symbolic link is refused, not followed)
 * and the directory listing, then {@link parseAppManifest}.
 * @throws {AppManifestError} naming every problem found, reading included.
 */
export async function readAppManifest(dir: string): Promise<AppManifest> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    throw new AppManifestError([`cannot list the app directory '${dir}': ${(err as Error).message}`], { cause: err });
  }
  const present = new Set(names);
  const problems: string[] = [];
  const texts: { procfile?: string; hoxToml?: string; hop3Toml?: string } = {};
  for (const [field, name] of MANIFEST_FILES) {
    if (present.has(name)) texts[field] = await readManifestFile(join(dir, name), name, problems);
  }
  if (problems.length > 0) throw new AppManifestError(problems);
  return parseAppManifest({ ...texts, present });
}

async function readManifestFile(path: string, name: string, problems: string[]): Promise<string | undefined> {
  let handle: FileHandle;
  try {
    // O_NONBLOCK: a FIFO must not hang the deploy; fstat below refuses it.
    handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ELOOP') problems.push(`${name}: refused: it is a symbolic link (only regular files are read)`);
    else problems.push(`${name}: cannot be opened: ${(err as Error).message}`);
    return undefined;
  }
  try {
    const info = await handle.stat();
    if (!info.isFile()) {
      problems.push(`${name}: refused: not a regular file`);
      return undefined;
    }
    if (info.size > MANIFEST_FILE_MAX_BYTES) {
      problems.push(`${name}: refused: ${info.size} bytes, more than the ${MANIFEST_FILE_MAX_BYTES} (64 KiB) allowed`);
      return undefined;
    }
    const buffer = Buffer.alloc(MANIFEST_FILE_MAX_BYTES + 1);
    let length = 0;
    for (;;) {
      const { bytesRead } = await handle.read(buffer, length, buffer.length - length, length);
      if (bytesRead === 0 || (length += bytesRead) === buffer.length) break;
    }
    if (length > MANIFEST_FILE_MAX_BYTES) {
      problems.push(`${name}: refused: more than the ${MANIFEST_FILE_MAX_BYTES} bytes (64 KiB) allowed`);
      return undefined;
    }
    try {
      return new TextDecoder('utf-8', { fatal: true }).decode(buffer.subarray(0, length));
    } catch {
      problems.push(`${name}: refused: not valid UTF-8`);
      return undefined;
    }
  } finally {
    await handle.close();
  }
}
