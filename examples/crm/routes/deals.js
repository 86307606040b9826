/** Deal routes: list, detail, create, edit, delete, and the stage change that records the deal's history. */
import { HttpError, redirect } from '../http.js';
import { validateDeal, validateStage } from '../validate.js';
import { confirmDeleteView } from '../views/forms.js';
import { dealDetail, dealForm, dealList } from '../views/deals.js';

async function loadDeal(ctx) {
  const deal = await ctx.store.getDeal(ctx.params.id);
  if (!deal) throw new HttpError(404, `There is no deal ${ctx.params.id}.`);
  return deal;
}

/** Validates the posted form, including that the company exists and the contact works there. */
async function readDeal(ctx) {
  const { values, errors } = validateDeal(ctx.form);
  if (!errors.company_id && !(await ctx.store.getCompany(values.company_id))) {
    errors.company_id = 'Company does not exist (any more); choose another.';
  }
  if (values.contact_id && !errors.contact_id && !errors.company_id) {
    const contact = await ctx.store.getContact(values.contact_id);
    if (!contact) errors.contact_id = 'Contact does not exist (any more); choose another.';
    else if (String(contact.company_id) !== values.company_id) {
      errors.contact_id = `Contact must work at the deal's company (${contact.name} is at ${contact.company_name}).`;
    }
  }
  return { values, errors };
}

async function renderForm(ctx, status, form) {
  const [companies, contacts] = await Promise.all([ctx.store.companyChoices(), ctx.store.contactChoices()]);
  ctx.render(status, form.title, dealForm({ ...form, companies, contacts }));
}

async function list(ctx) {
  ctx.render(200, 'Deals', dealList(await ctx.store.listDeals(ctx.pageNumber()), ctx.url));
}

async function show(ctx) {
  const deal = await loadDeal(ctx);
  ctx.render(200, deal.title, dealDetail(deal, await ctx.store.stageHistory(deal.id), ctx));
}

async function newForm(ctx) {
  const query = ctx.url.searchParams;
  const values = {
    title: '',
    company_id: query.get('company_id') ?? '',
    contact_id: query.get('contact_id') ?? '',
    amount: '',
    stage: 'lead',
  };
  await renderForm(ctx, 200, { title: 'New deal', action: '/deals', values, errors: {}, isNew: true });
}

async function create(ctx) {
  const { values, errors } = await readDeal(ctx);
  if (Object.keys(errors).length > 0) {
    return renderForm(ctx, 422, { title: 'New deal', action: '/deals', values, errors, isNew: true });
  }
  const id = await ctx.store.insertDeal(values);
  redirect(ctx.res, `/deals/${id}?saved=1`);
}

async function editForm(ctx) {
  const deal = await loadDeal(ctx);
  const values = { ...deal, contact_id: deal.contact_id ?? '' };
  await renderForm(ctx, 200, { title: `Edit ${deal.title}`, action: `/deals/${deal.id}`, values, errors: {} });
}

async function update(ctx) {
  const action = `/deals/${ctx.params.id}`;
  const { values, errors } = await readDeal(ctx);
  if (Object.keys(errors).length > 0) return renderForm(ctx, 422, { title: 'Edit deal', action, values, errors });
  if (!(await ctx.store.updateDeal(ctx.params.id, values))) {
    throw new HttpError(404, `There is no deal ${ctx.params.id}.`);
  }
  redirect(ctx.res, `${action}?saved=1`);
}

async function changeStage(ctx) {
  const { stage, error } = validateStage(ctx.form);
  if (error) {
    const deal = await loadDeal(ctx);
    const history = await ctx.store.stageHistory(deal.id);
    return ctx.render(422, deal.title, dealDetail(deal, history, { ...ctx, stageError: error }));
  }
  if (!(await ctx.store.changeStage(ctx.params.id, stage))) {
    throw new HttpError(404, `There is no deal ${ctx.params.id}.`);
  }
  redirect(ctx.res, `/deals/${ctx.params.id}?saved=1`);
}

async function confirmDelete(ctx) {
  const deal = await loadDeal(ctx);
  const what = `deal ${deal.title}`;
  const page = confirmDeleteView({
    what,
    consequences: [`The deal and its stage history are deleted; ${deal.company_name} and its contacts stay.`],
    action: `/deals/${deal.id}/delete`,
    cancel: `/deals/${deal.id}`,
  });
  ctx.render(200, `Delete ${what}?`, page);
}

async function remove(ctx) {
  if (!(await ctx.store.deleteDeal(ctx.params.id))) throw new HttpError(404, `There is no deal ${ctx.params.id}.`);
  redirect(ctx.res, '/deals?deleted=1');
}

export const dealRoutes = [
  ['GET', '/deals', list],
  ['POST', '/deals', create],
  ['GET', '/deals/new', newForm],
  ['GET', '/deals/:id', show],
  ['POST', '/deals/:id', update],
  ['GET', '/deals/:id/edit', editForm],
  ['POST', '/deals/:id/stage', changeStage],
  ['GET', '/deals/:id/delete', confirmDelete],
  ['POST', '/deals/:id/delete', remove],
];
