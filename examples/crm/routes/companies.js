/** Company routes: list, detail, create, edit. */
import { HttpError, readForm, redirect } from '../http.js';
import { validateCompany } from '../validate.js';
import { companyDetail, companyForm, companyList } from '../views/companies.js';

const EMPTY = { name: '', website: '', notes: '' };

async function loadCompany(ctx) {
  const company = await ctx.store.getCompany(ctx.params.id);
  if (!company) throw new HttpError(404, `There is no company ${ctx.params.id}.`);
  return company;
}

async function list(ctx) {
  ctx.render(200, 'Companies', companyList(await ctx.store.listCompanies(ctx.pageNumber())));
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
  const { values, errors } = validateCompany(await readForm(ctx.req));
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
  const { values, errors } = validateCompany(await readForm(ctx.req));
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

export const companyRoutes = [
  ['GET', '/companies', list],
  ['POST', '/companies', create],
  ['GET', '/companies/new', newForm],
  ['GET', '/companies/:id', show],
  ['POST', '/companies/:id', update],
  ['GET', '/companies/:id/edit', editForm],
];
