/** Users: named owners of instance trees, each with bearer tokens. Created by the admin. */
import { HoxError, badRequest } from '../shared/errors.js';
import { hashToken, newId, newToken } from '../shared/ids.js';
import type { OpContext } from './context.js';
import { ADMIN_OWNER_ID, requireAdmin } from './principal.js';

export const USER_NAME_PATTERN = /^[a-z][a-z0-9_.-]{0,62}$/;

export async function createUser(
  ctx: OpContext,
  name: string,
): Promise<{ user_id: string; name: string; token: string }> {
  requireAdmin(ctx.principal);
  if (!USER_NAME_PATTERN.test(name) || name === ADMIN_OWNER_ID)
    throw badRequest(
      'name',
      "must be 1-63 lowercase letters, digits, '.', '-' or '_', start with a letter, and not be 'admin'",
    );
  if ((await ctx.tx.findUserByName(name)) !== undefined)
    throw new HoxError('HOX_CONFLICT', `user '${name}' already exists`);
  const id = newId('USER');
  const now = ctx.clock.nowMs();
  await ctx.tx.insertUser({ id, name, createdAtMs: now });
  const token = await issue(ctx, id);
  return { user_id: id, name, token };
}

/** A further token for an existing user (admin). */
export async function createUserToken(
  ctx: OpContext,
  name: string,
): Promise<{ user_id: string; name: string; token: string }> {
  requireAdmin(ctx.principal);
  const user = await ctx.tx.findUserByName(name);
  if (user === undefined) throw new HoxError('HOX_NOT_FOUND', `user '${name}' not found`);
  return { user_id: user.id, name, token: await issue(ctx, user.id) };
}

async function issue(ctx: OpContext, userId: string): Promise<string> {
  const token = newToken('user');
  await ctx.tx.insertToken({
    hash: hashToken(token),
    kind: 'user',
    subject: userId,
    createdAtMs: ctx.clock.nowMs(),
    expiresAtMs: null,
    usedAtMs: null,
  });
  return token;
}

export async function listUsers(ctx: OpContext): Promise<{ user_id: string; name: string; created_at: string }[]> {
  requireAdmin(ctx.principal);
  return (await ctx.tx.listUsers()).map((u) => ({
    user_id: u.id,
    name: u.name,
    created_at: new Date(u.createdAtMs).toISOString(),
  }));
}
