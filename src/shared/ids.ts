import { createHash, randomBytes } from 'node:crypto';

const ALPHABET = 'abcdefghijkmnpqrstuvwxyz23456789';

/** A random id with a readable prefix, e.g. `SOFTINST-k3m9x2qa7d`. */
export function newId(prefix: string, length = 10): string {
  const bytes = randomBytes(length);
  let out = '';
  for (const b of bytes) out += ALPHABET[b % ALPHABET.length];
  return `${prefix}-${out}`;
}

/** A bearer token: 32 random bytes, base64url, with a kind prefix so leaked tokens are recognisable. */
export function newToken(kind: string): string {
  return `hox_${kind}_${randomBytes(32).toString('base64url')}`;
}

/** What the store keeps of a token. */
export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}
