/**
 * The request handler: a small route table, the per-request context handed to
 * the routes, and the one place where errors become responses (404/405/4xx
 * from {@link HttpError}, 503 when the database is unavailable, 500 otherwise).
 */
import { DatabaseUnavailableError } from './db.js';
import { HttpError, sendHtml } from './http.js';
import { companyRoutes } from './routes/companies.js';
import { contactRoutes } from './routes/contacts.js';
import { dealRoutes } from './routes/deals.js';
import { overviewRoutes } from './routes/overview.js';
import { createStore } from './store.js';
import { layout } from './views/layout.js';
import { messageView } from './views/overview.js';

/** Largest page number accepted in `?page=`. */
const MAX_PAGE = 10_000;

/** `'/companies/:id/edit'` → a RegExp with a digits-only named group per parameter. */
function compile([method, path, handler]) {
  const source = path.replace(/:(\w+)/g, '(?<$1>\\d{1,18})');
  return { method, pattern: new RegExp(`^${source}$`), handler };
}

/**
 * Builds the handler for node:http.
 *
 * @param {{ db: ReturnType<import('./db.js').createDb>, version: string, log: (line: string) => void }} options
 * @returns {(req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => Promise<void>}
 */
export function createApp({ db, version, log }) {
  const store = createStore(db);
  const routes = [...overviewRoutes, ...companyRoutes, ...contactRoutes, ...dealRoutes].map(compile);

  return async function handle(req, res) {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const ctx = {
      req,
      res,
      url,
      db,
      store,
      params: {},
      /** Sends a full page. */
      render(status, title, body, headers) {
        sendHtml(res, status, layout({ title, body, version, query: url.searchParams.get('q') ?? '' }), headers);
      },
      /** The `?page=` number, 1 when absent or invalid. */
      pageNumber() {
        const page = Number.parseInt(url.searchParams.get('page') ?? '1', 10);
        return Number.isInteger(page) && page >= 1 && page <= MAX_PAGE ? page : 1;
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
    404: 'Not found',
    405: 'Method not allowed',
    413: 'Too large',
    415: 'Unsupported',
  };
  return titles[status] ?? `Error ${status}`;
}
