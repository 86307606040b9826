/**
 * Writes a plan's files into a partition. When the partition has its own
 * unix user, the writing is done by a short-lived process running as that
 * user: the partition directory belongs to it, so a root agent writing there
 * could be tricked by a planted symlink into overwriting any file.
 */
import { chmod, mkdir, rename, writeFile } from 'node:fs/promises';
import { dirname, join, normalize } from 'node:path';
import type { FileSpec } from '../release-kit/types.js';
import type { PartitionIsolation } from './isolate/partition-launch.js';
import { HELPER_ENV, runCommand } from './run-command.js';

/** Runs as the partition user: reads [{path, content, mode}] as JSON on stdin. */
const WRITER = `
const fs = require('node:fs'); const path = require('node:path');
let input = ''; process.stdin.on('data', (c) => (input += c)).on('end', () => {
  for (const f of JSON.parse(input)) {
    fs.mkdirSync(path.dirname(f.path), { recursive: true });
    const tmp = f.path + '.hox-tmp-' + process.pid;
    fs.writeFileSync(tmp, f.content, { mode: f.mode, flag: 'wx' });
    fs.chmodSync(tmp, f.mode);
    fs.renameSync(tmp, f.path);
  }
});`;

function resolveInside(root: string, file: FileSpec): { path: string; content: string; mode: number } {
  const relative = normalize(file.path);
  if (relative.startsWith('..') || relative.startsWith('/') || relative === '.')
    throw new Error(`file path '${file.path}' leaves the partition`);
  return { path: join(root, relative), content: file.content, mode: file.mode ?? 0o640 };
}

export async function writePartitionFiles(
  partition: {
    path: string;
    uid: number | undefined;
    gid: number | undefined;
    isolation?: PartitionIsolation | undefined;
  },
  files: FileSpec[],
  nodePath: string,
): Promise<void> {
  if (files.length === 0) return;
  const resolved = files.map((f) => resolveInside(partition.path, f));
  if (partition.uid === undefined) {
    for (const f of resolved) {
      await mkdir(dirname(f.path), { recursive: true });
      const tmp = `${f.path}.hox-tmp-${process.pid}`;
      await writeFile(tmp, f.content, { mode: f.mode, flag: 'w' });
      await chmod(tmp, f.mode);
      await rename(tmp, f.path);
    }
    return;
  }
  await runCommand([nodePath, '-e', WRITER], {
    cwd: partition.path,
    uid: partition.uid,
    gid: partition.gid,
    isolation: partition.isolation,
    env: HELPER_ENV,
    input: JSON.stringify(resolved),
    timeoutMs: 60_000,
    label: "writing the partition's files",
  });
}
