/** The pipeline board, search results and the error page. */
import { contactTable } from './contacts.js';
import { dealTable } from './deals.js';
import { formatAmount, html } from './html.js';

/** Open stages: the pipeline's "open value" sums these. */
const OPEN_STAGES = ['lead', 'qualified', 'proposal'];

function sumAmounts(amounts) {
  // Cents as BigInt: exact for any sum of numeric(14, 2) values.
  const cents = amounts.reduce((sum, amount) => {
    const [whole, fraction = ''] = amount.split('.');
    return sum + BigInt(whole) * 100n + BigInt(fraction.padEnd(2, '0').slice(0, 2));
  }, 0n);
  return `${cents / 100n}.${String(cents % 100n).padStart(2, '0')}`;
}

/** @param {{ stage: string, count: number, total: string, deals: object[] }[]} stages */
export function pipelineView(stages) {
  const open = sumAmounts(stages.filter((s) => OPEN_STAGES.includes(s.stage)).map((s) => s.total));
  return html`<h1>Pipeline</h1>
    <div class="actions"><a class="button" href="/deals/new">New deal</a></div>
    <p>Open pipeline: <strong class="open-total">${formatAmount(open)}</strong></p>
    <div class="pipeline">
      ${stages.map(
        (column) =>
          html`<section data-stage="${column.stage}" data-total="${column.total}" data-count="${column.count}">
            <h2>${column.stage}</h2>
            <div>
              <strong>${formatAmount(column.total)}</strong>
              <span class="muted">· ${column.count} deal${column.count === 1 ? '' : 's'}</span>
            </div>
            <ul>
              ${column.deals.map(
                (deal) =>
                  html`<li>
                    <a href="/deals/${deal.id}">${deal.title}</a><br />
                    <span class="muted">${deal.company_name} · ${formatAmount(deal.amount)}</span>
                  </li>`,
              )}
            </ul>
            ${column.count > column.deals.length ? html`<p class="muted">and ${column.count - column.deals.length} more</p>` : ''}
          </section>`,
      )}
    </div>`;
}

export function searchView(term, results) {
  if (term === '')
    return html`<h1>Search</h1>
      <p class="muted">Type a name, an email or a deal title.</p>`;
  const found = results.companies.length + results.contacts.length + results.deals.length;
  return html`<h1>Search: “${term}”</h1>
    ${found === 0 ? html`<p class="muted">Nothing found.</p>` : ''}
    <h2>Companies (${results.companies.length})</h2>
    ${
      results.companies.length === 0
        ? html`<p class="muted">No companies.</p>`
        : html`<ul>
            ${results.companies.map((company) => html`<li><a href="/companies/${company.id}">${company.name}</a></li>`)}
          </ul>`
    }
    <h2>Contacts (${results.contacts.length})</h2>
    ${contactTable(results.contacts)}
    <h2>Deals (${results.deals.length})</h2>
    ${dealTable(results.deals)}`;
}

/** The body of an error page (404, 503, …). */
export function messageView(title, message) {
  return html`<h1>${title}</h1>
    <p>${message}</p>
    <p><a href="/pipeline">Back to the pipeline</a></p>`;
}
