/**
 * The master's files are its own: the store, its key and the admin token are
 * mode 0600 and its data dir is not listable by other users, whatever mode
 * they had before (an older version created the store 0644). A mode found
 * wider is narrowed and said in the log; nothing is ever widened.
 */
import { chmodSync, closeSync, constants, lstatSync, openSync, statSync } from 'node:fs';
import { HoxError } from '../shared/errors.js';

/** Where the store says what it did on open (the master's logger): `warn` for what it had to fix. */
export type StoreLog = (message: string, level?: 'info' | 'warn') => void;

const octal = (mode: number): string => (mode & 0o7777).toString(8).padStart(4, '0');

/** Creates `path` empty with mode 0600 unless it exists; never follows a symlink planted in its place. */
export function createPrivateFile(path: string): void {
  try {
    closeSync(openSync(path, constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY | constants.O_NOFOLLOW, 0o600));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
}

/** Narrows an existing file to 0600 if group or others may read or write it. Absent files are fine. */
export function restrictFile(path: string, log: StoreLog): void {
  const stat = lstatSync(path, { throwIfNoEntry: false });
  if (stat === undefined) return;
  if (!stat.isFile())
    throw new HoxError('HOX_BAD_REQUEST', `${path} should be a regular file of the master, but is not`, {
      field: '--data-dir',
    });
  if ((stat.mode & 0o077) === 0) return;
  chmodSync(path, 0o600);
  log(`${path} was mode ${octal(stat.mode)}, readable by other users: now 0600`, 'warn');
}

/**
 * Makes a data dir unlistable by others: group/other read and write bits go (traverse bits stay). A dir any user
 * may write to (`/tmp`) is refused: another user could plant a link where the store or its key will be.
 */
export function restrictDirectory(path: string, log: StoreLog): void {
  const stat = statSync(path); // a data dir the operator placed behind a symlink is theirs to place
  if (!stat.isDirectory())
    throw new HoxError('HOX_BAD_REQUEST', `data dir ${path} is not a directory`, { field: '--data-dir' });
  if ((stat.mode & 0o002) !== 0)
    throw new HoxError(
      'HOX_BAD_REQUEST',
      `data dir ${path} is writable by every user (mode ${octal(stat.mode)}): give the master a directory of its own`,
      { field: '--data-dir' },
    );
  if ((stat.mode & 0o066) === 0) return;
  const narrowed = stat.mode & 0o7711;
  chmodSync(path, narrowed);
  log(`data dir ${path} was mode ${octal(stat.mode)}, listable by other users: now ${octal(narrowed)}`, 'warn');
}
