/** Form controls that show the submitted value again and the field's error next to it. */
import { html } from './html.js';

/** The list of every error at the top of a form that failed validation. */
export function errorSummary(errors) {
  const messages = Object.values(errors);
  if (messages.length === 0) return '';
  return html`<div class="errors" role="alert">
    <strong>Please correct the following:</strong>
    <ul>
      ${messages.map((message) => html`<li>${message}</li>`)}
    </ul>
  </div>`;
}

function fieldError(id, error) {
  return error ? html`<p class="field-error" id="${id}-error">${error}</p>` : '';
}

/**
 * A labelled text input (or textarea with `multiline`).
 *
 * @param {{ name: string, label: string, value?: string, error?: string, type?: string, required?: boolean,
 *   multiline?: boolean, autocomplete?: string }} field
 */
export function textField({
  name,
  label,
  value = '',
  error,
  type = 'text',
  required = false,
  multiline = false,
  autocomplete,
}) {
  const id = `field-${name}`;
  const described = error ? `${id}-error` : undefined;
  const control = multiline
    ? html`<textarea id="${id}" name="${name}" class="${error ? 'invalid' : ''}" aria-describedby="${described ?? ''}">
${value}</textarea>`
    : html`<input
        type="${type}"
        id="${id}"
        name="${name}"
        value="${value}"
        class="${error ? 'invalid' : ''}"
        ${required ? html`required` : ''}
        ${autocomplete ? html`autocomplete="${autocomplete}"` : ''}
        aria-describedby="${described ?? ''}"
      />`;
  return html`<label for="${id}">${label}${required ? ' *' : ''}</label>${control}${fieldError(id, error)}`;
}

/**
 * A labelled select.
 *
 * @param {{ name: string, label: string, value?: string, error?: string, required?: boolean,
 *   options: { value: string, label: string }[], blank?: string }} field `blank` adds a first empty choice
 */
export function selectField({ name, label, value = '', error, required = false, options, blank }) {
  const id = `field-${name}`;
  return html`<label for="${id}">${label}${required ? ' *' : ''}</label>
    <select id="${id}" name="${name}" class="${error ? 'invalid' : ''}" ${required ? html`required` : ''}>
      ${blank === undefined ? '' : html`<option value="">${blank}</option>`}
      ${options.map(
        (option) =>
          html`<option value="${option.value}" ${String(option.value) === String(value) ? html`selected` : ''}>
            ${option.label}
          </option>`,
      )}</select
    >${fieldError(id, error)}`;
}

/**
 * The confirmation step before a deletion: what goes, what happens to what depends on it, and a button that
 * POSTs the deletion (the GET page itself changes nothing).
 *
 * @param {{ what: string, consequences: string[], action: string, cancel: string }} page
 */
export function confirmDeleteView({ what, consequences, action, cancel }) {
  return html`<h1>Delete ${what}?</h1>
    <div class="card confirm">
      <ul>
        ${consequences.map((line) => html`<li>${line}</li>`)}
        <li><strong>This cannot be undone.</strong></li>
      </ul>
      <form method="post" action="${action}" class="actions">
        <button type="submit" class="danger">Delete ${what}</button>
        <a class="button secondary" href="${cancel}">Cancel</a>
      </form>
    </div>`;
}
