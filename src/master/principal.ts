/**
 * Who is calling, as established from the bearer token, and the access rules
 * every domain operation applies:
 *
 * - admin: everything; requests made by the admin are in the `admin` scope.
 * - user: the instance trees it owns; requests roots in its own scope.
 * - node: its own compute node, its partitions, the instances on them and the
 *   shared instances those host.
 * - instance: itself, its tree (children it requests, bang), the shared
 *   instances it hosts.
 * - registration: only registering one compute node.
 */
import { timingSafeEqual } from 'node:crypto';
import { HoxError } from '../shared/errors.js';
import { hashToken } from '../shared/ids.js';
import type { Clock } from '../shared/clock.js';
import type { InstanceRow, StoreTx } from '../store/store.js';

export type Principal =
  | { kind: 'admin' }
  | { kind: 'user'; userId: string }
  | { kind: 'node'; nodeId: string }
  | { kind: 'instance'; instanceId: string }
  | { kind: 'registration'; tokenHash: string };

/** Owner id of trees requested with the admin token. */
export const ADMIN_OWNER_ID = 'admin';

export function describePrincipal(p: Principal): string {
  switch (p.kind) {
    case 'admin':
      return 'admin';
    case 'user':
      return `user '${p.userId}'`;
    case 'node':
      return `compute node '${p.nodeId}'`;
    case 'instance':
      return `instance '${p.instanceId}'`;
    case 'registration':
      return 'a registration token';
  }
}

/** Resolves a bearer token; throws HOX_UNAUTHENTICATED for anything unknown, expired or used. */
export async function authenticate(
  tx: StoreTx,
  token: string,
  adminTokenHash: string,
  clock: Clock,
): Promise<Principal> {
  const hash = hashToken(token);
  if (timingSafeEqual(Buffer.from(hash, 'hex'), Buffer.from(adminTokenHash, 'hex'))) return { kind: 'admin' };
  const row = await tx.getToken(hash);
  if (row === undefined) throw new HoxError('HOX_UNAUTHENTICATED', 'unknown token');
  if (row.expiresAtMs !== null && row.expiresAtMs <= clock.nowMs())
    throw new HoxError(row.kind === 'registration' ? 'HOX_TOKEN_USED' : 'HOX_UNAUTHENTICATED', 'token expired');
  switch (row.kind) {
    case 'admin':
      return { kind: 'admin' };
    case 'registration':
      if (row.usedAtMs !== null) throw new HoxError('HOX_TOKEN_USED', 'registration token already used');
      return { kind: 'registration', tokenHash: hash };
    case 'user':
    case 'node':
    case 'instance':
      if (row.subject === null) throw new HoxError('HOX_UNAUTHENTICATED', 'token has no subject');
      if (row.kind === 'user') return { kind: 'user', userId: row.subject };
      if (row.kind === 'node') return { kind: 'node', nodeId: row.subject };
      return { kind: 'instance', instanceId: row.subject };
  }
}

export function requireAdmin(p: Principal): void {
  if (p.kind !== 'admin') throw new HoxError('HOX_FORBIDDEN', `${describePrincipal(p)} may not do this (admin only)`);
}

/** The scope owner for root requests, or a refusal for principals that cannot request roots. */
export function requesterOwnerId(p: Principal): string {
  if (p.kind === 'admin') return ADMIN_OWNER_ID;
  if (p.kind === 'user') return p.userId;
  throw new HoxError('HOX_FORBIDDEN', `${describePrincipal(p)} may not request instance trees`);
}

/** A node may act on its own compute node only. */
export function assertNodeAccess(p: Principal, nodeId: string): void {
  if (p.kind === 'admin') return;
  if (p.kind === 'node' && p.nodeId === nodeId) return;
  throw new HoxError('HOX_FORBIDDEN', `${describePrincipal(p)} may not act on compute node '${nodeId}'`);
}

/**
 * Whether `p` may read or report on `instance`. Not visible is answered as
 * not found, so callers cannot probe other users' instances.
 */
export async function canAccessInstance(tx: StoreTx, p: Principal, instance: InstanceRow): Promise<boolean> {
  switch (p.kind) {
    case 'admin':
      return true;
    case 'user': {
      const tree = await tx.getTree(instance.treeId);
      return tree?.ownerId === p.userId;
    }
    case 'node': {
      if (instance.nodeId === p.nodeId) return true;
      return false;
    }
    case 'instance': {
      if (instance.id === p.instanceId) return true;
      if (instance.hostInstanceId === p.instanceId) return true;
      const self = await tx.getInstance(p.instanceId);
      return self !== undefined && self.treeId === instance.treeId;
    }
    case 'registration':
      return false;
  }
}

/** Loads an instance the caller may see, or throws HOX_INSTANCE_NOT_FOUND. */
export async function loadInstance(tx: StoreTx, p: Principal, instanceId: string): Promise<InstanceRow> {
  const instance = await tx.getInstance(instanceId);
  if (instance === undefined || !(await canAccessInstance(tx, p, instance)))
    throw new HoxError('HOX_INSTANCE_NOT_FOUND', `instance '${instanceId}' not found`, {
      slaposTitle: `No instance found with reference: ${instanceId}`,
    });
  return instance;
}
