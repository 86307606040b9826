/**
 * What a hyper_db cluster publishes about its backups (the router's
 * `backups` key: count, last, age_s, wal_files, error, request, list — the
 * newest 50 base backups — and wal — the archived WAL range), read
 * defensively, and how `hox db status|backups|backup|restore` show it. Pure:
 * published values in, lines out.
 */
import { formatBytes } from '../../shared/bytes.js';
import type { EventView } from './cluster-view.js';

export interface BackupRequestView {
  id: string;
  /** running, done or failed. */
  result: string;
  /** The backup taken, once done. */
  backup: string | null;
  error: string | null;
}

export interface LastBackupView {
  id: string;
  finishedAt: string | null;
  bytes: number | null;
  verified: boolean;
}

/** One base backup of the published list. */
export interface BackupEntryView {
  id: string;
  startedAt: string | null;
  /** When it was complete: a restore can start from it for targets after this. */
  finishedAt: string | null;
  member: string | null;
  bytes: number | null;
  verified: boolean;
}

/** The archived WAL: its first and last segment, and when the last one was archived. */
export interface WalRangeView {
  segments: number | null;
  first: string;
  last: string;
  lastArchivedAt: string | null;
}

export interface BackupsView {
  count: number;
  last: LastBackupView | null;
  /** The newest base backups, newest last (null when the router does not publish the list: an older one). */
  list: BackupEntryView[] | null;
  /** The archived WAL (null when none is archived yet, or the router does not say). */
  wal: WalRangeView | null;
  /** Age of the last backup in seconds, as published (the router rounds it down to the minute). */
  ageS: number | null;
  walFiles: number | null;
  error: string | null;
  /** The last `backup_now` request the router took up. */
  request: BackupRequestView | null;
}

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);
const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

function readRequest(v: unknown): BackupRequestView | null {
  if (!isObject(v) || typeof v.id !== 'string' || typeof v.result !== 'string') return null;
  return { id: v.id, result: v.result, backup: str(v.backup), error: str(v.error) };
}

function readLast(v: unknown): LastBackupView | null {
  if (!isObject(v) || typeof v.id !== 'string') return null;
  return { id: v.id, finishedAt: str(v.finished_at), bytes: num(v.bytes), verified: v.verified === true };
}

function readEntry(v: unknown): BackupEntryView | null {
  if (!isObject(v) || typeof v.id !== 'string') return null;
  return {
    id: v.id,
    startedAt: str(v.started_at),
    finishedAt: str(v.finished_at),
    member: str(v.member),
    bytes: num(v.bytes),
    verified: v.verified === true,
  };
}

function readWal(v: unknown): WalRangeView | null {
  if (!isObject(v) || typeof v.first !== 'string' || typeof v.last !== 'string') return null;
  return { segments: num(v.segments), first: v.first, last: v.last, lastArchivedAt: str(v.last_archived_at) };
}

/** The published `backups`, or null when the cluster does not publish them (router not running yet). */
export function readBackupsView(published: Json): BackupsView | null {
  const b = published.backups;
  if (!isObject(b)) return null;
  return {
    count: num(b.count) ?? 0,
    last: readLast(b.last),
    list: Array.isArray(b.list) ? b.list.map(readEntry).filter((e): e is BackupEntryView => e !== null) : null,
    wal: readWal(b.wal),
    ageS: num(b.age_s),
    walFiles: num(b.wal_files),
    error: str(b.error),
    request: readRequest(b.request),
  };
}

/** `under a minute`, `12 min`, `2 h 5 min`, `3 d 4 h`. */
export function humanAge(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  if (s < 60) return 'under a minute';
  const minutes = Math.floor(s / 60) % 60;
  const hours = Math.floor(s / 3600) % 24;
  const days = Math.floor(s / 86400);
  if (days > 0) return hours === 0 ? `${days} d` : `${days} d ${hours} h`;
  if (hours > 0) return minutes === 0 ? `${hours} h` : `${hours} h ${minutes} min`;
  return `${minutes} min`;
}

export function describeBackupRequest(r: BackupRequestView): string {
  const backup = r.backup === null ? '' : ` (backup ${r.backup})`;
  return `${r.id} ${r.result}${backup}${r.error === null ? '' : `: ${r.error}`}`;
}

/** `20261127T231500Z (48.2 MiB, verified, 2 h ago)`. */
function describeLast(last: LastBackupView, ageS: number | null): string {
  const parts = [
    ...(last.bytes === null ? [] : [formatBytes(last.bytes)]),
    last.verified ? 'verified' : 'not verified',
    ...(ageS === null ? [] : [`${humanAge(ageS)} ago`]),
  ];
  return `${last.id} (${parts.join(', ')})`;
}

/** The Backups lines of `hox db status` (aligned with `last failover:`); none when nothing is published. */
export function formatBackups(view: BackupsView | null): string[] {
  if (view === null) return [];
  const label = (name: string): string => `  ${`${name}:`.padEnd(17)}`;
  const what =
    view.count === 0
      ? 'none yet'
      : `${view.count}${view.last === null ? '' : `, last ${describeLast(view.last, view.ageS)}`}`;
  const wal = view.walFiles === null ? '' : `; ${view.walFiles} WAL file${view.walFiles === 1 ? '' : 's'} archived`;
  const lines = [`${label('backups')}${what}${wal}`];
  if (view.error !== null) lines.push(`${label('backup error')}${view.error}`);
  if (view.request !== null) lines.push(`${label('backup request')}${describeBackupRequest(view.request)}`);
  return lines;
}

/** Base backups as an indented table, one line each (the live cluster's and a destroyed one's retained set). */
export function formatBackupTable(
  list: readonly Pick<BackupEntryView, 'id' | 'finishedAt' | 'member' | 'bytes' | 'verified'>[],
): string[] {
  const rows = [
    ['ID', 'TAKEN AT (finished)', 'MEMBER', 'SIZE', 'VERIFIED'],
    ...list.map((b) => [
      b.id,
      b.finishedAt ?? '?',
      b.member ?? '?',
      b.bytes === null ? '?' : formatBytes(b.bytes),
      b.verified ? 'yes' : 'NO',
    ]),
  ];
  const widths = [0, 1, 2, 3].map((i) => Math.max(...rows.map((r) => r[i]?.length ?? 0)));
  return rows.map((r) => `  ${r.map((c, i) => (i < widths.length ? c.padEnd(widths[i] ?? 0) : c)).join('  ')}`);
}

/**
 * `hox db backups NAME`: the base backups, newest last, then the archived WAL range and how to restore.
 * `nowMs` gives the ages.
 */
export function formatBackupList(name: string, view: BackupsView | null, nowMs: number): string[] {
  if (view === null)
    return [`${name}: no backups published yet (its router has not started): see hox db status ${name}`];
  const ago = (iso: string | null): string => {
    const ms = iso === null ? Number.NaN : Date.parse(iso);
    return Number.isNaN(ms) ? '' : ` (${humanAge((nowMs - ms) / 1000)} ago)`;
  };
  const lines: string[] = [];
  const list = view.list ?? (view.last === null ? [] : [{ ...view.last, startedAt: null, member: null }]);
  if (view.count === 0) lines.push(`${name}: no base backup yet (the first is taken once there is a primary)`);
  else {
    const shown = list.length < view.count ? `, the newest ${list.length} shown` : '';
    lines.push(`${name}: ${view.count} base backup${view.count === 1 ? '' : 's'}${shown}, newest last`);
    lines.push(...formatBackupTable(list));
  }
  const wal = view.wal;
  if (wal === null)
    lines.push(
      `archived WAL: ${view.walFiles === null || view.walFiles === 0 ? 'none yet' : `${view.walFiles} file(s)`}`,
    );
  else {
    const count = wal.segments === null ? '' : `${wal.segments} segment${wal.segments === 1 ? '' : 's'}, `;
    const at = wal.lastArchivedAt === null ? '' : `; last archived ${wal.lastArchivedAt}${ago(wal.lastArchivedAt)}`;
    lines.push(`archived WAL: ${count}${wal.first} … ${wal.last}${at}`);
  }
  if (view.error !== null) lines.push(`last backup error: ${view.error}`);
  const oldest = list[0];
  if (oldest !== undefined)
    lines.push(
      `restore: hox db restore NEW --from ${name} (latest) or --time T (after ${oldest.finishedAt ?? oldest.id}, before the last archived transaction)`,
    );
  return lines;
}

/** Progress of `hox db backup` while request `id` is not finished. */
export function backupProgress(id: string, backups: BackupsView | null, primary: string | null): string {
  if (backups === null) return 'waiting for the router to publish its backups';
  if (backups.request?.id === id) return `backup ${id} running: pg_basebackup from the primary, then pg_verifybackup`;
  if (primary === null) return 'waiting for a primary: base backups are taken from it';
  return `waiting for the router to start backup ${id} (after any backup already running)`;
}

/** What `hox db backup` prints once request `request` is finished; `ok` is false when it failed. */
export function formatBackupResult(
  name: string,
  request: BackupRequestView,
  backups: BackupsView,
  elapsedMs: number,
): { ok: boolean; lines: string[] } {
  if (request.result !== 'done' || request.backup === null)
    return {
      ok: false,
      lines: [`backup ${request.id} of cluster '${name}' failed: ${request.error ?? `result '${request.result}'`}`],
    };
  const last = backups.last?.id === request.backup ? backups.last : null;
  const size =
    last === null
      ? 'size not published (a newer backup followed)'
      : `${last.bytes === null ? 'size unknown' : formatBytes(last.bytes)} (${last.verified ? 'verified' : 'NOT verified'})`;
  return {
    ok: true,
    lines: [
      `${name}: backup ${request.backup} done: ${size}; ${(elapsedMs / 1000).toFixed(1)} s from request to result`,
      `  restore from it: hox db restore NEW --from ${name} --backup ${request.backup} --time <a later time>`,
    ],
  };
}

/**
 * How long the restore took, from the newest `restore` event with a `total` (its `baseBackup` part from
 * the restore event before it); null when the members have published none.
 */
export function restoreDuration(events: readonly EventView[]): { totalMs: number; baseBackupMs: number | null } | null {
  const restores = events.filter((e) => e.kind === 'restore');
  for (let i = restores.length - 1; i >= 0; i -= 1) {
    const totalMs = restores[i]?.timings.total;
    if (totalMs === undefined) continue;
    const base = restores
      .slice(0, i)
      .reverse()
      .find((e) => e.timings.baseBackup !== undefined);
    return { totalMs, baseBackupMs: base?.timings.baseBackup ?? null };
  }
  return null;
}

/** Where a finished restore stopped, from the newest published restore event that says (`recovered_to`). */
export function restoredPoint(published: Json): { lsn: string | null; lastTransactionAt: string | null } | null {
  const events = Array.isArray(published.events) ? published.events : [];
  for (let i = events.length - 1; i >= 0; i -= 1) {
    const e: unknown = events[i];
    if (!isObject(e) || e.kind !== 'restore' || !isObject(e.recovered_to)) continue;
    return { lsn: str(e.recovered_to.lsn), lastTransactionAt: str(e.recovered_to.last_transaction_at) };
  }
  return null;
}

/** `last replayed transaction committed at 2026-…Z (LSN 0/3000148)`. */
export function describeRestoredPoint(point: { lsn: string | null; lastTransactionAt: string | null } | null): string {
  if (point === null) return 'the restored point was not published (an older hyper_db)';
  const lsn = point.lsn === null ? '' : ` (LSN ${point.lsn})`;
  return point.lastTransactionAt === null
    ? `no transaction replayed after the base backup${lsn}`
    : `last replayed transaction committed at ${point.lastTransactionAt}${lsn}`;
}

/** The newest restore event as a progress hint (`member-1: base backup … restored; replaying WAL to …`). */
export function restoreProgress(events: readonly EventView[]): string | null {
  const last = [...events].reverse().find((e) => e.kind === 'restore');
  return last === undefined ? null : `${last.member}: ${last.detail}`;
}

const seconds = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;

/** `restore took 5.2 s (base backup 1.1 s, then WAL replay and promotion)`. */
export function describeRestoreDuration(
  measured: { totalMs: number; baseBackupMs: number | null } | null,
  wallMs: number,
): string {
  if (measured === null)
    return `restore took about ${seconds(wallMs)} (request to ready; the members published no timing)`;
  const base =
    measured.baseBackupMs === null
      ? ''
      : ` (base backup ${seconds(measured.baseBackupMs)}, then WAL replay and promotion)`;
  return `restore took ${seconds(measured.totalMs)}${base}; ${seconds(wallMs)} from request to ready`;
}
