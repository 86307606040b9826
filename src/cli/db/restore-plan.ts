/**
 * A restore's request, planned from what the master holds: the new name is free, the source is a cluster with
 * a backup API and a base backup, the target time comes after the backup it would start from. Shared by
 * `hox db restore` (backup-action.ts) and the web console's restore form, so both refuse the same mistakes
 * with the same words before anything is requested.
 */
import type { ApiCaller, ResponseOf } from '../../client/route-call.js';
import { HoxError } from '../../shared/errors.js';
import {
  assertTargetAfterBackup,
  backupSource,
  parseRestoreTarget,
  recentTargetWarning,
  restoreParameters,
} from './backup-parameters.js';
import { readBackupsView } from './backup-view.js';
import { findTreeRoot, loadCluster, requestNewCluster } from './cluster-client.js';
import type { ClusterParameters } from './cluster-parameters.js';

export interface RestoreInput {
  from: string;
  /** `--time` as typed; null (or `latest`): the end of the source's archived WAL. */
  time: string | null;
  backup: string | null;
  members?: number;
}

export interface RestorePlan {
  /** The target (null: latest). */
  target: { iso: string; ms: number } | null;
  parameters: ClusterParameters;
  /** Said before requesting: the target may be past what the archive holds yet. */
  warning: string | null;
  /** The source's `wal_archive_timeout_s`: how late the archive may be. */
  archiveTimeoutS: number;
}

/**
 * Checks what needs no master: the time parses and has passed, the names differ. The target, or null
 * for latest.
 */
export function checkRestoreInput(
  name: string,
  input: RestoreInput,
  nowMs: number,
): { iso: string; ms: number } | null {
  if (name === input.from)
    throw new HoxError(
      'HOX_BAD_REQUEST',
      `a restore makes a new cluster: give it a name other than its source '${input.from}'`,
      { field: 'name' },
    );
  return parseRestoreTarget(input.time, nowMs);
}

/** The new cluster's parameters, or the reason there can be none. Requests nothing. */
export async function planRestore(
  client: ApiCaller,
  name: string,
  input: RestoreInput,
  nowMs: number,
): Promise<RestorePlan> {
  const target = checkRestoreInput(name, input, nowMs);
  const existing = await findTreeRoot(client, name);
  if (existing !== undefined)
    throw new HoxError(
      'HOX_CONFLICT',
      `'${name}' already exists: a restore makes a new cluster; pick another name${existing.state === 'destroyed' ? ` (or wait until '${name}' is destroyed)` : ` (or hox destroy ${name} --wait first)`}`,
    );
  const sourceCluster = await loadCluster(client, input.from);
  const published = sourceCluster.root.connection_parameters;
  const source = backupSource(input.from, published, readBackupsView(published));
  if (target !== null) assertTargetAfterBackup(source, target.ms, input.backup);
  const parameters = restoreParameters(source, {
    targetTime: target?.iso ?? null,
    backup: input.backup,
    ...(input.members === undefined ? {} : { members: input.members }),
  });
  const timeout = sourceCluster.parameters.wal_archive_timeout_s;
  const archiveTimeoutS = typeof timeout === 'number' ? timeout : 60;
  const warning = target === null ? null : recentTargetWarning(target.ms, nowMs, archiveTimeoutS);
  return { target, parameters, warning, archiveTimeoutS };
}

/** Requests the new cluster (started, placed anywhere). */
export async function requestRestore(
  client: ApiCaller,
  name: string,
  parameters: ClusterParameters,
): Promise<ResponseOf<'requestInstance'>> {
  return await requestNewCluster(client, name, parameters, {});
}
