/** Contact pages: list, detail (with the contact's deals) and the create/edit form. */
import { dealTable } from './deals.js';
import { errorSummary, selectField, textField } from './forms.js';
import { html } from './html.js';
import { notice, pager } from './layout.js';

/** A table of contacts (list page, company page, search results). */
export function contactTable(contacts, { showCompany = true } = {}) {
  if (contacts.length === 0) return html`<p class="muted">No contacts.</p>`;
  return html`<div class="table-wrap">
    <table>
      <thead>
        <tr>
          <th>Name</th>
          ${showCompany ? html`<th>Company</th>` : ''}
          <th>Job title</th>
          <th>Email</th>
          <th>Phone</th>
        </tr>
      </thead>
      <tbody>
        ${contacts.map(
          (contact) =>
            html`<tr>
              <td><a href="/contacts/${contact.id}">${contact.name}</a></td>
              ${showCompany ? html`<td><a href="/companies/${contact.company_id}">${contact.company_name}</a></td>` : ''}
              <td>${contact.job_title}</td>
              <td>${contact.email ? html`<a href="mailto:${contact.email}">${contact.email}</a>` : ''}</td>
              <td>${contact.phone}</td>
            </tr>`,
        )}
      </tbody>
    </table>
  </div>`;
}

export function contactList(result, url) {
  return html`<h1>Contacts</h1>
    ${notice(url)}
    <div class="actions"><a class="button" href="/contacts/new">New contact</a></div>
    ${contactTable(result.rows)} ${pager('/contacts', result)}`;
}

export function contactDetail(contact, deals, url) {
  return html`<h1>${contact.name}</h1>
    ${notice(url)}
    <div class="actions">
      <a class="button secondary" href="/contacts/${contact.id}/edit">Edit</a>
      <a class="button secondary" href="/deals/new?company_id=${contact.company_id}&amp;contact_id=${contact.id}"
        >Add deal</a
      >
      <a class="danger-link" href="/contacts/${contact.id}/delete">Delete…</a>
    </div>
    <dl class="card">
      <dt>Company</dt>
      <dd><a href="/companies/${contact.company_id}">${contact.company_name}</a></dd>
      <dt>Job title</dt>
      <dd>${contact.job_title}</dd>
      <dt>Email</dt>
      <dd>${contact.email ? html`<a href="mailto:${contact.email}">${contact.email}</a>` : ''}</dd>
      <dt>Phone</dt>
      <dd>${contact.phone}</dd>
    </dl>
    <h2>Deals</h2>
    ${dealTable(deals)}`;
}

export function contactForm({ title, action, values, errors, companies, cancel }) {
  return html`<h1>${title}</h1>
    ${errorSummary(errors)}
    <form method="post" action="${action}" class="card" novalidate>
      ${textField({ name: 'name', label: 'Name', value: values.name, error: errors.name, required: true })}
      ${selectField({
        name: 'company_id',
        label: 'Company',
        value: values.company_id,
        error: errors.company_id,
        required: true,
        blank: '— choose —',
        options: companies.map((company) => ({ value: company.id, label: company.name })),
      })}
      ${textField({ name: 'job_title', label: 'Job title', value: values.job_title, error: errors.job_title })}
      ${textField({ name: 'email', label: 'Email', type: 'email', value: values.email, error: errors.email })}
      ${textField({ name: 'phone', label: 'Phone', value: values.phone, error: errors.phone })}
      <p><button type="submit">Save</button> <a href="${cancel}">Cancel</a></p>
    </form>`;
}
