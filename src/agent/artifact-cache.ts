/**
 * Artifacts a plan asks for (an application's source tarball), downloaded
 * once per node from the master, checked against their SHA-256, kept in the
 * agent's own directory (root-only), then copied into the partitions that
 * want them by a short-lived process running as the partition user.
 */
import { createHash } from 'node:crypto';
import { lstat, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join, normalize } from 'node:path';
import type { MasterClient } from '../client/master-client.js';
import type { ArtifactSpec } from '../release-kit/types.js';
import { HELPER_ENV, runCommand } from './run-command.js';

/** Runs as the partition user: copies stdin to argv[1] (relative to the cwd) atomically, read-only. */
const WRITER = `
const fs = require('node:fs'); const path = require('node:path');
const target = process.argv[1]; fs.mkdirSync(path.dirname(target), { recursive: true });
const tmp = target + '.hox-tmp-' + process.pid; const out = fs.createWriteStream(tmp, { mode: 0o440, flags: 'wx' });
process.stdin.pipe(out).on('finish', () => { fs.renameSync(tmp, target); });`;

const SHA256 = /^[0-9a-f]{64}$/;

export class ArtifactCache {
  private readonly pending = new Map<string, Promise<string>>();

  constructor(
    private readonly dir: string,
    private readonly client: () => MasterClient,
  ) {}

  /** The local path of the artifact's verified bytes, downloading it when missing. */
  fetch(sha256: string): Promise<string> {
    if (!SHA256.test(sha256)) return Promise.reject(new Error(`artifact name '${sha256}' is not a SHA-256`));
    let running = this.pending.get(sha256);
    if (running === undefined) {
      running = this.download(sha256).finally(() => this.pending.delete(sha256));
      this.pending.set(sha256, running);
    }
    return running;
  }

  private async download(sha256: string): Promise<string> {
    const path = join(this.dir, sha256);
    if (await exists(path)) return path;
    const content = await this.client().getArtifact(sha256);
    const actual = createHash('sha256').update(content).digest('hex');
    if (actual !== sha256) throw new Error(`artifact ${sha256} arrived with SHA-256 ${actual}`);
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const tmp = `${path}.tmp-${process.pid}`;
    await writeFile(tmp, content, { mode: 0o600 });
    await rename(tmp, path);
    return path;
  }

  /** Puts each artifact at its path in the partition (skipped when a file is already there). */
  async deliver(
    partition: { path: string; uid: number | undefined; gid: number | undefined },
    specs: ArtifactSpec[],
    nodePath: string,
  ): Promise<void> {
    for (const spec of specs) {
      const relative = normalize(spec.path);
      if (relative.startsWith('..') || relative.startsWith('/') || relative === '.')
        throw new Error(`artifact path '${spec.path}' leaves the partition`);
      const target = join(partition.path, relative);
      if (await exists(target)) continue;
      const source = await this.fetch(spec.sha256);
      if (partition.uid === undefined) {
        await mkdir(join(target, '..'), { recursive: true });
        await writeFile(`${target}.hox-tmp`, await readFile(source), { mode: 0o440 });
        await rename(`${target}.hox-tmp`, target);
        continue;
      }
      await runCommand([nodePath, '-e', WRITER, relative], {
        cwd: partition.path,
        uid: partition.uid,
        gid: partition.gid,
        env: HELPER_ENV,
        input: await readFile(source),
        timeoutMs: 120_000,
        label: `copying artifact ${spec.sha256.slice(0, 12)} into the partition`,
      });
    }
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
}
