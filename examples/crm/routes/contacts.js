/**
 * Contact routes: list, detail, create, edit, delete (after a confirmation; the contact's deals stay with their
 * company, without a contact). A contact belongs to an existing company.
 */
import { HttpError, redirect } from '../http.js';
import { validateContact } from '../validate.js';
import { contactDetail, contactForm, contactList } from '../views/contacts.js';
import { confirmDeleteView } from '../views/forms.js';

async function loadContact(ctx) {
  const contact = await ctx.store.getContact(ctx.params.id);
  if (!contact) throw new HttpError(404, `There is no contact ${ctx.params.id}.`);
  return contact;
}

/** Validates the posted form, including that the chosen company exists. */
async function readContact(ctx) {
  const { values, errors } = validateContact(ctx.form);
  if (!errors.company_id && !(await ctx.store.getCompany(values.company_id))) {
    errors.company_id = 'Company does not exist (any more); choose another.';
  }
  return { values, errors };
}

async function renderForm(ctx, status, form) {
  const companies = await ctx.store.companyChoices();
  ctx.render(status, form.title, contactForm({ ...form, companies }));
}

async function list(ctx) {
  ctx.render(200, 'Contacts', contactList(await ctx.store.listContacts(ctx.pageNumber()), ctx.url));
}

async function show(ctx) {
  const contact = await loadContact(ctx);
  const deals = await ctx.store.dealsOf('contact', contact.id);
  ctx.render(200, contact.name, contactDetail(contact, deals, ctx.url));
}

async function newForm(ctx) {
  const values = {
    name: '',
    company_id: ctx.url.searchParams.get('company_id') ?? '',
    email: '',
    phone: '',
    job_title: '',
  };
  await renderForm(ctx, 200, { title: 'New contact', action: '/contacts', values, errors: {}, cancel: '/contacts' });
}

async function create(ctx) {
  const { values, errors } = await readContact(ctx);
  if (Object.keys(errors).length > 0) {
    return renderForm(ctx, 422, { title: 'New contact', action: '/contacts', values, errors, cancel: '/contacts' });
  }
  const id = await ctx.store.insertContact(values);
  redirect(ctx.res, `/contacts/${id}?saved=1`);
}

async function editForm(ctx) {
  const contact = await loadContact(ctx);
  const action = `/contacts/${contact.id}`;
  await renderForm(ctx, 200, { title: `Edit ${contact.name}`, action, values: contact, errors: {}, cancel: action });
}

async function update(ctx) {
  const action = `/contacts/${ctx.params.id}`;
  const { values, errors } = await readContact(ctx);
  if (Object.keys(errors).length > 0) {
    return renderForm(ctx, 422, { title: 'Edit contact', action, values, errors, cancel: action });
  }
  if (!(await ctx.store.updateContact(ctx.params.id, values))) {
    throw new HttpError(404, `There is no contact ${ctx.params.id}.`);
  }
  redirect(ctx.res, `${action}?saved=1`);
}

async function confirmDelete(ctx) {
  const contact = await loadContact(ctx);
  const deals = await ctx.store.dealsOf('contact', contact.id);
  const what = `contact ${contact.name}`;
  const page = confirmDeleteView({
    what,
    consequences: [
      deals.length === 0
        ? `${contact.company_name} stays; the contact has no deals.`
        : `${deals.length === 1 ? 'Its deal stays' : 'Its deals stay'} with ${contact.company_name}, without a contact.`,
    ],
    action: `/contacts/${contact.id}/delete`,
    cancel: `/contacts/${contact.id}`,
  });
  ctx.render(200, `Delete ${what}?`, page);
}

async function remove(ctx) {
  if (!(await ctx.store.deleteContact(ctx.params.id))) {
    throw new HttpError(404, `There is no contact ${ctx.params.id}.`);
  }
  redirect(ctx.res, '/contacts?deleted=1');
}

export const contactRoutes = [
  ['GET', '/contacts', list],
  ['POST', '/contacts', create],
  ['GET', '/contacts/new', newForm],
  ['GET', '/contacts/:id', show],
  ['POST', '/contacts/:id', update],
  ['GET', '/contacts/:id/edit', editForm],
  ['GET', '/contacts/:id/delete', confirmDelete],
  ['POST', '/contacts/:id/delete', remove],
];
