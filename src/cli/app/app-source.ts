/**
 * An app's source, from what the user points `hox app deploy` at, as a
 * directory to read the manifest from and a gzipped tarball to upload:
 * - a local directory (`.git`, `node_modules`, `.venv` and `__pycache__` left out);
 * - a git repository (URL, or a path with `--ref`), cloned at `ref`;
 * - a `.tar.gz` / `.tgz` archive (a single top-level directory is descended into).
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, statSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { HoxError } from '../../shared/errors.js';

const exec = promisify(execFile);
const EXCLUDED = ['.git', 'node_modules', '.venv', '__pycache__', '.hox-built'];
/** The master's default artifact limit. */
export const MAX_SOURCE_BYTES = 256 * 1024 * 1024;

export interface PackedSource {
  /** Directory holding the app (to read its manifest). */
  dir: string;
  archive: Buffer;
  sha256: string;
  /** What was deployed, for the release description: `dir /x`, `git URL@ref`, `archive x.tgz`. */
  description: string;
  /** Removes temporary copies. */
  cleanup(): Promise<void>;
}

export function isGitSource(source: string, ref: string | undefined): boolean {
  return (
    ref !== undefined ||
    /^(https?|git|ssh|file):\/\//.test(source) ||
    /^[\w.-]+@[\w.-]+:/.test(source) ||
    source.endsWith('.git')
  );
}

async function run(command: string, args: string[], what: string): Promise<void> {
  try {
    await exec(command, args, { maxBuffer: 16 * 1024 * 1024, timeout: 300_000 });
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr?.trim().split('\n').slice(-3).join(' | ') ?? '';
    throw new HoxError('HOX_BAD_REQUEST', `${what} failed: ${stderr || (error as Error).message}`, {
      field: 'source',
      cause: error,
    });
  }
}

/** The directory itself, or its only entry when that is a directory (GitHub-style archives). */
function descend(dir: string): string {
  const entries = readdirSync(dir);
  if (entries.length === 1 && statSync(join(dir, entries[0]!)).isDirectory()) return join(dir, entries[0]!);
  return dir;
}

async function pack(dir: string): Promise<Buffer> {
  const tmp = mkdtempSync(join(tmpdir(), 'hox-pack-'));
  const out = join(tmp, 'source.tar.gz');
  try {
    await run(
      'tar',
      ['-czf', out, '--sort=name', ...EXCLUDED.map((e) => `--exclude=${e}`), '-C', dir, '.'],
      `packing ${dir}`,
    );
    const archive = await readFile(out);
    if (archive.length > MAX_SOURCE_BYTES)
      throw new HoxError(
        'HOX_BODY_TOO_LARGE',
        `the packed source is ${Math.round(archive.length / 1048576)} MiB, more than ${MAX_SOURCE_BYTES / 1048576} MiB`,
      );
    return archive;
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

export async function packSource(source: string, ref: string | undefined): Promise<PackedSource> {
  const temps: string[] = [];
  const cleanup = async () => {
    for (const t of temps) await rm(t, { recursive: true, force: true });
  };
  try {
    let dir: string;
    let description: string;
    if (isGitSource(source, ref)) {
      const tmp = mkdtempSync(join(tmpdir(), 'hox-git-'));
      temps.push(tmp);
      const url = existsSync(source) ? resolve(source) : source;
      await run('git', ['clone', '--quiet', '--no-hardlinks', url, join(tmp, 'repo')], `git clone ${source}`);
      if (ref !== undefined)
        await run('git', ['-C', join(tmp, 'repo'), 'checkout', '--quiet', '--detach', ref], `git checkout ${ref}`);
      dir = join(tmp, 'repo');
      description = `git ${source}${ref === undefined ? '' : `@${ref}`}`;
    } else if (/\.(tar\.gz|tgz)$/.test(source)) {
      if (!existsSync(source))
        throw new HoxError('HOX_BAD_REQUEST', `archive '${source}' not found`, { field: 'source' });
      const tmp = mkdtempSync(join(tmpdir(), 'hox-archive-'));
      temps.push(tmp);
      await run('tar', ['-xzf', resolve(source), '--no-same-owner', '-C', tmp], `unpacking ${source}`);
      dir = descend(tmp);
      description = `archive ${source}`;
    } else {
      if (!existsSync(source) || !statSync(source).isDirectory())
        throw new HoxError(
          'HOX_BAD_REQUEST',
          `source '${source}' is not a directory, a git repository (URL, or path with --ref) or a .tar.gz archive`,
          { field: 'source' },
        );
      dir = resolve(source);
      description = `directory ${dir}`;
    }
    const archive = await pack(dir);
    const sha256 = createHash('sha256').update(archive).digest('hex');
    return { dir, archive, sha256, description, cleanup };
  } catch (error) {
    await cleanup();
    throw error;
  }
}
