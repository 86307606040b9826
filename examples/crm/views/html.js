/**
 * Safe HTML building: the `html` template tag escapes every interpolated value
 * unless it is already {@link SafeHtml} (the result of another `html` call).
 * Escaping is the default, so forgetting it is not possible by omission.
 *
 * @example
 *   html`<p>${company.name}</p>`            // name is escaped
 *   html`<ul>${rows.map((r) => html`<li>${r}</li>`)}</ul>`  // arrays are joined
 */

/** A string of markup that is known to be safe. */
export class SafeHtml {
  constructor(value) {
    this.value = value;
  }

  toString() {
    return this.value;
  }
}

const ENTITIES = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Escapes text for use in element content and in quoted attribute values. */
export function escapeHtml(value) {
  return String(value).replace(/[&<>"']/g, (char) => ENTITIES[char]);
}

function render(value) {
  if (value === null || value === undefined || value === false) return '';
  if (value instanceof SafeHtml) return value.value;
  if (Array.isArray(value)) return value.map(render).join('');
  return escapeHtml(value);
}

/** Template tag: literal parts are kept, interpolations escaped (null, undefined and false render nothing). */
export function html(strings, ...values) {
  let out = strings[0];
  for (let i = 0; i < values.length; i += 1) out += render(values[i]) + strings[i + 1];
  return new SafeHtml(out);
}

/** `"1234567.5"` → `"1,234,567.50"`: formats a numeric string exactly, without going through floating point. */
export function formatAmount(amount) {
  const [whole, fraction = ''] = String(amount).split('.');
  const grouped = whole.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  return `${grouped}.${fraction.padEnd(2, '0').slice(0, 2)}`;
}

/**
 * A date as `2024-05-01 16:03 CEST` in `timeZone` (an IANA name, default UTC), always with its zone: a time
 * without one is read in the reader's own zone, which may not be the CRM's.
 */
export function formatDate(date, timeZone = 'UTC') {
  if (!(date instanceof Date)) return '';
  const parts = Object.fromEntries(
    new Intl.DateTimeFormat('en-GB', {
      timeZone,
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      hourCycle: 'h23',
      timeZoneName: 'short',
    })
      .formatToParts(date)
      .map((part) => [part.type, part.value]),
  );
  return `${parts.year}-${parts.month}-${parts.day} ${parts.hour}:${parts.minute} ${parts.timeZoneName}`;
}

/** Whether `timeZone` is an IANA time zone name this Node knows. */
export function isTimeZone(timeZone) {
  try {
    new Intl.DateTimeFormat('en-GB', { timeZone });
    return true;
  } catch {
    return false;
  }
}
