/** Home, pipeline, search and the health check (open to all: the platform probes it). */
import { redirect, sendText } from '../http.js';
import { pipelineView, searchView } from '../views/overview.js';

/** Longest search term used; the rest is ignored. */
const MAX_SEARCH_LENGTH = 100;

async function pipeline(ctx) {
  ctx.render(200, 'Pipeline', pipelineView(await ctx.store.pipeline()));
}

async function search(ctx) {
  const term = (ctx.url.searchParams.get('q') ?? '').trim().slice(0, MAX_SEARCH_LENGTH);
  const results = term === '' ? { companies: [], contacts: [], deals: [] } : await ctx.store.search(term);
  ctx.render(200, term === '' ? 'Search' : `Search: ${term}`, searchView(term, results));
}

/** 200 `ok` only when `SELECT 1` succeeds: the platform routes traffic here only while the database answers. */
async function healthz(ctx) {
  try {
    await ctx.db.ping();
    sendText(ctx.res, 200, 'ok\n');
  } catch {
    sendText(ctx.res, 503, 'database unavailable\n');
  }
}

export const overviewRoutes = [
  ['GET', '/', (ctx) => redirect(ctx.res, '/pipeline')],
  ['GET', '/pipeline', pipeline],
  ['GET', '/search', search],
  ['GET', '/healthz', healthz, { public: true }],
];
