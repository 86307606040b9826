/** The sign-in page, the users page (administrators) and the password form. */
import { errorSummary, textField } from './forms.js';
import { formatDate, html } from './html.js';
import { notice } from './layout.js';

/**
 * @param {{ username: string, next: string, error?: string, noUserYet: boolean, url: URL }} page `noUserYet`:
 *   there is no user and no first administrator is configured
 */
export function loginView({ username, next, error, noUserYet, url }) {
  return html`<h1>Sign in</h1>
    ${url.searchParams.has('signed_out') ? html`<p class="notice" role="status">Signed out.</p>` : ''}
    ${error ? html`<p class="errors" role="alert">${error}</p>` : ''}
    ${
      noUserYet
        ? html`<p class="errors" role="alert">
            There is no user yet. Set <code>CRM_ADMIN_PASSWORD</code> (hyper_edge generates it) and restart the CRM: the
            first sign-in as <code>admin</code> with that password creates the administrator.
          </p>`
        : ''
    }
    <form method="post" action="/login" class="card narrow">
      <input type="hidden" name="next" value="${next}" />
      ${textField({ name: 'username', label: 'User name', value: username, autocomplete: 'username' })}
      ${textField({ name: 'password', label: 'Password', type: 'password', autocomplete: 'current-password' })}
      <p><button type="submit">Sign in</button></p>
    </form>`;
}

/**
 * @param {{ users: object[], values: { username: string, is_admin: boolean }, errors: object, url: URL,
 *   timeZone: string }} page
 */
export function userList({ users, values, errors, url, timeZone }) {
  return html`<h1>Users</h1>
    ${notice(url)}
    <div class="table-wrap">
      <table>
        <thead>
          <tr>
            <th>User name</th>
            <th>Role</th>
            <th>Since</th>
            <th></th>
          </tr>
        </thead>
        <tbody>
          ${users.map(
            (user) =>
              html`<tr class="user-row">
                <td>${user.username}</td>
                <td>${user.is_admin ? 'administrator' : 'user'}</td>
                <td>${formatDate(user.created_at, timeZone)}</td>
                <td><a href="/users/${user.id}/delete">Delete</a></td>
              </tr>`,
          )}
        </tbody>
      </table>
    </div>
    <h2>Add a user</h2>
    ${errorSummary(errors)}
    <form method="post" action="/users" class="card" novalidate>
      ${textField({ name: 'username', label: 'User name', value: values.username, error: errors.username, required: true })}
      ${textField({
        name: 'password',
        label: 'Password (at least 12 characters)',
        type: 'password',
        error: errors.password,
        required: true,
        autocomplete: 'new-password',
      })}
      <label class="check"
        ><input type="checkbox" name="is_admin" ${values.is_admin ? html`checked` : ''} /> Administrator (manages
        users)</label
      >
      <p><button type="submit">Add user</button></p>
    </form>`;
}

export function passwordForm({ username, errors, url }) {
  return html`<h1>Your password</h1>
    ${notice(url)} ${errorSummary(errors)}
    <form method="post" action="/account" class="card narrow" novalidate>
      <input type="hidden" name="username" value="${username}" autocomplete="username" />
      ${textField({
        name: 'current',
        label: 'Current password',
        type: 'password',
        error: errors.current,
        autocomplete: 'current-password',
      })}
      ${textField({
        name: 'password',
        label: 'New password (at least 12 characters)',
        type: 'password',
        error: errors.password,
        autocomplete: 'new-password',
      })}
      <p><button type="submit">Change password</button></p>
    </form>`;
}
