/**
 * `hox db backups NAME`, `hox db backup NAME` and `hox db restore NEW --from SOURCE [--time T]`.
 *
 * The list reads what the cluster's root publishes (the router's `backups`).
 * A backup re-requests the cluster's root with `backup_now: {id}` (a fresh
 * id: the router takes one base backup per id) and follows the root until it
 * publishes that request done or failed. A restore reads the source's
 * published backup API (`backup_url`, `backup_token`), requests a new cluster
 * with `restore: {…}` and, with --wait, follows it until a primary serves and
 * every standby streams, as `hox db create --wait` does.
 */
import { HoxError } from '../../shared/errors.js';
import { maskSecrets } from '../output.js';
import { planRestore, requestRestore, type RestoreInput } from './restore-plan.js';
import { withBackupNow } from './backup-parameters.js';
import {
  backupProgress,
  describeRestoreDuration,
  describeRestoredPoint,
  formatBackupList,
  formatBackupResult,
  readBackupsView,
  restoreDuration,
  restoreProgress,
  restoredPoint,
  type BackupRequestView,
  type BackupsView,
} from './backup-view.js';
import { viewOf, waitUntilReady, withProblems, type DbContext } from './cluster-actions.js';
import { CLUSTER_TYPE, HYPER_DB_RELEASE, followTree, loadCluster, requestCluster } from './cluster-client.js';
import { memberCount } from './cluster-parameters.js';
import { BACKUPS_KIND, formatRetainedBackups, retainedBackups, type RetainedSetView } from './retained-backups-view.js';

/**
 * `hox db backups NAME`: the cluster's base backups and archived WAL range, as its root publishes them
 * (the router's `backups`: the newest 50 base backups, the WAL range). Reads only the master. For a destroyed
 * cluster: the backups its node retains (the master's retained sets), and until when.
 */
export async function listBackups(ctx: DbContext, name: string): Promise<void> {
  let cluster;
  try {
    cluster = await loadCluster(ctx.client, name);
  } catch (error) {
    // A destroyed cluster: what its node retains of its backups, if anything.
    if (!(error instanceof HoxError) || error.code !== 'HOX_INSTANCE_TREE_NOT_FOUND') throw error;
    const sets = (await ctx.client.call('listRetainedSets', { title: name })).result_list.filter(
      (s) =>
        s.software_release_uri === HYPER_DB_RELEASE &&
        s.software_type === CLUSTER_TYPE &&
        s.path_list.some((p) => p.kind === BACKUPS_KIND),
    );
    if (sets.length === 0) throw error;
    printRetainedBackups(ctx, name, sets);
    return;
  }
  const published = cluster.root.connection_parameters;
  const view = readBackupsView(published);
  if (ctx.json) {
    ctx.print(
      JSON.stringify({
        cluster: name,
        count: view?.count ?? null,
        backups: (view?.list ?? []).map((b) => ({
          id: b.id,
          started_at: b.startedAt,
          finished_at: b.finishedAt,
          member: b.member,
          bytes: b.bytes,
          verified: b.verified,
        })),
        wal:
          view?.wal == null
            ? null
            : {
                segments: view.wal.segments,
                first: view.wal.first,
                last: view.wal.last,
                last_archived_at: view.wal.lastArchivedAt,
              },
        wal_files: view?.walFiles ?? null,
        error: view?.error ?? null,
      }),
    );
    return;
  }
  for (const line of formatBackupList(name, view, Date.now())) ctx.print(line);
}

function printRetainedBackups(ctx: DbContext, name: string, sets: readonly RetainedSetView[]): void {
  if (ctx.json) {
    ctx.print(
      JSON.stringify({
        cluster: name,
        destroyed: true,
        retained: sets.map((s) => ({
          instance_guid: s.instance_guid,
          destroyed_at: s.destroyed_at,
          expires_at: s.expires_at,
          computer_guid: s.computer_guid,
          bytes: s.path_list.find((p) => p.kind === BACKUPS_KIND)?.bytes ?? null,
          backups: retainedBackups(s).map((b) => ({
            id: b.id,
            finished_at: b.finishedAt,
            member: b.member,
            bytes: b.bytes,
            verified: b.verified,
          })),
        })),
      }),
    );
    return;
  }
  for (const line of formatRetainedBackups(name, sets, Date.now())) ctx.print(line);
}

export async function takeBackup(ctx: DbContext, name: string, options: { timeoutMs: number }): Promise<void> {
  const cluster = await loadCluster(ctx.client, name);
  const { parameters, id } = withBackupNow(cluster.parameters);
  const startedMs = Date.now();
  await requestCluster(ctx.client, cluster, parameters);
  ctx.progress(`backup request ${id} sent`);
  const outcome = await followTree<{ request: BackupRequestView; backups: BackupsView; raw: unknown }>(
    ctx.client,
    name,
    {
      timeoutMs: options.timeoutMs,
      waitingFor: `cluster '${name}' to finish backup request ${id} (it carries on: hox db status ${name} shows the result)`,
      progress: ctx.progress,
      check: (tree) => {
        const { view, problems, published } = viewOf(name, tree);
        const backups = readBackupsView(published);
        const request = backups?.request;
        if (backups !== null && request?.id === id && (request.result === 'done' || request.result === 'failed'))
          return { done: { request, backups, raw: published.backups } };
        return { progress: withProblems(backupProgress(id, backups, view.primary), problems) };
      },
    },
  );
  const elapsedMs = Date.now() - startedMs;
  const result = formatBackupResult(name, outcome.request, outcome.backups, elapsedMs);
  if (ctx.json) {
    const r = outcome.request;
    ctx.print(
      JSON.stringify({
        cluster: name,
        request: { id: r.id, result: r.result, backup: r.backup, error: r.error },
        backups: outcome.raw,
        elapsed_ms: elapsedMs,
      }),
    );
  }
  if (!result.ok) throw new HoxError('HOX_CONFLICT', result.lines.join('; '));
  if (!ctx.json) for (const line of result.lines) ctx.print(line);
}

export interface RestoreRequest extends RestoreInput {
  wait: boolean;
  timeoutMs: number;
}

export { checkRestoreInput } from './restore-plan.js';

export async function restoreCluster(ctx: DbContext, name: string, request: RestoreRequest): Promise<void> {
  const deadline = Date.now() + request.timeoutMs;
  const { target, parameters, warning, archiveTimeoutS } = await planRestore(ctx.client, name, request, Date.now());
  if (warning !== null) ctx.progress(`warning: ${warning}`);
  if (target === null)
    ctx.progress(
      `latest: to the last transaction in ${request.from}'s WAL archive (WAL reaches it at most wal_archive_timeout_s, ${archiveTimeoutS} s, after a commit)`,
    );
  const startedMs = Date.now();
  const answer = await requestRestore(ctx.client, name, parameters);
  const what = {
    cluster: name,
    from: request.from,
    target_time: target?.iso ?? null,
    latest: target === null,
    backup: request.backup,
  };
  if ('status' in answer) {
    if (ctx.json) return ctx.print(JSON.stringify({ ...what, accepted: true, message: answer.message }));
    return ctx.print(`${name}: restore accepted, not ready yet (${answer.message})`);
  }
  const to = target === null ? 'the end of its archived WAL (latest)' : `just before ${target.iso}`;
  const intro = `${name}: restore from ${request.from} to ${to}${request.backup === null ? '' : ` (base backup ${request.backup})`}`;
  if (!request.wait) {
    if (ctx.json) return ctx.print(JSON.stringify({ ...what, instance_guid: answer.instance_guid, ready: false }));
    ctx.print(`${intro} requested on ${answer.computer_guid}/${answer.compute_partition_id} (${answer.instance_guid})`);
    ctx.print(`  hox db status ${name} shows its progress (restore events, then members)`);
    return;
  }
  ctx.progress(`${intro} requested`);
  const { view, published: restored } = await waitUntilReady(ctx, name, {
    notBeforeMs: answer.processing_timestamp / 1000,
    expected: memberCount(parameters),
    deadline,
    waitingFor: `cluster '${name}' to be restored and ready (hox db status ${name} shows its members and events)`,
    annotate: (v) => restoreProgress(v.events),
  });
  const wallMs = Date.now() - startedMs;
  const measured = restoreDuration(view.events);
  const point = restoredPoint(restored);
  if (ctx.json)
    return ctx.print(
      JSON.stringify({
        ...what,
        instance_guid: answer.instance_guid,
        ready: true,
        primary: view.primary,
        restored_to: point === null ? null : { lsn: point.lsn, last_transaction_at: point.lastTransactionAt },
        restore_ms: measured?.totalMs ?? null,
        base_backup_ms: measured?.baseBackupMs ?? null,
        elapsed_ms: wallMs,
        connection_parameters: maskSecrets(restored, false),
      }),
    );
  const standbys = view.members.filter((m) => m.role === 'standby').map((m) => m.name);
  ctx.print(
    `${name}: restored from ${request.from} to ${to} — primary ${view.primary ?? '?'}${standbys.length > 0 ? `, standbys ${standbys.join(', ')} streaming` : ''}`,
  );
  ctx.print(`  restored to: ${describeRestoredPoint(point)}`);
  ctx.print(`  ${describeRestoreDuration(measured, wallMs)}`);
  ctx.print(
    `  read-write: ${view.rwHost ?? '?'}:${view.rwPort ?? '?'}   read-only: ${view.rwHost ?? '?'}:${view.roPort ?? '?'}`,
  );
  ctx.print(
    `  it keeps ${request.from}'s databases and roles: hox db database ${name} DBNAME gives a role its new password`,
  );
}
