/**
 * Server-side validation of the forms. Each `validate*` takes the posted form
 * (URLSearchParams) and returns `{ values, errors }`: `values` are the trimmed
 * fields (what the form shows again on error, and what the store saves on
 * success), `errors` maps a field name to a message that names the field.
 * No I/O here: checks that need the database (does the company exist?) are
 * the route's job.
 */

/** Deal stages, in pipeline order. Transitions are free: a deal may move to any stage, including back. */
export const STAGES = ['lead', 'qualified', 'proposal', 'won', 'lost'];

const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;
const AMOUNT = /^\d{1,12}(\.\d{1,2})?$/;
/** Spaces people and locales put between thousands: space, no-break space, narrow no-break space, thin space. */
const GROUP_SPACES = /[ \u00a0\u202f\u2009]/g;
/** Digits in groups of three after the first (1 to 3 digits), joined by one separator. */
const GROUPED = (separator) => new RegExp(`^\\d{1,3}(\\${separator}\\d{3})+$`);
const AMOUNT_HINT = 'write it like 4500.50, 4 500,50 or 4,500.50';

/**
 * Reads an amount as people type it, in English or French (and most European) style:
 * `4500.5`, `4,500.50`, `4 500,50` (spaces, no-break spaces), `4.500,50`. The last of `.` and `,` is the decimal
 * mark when both appear; a separator that appears several times groups thousands. One `,` or `.` followed by
 * exactly three digits (`1,500`, `1.500`) is refused as ambiguous: it is fifteen hundred in English and one and a
 * half in French.
 *
 * @param {string} text the trimmed input
 * @returns {{ amount: string, error?: undefined } | { amount?: undefined, error: string }} `amount` as `1234.50`
 */
export function parseAmount(text) {
  const spaced = text.replace(GROUP_SPACES, ' ');
  if (spaced.startsWith('-')) return { error: 'must not be negative' };
  const compact = spaced.replace(/ /g, '');
  if (!/^[\d.,]+$/.test(compact) || !/^\d/.test(compact)) {
    return { error: `must be a number (${AMOUNT_HINT})` };
  }
  if (spaced.includes(' ') && !/^\d{1,3}( \d{3})+([.,]\d+)?$/.test(spaced)) {
    return { error: `has spaces that do not separate thousands (${AMOUNT_HINT})` };
  }
  const lastDot = compact.lastIndexOf('.');
  const lastComma = compact.lastIndexOf(',');
  let whole = compact;
  let fraction = '';
  if (lastDot >= 0 && lastComma >= 0) {
    // Both: the last one is the decimal mark, the other groups thousands.
    const decimalAt = Math.max(lastDot, lastComma);
    const group = lastDot > lastComma ? ',' : '.';
    whole = compact.slice(0, decimalAt);
    fraction = compact.slice(decimalAt + 1);
    if (!GROUPED(group).test(whole)) return { error: `has misplaced separators (${AMOUNT_HINT})` };
    whole = whole.split(group).join('');
  } else if (lastDot >= 0 || lastComma >= 0) {
    const mark = lastDot >= 0 ? '.' : ',';
    const parts = compact.split(mark);
    if (parts.length > 2) {
      // Several: they group thousands (1,000,000 or 1.000.000).
      if (!GROUPED(mark).test(compact)) return { error: `has misplaced separators (${AMOUNT_HINT})` };
      whole = parts.join('');
    } else if (parts[1].length === 3 && !spaced.includes(' ') && parts[0] !== '0') {
      const [head, tail] = parts;
      return {
        error:
          `'${text}' is ambiguous (thousands or decimals?): write ${head}${tail} or ${head} ${tail} for thousands, ` +
          `${head}${mark}${tail.slice(0, 2)} for decimals (at most 2)`,
      };
    } else {
      [whole, fraction] = parts;
    }
  }
  if (fraction.length > 2 || (fraction === '' && /[.,]$/.test(compact))) {
    return { error: `must have at most 2 decimals (${AMOUNT_HINT})` };
  }
  const amount = `${whole.replace(/^0+(?=\d)/, '')}${fraction === '' ? '' : `.${fraction}`}`;
  if (!AMOUNT.test(amount)) return { error: `must be below one thousand billion (${AMOUNT_HINT})` };
  return { amount };
}
const ID = /^[1-9]\d{0,17}$/;

/** Collects field errors; each check names the field by its label. */
class Checker {
  constructor(form, labels) {
    this.form = form;
    this.labels = labels;
    this.values = {};
    this.errors = {};
  }

  text(field, { required = false, max = 200 } = {}) {
    const value = (this.form.get(field) ?? '').trim();
    this.values[field] = value;
    if (required && value === '') this.fail(field, 'is required');
    else if (value.length > max) this.fail(field, `must be at most ${max} characters`);
    return value;
  }

  fail(field, message) {
    this.errors[field] ??= `${this.labels[field]} ${message}.`;
  }

  result() {
    return { values: this.values, errors: this.errors };
  }
}

function isWebUrl(value) {
  try {
    const url = new URL(value);
    return url.protocol === 'http:' || url.protocol === 'https:';
  } catch {
    return false;
  }
}

export const COMPANY_LABELS = { name: 'Name', website: 'Website', notes: 'Notes' };

export function validateCompany(form) {
  const check = new Checker(form, COMPANY_LABELS);
  check.text('name', { required: true });
  const website = check.text('website', { max: 500 });
  // Only http(s): the website becomes a link, and a javascript: URL would run on click.
  if (website !== '' && !isWebUrl(website)) check.fail('website', 'must be an http:// or https:// address');
  check.text('notes', { max: 5000 });
  return check.result();
}

export const CONTACT_LABELS = {
  name: 'Name',
  company_id: 'Company',
  email: 'Email',
  phone: 'Phone',
  job_title: 'Job title',
};

export function validateContact(form) {
  const check = new Checker(form, CONTACT_LABELS);
  check.text('name', { required: true });
  const companyId = check.text('company_id', { required: true, max: 20 });
  if (companyId !== '' && !ID.test(companyId)) check.fail('company_id', 'must be chosen from the list');
  const email = check.text('email', { max: 320 });
  if (email !== '' && !EMAIL.test(email)) check.fail('email', 'must look like name@example.org');
  check.text('phone', { max: 50 });
  check.text('job_title', { max: 200 });
  return check.result();
}

export const DEAL_LABELS = {
  title: 'Title',
  company_id: 'Company',
  contact_id: 'Contact',
  amount: 'Amount',
  stage: 'Stage',
};

export function validateDeal(form) {
  const check = new Checker(form, DEAL_LABELS);
  check.text('title', { required: true });
  const companyId = check.text('company_id', { required: true, max: 20 });
  if (companyId !== '' && !ID.test(companyId)) check.fail('company_id', 'must be chosen from the list');
  const contactId = check.text('contact_id', { max: 20 });
  if (contactId !== '' && !ID.test(contactId)) check.fail('contact_id', 'must be chosen from the list');
  const typed = check.text('amount', { required: true, max: 30 });
  if (typed !== '') {
    const { amount, error } = parseAmount(typed);
    if (error) check.fail('amount', error);
    // Shown again as typed on error; saved as a plain numeric string ("4500.50") on success.
    else check.values.amount = amount;
  }
  const stage = check.text('stage', { max: 20 }) || 'lead';
  check.values.stage = stage;
  if (!STAGES.includes(stage)) check.fail('stage', `must be one of ${STAGES.join(', ')}`);
  return check.result();
}

/** The stage posted to the stage-change form, or an error message. */
export function validateStage(form) {
  const stage = (form.get('stage') ?? '').trim();
  return STAGES.includes(stage)
    ? { stage, error: undefined }
    : { stage, error: `Stage must be one of ${STAGES.join(', ')}.` };
}

export const USER_LABELS = { username: 'User name', password: 'Password' };
export const USERNAME = /^[a-z0-9][a-z0-9._@-]{0,63}$/;
/** Shortest password accepted for a user (the generated first admin password is much longer). */
export const MIN_PASSWORD_LENGTH = 12;

/** A new user: a lower-case name, a password of 12 to 200 characters (never trimmed), admin or not. */
export function validateUser(form) {
  const check = new Checker(form, USER_LABELS);
  const username = check.text('username', { required: true, max: 64 }).toLowerCase();
  check.values.username = username;
  if (username !== '' && !USERNAME.test(username)) {
    check.fail('username', 'may hold only letters, digits and . _ @ - (starting with a letter or digit)');
  }
  const password = validatePassword(form.get('password') ?? '');
  if (password.error) check.fail('password', password.error);
  check.values.is_admin = form.get('is_admin') === 'on';
  // The password is never shown again in the form.
  return { ...check.result(), password: password.value };
}

/** A new password as typed (spaces kept): `{ value }` or `{ error }` (the message without the label). */
export function validatePassword(value) {
  if (value.length < MIN_PASSWORD_LENGTH) return { error: `must be at least ${MIN_PASSWORD_LENGTH} characters` };
  if (value.length > 200) return { error: 'must be at most 200 characters' };
  return { value };
}
