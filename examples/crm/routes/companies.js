/** Company routes: list, detail, create, edit, delete (with its contacts and deals, after a confirmation). */
import { HttpError, redirect } from '../http.js';
import { validateCompany } from '../validate.js';
import { companyDetail, companyForm, companyList } from '../views/companies.js';
import { confirmDeleteView } from '../views/forms.js';

const EMPTY = { name: '', website: '', notes: '' };

async function loadCompany(ctx) {
  const company = await ctx.store.getCompany(ctx.params.id);
  if (!company) throw new HttpError(404, `There is no company ${ctx.params.id}.`);
  return company;
}

async function list(ctx) {
  ctx.render(200, 'Companies', companyList(await ctx.store.listCompanies(ctx.pageNumber()), ctx.url));
}

async function show(ctx) {
  const company = await loadCompany(ctx);
  const [contacts, deals] = await Promise.all([
    ctx.store.contactsOfCompany(company.id),
    ctx.store.dealsOf('company', company.id),
  ]);
  ctx.render(200, company.name, companyDetail(company, contacts, deals, ctx.url));
}

function newForm(ctx) {
  const form = { title: 'New company', action: '/companies', values: EMPTY, errors: {}, cancel: '/companies' };
  ctx.render(200, 'New company', companyForm(form));
}

async function create(ctx) {
  const { values, errors } = validateCompany(ctx.form);
  if (Object.keys(errors).length > 0) {
    const form = { title: 'New company', action: '/companies', values, errors, cancel: '/companies' };
    return ctx.render(422, 'New company', companyForm(form));
  }
  const id = await ctx.store.insertCompany(values);
  redirect(ctx.res, `/companies/${id}?saved=1`);
}

async function editForm(ctx) {
  const company = await loadCompany(ctx);
  const form = { title: `Edit ${company.name}`, action: `/companies/${company.id}`, values: company, errors: {} };
  ctx.render(200, form.title, companyForm({ ...form, cancel: form.action }));
}

async function update(ctx) {
  const { values, errors } = validateCompany(ctx.form);
  const action = `/companies/${ctx.params.id}`;
  if (Object.keys(errors).length > 0) {
    return ctx.render(
      422,
      'Edit company',
      companyForm({ title: 'Edit company', action, values, errors, cancel: action }),
    );
  }
  if (!(await ctx.store.updateCompany(ctx.params.id, values))) {
    throw new HttpError(404, `There is no company ${ctx.params.id}.`);
  }
  redirect(ctx.res, `${action}?saved=1`);
}

function plural(count, noun) {
  return `${count} ${noun}${count === 1 ? '' : 's'}`;
}

/** Deleting a company deletes its contacts and deals too: the page says how many before anything happens. */
async function confirmDelete(ctx) {
  const company = await loadCompany(ctx);
  const { contacts, deals } = await ctx.store.companyDependents(company.id);
  const what = `company ${company.name}`;
  const consequences =
    contacts + deals === 0
      ? ['It has no contacts and no deals.']
      : [`Its ${plural(contacts, 'contact')} and ${plural(deals, 'deal')} (with their stage history) are deleted too.`];
  const page = confirmDeleteView({
    what,
    consequences,
    action: `/companies/${company.id}/delete`,
    cancel: `/companies/${company.id}`,
  });
  ctx.render(200, `Delete ${what}?`, page);
}

async function remove(ctx) {
  if (!(await ctx.store.deleteCompany(ctx.params.id))) {
    throw new HttpError(404, `There is no company ${ctx.params.id}.`);
  }
  redirect(ctx.res, '/companies?deleted=1');
}

export const companyRoutes = [
  ['GET', '/companies', list],
  ['POST', '/companies', create],
  ['GET', '/companies/new', newForm],
  ['GET', '/companies/:id', show],
  ['POST', '/companies/:id', update],
  ['GET', '/companies/:id/edit', editForm],
  ['GET', '/companies/:id/delete', confirmDelete],
  ['POST', '/companies/:id/delete', remove],
];
