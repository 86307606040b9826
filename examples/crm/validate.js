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
  // People type "12 500" or "12,500.00"; the separators go, the decimal point stays.
  const amount = check.text('amount', { required: true, max: 30 }).replace(/[\s,]/g, '');
  check.values.amount = amount;
  if (amount !== '' && !AMOUNT.test(amount)) {
    check.fail('amount', 'must be a non-negative number with at most 2 decimals (e.g. 1500.00)');
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
