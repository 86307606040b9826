/**
 * Writing a small state file so that a crash leaves either the old content or the new one, never half of
 * one, and the new one survives a power loss once this returns: the agent's partition secrets, pid records
 * and retained-set metadata; the hyper_cdn edge's certificates and VCL; release programs' runtime publication.
 */
import { open, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';

/**
 * Writes `content` to a temporary file beside `path` (created with `mode` before any byte is written,
 * fsynced), renames it over `path`, then fsyncs the directory. A stale temporary file of the same name
 * (a crash mid-write) is removed first; a failed rename leaves none behind.
 */
export async function writeFileDurably(
  path: string,
  content: string,
  options: { mode: number; tmp?: string },
): Promise<void> {
  const tmp = options.tmp ?? `${path}.tmp`;
  await rm(tmp, { force: true });
  const handle = await open(tmp, 'wx', options.mode);
  try {
    await handle.chmod(options.mode);
    await handle.writeFile(content);
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await rename(tmp, path);
  } catch (error) {
    await rm(tmp, { force: true });
    throw error;
  }
  const dir = await open(dirname(path), 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}
