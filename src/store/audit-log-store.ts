/**
 * The audit log's rows: appended by the HTTP edge, one per mutating API call,
 * read back newest first, pruned by age and count. Never updated: the API has
 * no way to change or delete an entry (pruning is the master's own timer).
 * Shared by both stores, inside a transaction or not.
 */
import type { Selectable } from 'kysely';
import type { Database } from './database.js';
import type { Db } from './kysely-store.js';
import type { AuditEntry, AuditQuery, AuditRow } from './store.js';

export async function appendAudit(db: Db, entry: AuditEntry): Promise<void> {
  await db
    .insertInto('audit_log')
    .values({
      at_ms: entry.atMs,
      actor_kind: entry.actorKind,
      actor: entry.actor,
      address: entry.address,
      action: entry.action,
      target: JSON.stringify(entry.target),
      status: entry.status,
      result: entry.result,
    })
    .execute();
}

/** The newest `limit` entries matching `query`, returned oldest first. */
export async function listAudit(db: Db, query: AuditQuery): Promise<AuditRow[]> {
  let q = db.selectFrom('audit_log').selectAll();
  if (query.sinceMs !== undefined) q = q.where('at_ms', '>=', query.sinceMs);
  if (query.actorKind !== undefined) q = q.where('actor_kind', '=', query.actorKind);
  if (query.actor !== undefined) q = q.where('actor', '=', query.actor);
  const rows = await q.orderBy('seq', 'desc').limit(query.limit).execute();
  return rows.reverse().map(toAuditRow);
}

/** Deletes entries older than `beforeMs`, then all but the newest `keepRows`. Returns how many went. */
export async function pruneAudit(db: Db, beforeMs: number, keepRows: number): Promise<number> {
  const old = await db.deleteFrom('audit_log').where('at_ms', '<', beforeMs).executeTakeFirst();
  // Sequence numbers may have gaps (a rolled-back call's insert): find the newest row past the count.
  const cut = await db
    .selectFrom('audit_log')
    .select('seq')
    .orderBy('seq', 'desc')
    .offset(keepRows)
    .limit(1)
    .executeTakeFirst();
  let over = 0;
  if (cut !== undefined) {
    const r = await db.deleteFrom('audit_log').where('seq', '<=', cut.seq).executeTakeFirst();
    over = Number(r.numDeletedRows);
  }
  return Number(old.numDeletedRows) + over;
}

function toAuditRow(r: Selectable<Database['audit_log']>): AuditRow {
  return {
    seq: Number(r.seq),
    atMs: Number(r.at_ms),
    actorKind: r.actor_kind as AuditRow['actorKind'],
    actor: r.actor,
    address: r.address,
    action: r.action,
    target: JSON.parse(r.target) as AuditRow['target'],
    status: Number(r.status),
    result: r.result,
  };
}
