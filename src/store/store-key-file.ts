/**
 * The store key's file: one line, 32 random bytes in base64, mode 0600,
 * outside the store (a copy of the store alone reveals no secret). The
 * master's own `<data-dir>/store.key` is generated on its first start; a file
 * named with `--store-key-file` must already exist (every master of one
 * PostgreSQL store is given the same one).
 */
import { closeSync, constants, openSync, readFileSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { HoxError } from '../shared/errors.js';
import { restrictFile, type StoreLog } from './private-files.js';
import { newStoreKeyText, parseStoreKey, type SecretBox } from './secret-box.js';

export interface StoreKey {
  box: SecretBox;
  /** Whether this call generated the file (the caller removes it if the store refuses the new key). */
  created: boolean;
  /** Removes a file this call generated. */
  discard(): void;
}

/**
 * Reads the key at `path`; with `generate`, creates it if absent and narrows a wide mode, else refuses a missing
 * file or one other users may read.
 */
export function readStoreKeyFile(path: string, options: { generate: boolean }, log: StoreLog): StoreKey {
  let created = false;
  const stat = statSync(path, { throwIfNoEntry: false });
  if (stat === undefined) {
    if (!options.generate)
      throw new HoxError(
        'HOX_BAD_REQUEST',
        `store key file ${path} does not exist: copy there the store.key of the masters already using this store`,
        { field: '--store-key-file' },
      );
    const fd = openSync(path, constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY | constants.O_NOFOLLOW, 0o600);
    try {
      writeSync(fd, newStoreKeyText());
    } finally {
      closeSync(fd);
    }
    created = true;
  } else if (!stat.isFile()) {
    throw new HoxError('HOX_BAD_REQUEST', `store key file ${path} is not a regular file`, {
      field: '--store-key-file',
    });
  } else if ((stat.mode & 0o077) !== 0) {
    if (!options.generate)
      throw new HoxError(
        'HOX_BAD_REQUEST',
        `store key file ${path} may be read by other users (mode ${(stat.mode & 0o777).toString(8)}): chmod 600 ${path}`,
        { field: '--store-key-file' },
      );
    restrictFile(path, log);
  }
  const box = parseStoreKey(readFileSync(path, 'utf8'), path);
  if (created)
    log(
      `generated store key ${box.keyId} in ${path}: back it up with the store; without it the secrets cannot be read`,
      'info',
    );
  return {
    box,
    created,
    discard: () => {
      if (created) unlinkSync(path);
    },
  };
}
