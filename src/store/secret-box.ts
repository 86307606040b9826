/**
 * Secrets at rest in the master's store: AES-256-GCM under a key kept
 * outside the store (`<data-dir>/store.key`, or `--store-key-file`).
 *
 * What it upholds:
 *
 * - A sealed value is `hox:v1:` + base64url(nonce ‖ ciphertext ‖ tag), a fresh
 *   random 96-bit nonce per value. With 2^32 values per key the chance of a
 *   repeated nonce stays below 2^-32 (NIST SP 800-38D's bound); a master
 *   seals a value only when a row is written, far below that.
 * - Each value is bound to where it lives (`instance.parameters:<id>`, as
 *   GCM's additional data): a sealed value copied into another row or column
 *   does not open, so write access to the database cannot move one
 *   instance's secrets into another's.
 * - Opening never returns garbage: a wrong key or a changed byte fails GCM's
 *   tag check and throws `HOX_STORE_KEY` naming the row and the key.
 * - Values without the prefix are plaintext written by a version before
 *   encryption (their JSON starts with `{`): they read as they are, and the
 *   store re-seals them when it opens (see `BaseStore.unlock`), so none stays
 *   in clear past the first start of this version.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { HoxError } from '../shared/errors.js';

const PREFIX = 'hox:v1:';
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
export const STORE_KEY_BYTES = 32;

export class SecretBox {
  /** Names the key without revealing it (`k-` + 16 hex of a SHA-256 of it): printed in errors and logs. */
  readonly keyId: string;

  /**
   * @param key 32 bytes
   * @param source where the key came from (a file path), named in errors
   */
  constructor(
    private readonly key: Buffer,
    readonly source: string,
  ) {
    if (key.length !== STORE_KEY_BYTES)
      throw new HoxError('HOX_STORE_KEY', `store key from ${source} is ${key.length} bytes, not ${STORE_KEY_BYTES}`);
    this.keyId = `k-${createHash('sha256').update('hox store key id\0').update(key).digest('hex').slice(0, 16)}`;
  }

  /** Whether a stored value is sealed (else it is plaintext from an older version). */
  static isSealed(stored: string): boolean {
    return stored.startsWith(PREFIX);
  }

  /** Encrypts `plaintext` for the place `context` (e.g. `instance.parameters:<id>`). */
  seal(plaintext: string, context: string): string {
    const nonce = randomBytes(NONCE_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.key, nonce);
    cipher.setAAD(Buffer.from(context, 'utf8'));
    const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return PREFIX + Buffer.concat([nonce, body, cipher.getAuthTag()]).toString('base64url');
  }

  /** Decrypts what {@link seal} made for the same `context`; returns plaintext from older versions as it is. */
  open(stored: string, context: string): string {
    if (!SecretBox.isSealed(stored)) return stored;
    const raw = Buffer.from(stored.slice(PREFIX.length), 'base64url');
    try {
      if (raw.length < NONCE_BYTES + TAG_BYTES) throw new Error('value too short');
      const decipher = createDecipheriv('aes-256-gcm', this.key, raw.subarray(0, NONCE_BYTES));
      decipher.setAAD(Buffer.from(context, 'utf8'));
      decipher.setAuthTag(raw.subarray(raw.length - TAG_BYTES));
      return Buffer.concat([
        decipher.update(raw.subarray(NONCE_BYTES, raw.length - TAG_BYTES)),
        decipher.final(),
      ]).toString('utf8');
    } catch (error) {
      throw new HoxError(
        'HOX_STORE_KEY',
        `${context} does not decrypt with store key ${this.keyId} (${this.source}): the store was sealed with another key, or the value was altered`,
        { cause: error },
      );
    }
  }
}

/** A new random store key, as the text kept in a key file (base64, one line). */
export function newStoreKeyText(): string {
  return `${randomBytes(STORE_KEY_BYTES).toString('base64')}\n`;
}

/** Parses a key file's text (base64 of 32 bytes, surrounding blanks ignored). */
export function parseStoreKey(text: string, source: string): SecretBox {
  const trimmed = text.trim();
  const key = /^[A-Za-z0-9+/]{43}=$/.test(trimmed) ? Buffer.from(trimmed, 'base64') : undefined;
  if (key?.length !== STORE_KEY_BYTES)
    throw new HoxError(
      'HOX_STORE_KEY',
      `store key file ${source} does not hold a key (expected one line: ${STORE_KEY_BYTES} random bytes in base64, as 'head -c 32 /dev/urandom | base64' prints)`,
    );
  return new SecretBox(key, source);
}
