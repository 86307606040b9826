/**
 * The audit trail: who called which mutating operation, on what, when, from
 * where, and with what result (docs/security/audit.md). The HTTP edge appends
 * one entry per audited call, success or failure; this module decides what an
 * entry may say and who may read it.
 *
 * What it upholds:
 * - No secret is ever written. The target is built from a whitelist of
 *   request fields that are ids or names (a node id, an instance guid, a
 *   title, a release URL stripped of credentials and query, a user name); of
 *   parameters only their key names are kept. Tokens, parameter values,
 *   messages, TioXML, log lines and uploaded bytes never are.
 * - A user reads only the entries of the calls it made itself; the admin reads
 *   every entry. Nothing of the API changes or deletes an entry: only the
 *   master's retention timer prunes them.
 */
import { HoxError, badRequest } from '../shared/errors.js';
import type { AuditActorKind, AuditEntry, AuditRow } from '../store/store.js';
import type { OpContext } from './context.js';
import type { Principal } from './principal.js';

/** How long and how many audit entries the master keeps; pruned at start and every `pruneIntervalMs`. */
export interface AuditSettings {
  /** @default 90 days */
  maxAgeMs: number;
  /** @default 1,000,000 */
  maxRows: number;
  /** @default 1 hour */
  pruneIntervalMs: number;
}

export const AUDIT_DEFAULTS: AuditSettings = Object.freeze({
  maxAgeMs: 90 * 86_400_000,
  maxRows: 1_000_000,
  pruneIntervalMs: 3_600_000,
});

export function resolveAuditSettings(options: Partial<AuditSettings> = {}): AuditSettings {
  const settings = { ...AUDIT_DEFAULTS, ...options };
  for (const [name, value] of Object.entries(settings))
    if (!Number.isSafeInteger(value) || value <= 0) throw badRequest(`audit.${name}`, `must be a positive integer`);
  return Object.freeze(settings);
}

/** The request fields an entry may name: ids and names only. */
const TARGET_FIELDS = [
  'computer_guid',
  'instance_guid',
  'compute_partition_id',
  'title',
  'software_type',
  'state',
  'reported_state',
  'shared',
  'name',
  'request_id',
] as const;
/** Fields whose keys (never values) are kept, as `parameter_keys`. */
const PARAMETER_FIELDS = ['parameters', 'connection_parameter_dict'] as const;
const MAX_TEXT = 200;
const MAX_KEYS = 50;

/** A release URL without user info, query or fragment (which may carry credentials). */
export function safeUrl(url: string): string {
  try {
    const parsed = new URL(url);
    parsed.username = '';
    parsed.password = '';
    parsed.search = '';
    parsed.hash = '';
    return parsed.toString().slice(0, MAX_TEXT);
  } catch {
    // Not a URL (a built-in release's name): keep what precedes anything that could be a query or credentials.
    return (url.split(/[?#@\s]/)[0] ?? '').slice(0, MAX_TEXT);
  }
}

/** What an audited call acted on, from its (possibly invalid) body: whitelisted ids and names only. */
export function auditTarget(body: unknown, extra: Record<string, string> = {}): AuditEntry['target'] {
  const target: AuditEntry['target'] = { ...extra };
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return target;
  const b = body as Record<string, unknown>;
  for (const field of TARGET_FIELDS) {
    const value = b[field];
    if (typeof value === 'string') target[field] = value.slice(0, MAX_TEXT);
    else if (typeof value === 'boolean') target[field] = value;
  }
  if (typeof b.software_release_uri === 'string') target.software_release_uri = safeUrl(b.software_release_uri);
  const keys = PARAMETER_FIELDS.flatMap((field) => {
    const value = b[field];
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? Object.keys(value) : [];
  });
  if (keys.length > 0)
    target.parameter_keys = [...new Set(keys)]
      .sort()
      .slice(0, MAX_KEYS)
      .map((k) => k.slice(0, 64));
  return target;
}

/** The entry's actor columns for a principal (`null`: no token was accepted). */
export function auditActor(principal: Principal | null): { actorKind: AuditActorKind; actor: string | null } {
  if (principal === null) return { actorKind: 'unauthenticated', actor: null };
  switch (principal.kind) {
    case 'admin':
      return { actorKind: 'admin', actor: null };
    case 'user':
      return { actorKind: 'user', actor: principal.userId };
    case 'node':
      return { actorKind: 'node', actor: principal.nodeId };
    case 'instance':
      return { actorKind: 'instance', actor: principal.instanceId };
    case 'registration':
      return { actorKind: 'registration', actor: null };
  }
}

export interface AuditLogQuery {
  since?: string;
  user?: string;
  limit?: number;
}

export interface AuditLogItem {
  seq: number;
  at: string;
  actor_kind: AuditActorKind;
  actor: string | null;
  address: string;
  action: string;
  target: AuditEntry['target'];
  status: number;
  result: string;
}

/** Reads the trail: the admin every entry (or one user's, or its own with `user: 'admin'`), a user only its own. */
export async function listAuditLog(ctx: OpContext, query: AuditLogQuery): Promise<AuditLogItem[]> {
  const { principal, tx } = ctx;
  let sinceMs: number | undefined;
  if (query.since !== undefined) {
    sinceMs = Date.parse(query.since);
    if (Number.isNaN(sinceMs)) throw badRequest('since', `'${query.since.slice(0, 64)}' is not an ISO 8601 time`);
  }
  let filter: { actorKind?: AuditActorKind; actor?: string } = {};
  if (principal.kind === 'user') {
    const self = await tx.getUser(principal.userId);
    if (query.user !== undefined && query.user !== self?.name)
      throw new HoxError(
        'HOX_FORBIDDEN',
        `user '${self?.name ?? principal.userId}' may read only its own audit entries`,
      );
    filter = { actorKind: 'user', actor: principal.userId };
  } else if (principal.kind !== 'admin') {
    throw new HoxError('HOX_FORBIDDEN', 'only the admin and users may read the audit trail');
  } else if (query.user === 'admin') {
    filter = { actorKind: 'admin' };
  } else if (query.user !== undefined) {
    const user = await tx.findUserByName(query.user);
    if (user === undefined) throw new HoxError('HOX_NOT_FOUND', `user '${query.user}' not found`);
    filter = { actorKind: 'user', actor: user.id };
  }
  const rows = await tx.listAudit({
    ...filter,
    ...(sinceMs === undefined ? {} : { sinceMs }),
    limit: query.limit ?? 100,
  });
  const names = new Map((await tx.listUsers()).map((u) => [u.id, u.name]));
  return rows.map((row) => toItem(row, names));
}

function toItem(row: AuditRow, userNames: ReadonlyMap<string, string>): AuditLogItem {
  return {
    seq: row.seq,
    at: new Date(row.atMs).toISOString(),
    actor_kind: row.actorKind,
    actor: row.actorKind === 'user' && row.actor !== null ? (userNames.get(row.actor) ?? row.actor) : row.actor,
    address: row.address,
    action: row.action,
    target: row.target,
    status: row.status,
    result: row.result,
  };
}
