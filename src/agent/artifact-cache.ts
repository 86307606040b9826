/**
 * Artifacts a plan asks for (an application's source tarball), fetched from
 * the master *as the instance* that wants them, checked against their
 * SHA-256, kept once per node in the agent's own directory (root-only), then
 * copied into the partition by a short-lived process running as the
 * partition user.
 *
 * The master decides who gets what: an instance may read the artifacts its
 * tree's owner (or the admin) uploaded, and the node's own token reads none.
 * The cache must not become a way around that: every delivery asks the
 * master first (`HEAD` as the instance), even when the bytes are already
 * here, so a second tenant naming a cached hash gets the master's refusal.
 *
 * Nothing about the artifact reaches a command line (`/proc/<pid>/cmdline`
 * is readable by every user): the writer gets its target path in its
 * environment (readable only by its own user and root) and the bytes on
 * standard input.
 */
import { createHash } from 'node:crypto';
import { lstat, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join, normalize } from 'node:path';
import type { MasterClient } from '../client/master-client.js';
import type { ArtifactSpec } from '../release-kit/types.js';
import { HELPER_ENV, runCommand } from './run-command.js';

/** Runs as the partition user: copies stdin to $HOX_ARTIFACT_PATH (relative to the cwd) atomically, read-only. */
const WRITER = `
const fs = require('node:fs'); const path = require('node:path');
const target = process.env.HOX_ARTIFACT_PATH; fs.mkdirSync(path.dirname(target), { recursive: true });
const tmp = target + '.hox-tmp-' + process.pid; const out = fs.createWriteStream(tmp, { mode: 0o440, flags: 'wx' });
process.stdin.pipe(out).on('finish', () => { fs.renameSync(tmp, target); });`;

const SHA256 = /^[0-9a-f]{64}$/;

export class ArtifactCache {
  private readonly pending = new Map<string, Promise<string>>();

  /** @param dir the agent's own directory for downloaded artifacts (created 0700). */
  constructor(private readonly dir: string) {}

  /**
   * Puts each artifact at its path in the partition, once the master says the instance may have it
   * (`asInstance`: a client holding the instance's token). A file already at the path is left alone.
   *
   * @throws Error naming the artifact when the master refuses it, or its bytes do not match their hash.
   */
  async deliver(
    partition: { path: string; uid: number | undefined; gid: number | undefined },
    specs: ArtifactSpec[],
    nodePath: string,
    asInstance: MasterClient,
  ): Promise<void> {
    for (const spec of specs) {
      if (!SHA256.test(spec.sha256)) throw new Error(`artifact name '${spec.sha256.slice(0, 80)}' is not a SHA-256`);
      const relative = normalize(spec.path);
      if (relative.startsWith('..') || relative.startsWith('/') || relative === '.')
        throw new Error(`artifact path '${spec.path}' leaves the partition`);
      if (!(await asInstance.hasArtifact(spec.sha256)))
        throw new Error(
          `artifact ${spec.sha256} is not available to this instance: only artifacts uploaded by the instance's owner ` +
            `(or the admin) can be used, and this one was not (or was deleted as unused)`,
        );
      const target = join(partition.path, relative);
      if (await exists(target)) continue;
      const source = await this.fetch(spec.sha256, asInstance);
      if (partition.uid === undefined) {
        await mkdir(join(target, '..'), { recursive: true });
        await writeFile(`${target}.hox-tmp`, await readFile(source), { mode: 0o440 });
        await rename(`${target}.hox-tmp`, target);
        continue;
      }
      await runCommand([nodePath, '-e', WRITER], {
        cwd: partition.path,
        uid: partition.uid,
        gid: partition.gid,
        env: { ...HELPER_ENV, HOX_ARTIFACT_PATH: relative },
        input: await readFile(source),
        timeoutMs: 120_000,
        label: `copying artifact ${spec.sha256.slice(0, 12)} into the partition`,
      });
    }
  }

  /** The local path of the artifact's verified bytes, downloaded (as the instance) when missing. */
  private fetch(sha256: string, asInstance: MasterClient): Promise<string> {
    let running = this.pending.get(sha256);
    if (running === undefined) {
      running = this.download(sha256, asInstance).finally(() => this.pending.delete(sha256));
      this.pending.set(sha256, running);
    }
    return running;
  }

  private async download(sha256: string, asInstance: MasterClient): Promise<string> {
    const path = join(this.dir, sha256);
    if (await exists(path)) return path;
    const content = await asInstance.getArtifact(sha256);
    const actual = createHash('sha256').update(content).digest('hex');
    if (actual !== sha256) throw new Error(`artifact ${sha256} arrived with SHA-256 ${actual}`);
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const tmp = `${path}.tmp-${process.pid}`;
    await writeFile(tmp, content, { mode: 0o600 });
    await rename(tmp, path);
    return path;
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
