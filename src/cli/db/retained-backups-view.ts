/**
 * `hox db backups NAME` for a destroyed cluster: the backups its node retains (the router's `backups/`, moved
 * aside when the cluster was destroyed) as the master lists them, with until when they are kept.
 */
import type { ResponseOf } from '../../client/master-client.js';
import { formatBytes } from '../../shared/bytes.js';
import { formatBackupTable, humanAge } from './backup-view.js';

export type RetainedSetView = ResponseOf<'listRetainedSets'>['result_list'][number];

/** The kind of retained path hyper_db's cluster declares for its backups. */
export const BACKUPS_KIND = 'hyper_db-backups';

/** One retained base backup, from the catalog (the router's `hyper_db-backup.json`, camelCase). */
export interface RetainedBackup {
  id: string;
  finishedAt: string | null;
  member: string | null;
  bytes: number | null;
  verified: boolean;
}

const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);

/** The base backups of a retained set, newest last; entries that are not backups are left out. */
export function retainedBackups(set: RetainedSetView): RetainedBackup[] {
  const path = set.path_list.find((p) => p.kind === BACKUPS_KIND);
  return (path?.catalog ?? [])
    .flatMap((c) =>
      typeof c.id === 'string'
        ? [
            {
              id: c.id,
              finishedAt: str(c.finishedAt),
              member: str(c.member),
              bytes: typeof c.bytes === 'number' ? c.bytes : null,
              verified: c.verified === true,
            },
          ]
        : [],
    )
    .sort((a, b) => a.id.localeCompare(b.id));
}

/** The lines for each retained set of cluster `name` (oldest destruction first). */
export function formatRetainedBackups(name: string, sets: readonly RetainedSetView[], nowMs: number): string[] {
  const lines: string[] = [];
  for (const set of sets) {
    const left = (Date.parse(set.expires_at) - nowMs) / 1000;
    const bytes = set.path_list.find((p) => p.kind === BACKUPS_KIND)?.bytes ?? 0;
    lines.push(
      `${name}: destroyed at ${set.destroyed_at}; its backups (${formatBytes(bytes)}: base backups and archived WAL) are retained on compute node '${set.computer_guid}' until ${set.expires_at} (${humanAge(left)} left)`,
    );
    const backups = retainedBackups(set);
    if (backups.length === 0) {
      lines.push('  no base backup was taken before it was destroyed');
      continue;
    }
    lines.push(...formatBackupTable(backups));
  }
  lines.push(
    `restore: not yet from a destroyed cluster (its backups are kept on its node, out of every partition's reach; the admin finds them under the node's data dir, retained/<instance guid>/)`,
  );
  return lines;
}
