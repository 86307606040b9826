/**
 * Sign-in and sign-out.
 *
 * The first user is created at the first sign-in while the users table is
 * empty: `CRM_ADMIN_USER` (default `admin`) with the password
 * `CRM_ADMIN_PASSWORD`, which hyper_edge generates (`[secrets] generate` in
 * hox.toml). Once a user exists these variables change nothing.
 *
 * Failed sign-ins are counted per user name in this process: after
 * {@link MAX_FAILURES} within {@link FAILURE_WINDOW_MS}, the name is refused
 * until the window ends (429), so a password cannot be guessed at speed.
 */
import {
  cookie,
  hashPassword,
  LOGIN_CSRF_COOKIE,
  newToken,
  readCookies,
  safeNext,
  sameToken,
  SESSION_COOKIE,
  SESSION_TTL_MS,
  tokenHash,
  verifyPassword,
} from '../auth.js';
import { HttpError, redirect } from '../http.js';
import { loginView } from '../views/users.js';

const MAX_FAILURES = 10;
const FAILURE_WINDOW_MS = 15 * 60 * 1000;
/** Names tracked at most; beyond, the oldest entries go (the map stays small under a flood of names). */
const MAX_TRACKED_NAMES = 10_000;
/** How long the sign-in form stays valid. */
const LOGIN_FORM_TTL_MS = 60 * 60 * 1000;

/**
 * Counts failed sign-ins per user name (one per app, in memory: each replica counts its own).
 *
 * @returns {{ blocked(name: string, now: number): boolean, failed(name: string, now: number): void,
 *   succeeded(name: string): void }}
 */
export function createSignInLimiter() {
  /** user name → { count, since } of recent failures. */
  const failures = new Map();
  return {
    blocked(name, now) {
      const entry = failures.get(name);
      if (entry === undefined) return false;
      if (now - entry.since > FAILURE_WINDOW_MS) {
        failures.delete(name);
        return false;
      }
      return entry.count >= MAX_FAILURES;
    },
    failed(name, now) {
      const entry = failures.get(name);
      if (entry === undefined || now - entry.since > FAILURE_WINDOW_MS) {
        if (failures.size >= MAX_TRACKED_NAMES) failures.delete(failures.keys().next().value);
        failures.set(name, { count: 1, since: now });
      } else entry.count += 1;
    },
    succeeded(name) {
      failures.delete(name);
    },
  };
}

/**
 * Renders the form with its token, in a cookie of its own (the visitor has no session yet). The token of the
 * visitor's cookie is kept when there is one, so that a second tab or a retry after an error still works.
 */
async function renderLogin(ctx, status, { username = '', error } = {}) {
  const current = readCookies(ctx.req)[LOGIN_CSRF_COOKIE];
  ctx.csrf = current !== undefined && /^[\w-]{43}$/.test(current) ? current : newToken();
  const next = safeNext(ctx.form.get('next') ?? ctx.url.searchParams.get('next'));
  const noUserYet = ctx.firstAdmin === undefined && !(await ctx.store.hasUsers());
  ctx.render(status, 'Sign in', loginView({ username, next, error, noUserYet, url: ctx.url }), {
    'set-cookie': cookie(ctx.req, LOGIN_CSRF_COOKIE, ctx.csrf, { maxAgeMs: LOGIN_FORM_TTL_MS, sameSite: 'Strict' }),
  });
}

async function loginForm(ctx) {
  await renderLogin(ctx, 200);
}

async function login(ctx) {
  const { req, form, store } = ctx;
  if (!sameToken(form.get('_csrf') ?? '', readCookies(req)[LOGIN_CSRF_COOKIE])) {
    return renderLogin(ctx, 403, { error: 'The sign-in form had expired; please sign in again.' });
  }
  const username = (form.get('username') ?? '').trim().toLowerCase().slice(0, 64);
  const password = (form.get('password') ?? '').slice(0, 200);
  const now = Date.now();
  if (ctx.signInLimiter.blocked(username, now)) {
    throw new HttpError(429, `Too many failed sign-ins for '${username}': wait 15 minutes, then try again.`);
  }
  if (ctx.firstAdmin !== undefined && username === ctx.firstAdmin.username && !(await store.hasUsers())) {
    if (await store.insertFirstAdmin(ctx.firstAdmin.username, await hashPassword(ctx.firstAdmin.password))) {
      ctx.log(`created the first user, '${ctx.firstAdmin.username}' (an administrator)`);
    }
  }
  const user = username === '' ? undefined : await store.userByName(username);
  if (!(await verifyPassword(password, user?.password_hash))) {
    ctx.signInLimiter.failed(username, now);
    return renderLogin(ctx, 401, { username, error: 'Wrong user name or password.' });
  }
  ctx.signInLimiter.succeeded(username);
  const token = newToken();
  await store.insertSession({
    tokenHash: tokenHash(token),
    userId: user.id,
    csrfToken: newToken(),
    ttlMs: SESSION_TTL_MS,
  });
  redirect(ctx.res, safeNext(form.get('next')), {
    'set-cookie': [
      cookie(req, SESSION_COOKIE, token, { maxAgeMs: SESSION_TTL_MS }),
      cookie(req, LOGIN_CSRF_COOKIE, '', { maxAgeMs: 0, sameSite: 'Strict' }),
    ],
  });
}

async function logout(ctx) {
  await ctx.store.deleteSession(ctx.session.token_hash);
  redirect(ctx.res, '/login?signed_out=1', { 'set-cookie': cookie(ctx.req, SESSION_COOKIE, '', { maxAgeMs: 0 }) });
}

export const sessionRoutes = [
  ['GET', '/login', loginForm, { public: true }],
  ['POST', '/login', login, { public: true }],
  ['POST', '/logout', logout],
];
