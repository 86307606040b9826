/** Reading the published backups, the Backups lines of `hox db status`, and what backup/restore print. */
import { formatBytes } from '../../shared/bytes.js';
import { describe, expect, it } from 'vitest';
import {
  backupProgress,
  describeRestoreDuration,
  describeRestoredPoint,
  formatBackupList,
  formatBackupResult,
  formatBackups,
  humanAge,
  readBackupsView,
  restoreDuration,
  restoreProgress,
  restoredPoint,
} from './backup-view.js';
import { formatClusterStatus, readClusterView, type EventView } from './cluster-view.js';

/** The master's facts about a healthy cluster's tree. */
const OK = { health: 'ok', healthMessage: null, reportedAgeMs: 3000 };

const backups = {
  count: 3,
  last: { id: '20261127T231500Z', finished_at: '2026-11-27T23:16:40.000Z', bytes: 50_593_792, verified: true },
  age_s: 7500,
  wal_files: 1,
  error: null,
  request: { id: 'backup-0123456789abcdef', result: 'done', backup: '20261127T231500Z' },
};

describe('readBackupsView', () => {
  it('reads what the router publishes', () => {
    expect(readBackupsView({ backups })).toEqual({
      count: 3,
      last: { id: '20261127T231500Z', finishedAt: '2026-11-27T23:16:40.000Z', bytes: 50_593_792, verified: true },
      ageS: 7500,
      walFiles: 1,
      error: null,
      request: { id: 'backup-0123456789abcdef', result: 'done', backup: '20261127T231500Z', error: null },
      list: null,
      wal: null,
    });
  });

  it('is null when nothing is published, and ignores malformed parts', () => {
    expect(readBackupsView({})).toBeNull();
    expect(readBackupsView({ backups: [] })).toBeNull();
    expect(readBackupsView({ backups: { count: 'x', last: { bytes: 1 }, request: { id: 5 } } })).toEqual({
      count: 0,
      last: null,
      ageS: null,
      walFiles: null,
      error: null,
      request: null,
      list: null,
      wal: null,
    });
  });
});

describe('hox db backups', () => {
  const NOW = Date.parse('2026-11-28T01:00:00.000Z');
  const published = {
    backups: {
      ...backups,
      count: 51,
      list: [
        {
          id: '20261127T000000Z',
          started_at: '2026-11-27T00:00:00.000Z',
          finished_at: '2026-11-27T00:01:10.000Z',
          member: 'member-2',
          bytes: 1536,
          verified: true,
        },
        {
          id: '20261127T231500Z',
          finished_at: '2026-11-27T23:16:40.000Z',
          member: 'member-1',
          bytes: 50_593_792,
          verified: true,
        },
        { bytes: 3 },
      ],
      wal: {
        segments: 12,
        first: '000000010000000000000001',
        last: '00000002000000000000000C',
        last_archived_at: '2026-11-28T00:58:00.000Z',
      },
    },
  };

  it('reads the published list (malformed entries left out) and the WAL range', () => {
    const view = readBackupsView(published);
    expect(view?.list).toEqual([
      {
        id: '20261127T000000Z',
        startedAt: '2026-11-27T00:00:00.000Z',
        finishedAt: '2026-11-27T00:01:10.000Z',
        member: 'member-2',
        bytes: 1536,
        verified: true,
      },
      {
        id: '20261127T231500Z',
        startedAt: null,
        finishedAt: '2026-11-27T23:16:40.000Z',
        member: 'member-1',
        bytes: 50_593_792,
        verified: true,
      },
    ]);
    expect(view?.wal).toEqual({
      segments: 12,
      first: '000000010000000000000001',
      last: '00000002000000000000000C',
      lastArchivedAt: '2026-11-28T00:58:00.000Z',
    });
  });

  it('prints the backups newest last, the WAL range and how to restore', () => {
    expect(formatBackupList('crm-db', readBackupsView(published), NOW)).toEqual([
      'crm-db: 51 base backups, the newest 2 shown, newest last',
      '  ID                TAKEN AT (finished)       MEMBER    SIZE      VERIFIED',
      '  20261127T000000Z  2026-11-27T00:01:10.000Z  member-2  1.5 KiB   yes',
      '  20261127T231500Z  2026-11-27T23:16:40.000Z  member-1  48.3 MiB  yes',
      'archived WAL: 12 segments, 000000010000000000000001 … 00000002000000000000000C; last archived 2026-11-28T00:58:00.000Z (2 min ago)',
      'restore: hox db restore NEW --from crm-db (latest) or --time T (after 2026-11-27T00:01:10.000Z, before the last archived transaction)',
    ]);
  });

  it('says when there is nothing yet, and falls back to the last backup for an older router', () => {
    expect(formatBackupList('x', null, NOW)).toEqual([
      'x: no backups published yet (its router has not started): see hox db status x',
    ]);
    expect(
      formatBackupList(
        'x',
        readBackupsView({ backups: { count: 0, wal_files: 0, error: 'base backup failed: boom' } }),
        NOW,
      ),
    ).toEqual([
      'x: no base backup yet (the first is taken once there is a primary)',
      'archived WAL: none yet',
      'last backup error: base backup failed: boom',
    ]);
    const older = formatBackupList('x', readBackupsView({ backups: { ...backups, count: 1 } }), NOW);
    expect(older[0]).toBe('x: 1 base backup, newest last');
    expect(older[2]).toBe('  20261127T231500Z  2026-11-27T23:16:40.000Z  ?       48.3 MiB  yes');
    expect(older[3]).toBe('archived WAL: 1 file(s)');
  });
});

describe('human units', () => {
  it('sizes in binary units', () => {
    expect(formatBytes(0)).toBe('0 B');
    expect(formatBytes(1023)).toBe('1023 B');
    expect(formatBytes(1536)).toBe('1.5 KiB');
    expect(formatBytes(50_593_792)).toBe('48.3 MiB');
    expect(formatBytes(5 * 1024 ** 4)).toBe('5 TiB');
    expect(formatBytes(3 * 1024 ** 5)).toBe('3072 TiB');
  });

  it('ages from seconds', () => {
    expect(humanAge(0)).toBe('under a minute');
    expect(humanAge(59)).toBe('under a minute');
    expect(humanAge(60)).toBe('1 min');
    expect(humanAge(3600)).toBe('1 h');
    expect(humanAge(7500)).toBe('2 h 5 min');
    expect(humanAge(86400 * 3 + 3600 * 4 + 59)).toBe('3 d 4 h');
    expect(humanAge(86400)).toBe('1 d');
  });
});

describe('formatBackups', () => {
  it('shows count, last id, size, verified, age and archived WAL files', () => {
    expect(formatBackups(readBackupsView({ backups }))).toEqual([
      '  backups:         3, last 20261127T231500Z (48.3 MiB, verified, 2 h 5 min ago); 1 WAL file archived',
      '  backup request:  backup-0123456789abcdef done (backup 20261127T231500Z)',
    ]);
  });

  it('says none yet, and shows the last error and a failed request', () => {
    const view = readBackupsView({
      backups: {
        count: 0,
        last: null,
        age_s: null,
        wal_files: 12,
        error: 'base backup failed: connection refused',
        request: { id: 'backup-1', result: 'failed', error: 'base backup failed: connection refused' },
      },
    });
    expect(formatBackups(view)).toEqual([
      '  backups:         none yet; 12 WAL files archived',
      '  backup error:    base backup failed: connection refused',
      '  backup request:  backup-1 failed: base backup failed: connection refused',
    ]);
    expect(formatBackups(null)).toEqual([]);
  });

  it('is part of hox db status, aligned with the other summary lines', () => {
    const lines = formatClusterStatus(
      'crm-db',
      OK,
      readClusterView({ members_expected: 1, primary: 'member-1', members: [], backups }),
    );
    const last = lines.findIndex((l) => l.startsWith('  last switchover:'));
    expect(lines[last + 1]).toBe(
      '  backups:         3, last 20261127T231500Z (48.3 MiB, verified, 2 h 5 min ago); 1 WAL file archived',
    );
    expect(lines[last + 1]?.indexOf('3,')).toBe(lines[last]?.indexOf('none'));
    expect(formatClusterStatus('crm-db', OK, readClusterView({})).join('\n')).not.toContain('backups:');
  });
});

describe('backupProgress', () => {
  const view = readBackupsView({ backups: { ...backups, request: null } });

  it('says what the backup waits for', () => {
    expect(backupProgress('b-1', null, 'member-1')).toBe('waiting for the router to publish its backups');
    expect(backupProgress('b-1', view, null)).toBe('waiting for a primary: base backups are taken from it');
    expect(backupProgress('b-1', view, 'member-1')).toContain('waiting for the router to start backup b-1');
    const running = readBackupsView({ backups: { ...backups, request: { id: 'b-1', result: 'running' } } });
    expect(backupProgress('b-1', running, 'member-1')).toBe(
      'backup b-1 running: pg_basebackup from the primary, then pg_verifybackup',
    );
  });
});

describe('formatBackupResult', () => {
  const view = readBackupsView({ backups })!;

  it('prints the backup taken, its size and whether it was verified', () => {
    const out = formatBackupResult('crm-db', view.request!, view, 12_345);
    expect(out.ok).toBe(true);
    expect(out.lines[0]).toBe(
      'crm-db: backup 20261127T231500Z done: 48.3 MiB (verified); 12.3 s from request to result',
    );
    expect(out.lines[1]).toContain('hox db restore NEW --from crm-db --backup 20261127T231500Z');
  });

  it('does not claim a size it does not know', () => {
    const request = { id: 'b-2', result: 'done', backup: '20261127T220000Z', error: null };
    expect(formatBackupResult('crm-db', request, view, 1000).lines[0]).toContain(
      'backup 20261127T220000Z done: size not published',
    );
  });

  it('fails with the error the router published', () => {
    const request = { id: 'b-3', result: 'failed', backup: null, error: 'base backup failed: disk full' };
    expect(formatBackupResult('crm-db', request, view, 1000)).toEqual({
      ok: false,
      lines: ["backup b-3 of cluster 'crm-db' failed: base backup failed: disk full"],
    });
  });
});

const event = (kind: string, detail: string, timings: Record<string, number>, at: string): EventView => ({
  at,
  member: 'member-1',
  kind,
  term: 1,
  detail,
  timings,
});

describe('restore duration', () => {
  const base = event(
    'restore',
    'base backup 20261127T231500Z restored; replaying WAL to 2026-11-27T23:30:00.000Z',
    { baseBackup: 1100 },
    '2026-11-28T10:00:01Z',
  );
  const done = event('restore', 'restore complete: promoted at the target', { total: 5230 }, '2026-11-28T10:00:05Z');
  const promoted = event('failover', 'elected', { total: 40 }, '2026-11-28T10:00:06Z');

  it('comes from the newest restore event with a total, its base backup part from the one before', () => {
    expect(restoreDuration([base, done, promoted])).toEqual({ totalMs: 5230, baseBackupMs: 1100 });
    expect(restoreDuration([done])).toEqual({ totalMs: 5230, baseBackupMs: null });
    expect(restoreDuration([base, promoted])).toBeNull();
    expect(describeRestoreDuration(restoreDuration([base, done]), 9000)).toBe(
      'restore took 5.2 s (base backup 1.1 s, then WAL replay and promotion); 9.0 s from request to ready',
    );
  });

  it('falls back to wall time when no restore timing was published', () => {
    expect(describeRestoreDuration(null, 12_340)).toBe(
      'restore took about 12.3 s (request to ready; the members published no timing)',
    );
  });

  it('shows the newest restore event as progress', () => {
    expect(restoreProgress([promoted])).toBeNull();
    expect(restoreProgress([base, promoted])).toBe(
      'member-1: base backup 20261127T231500Z restored; replaying WAL to 2026-11-27T23:30:00.000Z',
    );
  });
});

describe('the point a restore reached', () => {
  it('reads it from the newest restore event that says, and says it', () => {
    const events = [
      { kind: 'restore', member: 'member-1', recovered_to: { lsn: '0/1000000', last_transaction_at: null } },
      {
        kind: 'restore',
        member: 'member-1',
        recovered_to: { lsn: '0/3000148', last_transaction_at: '2026-11-27T10:00:01.250Z' },
      },
      { kind: 'bootstrap', member: 'member-1', recovered_to: { lsn: 'x' } },
      { kind: 'restore', member: 'member-1', detail: 'no point' },
    ];
    const point = restoredPoint({ events });
    expect(point).toEqual({ lsn: '0/3000148', lastTransactionAt: '2026-11-27T10:00:01.250Z' });
    expect(describeRestoredPoint(point)).toBe(
      'last replayed transaction committed at 2026-11-27T10:00:01.250Z (LSN 0/3000148)',
    );
    expect(describeRestoredPoint(restoredPoint({ events: events.slice(0, 1) }))).toBe(
      'no transaction replayed after the base backup (LSN 0/1000000)',
    );
    expect(restoredPoint({ events: 'x' })).toBeNull();
    expect(describeRestoredPoint(null)).toBe('the restored point was not published (an older hyper_db)');
  });
});
