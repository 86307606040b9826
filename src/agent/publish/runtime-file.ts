/**
 * The runtime publication file, `<partition>/.hox/publish.json`: a JSON
 * object a running service writes when it learns connection parameters only
 * at run time (a database member's current role). The partition belongs to
 * its tenant and the agent is root, so the agent opens `.hox` and the file
 * without following symbolic links (`.hox` through `/proc/self/fd`, as
 * `openat` would), reads only a regular file owned by the partition's user,
 * at most {@link MAX_RUNTIME_PUBLISH_BYTES}, and never blocks on a FIFO.
 * Other files services leave there for the agent (`metrics.prom`, see
 * `../partition-metrics.ts`) are read the same way ({@link readRuntimeFile}).
 */
import { constants } from 'node:fs';
import { lstat, mkdir, open, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';

/** The directory of the partition the agent prepares for its services, owned by the partition's user. */
export const RUNTIME_DIR = '.hox';
/** The file, in {@link RUNTIME_DIR}, whose object is merged over the profile's `publish`. */
export const RUNTIME_PUBLISH_FILE = 'publish.json';
/** @default 65536 */
export const MAX_RUNTIME_PUBLISH_BYTES = 64 * 1024;

const WHERE = `${RUNTIME_DIR}/${RUNTIME_PUBLISH_FILE}`;

export type RuntimePublication =
  /** No file (or no `.hox`): nothing to merge. */
  | { kind: 'none' }
  | { kind: 'object'; value: Record<string, unknown> }
  /** Refused or unreadable: ignored, and `message` reported. */
  | { kind: 'invalid'; message: string };

export interface RuntimePartition {
  path: string;
  /** The partition's user; undefined when services run as the agent's user. */
  uid: number | undefined;
  gid: number | undefined;
}

/**
 * Makes `<partition>/.hox` a directory of the partition's user, mode 0750. Idempotent. A `.hox` that is
 * not a directory (a file, a symbolic link the tenant planted) is left alone: the directory is opened
 * without following links, and only what was opened is changed, so nothing outside the partition is.
 */
export async function ensureRuntimeDir(partition: RuntimePartition): Promise<void> {
  const dir = join(partition.path, RUNTIME_DIR);
  let handle: FileHandle;
  try {
    handle = await openDir(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') return;
    // mkdir never follows a link at the last component; a race that plants one makes the open below fail.
    await mkdir(dir, { mode: 0o750 }).catch(() => undefined);
    try {
      handle = await openDir(dir);
    } catch {
      return;
    }
  }
  try {
    const st = await handle.stat();
    if (partition.uid !== undefined && (st.uid !== partition.uid || st.gid !== partition.gid))
      await handle.chown(partition.uid, partition.gid ?? partition.uid);
    if ((st.mode & 0o7777) !== 0o750) await handle.chmod(0o750);
  } finally {
    await handle.close();
  }
}

/** A file a partition's services write into {@link RUNTIME_DIR}, as the agent read it. */
export type RuntimeFile =
  | { kind: 'none' }
  | { kind: 'text'; text: string; modifiedAtMs: number }
  /** Refused or unreadable; `message` says why. */
  | { kind: 'invalid'; message: string };

/** Reads the runtime publication of a partition; never throws. */
export async function readRuntimePublication(partition: RuntimePartition): Promise<RuntimePublication> {
  const file = await readRuntimeFile(partition, RUNTIME_PUBLISH_FILE, MAX_RUNTIME_PUBLISH_BYTES);
  if (file.kind !== 'text') return file;
  return parse(file.text);
}

/**
 * Reads `<partition>/.hox/<name>`, at most `maxBytes`, with the care the header describes (no link followed,
 * a regular file of the partition's user only, no FIFO waited on); never throws. Messages name the file.
 */
export async function readRuntimeFile(
  partition: RuntimePartition,
  name: string,
  maxBytes: number,
): Promise<RuntimeFile> {
  const where = `${RUNTIME_DIR}/${name}`;
  let dir: FileHandle;
  try {
    dir = await openDir(join(partition.path, RUNTIME_DIR));
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return { kind: 'none' };
    // O_DIRECTORY | O_NOFOLLOW on a link fails with ENOTDIR (or ELOOP): say which it is.
    if (code === 'ELOOP' || code === 'ENOTDIR') {
      const isLink = await lstat(join(partition.path, RUNTIME_DIR)).then(
        (st) => st.isSymbolicLink(),
        () => false,
      );
      return refused(name, `${RUNTIME_DIR} is ${isLink ? 'a symbolic link' : 'not a directory'}: refused`);
    }
    return refused(name, `cannot open ${RUNTIME_DIR}: ${describe(error)}`);
  }
  try {
    return await readIn(dir, name, maxBytes, partition.uid, (what) => refused(name, `${where} ${what}`));
  } finally {
    await dir.close();
  }
}

async function readIn(
  dir: FileHandle,
  name: string,
  maxBytes: number,
  uid: number | undefined,
  invalid: (what: string) => RuntimeFile,
): Promise<RuntimeFile> {
  let file: FileHandle;
  try {
    // The directory we opened, whatever its path now points to: no link can be swapped in above the file.
    file = await open(
      `/proc/self/fd/${dir.fd}/${name}`,
      constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK | constants.O_NOCTTY,
    );
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return { kind: 'none' };
    if (code === 'ELOOP') return invalid('is a symbolic link: refused');
    return invalid(`cannot open: ${describe(error)}`);
  }
  try {
    const st = await file.stat();
    if (!st.isFile()) return invalid('is not a regular file: refused');
    if (uid !== undefined && st.uid !== uid) return invalid(`belongs to uid ${st.uid}, not the partition's user`);
    if (st.size > maxBytes) return invalid(`is ${st.size} bytes, more than the ${maxBytes} allowed`);
    // It may grow after the stat: read one byte more than allowed to know.
    const buffer = Buffer.alloc(maxBytes + 1);
    let length = 0;
    for (;;) {
      const { bytesRead } = await file.read(buffer, length, buffer.length - length, null);
      if (bytesRead === 0) break;
      length += bytesRead;
      if (length === buffer.length) break;
    }
    if (length > maxBytes) return invalid(`is more than the ${maxBytes} bytes allowed`);
    return { kind: 'text', text: buffer.subarray(0, length).toString('utf8'), modifiedAtMs: st.mtimeMs };
  } catch (error) {
    return invalid(`cannot read: ${describe(error)}`);
  } finally {
    await file.close();
  }
}

function parse(text: string): RuntimePublication {
  // Most likely a service writing it in place: write a temporary file and rename it instead.
  if (text.trim() === '') return invalid('is empty');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return invalid(`is not valid JSON (${describe(error)})`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    return invalid(
      `must hold a JSON object, not ${Array.isArray(value) ? 'an array' : value === null ? 'null' : typeof value}`,
    );
  return { kind: 'object', value: value as Record<string, unknown> };
}

function openDir(path: string): Promise<FileHandle> {
  return open(path, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
}

/** `what` says what is wrong with the publication file. */
function invalid(what: string): RuntimePublication {
  return { kind: 'invalid', message: `runtime publication: ${WHERE} ${what}` };
}

/** The runtime publication's messages keep their old wording; other files are named by their own. */
function refused(name: string, message: string): { kind: 'invalid'; message: string } {
  return { kind: 'invalid', message: name === RUNTIME_PUBLISH_FILE ? `runtime publication: ${message}` : message };
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
