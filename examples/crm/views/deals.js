/** Deal pages: list, detail with the stage buttons and history, and the create/edit form. */
import { errorSummary, selectField, textField } from './forms.js';
import { formatAmount, formatDate, html } from './html.js';
import { notice, pager, stageBadge } from './layout.js';
import { STAGES } from '../validate.js';

/** A table of deals (list page, company and contact pages, search results). */
export function dealTable(deals, { showCompany = true } = {}) {
  if (deals.length === 0) return html`<p class="muted">No deals.</p>`;
  return html`<div class="table-wrap">
    <table>
      <thead>
        <tr>
          <th>Title</th>
          ${showCompany ? html`<th>Company</th>` : ''}
          <th>Contact</th>
          <th>Stage</th>
          <th class="num">Amount</th>
        </tr>
      </thead>
      <tbody>
        ${deals.map(
          (deal) =>
            html`<tr>
              <td><a href="/deals/${deal.id}">${deal.title}</a></td>
              ${showCompany ? html`<td><a href="/companies/${deal.company_id}">${deal.company_name}</a></td>` : ''}
              <td>${deal.contact_id ? html`<a href="/contacts/${deal.contact_id}">${deal.contact_name}</a>` : ''}</td>
              <td>${stageBadge(deal.stage)}</td>
              <td class="num">${formatAmount(deal.amount)}</td>
            </tr>`,
        )}
      </tbody>
    </table>
  </div>`;
}

export function dealList(result, url) {
  return html`<h1>Deals</h1>
    ${notice(url)}
    <div class="actions"><a class="button" href="/deals/new">New deal</a></div>
    ${dealTable(result.rows)} ${pager('/deals', result)}`;
}

/** @param {{ url: URL, timeZone: string, stageError?: string }} options */
export function dealDetail(deal, history, { url, timeZone, stageError }) {
  return html`<h1>${deal.title} ${stageBadge(deal.stage)}</h1>
    ${notice(url)} ${stageError ? html`<p class="errors" role="alert">${stageError}</p>` : ''}
    <div class="actions">
      <a class="button secondary" href="/deals/${deal.id}/edit">Edit</a>
      <a class="danger-link" href="/deals/${deal.id}/delete">Delete…</a>
    </div>
    <dl class="card">
      <dt>Company</dt>
      <dd><a href="/companies/${deal.company_id}">${deal.company_name}</a></dd>
      <dt>Contact</dt>
      <dd>
        ${deal.contact_id ? html`<a href="/contacts/${deal.contact_id}">${deal.contact_name}</a>` : html`<span class="muted">none</span>`}
      </dd>
      <dt>Amount</dt>
      <dd class="amount">${formatAmount(deal.amount)}</dd>
      <dt>Stage</dt>
      <dd>${stageBadge(deal.stage)}</dd>
      <dt>Updated</dt>
      <dd>${formatDate(deal.updated_at, timeZone)}</dd>
    </dl>
    <h2>Move to stage</h2>
    <form method="post" action="/deals/${deal.id}/stage" class="actions">
      ${STAGES.filter((stage) => stage !== deal.stage).map(
        (stage) => html`<button type="submit" name="stage" value="${stage}" class="secondary">${stage}</button>`,
      )}
    </form>
    <h2>Stage history</h2>
    ${
      history.length === 0
        ? html`<p class="muted">Created as ${deal.stage}; never moved.</p>`
        : html`<div class="table-wrap">
            <table>
              <thead>
                <tr>
                  <th>When</th>
                  <th>From</th>
                  <th>To</th>
                </tr>
              </thead>
              <tbody>
                ${history.map(
                  (change) =>
                    html`<tr>
                      <td>${formatDate(change.changed_at, timeZone)}</td>
                      <td>${stageBadge(change.from_stage)}</td>
                      <td>${stageBadge(change.to_stage)}</td>
                    </tr>`,
                )}
              </tbody>
            </table>
          </div>`
    }`;
}

/**
 * The create or edit form. The stage is chosen at creation only; afterwards it moves with the stage buttons,
 * which keep the history.
 */
export function dealForm({ title, action, values, errors, companies, contacts, isNew }) {
  return html`<h1>${title}</h1>
    ${errorSummary(errors)}
    <form method="post" action="${action}" class="card" novalidate>
      ${textField({ name: 'title', label: 'Title', value: values.title, error: errors.title, required: true })}
      ${selectField({
        name: 'company_id',
        label: 'Company',
        value: values.company_id,
        error: errors.company_id,
        required: true,
        blank: '— choose —',
        options: companies.map((company) => ({ value: company.id, label: company.name })),
      })}
      ${selectField({
        name: 'contact_id',
        label: 'Contact',
        value: values.contact_id,
        error: errors.contact_id,
        blank: '— none —',
        options: contacts.map((contact) => ({ value: contact.id, label: `${contact.name} (${contact.company_name})` })),
      })}
      ${textField({ name: 'amount', label: 'Amount', value: values.amount, error: errors.amount, required: true })}
      ${
        isNew
          ? selectField({
              name: 'stage',
              label: 'Stage',
              value: values.stage || 'lead',
              error: errors.stage,
              options: STAGES.map((stage) => ({ value: stage, label: stage })),
            })
          : ''
      }
      <p><button type="submit">Save</button> <a href="${isNew ? '/deals' : action}">Cancel</a></p>
    </form>`;
}
