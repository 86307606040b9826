/**
 * The CRM's users: administrators list, add and delete them; everyone changes their own password.
 * An administrator cannot delete themselves, so at least one administrator always remains.
 */
import { hashPassword, verifyPassword } from '../auth.js';
import { HttpError, redirect } from '../http.js';
import { validatePassword, validateUser } from '../validate.js';
import { confirmDeleteView } from '../views/forms.js';
import { passwordForm, userList } from '../views/users.js';

const EMPTY = { username: '', is_admin: false };

async function list(ctx) {
  ctx.requireAdmin();
  ctx.render(
    200,
    'Users',
    userList({ users: await ctx.store.listUsers(), values: EMPTY, errors: {}, url: ctx.url, timeZone: ctx.timeZone }),
  );
}

async function create(ctx) {
  ctx.requireAdmin();
  const { values, errors, password } = validateUser(ctx.form);
  if (Object.keys(errors).length === 0) {
    const created = await ctx.store.insertUser({
      username: values.username,
      passwordHash: await hashPassword(password),
      isAdmin: values.is_admin,
    });
    if (created) return redirect(ctx.res, '/users?saved=1');
    errors.username = `User name '${values.username}' is taken.`;
  }
  ctx.render(
    422,
    'Users',
    userList({ users: await ctx.store.listUsers(), values, errors, url: ctx.url, timeZone: ctx.timeZone }),
  );
}

async function loadOtherUser(ctx) {
  ctx.requireAdmin();
  if (ctx.params.id === String(ctx.session.user_id)) {
    throw new HttpError(403, 'You cannot delete yourself: another administrator can.');
  }
  const user = (await ctx.store.listUsers()).find((u) => String(u.id) === ctx.params.id);
  if (!user) throw new HttpError(404, `There is no user ${ctx.params.id}.`);
  return user;
}

async function confirmDelete(ctx) {
  const user = await loadOtherUser(ctx);
  ctx.render(
    200,
    `Delete ${user.username}?`,
    confirmDeleteView({
      what: `user ${user.username}`,
      consequences: [`${user.username} will be signed out and can no longer sign in.`],
      action: `/users/${user.id}/delete`,
      cancel: '/users',
    }),
  );
}

async function remove(ctx) {
  const user = await loadOtherUser(ctx);
  await ctx.store.deleteUser(user.id);
  redirect(ctx.res, '/users?deleted=1');
}

function accountForm(ctx) {
  ctx.render(200, 'Your password', passwordForm({ username: ctx.session.username, errors: {}, url: ctx.url }));
}

async function changePassword(ctx) {
  const errors = {};
  const user = await ctx.store.userByName(ctx.session.username);
  if (!(await verifyPassword(ctx.form.get('current') ?? '', user?.password_hash))) {
    errors.current = 'Current password is wrong.';
  }
  const next = validatePassword(ctx.form.get('password') ?? '');
  if (next.error) errors.password = `New password ${next.error}.`;
  if (Object.keys(errors).length > 0) {
    return ctx.render(422, 'Your password', passwordForm({ username: ctx.session.username, errors, url: ctx.url }));
  }
  await ctx.store.setPassword(user.id, await hashPassword(next.value), ctx.session.token_hash);
  redirect(ctx.res, '/account?saved=1');
}

export const userRoutes = [
  ['GET', '/users', list],
  ['POST', '/users', create],
  ['GET', '/users/:id/delete', confirmDelete],
  ['POST', '/users/:id/delete', remove],
  ['GET', '/account', accountForm],
  ['POST', '/account', changePassword],
];
