/** Company pages: list, detail (with its contacts and deals) and the create/edit form. */
import { contactTable } from './contacts.js';
import { dealTable } from './deals.js';
import { errorSummary, textField } from './forms.js';
import { html } from './html.js';
import { notice, pager } from './layout.js';

export function companyList(result, url) {
  return html`<h1>Companies</h1>
    ${notice(url)}
    <div class="actions"><a class="button" href="/companies/new">New company</a></div>
    ${
      result.rows.length === 0
        ? html`<p class="muted">No companies yet.</p>`
        : html`<div class="table-wrap">
            <table>
              <thead>
                <tr>
                  <th>Name</th>
                  <th>Website</th>
                  <th class="num">Contacts</th>
                  <th class="num">Open deals</th>
                </tr>
              </thead>
              <tbody>
                ${result.rows.map(
                  (company) =>
                    html`<tr class="company-row">
                      <td><a href="/companies/${company.id}">${company.name}</a></td>
                      <td>${company.website}</td>
                      <td class="num">${company.contacts}</td>
                      <td class="num">${company.open_deals}</td>
                    </tr>`,
                )}
              </tbody>
            </table>
          </div>`
    }
    ${pager('/companies', result)}`;
}

export function companyDetail(company, contacts, deals, url) {
  return html`<h1>${company.name}</h1>
    ${notice(url)}
    <div class="actions">
      <a class="button secondary" href="/companies/${company.id}/edit">Edit</a>
      <a class="button secondary" href="/contacts/new?company_id=${company.id}">Add contact</a>
      <a class="button secondary" href="/deals/new?company_id=${company.id}">Add deal</a>
      <a class="danger-link" href="/companies/${company.id}/delete">Delete…</a>
    </div>
    <dl class="card">
      <dt>Website</dt>
      <dd>
        ${company.website ? html`<a href="${company.website}" rel="noopener noreferrer">${company.website}</a>` : html`<span class="muted">none</span>`}
      </dd>
      <dt>Notes</dt>
      <dd>${company.notes || html`<span class="muted">none</span>`}</dd>
    </dl>
    <h2>Contacts</h2>
    ${contactTable(contacts, { showCompany: false })}
    <h2>Deals</h2>
    ${dealTable(deals, { showCompany: false })}`;
}

export function companyForm({ title, action, values, errors, cancel }) {
  return html`<h1>${title}</h1>
    ${errorSummary(errors)}
    <form method="post" action="${action}" class="card" novalidate>
      ${textField({ name: 'name', label: 'Name', value: values.name, error: errors.name, required: true })}
      ${textField({ name: 'website', label: 'Website', type: 'url', value: values.website, error: errors.website })}
      ${textField({ name: 'notes', label: 'Notes', value: values.notes, error: errors.notes, multiline: true })}
      <p><button type="submit">Save</button> <a href="${cancel}">Cancel</a></p>
    </form>`;
}
