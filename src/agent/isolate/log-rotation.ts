/**
 * Size-based rotation of the service logs (`<data-dir>/logs/<partition>/<service>.log`).
 *
 * A service writes its log through the descriptor the agent opened at spawn
 * (O_APPEND), not through a pipe: services outlive the agent, so nothing of
 * the agent may sit between a service and its log. The agent therefore cannot
 * make a service reopen its log, and a rename would leave the service writing
 * into the renamed file forever. So: copy-truncate. Past half of `logBytes`,
 * the log's last `logBytes / 2` bytes are copied to `<service>.log.1`
 * (replacing the previous one) and the log is truncated to 0; thanks to
 * O_APPEND the service's next write lands at the new start, without a hole.
 * What the service writes during the copy is copied as well, just before the
 * truncation; what it writes in the microseconds between that last read and
 * the truncation is lost: the price of never stopping a service to rotate it.
 * Current and rotated log together stay under `logBytes`, plus what a service
 * writes between two checks.
 *
 * The logs directory is the agent's (0750), so no tenant can plant a link in it;
 * files are opened with O_NOFOLLOW anyway.
 */
import { constants } from 'node:fs';
import { open, readdir, rename, stat, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { isErrno } from '../supervise/pid-record.js';

/** Rotates each `*.log` of `dir` that passed half of `logBytes`; returns the names rotated. */
export async function rotateLogs(dir: string, logBytes: number): Promise<string[]> {
  let entries: string[];
  try {
    entries = await readdir(dir);
  } catch (error) {
    if (isErrno(error, 'ENOENT')) return [];
    throw error;
  }
  const rotated: string[] = [];
  const keepBytes = Math.floor(logBytes / 2);
  for (const name of entries.filter((e) => e.endsWith('.log'))) {
    const path = join(dir, name);
    const { size } = await stat(path);
    if (size <= keepBytes) continue;
    await rotateOne(path, `${path}.1`, keepBytes);
    rotated.push(name);
  }
  return rotated;
}

/**
 * Copies the last `bytes` of `from` into `to` (replaced atomically, with `from`'s owner and mode) and
 * truncates `from`. What the service wrote during the copy is copied too before the truncation, so
 * only the writes of the last few microseconds can be lost.
 */
async function rotateOne(from: string, to: string, bytes: number): Promise<void> {
  const source = await open(from, constants.O_RDWR | constants.O_NOFOLLOW);
  const temporary = `${to}.tmp`;
  try {
    const stats = await source.stat();
    const start = Math.max(0, stats.size - bytes);
    let end = stats.size;
    let kept = await readRange(source, start, end);
    for (let round = 0; round < 3; round += 1) {
      const { size } = await source.stat();
      if (size <= end) break;
      kept = Buffer.concat([kept, await readRange(source, end, size)]);
      end = size;
    }
    if (kept.byteLength > bytes) kept = kept.subarray(kept.byteLength - bytes);
    await source.truncate(0);
    const target = await open(
      temporary,
      constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_NOFOLLOW,
      stats.mode & 0o777,
    );
    try {
      await target.write(kept, 0, kept.byteLength);
      await target.chown(stats.uid, stats.gid);
    } finally {
      await target.close();
    }
    await rename(temporary, to);
  } finally {
    await source.close();
  }
}

async function readRange(file: FileHandle, from: number, to: number): Promise<Buffer> {
  const buffer = Buffer.alloc(to - from);
  const { bytesRead } = await file.read(buffer, 0, buffer.byteLength, from);
  return buffer.subarray(0, bytesRead);
}
