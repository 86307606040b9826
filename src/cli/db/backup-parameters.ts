/**
 * The parameters behind `hox db backup` and `hox db restore`, and the checks
 * made before anything is requested. Pure: current parameters and what the
 * source cluster publishes in, next parameters (or a refusal naming the flag
 * and value) out.
 *
 * Shapes are those of `clusterParameters` in src/releases/hyper_db/release.ts:
 * `backup_now: {id}` and `restore: {backup_url, backup_token, backup_ca, target_time?, backup?}` (no target_time:
 * to the end of the archived WAL, "latest").
 */
import { HoxError } from '../../shared/errors.js';
import type { BackupsView } from './backup-view.js';
import { MAX_MEMBERS, newRequestId, type ClusterParameters } from './cluster-parameters.js';

/** `20261127T231500Z`: a base backup's id, its start time in UTC. */
const BACKUP_ID = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/;

/** A fresh `backup_now` request (the router takes one base backup per id), keeping every other parameter. */
export function withBackupNow(
  current: ClusterParameters,
  newId: () => string = () => newRequestId('backup'),
): { parameters: ClusterParameters; id: string } {
  const previous = (current.backup_now as { id?: unknown } | undefined)?.id;
  let id = newId();
  for (let i = 0; i < 10 && id === previous; i += 1) id = newId();
  if (id === previous) throw new HoxError('HOX_INTERNAL', `could not make a backup request id other than '${id}'`);
  return { parameters: { ...current, backup_now: { id } }, id };
}

/**
 * `--time` as the release takes it: any date `new Date()` parses, normalised to ISO 8601 in UTC
 * (a time without a zone is local time). Refused when it does not parse or lies after `nowMs`.
 */
export function parseTargetTime(input: string, nowMs: number): { iso: string; ms: number } {
  const ms = input.trim() === '' ? Number.NaN : new Date(input.trim()).getTime();
  if (Number.isNaN(ms))
    throw new HoxError(
      'HOX_BAD_REQUEST',
      `--time '${input}' is not a date: give an ISO 8601 date-time such as 2026-11-27T10:00:00Z`,
      { field: '--time' },
    );
  const iso = new Date(ms).toISOString();
  if (ms > nowMs)
    throw new HoxError(
      'HOX_BAD_REQUEST',
      `--time ${iso} is in the future (it is now ${new Date(nowMs).toISOString()}): a restore replays archived WAL, which ends at the last archived transaction`,
      { field: '--time' },
    );
  return { iso, ms };
}

/** `--time` of a restore: absent or `latest` is the end of the archived WAL (null); else as {@link parseTargetTime}. */
export function parseRestoreTarget(input: string | null, nowMs: number): { iso: string; ms: number } | null {
  if (input === null || input.trim().toLowerCase() === 'latest') return null;
  return parseTargetTime(input, nowMs);
}

/** The start time (ms) a backup id stands for; refuses ids that are not `YYYYMMDDTHHMMSSZ` dates. */
export function backupIdTime(id: string): number {
  const m = BACKUP_ID.exec(id);
  const iso = m === null ? '' : `${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}.000Z`;
  const ms = Date.parse(iso);
  // Date.parse rolls some impossible dates over (Feb 30): the round trip catches them.
  if (m === null || Number.isNaN(ms) || new Date(ms).toISOString() !== iso)
    throw new HoxError(
      'HOX_BAD_REQUEST',
      `--backup '${id}' is not a backup id: backups are named after their start time in UTC, like 20261127T231500Z (hox db status shows the last one)`,
      { field: '--backup' },
    );
  return ms;
}

/** What a restore needs from its source: the read-only backup API it published. */
export interface BackupSource {
  name: string;
  backupUrl: string;
  backupToken: string;
  /** The source's CA (its published `ca_cert`): its backup API's certificate chains to it. */
  ca: string | null;
  backups: BackupsView;
}

/**
 * The source's backup API and backups, from its published connection parameters; refused with the
 * reason when it publishes no backup API or has no base backup yet.
 */
export function backupSource(
  name: string,
  published: Readonly<Record<string, unknown>>,
  backups: BackupsView | null,
): BackupSource {
  const { backup_url: backupUrl, backup_token: backupToken } = published;
  if (typeof backupUrl !== 'string' || typeof backupToken !== 'string')
    throw new HoxError(
      'HOX_CONFLICT',
      `cluster '${name}' publishes no backup_url and backup_token: its root has not published yet, or it runs a hyper_db without backups`,
    );
  if (backups === null)
    throw new HoxError(
      'HOX_CONFLICT',
      `cluster '${name}' has published no backups yet (its router has not started): see hox db status ${name}`,
    );
  if (backups.count === 0)
    throw new HoxError(
      'HOX_CONFLICT',
      `cluster '${name}' has no base backup yet: its first one is taken once it has a primary; or run hox db backup ${name}${backups.error === null ? '' : ` (last error: ${backups.error})`}`,
    );
  const ca = typeof published.ca_cert === 'string' ? published.ca_cert : null;
  return { name, backupUrl, backupToken, ca, backups };
}

/**
 * Refuses a target time that cannot come after the base backup the restore would start from: the
 * backup named by `--backup` (its finish time when it is the last one, else its start time), or the
 * source's only backup. With several backups and none named, the keeper picks the newest one
 * finished before the target, which only it can see.
 */
export function assertTargetAfterBackup(source: BackupSource, targetMs: number, backup: string | null): void {
  const last = source.backups.last;
  const after = (ms: number, what: string): void => {
    if (targetMs <= ms)
      throw new HoxError(
        'HOX_BAD_REQUEST',
        `--time ${new Date(targetMs).toISOString()} is not after ${what} (${new Date(ms).toISOString()}): a restore replays WAL forward from its base backup, so the target must come after it`,
        { field: '--time' },
      );
  };
  const lastFinished = last?.finishedAt == null ? Number.NaN : Date.parse(last.finishedAt);
  if (backup !== null) {
    if (last?.id === backup && !Number.isNaN(lastFinished)) return after(lastFinished, `the end of backup ${backup}`);
    return after(backupIdTime(backup), `the start of backup ${backup}`);
  }
  if (source.backups.count === 1 && last !== null && !Number.isNaN(lastFinished))
    after(lastFinished, `the end of ${source.name}'s only base backup ${last.id}`);
}

/**
 * A warning when the target is so recent that its WAL may not have reached the archive yet (at most
 * `archiveTimeoutS` after a commit): PostgreSQL refuses a target past the archive's end.
 */
export function recentTargetWarning(targetMs: number, nowMs: number, archiveTimeoutS: number): string | null {
  const ageS = (nowMs - targetMs) / 1000;
  if (ageS >= archiveTimeoutS) return null;
  return `--time is ${Math.max(0, Math.floor(ageS))} s ago and WAL may take up to ${archiveTimeoutS} s (wal_archive_timeout_s) to reach the archive: if it has not, the restore cannot reach the target`;
}

export interface RestoreOptions {
  /** ISO 8601; null: the end of the archived WAL (latest). */
  targetTime: string | null;
  backup: string | null;
  members?: number;
}

/** Parameters of the new cluster: the restore request, and `members` when given (release default otherwise). */
export function restoreParameters(source: BackupSource, options: RestoreOptions): ClusterParameters {
  const members = options.members;
  if (members !== undefined && (!Number.isInteger(members) || members < 1 || members > MAX_MEMBERS))
    throw new HoxError('HOX_BAD_REQUEST', `--members must be an integer from 1 to ${MAX_MEMBERS}, not '${members}'`, {
      field: '--members',
    });
  if (options.backup !== null) backupIdTime(options.backup);
  return {
    ...(members === undefined ? {} : { members }),
    restore: {
      backup_url: source.backupUrl,
      backup_token: source.backupToken,
      ...(source.ca === null ? {} : { backup_ca: source.ca }),
      ...(options.targetTime === null ? {} : { target_time: options.targetTime }),
      ...(options.backup === null ? {} : { backup: options.backup }),
    },
  };
}
