/**
 * Sign-in building blocks, with node:crypto only: password hashes (scrypt),
 * session tokens, cookies and the CSRF check. No I/O here: the store keeps
 * users and sessions, the routes decide.
 *
 * - A password is stored as `scrypt$N$r$p$salt$hash` (base64url), 16 random
 *   bytes of salt, N = 2^15: about 32 MiB and tens of milliseconds per try.
 * - A session is a random 32-byte token in an HttpOnly, SameSite=Lax cookie
 *   (Secure when the request came over HTTPS); the database keeps only its
 *   SHA-256, with the session's CSRF token and its expiry.
 * - Every POST of a signed-in user carries the session's CSRF token (a hidden
 *   `_csrf` field, added to every POST form by the page renderer); the sign-in
 *   form carries a token matched against a cookie of its own. A POST whose
 *   `Origin` is another site is refused before that.
 */
import { createHash, randomBytes, scrypt, timingSafeEqual } from 'node:crypto';
import { promisify } from 'node:util';

const scryptAsync = promisify(scrypt);

const SCRYPT = { N: 2 ** 15, r: 8, p: 1 };
const KEY_BYTES = 32;
const SALT_BYTES = 16;
/** scrypt needs 128·N·r bytes (32 MiB here); node's default ceiling is exactly that, so give it room. */
const SCRYPT_MAXMEM = 64 * 1024 * 1024;

/** How long a session lasts after sign-in. */
export const SESSION_TTL_MS = 7 * 24 * 3600 * 1000;
export const SESSION_COOKIE = 'crm_session';
export const LOGIN_CSRF_COOKIE = 'crm_login_csrf';

/** Hashes a password for storage. */
export async function hashPassword(password) {
  const salt = randomBytes(SALT_BYTES);
  const key = await scryptAsync(password, salt, KEY_BYTES, { ...SCRYPT, maxmem: SCRYPT_MAXMEM });
  return ['scrypt', SCRYPT.N, SCRYPT.r, SCRYPT.p, salt.toString('base64url'), key.toString('base64url')].join('$');
}

/** A hash of a password nobody has: checked against when the user does not exist, so both cases take as long. */
let dummyHash;

/**
 * Whether `password` matches `stored` (a {@link hashPassword} result). With `stored` undefined (no such user)
 * it still spends the same time and answers false.
 */
export async function verifyPassword(password, stored) {
  dummyHash ??= await hashPassword(randomBytes(16).toString('hex'));
  const parts = (stored ?? dummyHash).split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false;
  const [N, r, p] = parts.slice(1, 4).map(Number);
  if (![N, r, p].every(Number.isSafeInteger) || N > 2 ** 20 || r > 32 || p > 16) return false;
  const salt = Buffer.from(parts[4], 'base64url');
  const expected = Buffer.from(parts[5], 'base64url');
  if (expected.length !== KEY_BYTES) return false;
  const key = await scryptAsync(password, salt, KEY_BYTES, { N, r, p, maxmem: SCRYPT_MAXMEM });
  return timingSafeEqual(key, expected) && stored !== undefined;
}

/** A new random token (session, CSRF), URL- and cookie-safe. */
export function newToken() {
  return randomBytes(32).toString('base64url');
}

/** What the sessions table keeps of a session token. */
export function tokenHash(token) {
  return createHash('sha256').update(token).digest();
}

/** Compares two strings in constant time (false when either is missing or the lengths differ). */
export function sameToken(a, b) {
  if (typeof a !== 'string' || typeof b !== 'string' || a === '' || a.length !== b.length) return false;
  return timingSafeEqual(Buffer.from(a), Buffer.from(b));
}

/** The request's cookies by name (the first of each name wins). */
export function readCookies(req) {
  const cookies = {};
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const index = part.indexOf('=');
    if (index < 1) continue;
    const name = part.slice(0, index).trim();
    if (!(name in cookies)) cookies[name] = part.slice(index + 1).trim();
  }
  return cookies;
}

/** Whether the request came over HTTPS: directly, or through a proxy that says so. */
export function isHttps(req) {
  return req.socket.encrypted === true || req.headers['x-forwarded-proto'] === 'https';
}

/**
 * A `Set-Cookie` value: HttpOnly and SameSite always, Secure over HTTPS. `maxAgeMs` 0 deletes the cookie.
 * Values are tokens from {@link newToken} (base64url): nothing to encode.
 */
export function cookie(req, name, value, { maxAgeMs, sameSite = 'Lax' }) {
  const parts = [
    `${name}=${value}`,
    'Path=/',
    'HttpOnly',
    `SameSite=${sameSite}`,
    `Max-Age=${Math.floor(maxAgeMs / 1000)}`,
  ];
  if (isHttps(req)) parts.push('Secure');
  return parts.join('; ');
}

/**
 * False when a browser says the POST comes from another site: `Sec-Fetch-Site: cross-site`, or an `Origin` whose
 * host is not the request's. Requests without these headers (curl, old browsers) go on to the token check.
 */
export function isSameOrigin(req) {
  if (req.headers['sec-fetch-site'] === 'cross-site') return false;
  const origin = req.headers.origin;
  if (origin === undefined) return true;
  try {
    return new URL(origin).host === req.headers.host;
  } catch {
    return false;
  }
}

/** A local path to return to after sign-in: `/…` only (no `//host`, no backslash), else the pipeline. */
export function safeNext(value) {
  return typeof value === 'string' && /^\/(?![/\\])[^\s\\]{0,500}$/.test(value) ? value : '/pipeline';
}
