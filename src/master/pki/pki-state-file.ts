/**
 * Where the platform CA keeps its state: a JSON file, mode 0600, replaced atomically (write a 0600 temporary file,
 * fsync, rename), never followed through a symlink. The CA keys in it are sealed with the store's key (see
 * `platform-ca.ts`), so the file alone reveals no key. Behind the small {@link PkiStateStorage} interface so the
 * master can later keep the same text in its store instead.
 */
import {
  closeSync,
  constants,
  fsyncSync,
  lstatSync,
  openSync,
  readFileSync,
  renameSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { HoxError } from '../../shared/errors.js';

/** Loads and saves the CA's state text. */
export interface PkiStateStorage {
  /** The saved text, or undefined before the first save. */
  load(): Promise<string | undefined>;
  save(text: string): Promise<void>;
  /** Names the place in errors and logs. */
  readonly description: string;
}

export class PkiStateFile implements PkiStateStorage {
  readonly description: string;

  constructor(private readonly path: string) {
    this.description = path;
  }

  load(): Promise<string | undefined> {
    const stat = lstatSync(this.path, { throwIfNoEntry: false });
    if (stat === undefined) return Promise.resolve(undefined);
    if (!stat.isFile())
      throw new HoxError('HOX_BAD_REQUEST', `PKI state ${this.path} is not a regular file`, { field: 'pki state' });
    if ((stat.mode & 0o077) !== 0)
      throw new HoxError(
        'HOX_BAD_REQUEST',
        `PKI state ${this.path} may be read by other users (mode ${(stat.mode & 0o777).toString(8)}): chmod 600 ${this.path}`,
        { field: 'pki state' },
      );
    return Promise.resolve(readFileSync(this.path, 'utf8'));
  }

  save(text: string): Promise<void> {
    const temporary = `${this.path}.${process.pid}.tmp`;
    const fd = openSync(
      temporary,
      constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY | constants.O_NOFOLLOW,
      0o600,
    );
    try {
      writeSync(fd, text);
      fsyncSync(fd);
    } catch (error) {
      closeSync(fd);
      unlinkSync(temporary);
      throw error;
    }
    closeSync(fd);
    renameSync(temporary, this.path);
    return Promise.resolve();
  }
}
