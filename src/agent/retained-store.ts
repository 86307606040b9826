/**
 * Retained sets: what a release asks to keep of a partition once its instance is destroyed (hyper_db: a
 * cluster's backups, see `SoftwareTypeDefinition.retain`), kept by the node agent for the node's retention
 * period under `<data dir>/retained/<instance guid>/` (`meta.json`, and the moved paths under `data/`).
 *
 * What this upholds:
 * - Nothing is lost on a crash between moving and wiping. The set's `meta.json` is written first (atomically:
 *   a temporary file renamed over it) with `complete: false`, then each path is renamed into the set (same
 *   filesystem: no copy), then `meta.json` says `complete: true`, and only then may the partition be emptied.
 *   A crash before that leaves the partition's state not destroyed, so the agent runs the destroy again and
 *   `retain` finds the incomplete set and moves what is left. A set found without `meta.json` was created just
 *   before a crash, before anything moved: the sweep removes it when empty and reports it otherwise.
 * - Out of every tenant's reach: `retained/` and each set are 0700 and the agent's (root on a real node). The
 *   moved files keep their owner, a partition user whose uid the next tenant of that partition gets: the
 *   directories above them are what keep it out. Paths are moved after the tenant's processes are killed, never
 *   through a link (a link, or a path under one, is skipped and logged: never fatal, or a tenant could keep its
 *   partition from being destroyed), and the catalog is read without following links.
 * - Bounded: a retention period (0: nothing is kept), one sweep removes at most `maxRemovals` expired sets and
 *   logs each; the catalog is at most 100 small JSON files per path.
 */
import { cp, lstat, mkdir, open, readdir, readFile, rename, rm } from 'node:fs/promises';
import { constants } from 'node:fs';
import { join } from 'node:path';
import type { RetainSpec } from '../release-kit/types.js';
import { writeFileDurably } from '../shared/durable-file.js';

/** Kept per moved path: what it holds and its small index (the release's `catalog` files). */
export interface RetainedPath {
  path: string;
  kind: string;
  moved: boolean;
  bytes: number;
  catalog: Record<string, unknown>[];
}

/** A set's `meta.json`. Times are the node's clock, ISO 8601. */
export interface RetainedSetMeta {
  version: 1;
  instance_guid: string;
  instance_title: string;
  root_instance_title: string;
  compute_partition_id: string;
  software_release_uri: string;
  software_type: string;
  destroyed_at: string;
  expires_at: string;
  complete: boolean;
  paths: RetainedPath[];
}

export interface RetainedSet extends RetainedSetMeta {
  /** The set's directory. */
  dir: string;
}

/** What `retain` needs to know of the destroyed instance. */
export interface RetainSource {
  partitionPath: string;
  partitionId: string;
  instanceGuid: string;
  instanceTitle: string;
  rootInstanceTitle: string;
  releaseUrl: string;
  softwareType: string;
  specs: readonly RetainSpec[];
}

const SAFE_NAME = /^[A-Za-z0-9_-]{1,64}$/;
const SEGMENT = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;
const MAX_CATALOG_ENTRIES = 100;
const MAX_CATALOG_BYTES = 4096;
const MAX_COUNTED_FILES = 200_000;

/** The reason a spec's path is refused, or null: relative, plain segments, no `..`. */
export function retainPathProblem(path: string): string | null {
  const segments = path.split('/');
  if (segments.length > 8 || !segments.every((s) => SEGMENT.test(s)))
    return `retain path '${path}' must be relative, of plain names (letters, digits, . _ -), without '..'`;
  return null;
}

export class RetainedStore {
  constructor(
    private readonly options: {
      /** `<data dir>/retained`. */
      dir: string;
      /** How long a set is kept; 0 keeps nothing. */
      retentionMs: number;
      clock: { nowMs(): number };
      log: (message: string) => void;
    },
  ) {}

  get retentionMs(): number {
    return this.options.retentionMs;
  }

  /**
   * Moves the paths `source.specs` names out of the partition into a new (or the incomplete) set of this
   * instance and returns the complete set; null when nothing is kept (retention 0, no spec, or none of the
   * paths exists). Call it once the tenant's processes are gone and before the partition is emptied.
   */
  async retain(source: RetainSource): Promise<RetainedSet | null> {
    if (this.options.retentionMs <= 0 || source.specs.length === 0) return null;
    if (!SAFE_NAME.test(source.instanceGuid))
      throw new Error(`instance guid '${source.instanceGuid}' is not retainable`);
    for (const spec of source.specs) {
      const problem = retainPathProblem(spec.path);
      if (problem !== null) throw new Error(problem);
    }
    const setDir = join(this.options.dir, source.instanceGuid);
    const existing = await this.readMeta(setDir);
    if (existing?.complete === true) return existing;
    const present: RetainSpec[] = [];
    for (const spec of source.specs) {
      const state = await this.sourceState(source.partitionPath, spec.path);
      // Not moved, and not fatal: a tenant must not be able to keep its partition from being destroyed.
      if (state === 'link')
        this.options.log(`not retaining ${spec.path} of ${source.partitionPath}: it goes through a link`);
      const alreadyMoved = existing?.paths.some((p) => p.path === spec.path && p.moved) === true;
      if (state === 'present' || alreadyMoved) present.push(spec);
    }
    if (present.length === 0 && existing === undefined) return null;
    await mkdir(this.options.dir, { recursive: true, mode: 0o700 });
    await mkdir(setDir, { recursive: true, mode: 0o700 });
    const nowMs = this.options.clock.nowMs();
    const meta: RetainedSetMeta = existing ?? {
      version: 1,
      instance_guid: source.instanceGuid,
      instance_title: source.instanceTitle,
      root_instance_title: source.rootInstanceTitle,
      compute_partition_id: source.partitionId,
      software_release_uri: source.releaseUrl,
      software_type: source.softwareType,
      destroyed_at: new Date(nowMs).toISOString(),
      expires_at: new Date(nowMs + this.options.retentionMs).toISOString(),
      complete: false,
      paths: present.map((s) => ({ path: s.path, kind: s.kind, moved: false, bytes: 0, catalog: [] })),
    };
    await this.writeMeta(setDir, meta);
    for (const entry of meta.paths) {
      if (entry.moved) continue;
      const from = join(source.partitionPath, entry.path);
      const to = join(setDir, 'data', entry.path);
      if ((await this.sourceState(source.partitionPath, entry.path)) === 'present') {
        await mkdir(join(to, '..'), { recursive: true, mode: 0o700 });
        await moveTree(from, to);
      }
      entry.moved = true;
      await this.writeMeta(setDir, meta);
    }
    for (const entry of meta.paths) {
      const spec = source.specs.find((s) => s.path === entry.path);
      const root = join(setDir, 'data', entry.path);
      entry.bytes = await treeBytes(root);
      entry.catalog =
        spec?.catalog === undefined ? [] : await readCatalog(join(root, spec.catalog.dir), spec.catalog.file);
    }
    meta.complete = true;
    await this.writeMeta(setDir, meta);
    this.options.log(
      `retained ${meta.paths.map((p) => `${p.path} (${p.kind}, ${p.bytes} bytes)`).join(', ')} of instance '${meta.instance_title}' (${meta.instance_guid}) until ${meta.expires_at}`,
    );
    return { ...meta, dir: setDir };
  }

  /** Every set with a readable `meta.json`, complete or not, oldest destruction first. */
  async list(): Promise<RetainedSet[]> {
    const sets: RetainedSet[] = [];
    for (const name of await this.names()) {
      const meta = await this.readMeta(join(this.options.dir, name));
      if (meta !== undefined) sets.push(meta);
    }
    return sets.sort((a, b) => a.destroyed_at.localeCompare(b.destroyed_at));
  }

  /**
   * Removes the sets whose time is up (at most `maxRemovals`, each logged), and the empty directories a crash
   * left before any `meta.json`. Returns the complete sets kept (what the master is told) and the problems.
   */
  async sweep(maxRemovals = 100): Promise<{ removed: string[]; kept: RetainedSet[]; problems: string[] }> {
    const nowMs = this.options.clock.nowMs();
    const removed: string[] = [];
    const kept: RetainedSet[] = [];
    const problems: string[] = [];
    for (const name of await this.names()) {
      const setDir = join(this.options.dir, name);
      const meta = await this.readMeta(setDir);
      if (meta === undefined) {
        // Created just before a crash, before anything moved into it (meta.json comes first).
        const left = await readdir(setDir).catch(() => ['?']);
        if (left.length === 0 || (left.length === 1 && left[0] === 'meta.json.tmp')) {
          await rm(setDir, { recursive: true, force: true });
          this.options.log(`retained set ${name}: removed (created before a crash, nothing in it)`);
        } else problems.push(`retained set ${name}: no readable meta.json (left as it is: ${setDir})`);
        continue;
      }
      if (Date.parse(meta.expires_at) <= nowMs && removed.length < maxRemovals) {
        await rm(setDir, { recursive: true, force: true });
        removed.push(name);
        this.options.log(
          `retained set of instance '${meta.instance_title}' (${name}) expired at ${meta.expires_at}: removed`,
        );
        continue;
      }
      if (!meta.complete)
        problems.push(
          `retained set of instance '${meta.instance_title}' (${name}) is incomplete: its move is finished when the agent destroys that instance again`,
        );
      else kept.push(meta);
    }
    for (const problem of problems) this.options.log(problem);
    return { removed, kept, problems };
  }

  private async names(): Promise<string[]> {
    try {
      return (await readdir(this.options.dir)).filter((n) => SAFE_NAME.test(n));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw error;
    }
  }

  private async readMeta(setDir: string): Promise<RetainedSet | undefined> {
    try {
      const meta = JSON.parse(await readFile(join(setDir, 'meta.json'), 'utf8')) as RetainedSetMeta;
      return meta.version === 1 ? { ...meta, dir: setDir } : undefined;
    } catch {
      return undefined;
    }
  }

  private async writeMeta(setDir: string, meta: RetainedSetMeta): Promise<void> {
    const plain: Record<string, unknown> = { ...meta };
    delete plain.dir;
    // Its temporary file is `meta.json.tmp`: a set directory holding only that is an unfinished first write.
    await writeFileDurably(join(setDir, 'meta.json'), `${JSON.stringify(plain, null, 2)}\n`, { mode: 0o600 });
  }

  /** `present` (a real file or directory, reached without a link), `missing`, or `link` (it or a parent is one). */
  private async sourceState(partitionPath: string, path: string): Promise<'present' | 'missing' | 'link'> {
    let current = partitionPath;
    for (const segment of path.split('/')) {
      current = join(current, segment);
      let stats;
      try {
        stats = await lstat(current);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 'missing';
        throw error;
      }
      if (stats.isSymbolicLink()) return 'link';
    }
    return 'present';
  }
}

/** Renames `from` to `to`; across filesystems (EXDEV), copies into a temporary name, renames it, then removes `from`. */
async function moveTree(from: string, to: string): Promise<void> {
  try {
    await rename(from, to);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EXDEV') throw error;
    const tmp = `${to}.copying`;
    await rm(tmp, { recursive: true, force: true });
    await cp(from, tmp, { recursive: true, verbatimSymlinks: true, preserveTimestamps: true });
    await rename(tmp, to);
    await rm(from, { recursive: true, force: true });
  }
}

/** Bytes of the regular files under `root` (links not followed; counting stops after 200,000 files). */
async function treeBytes(root: string): Promise<number> {
  let bytes = 0;
  let files = 0;
  const stack = [root];
  while (stack.length > 0 && files < MAX_COUNTED_FILES) {
    const current = stack.pop() as string;
    const stats = await lstat(current).catch(() => undefined);
    if (stats === undefined) continue;
    if (stats.isFile()) {
      bytes += stats.size;
      files += 1;
    } else if (stats.isDirectory()) for (const name of await readdir(current)) stack.push(join(current, name));
  }
  return bytes;
}

/** The JSON object in `dir/<entry>/file` for each directory entry (newest names last), small files only. */
async function readCatalog(dir: string, file: string): Promise<Record<string, unknown>[]> {
  const names = await readdir(dir).catch(() => [] as string[]);
  const out: Record<string, unknown>[] = [];
  for (const name of names.sort().slice(-MAX_CATALOG_ENTRIES)) {
    const entryDir = await lstat(join(dir, name)).catch(() => undefined);
    if (entryDir?.isDirectory() !== true) continue;
    try {
      const handle = await open(join(dir, name, file), constants.O_RDONLY | constants.O_NOFOLLOW);
      try {
        const stats = await handle.stat();
        if (!stats.isFile() || stats.size > MAX_CATALOG_BYTES) continue;
        const value = JSON.parse(await handle.readFile('utf8')) as unknown;
        if (typeof value === 'object' && value !== null && !Array.isArray(value))
          out.push(value as Record<string, unknown>);
      } finally {
        await handle.close();
      }
    } catch {
      // not an entry of the catalog
    }
  }
  return out;
}
