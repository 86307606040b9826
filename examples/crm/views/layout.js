/** The page shell (navigation, search box, footer with the app version) and the shared bits of every page. */
import { html, SafeHtml } from './html.js';

/** Trusted constant markup: inserted as is (escaping would not change it today, but it is CSS, not text). */
const STYLE = new SafeHtml(`
  * { box-sizing: border-box; }
  body { margin: 0; font: 15px/1.45 system-ui, sans-serif; color: #1d2430; background: #f6f7f9; }
  header { display: flex; flex-wrap: wrap; gap: .5rem 1.2rem; align-items: center; padding: .7rem 1.5rem;
    background: #1d2430; }
  header nav { display: flex; flex-wrap: wrap; gap: .3rem 1.2rem; align-items: center; }
  header a { color: #e8ecf2; text-decoration: none; font-weight: 500; }
  header .brand { font-weight: 700; margin-right: 1rem; }
  header form[role=search] { margin-left: auto; flex: 0 1 14rem; min-width: 0; }
  header input { padding: .3rem .5rem; border: 0; border-radius: 4px; width: 100%; }
  header .user { display: flex; gap: .6rem; align-items: center; color: #c4cad3; font-size: 13px; }
  header .user button { padding: .15rem .5rem; background: transparent; border-color: #6b7585; color: #e8ecf2; }
  main { max-width: 72rem; margin: 1.5rem auto; padding: 0 1.5rem; }
  footer { max-width: 72rem; margin: 2rem auto; padding: 0 1.5rem; color: #6b7585; font-size: 13px; }
  h1 { font-size: 1.5rem; margin: 0 0 1rem; }
  h2 { font-size: 1.1rem; margin: 1.5rem 0 .5rem; }
  a { color: #1f5fbf; }
  table { width: 100%; border-collapse: collapse; background: #fff; }
  th, td { text-align: left; padding: .45rem .6rem; border-bottom: 1px solid #e3e6eb; overflow-wrap: anywhere; }
  .table-wrap { overflow-x: auto; }
  th { font-size: 13px; color: #556070; font-weight: 600; }
  td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
  .actions { display: flex; gap: .6rem; margin: .5rem 0 1rem; flex-wrap: wrap; }
  .button, button { display: inline-block; padding: .35rem .8rem; border: 1px solid #1f5fbf; border-radius: 4px;
    background: #1f5fbf; color: #fff; text-decoration: none; font: inherit; cursor: pointer; }
  .button.secondary, button.secondary { background: #fff; color: #1f5fbf; }
  button.danger { background: #b3261e; border-color: #b3261e; }
  .actions .danger-link { margin-left: auto; color: #b3261e; align-self: center; }
  .narrow { max-width: 26rem; }
  label.check { font-weight: 400; }
  code { background: #eef0f3; padding: 0 .2rem; border-radius: 3px; }
  form.card, .card { background: #fff; padding: 1rem 1.2rem; border: 1px solid #e3e6eb; border-radius: 6px; }
  label { display: block; font-weight: 600; margin: .7rem 0 .2rem; }
  input[type=text], input[type=email], input[type=url], select, textarea { width: 100%; max-width: 32rem;
    padding: .4rem .5rem; border: 1px solid #c4cad3; border-radius: 4px; font: inherit; }
  textarea { min-height: 6rem; }
  .field-error { color: #b3261e; margin: .2rem 0 0; }
  .invalid { border-color: #b3261e !important; }
  .errors { background: #fdecea; color: #b3261e; padding: .6rem 1rem; border-radius: 4px; }
  .notice { background: #e7f4ea; color: #1e6b34; padding: .6rem 1rem; border-radius: 4px; }
  .stage { display: inline-block; padding: .05rem .5rem; border-radius: 9px; font-size: 12px; background: #e3e6eb; }
  .stage-qualified { background: #e1ecfb; } .stage-proposal { background: #fdf1d8; }
  .stage-won { background: #dcf1e1; } .stage-lost { background: #f6dede; }
  .pipeline { display: grid; grid-template-columns: repeat(5, 1fr); gap: .8rem; }
  .pipeline section { background: #fff; border: 1px solid #e3e6eb; border-radius: 6px; padding: .6rem; }
  .pipeline h2 { margin: 0 0 .3rem; }
  .pipeline ul { list-style: none; padding: 0; margin: .5rem 0 0; }
  .pipeline li { padding: .3rem 0; border-top: 1px solid #eef0f3; }
  .muted { color: #6b7585; }
  dl { display: grid; grid-template-columns: 9rem 1fr; gap: .3rem 1rem; }
  dt { color: #556070; } dd { margin: 0; overflow-wrap: anywhere; }
  .pager { display: flex; gap: 1rem; margin: .8rem 0; }
  h1 { overflow-wrap: anywhere; }
  /* Phones (390 px and the like): the menu wraps, the search box takes its own line below it, the board and the
     detail cards stack, and a wide table scrolls inside its box instead of widening the page. */
  @media (max-width: 48rem) {
    header { padding: .6rem 1rem; }
    header form[role=search] { order: 3; flex: 1 1 100%; margin-left: 0; }
    header .user { margin-left: auto; }
    main, footer { padding: 0 1rem; margin-top: 1rem; }
    .pipeline { grid-template-columns: 1fr; }
    dl { grid-template-columns: 1fr; }
    dd { margin-bottom: .4rem; }
    th, td { padding: .4rem .4rem; }
  }
`);

/**
 * A complete HTML document.
 *
 * @param {{ title: string, body: unknown, version: string, query?: string,
 *   user?: { username: string, is_admin: boolean } }} page without `user` (signed out), no menu and no search
 */
export function layout({ title, body, version, query = '', user }) {
  return html`<!doctype html>
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>${title} · CRM</title>
        <style>
          ${STYLE}
        </style>
      </head>
      <body>
        <header>
          <a class="brand" href="/pipeline">CRM</a>
          ${
            user
              ? html`<nav aria-label="Menu">
                    <a href="/pipeline">Pipeline</a>
                    <a href="/companies">Companies</a>
                    <a href="/contacts">Contacts</a>
                    <a href="/deals">Deals</a>
                    ${user.is_admin ? html`<a href="/users">Users</a>` : ''}
                  </nav>
                  <form action="/search" method="get" role="search">
                    <input
                      type="search"
                      name="q"
                      value="${query}"
                      placeholder="Search companies, contacts, deals"
                      aria-label="Search"
                    />
                  </form>
                  <div class="user">
                    <a href="/account" title="Your password">${user.username}</a>
                    <form method="post" action="/logout"><button type="submit">Sign out</button></form>
                  </div>`
              : ''
          }
        </header>
        <main>${body}</main>
        <footer>HyperOpenX pilot CRM · version <span class="version">${version}</span></footer>
      </body>
    </html> `;
}

/** A coloured stage label. */
export function stageBadge(stage) {
  return html`<span class="stage stage-${stage}">${stage}</span>`;
}

/** Previous/next links of a paged list. */
export function pager(basePath, { page, hasNext }) {
  if (page === 1 && !hasNext) return '';
  return html`<nav class="pager">
    ${page > 1 ? html`<a href="${basePath}?page=${page - 1}" rel="prev">← Previous</a>` : ''}
    <span class="muted">page ${page}</span>
    ${hasNext ? html`<a href="${basePath}?page=${page + 1}" rel="next">Next →</a>` : ''}
  </nav>`;
}

/** The one-line notice shown after a redirect (`?saved=1`, `?deleted=1`). */
export function notice(url) {
  if (url.searchParams.has('saved')) return html`<p class="notice" role="status">Saved.</p>`;
  if (url.searchParams.has('deleted')) return html`<p class="notice" role="status">Deleted.</p>`;
  return '';
}
