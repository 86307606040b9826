/**
 * The request handler: a small route table, sign-in enforcement, the
 * per-request context handed to the routes, and the one place where errors
 * become responses (404/405/4xx from {@link HttpError}, 503 when the database
 * is unavailable, 500 otherwise).
 *
 * Every route needs a signed-in user except those marked `public` (the
 * health check and the sign-in form). Without a session a GET is sent to
 * `/login` and anything else gets 401. Every POST must come from this site
 * (`Origin`) and carry the session's CSRF token (or, for the sign-in form,
 * the token of its own cookie); {@link withCsrfFields} puts it into every
 * POST form of every page, so a form cannot forget it.
 */
import { isSameOrigin, readCookies, SESSION_COOKIE, sameToken, tokenHash } from './auth.js';
import { DatabaseUnavailableError } from './db.js';
import { HttpError, readForm, redirect, sendHtml } from './http.js';
import { companyRoutes } from './routes/companies.js';
import { contactRoutes } from './routes/contacts.js';
import { dealRoutes } from './routes/deals.js';
import { overviewRoutes } from './routes/overview.js';
import { createSignInLimiter, sessionRoutes } from './routes/session.js';
import { userRoutes } from './routes/users.js';
import { createStore } from './store.js';
import { layout } from './views/layout.js';
import { messageView } from './views/overview.js';

/** Largest page number accepted in `?page=`. */
const MAX_PAGE = 10_000;

/** `'/companies/:id/edit'` → a RegExp with a digits-only named group per parameter. */
function compile([method, path, handler, options = {}]) {
  const source = path.replace(/:(\w+)/g, '(?<$1>\\d{1,18})');
  return { method, pattern: new RegExp(`^${source}$`), handler, public: options.public === true };
}

/** Adds the hidden `_csrf` field to every POST form of a page (the token is base64url: nothing to escape). */
export function withCsrfFields(page, csrf) {
  if (!csrf) return page;
  return page.replace(
    /<form method="post"[^>]*>/g,
    (tag) => `${tag}<input type="hidden" name="_csrf" value="${csrf}" />`,
  );
}

/**
 * Builds the handler for node:http.
 *
 * @param {{ db: ReturnType<import('./db.js').createDb>, version: string, log: (line: string) => void,
 *   firstAdmin?: { username: string, password: string }, timeZone?: string }} options `firstAdmin`: the user
 *   created at the first sign-in while there is none; `timeZone`: the IANA zone times are shown in (UTC)
 */
export function createApp({ db, version, log, firstAdmin, timeZone = 'UTC' }) {
  const store = createStore(db);
  const signInLimiter = createSignInLimiter();
  const routes = [
    ...overviewRoutes,
    ...sessionRoutes,
    ...userRoutes,
    ...companyRoutes,
    ...contactRoutes,
    ...dealRoutes,
  ].map(compile);

  return async function handle(req, res) {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const ctx = {
      req,
      res,
      url,
      db,
      store,
      log,
      firstAdmin,
      timeZone,
      signInLimiter,
      params: {},
      /** The posted form (POST only), read before the route runs. */
      form: new URLSearchParams(),
      /** The signed-in user's session: `{ token_hash, csrf_token, user_id, username, is_admin }`. */
      session: undefined,
      /** The CSRF token the page's forms carry. */
      csrf: undefined,
      /** Sends a full page. */
      render(status, title, body, headers) {
        const page = layout({
          title,
          body,
          version,
          query: url.searchParams.get('q') ?? '',
          user: ctx.session,
        });
        sendHtml(res, status, withCsrfFields(String(page), ctx.csrf), headers);
      },
      /** The `?page=` number, 1 when absent or invalid. */
      pageNumber() {
        const page = Number.parseInt(url.searchParams.get('page') ?? '1', 10);
        return Number.isInteger(page) && page >= 1 && page <= MAX_PAGE ? page : 1;
      },
      /** Only administrators go on. */
      requireAdmin() {
        if (!ctx.session?.is_admin) throw new HttpError(403, 'Only an administrator may manage users.');
      },
    };
    try {
      // HEAD is answered like GET; node:http leaves the body out.
      const method = req.method === 'HEAD' ? 'GET' : req.method;
      const matching = routes
        .map((route) => ({ route, match: route.pattern.exec(url.pathname) }))
        .filter((r) => r.match);
      if (matching.length === 0) throw new HttpError(404, `There is no page at ${url.pathname}.`);
      const found = matching.find((r) => r.route.method === method);
      if (!found) {
        const allowed = [...new Set(matching.map((r) => r.route.method))].join(', ');
        res.setHeader('allow', allowed);
        throw new HttpError(405, `${req.method} is not allowed here; use ${allowed}.`);
      }
      ctx.params = { ...found.match.groups };
      if (method === 'POST') {
        if (!isSameOrigin(req)) throw new HttpError(403, 'This form was sent from another site: refused.');
        ctx.form = await readForm(req);
      }
      if (!found.route.public) {
        const token = readCookies(req)[SESSION_COOKIE];
        ctx.session = token ? await store.sessionByHash(tokenHash(token)) : undefined;
        if (!ctx.session) {
          if (method === 'GET') {
            const next = url.pathname + url.search;
            return redirect(res, next === '/' ? '/login' : `/login?next=${encodeURIComponent(next)}`);
          }
          throw new HttpError(401, 'Sign in first: your session has ended or you have not signed in.');
        }
        ctx.csrf = ctx.session.csrf_token;
        if (method === 'POST' && !sameToken(ctx.form.get('_csrf') ?? '', ctx.csrf)) {
          throw new HttpError(403, 'This form has expired (its security token does not match): reload the page.');
        }
      }
      await found.route.handler(ctx);
    } catch (error) {
      if (res.headersSent) {
        log(`error after the response started (${req.method} ${url.pathname}): ${error?.stack ?? error}`);
        res.destroy();
      } else if (error instanceof HttpError) {
        ctx.render(error.status, statusTitle(error.status), messageView(statusTitle(error.status), error.message));
      } else if (error instanceof DatabaseUnavailableError) {
        log(`503 ${req.method} ${url.pathname}: ${error.message}`);
        ctx.render(
          503,
          'Database unavailable',
          messageView('Database unavailable', 'database unavailable, try again'),
          {
            'retry-after': '5',
          },
        );
      } else {
        log(`500 ${req.method} ${url.pathname}: ${error?.stack ?? error}`);
        ctx.render(500, 'Error', messageView('Something went wrong', 'The error was logged. Please try again.'));
      }
    }
  };
}

function statusTitle(status) {
  const titles = {
    400: 'Bad request',
    401: 'Sign in first',
    403: 'Forbidden',
    404: 'Not found',
    405: 'Method not allowed',
    413: 'Too large',
    415: 'Unsupported',
    429: 'Too many attempts',
  };
  return titles[status] ?? `Error ${status}`;
}
