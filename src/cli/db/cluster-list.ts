/**
 * `hox db list`: the caller's hyper_db clusters at a glance — the same verdict as `hox db status`
 * (health and its reason), members ready of expected, the primary, databases and the last backup.
 */
import { maskSecrets, table } from '../output.js';
import type { DbContext } from './cluster-actions.js';
import { treeFacts } from './cluster-actions.js';
import { CLUSTER_TYPE, HYPER_DB_RELEASE, rootOf, type Tree } from './cluster-client.js';
import { humanAge } from './backup-view.js';
import { clusterVerdict, isReadyMember, readClusterView } from './cluster-view.js';

export interface ClusterListEntry {
  cluster: string;
  health: string;
  problem: string | null;
  primary: string | null;
  members_ready: number;
  members_expected: number | null;
  sync_mode: string | null;
  paused: boolean | null;
  databases: string[] | null;
  last_backup_age_s: number | null;
}

/** One entry per tree whose root is a hyper_db cluster (databases, shared instances, are not clusters). */
export function clusterEntries(trees: readonly Tree[]): ClusterListEntry[] {
  const entries: ClusterListEntry[] = [];
  for (const tree of trees) {
    const root = rootOf(tree);
    if (root === undefined || root.shared || root.software_release_uri !== HYPER_DB_RELEASE) continue;
    if (root.software_type !== CLUSTER_TYPE) continue;
    const view = readClusterView(maskSecrets(root.connection_parameters, false));
    const verdict = clusterVerdict(view, treeFacts(tree));
    entries.push({
      cluster: tree.title,
      health: verdict.health,
      problem: verdict.problem,
      primary: view.primary,
      members_ready: view.members.filter((m) => isReadyMember(m, view.primary)).length,
      members_expected: view.membersExpected,
      sync_mode: view.syncMode,
      paused: view.paused,
      databases: view.databases,
      last_backup_age_s: view.backups?.last ? view.backups.ageS : null,
    });
  }
  return entries.sort((a, b) => a.cluster.localeCompare(b.cluster));
}

export async function listClusters(ctx: DbContext): Promise<void> {
  const entries = clusterEntries((await ctx.client.call('listTreeStatus', {})).result_list);
  if (ctx.json) return ctx.print(JSON.stringify(entries));
  if (entries.length === 0) return ctx.print('no hyper_db cluster yet (hox db create NAME --wait)');
  for (const line of table(
    ['cluster', 'health', 'members', 'primary', 'sync', 'databases', 'last backup'],
    entries.map((e) => [
      e.cluster,
      e.problem === null ? e.health : `${e.health}: ${e.problem}`,
      `${e.members_ready}/${e.members_expected ?? '?'}`,
      e.primary ?? '-',
      `${e.sync_mode ?? '?'}${e.paused === true ? ', paused' : ''}`,
      e.databases === null ? '?' : String(e.databases.length),
      e.last_backup_age_s === null ? 'none' : `${humanAge(e.last_backup_age_s)} ago`,
    ]),
  ))
    ctx.print(line);
}
