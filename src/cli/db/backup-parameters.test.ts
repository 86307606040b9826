/** The parameters behind `hox db backup|restore` and the checks made before anything is requested. */
import { describe, expect, it } from 'vitest';
import { HoxError } from '../../shared/errors.js';
import { checkRestoreInput } from './backup-action.js';
import {
  assertTargetAfterBackup,
  backupIdTime,
  backupSource,
  parseTargetTime,
  recentTargetWarning,
  restoreParameters,
  withBackupNow,
} from './backup-parameters.js';
import { readBackupsView, type BackupsView } from './backup-view.js';

function refusal(run: () => unknown): HoxError {
  try {
    run();
  } catch (error) {
    if (error instanceof HoxError) return error;
    throw error;
  }
  throw new Error('expected a HoxError');
}

const NOW = Date.parse('2026-11-28T12:00:00.000Z');

const current = Object.freeze({
  members: 3,
  paused: true,
  switchover: { id: 'switchover-old', to: null },
  backup_now: { id: 'backup-old' },
});

describe('withBackupNow', () => {
  it('keeps every other parameter and sets backup_now to a fresh id', () => {
    const { parameters, id } = withBackupNow(current);
    expect(id).toMatch(/^backup-[0-9a-f]{16}$/);
    expect(id.length).toBeLessThanOrEqual(64);
    expect(parameters).toEqual({ ...current, backup_now: { id } });
    expect(current.backup_now.id).toBe('backup-old');
  });

  it('never reuses the id already requested (the router takes one backup per id)', () => {
    const queue = ['backup-old', 'backup-old', 'backup-new'];
    expect(withBackupNow(current, () => queue.shift()!).id).toBe('backup-new');
    expect(refusal(() => withBackupNow(current, () => 'backup-old')).code).toBe('HOX_INTERNAL');
    expect(withBackupNow({}).parameters).toHaveProperty('backup_now.id');
  });
});

describe('parseTargetTime', () => {
  it('normalises what Date parses to ISO 8601 in UTC', () => {
    expect(parseTargetTime('2026-11-27T10:00:00Z', NOW)).toEqual({
      iso: '2026-11-27T10:00:00.000Z',
      ms: Date.parse('2026-11-27T10:00:00Z'),
    });
    expect(parseTargetTime('2026-11-27T11:30:00+01:00', NOW).iso).toBe('2026-11-27T10:30:00.000Z');
    expect(parseTargetTime(' 2026-11-27 ', NOW).iso).toBe('2026-11-27T00:00:00.000Z');
  });

  it('refuses what is not a date, naming the flag and the value', () => {
    for (const bad of ['', '   ', 'yesterday', '2026-13-45T99:00:00Z', 'not-a-date']) {
      const error = refusal(() => parseTargetTime(bad, NOW));
      expect(error.code).toBe('HOX_BAD_REQUEST');
      expect(error.field).toBe('--time');
      expect(error.message).toContain(`--time '${bad}' is not a date`);
    }
  });

  it('refuses a time in the future, and accepts now', () => {
    const error = refusal(() => parseTargetTime('2026-11-28T12:00:01Z', NOW));
    expect(error.code).toBe('HOX_BAD_REQUEST');
    expect(error.message).toBe(
      '--time 2026-11-28T12:00:01.000Z is in the future (it is now 2026-11-28T12:00:00.000Z): a restore replays archived WAL, which ends at the last archived transaction',
    );
    expect(parseTargetTime('2026-11-28T12:00:00Z', NOW).ms).toBe(NOW);
  });
});

describe('checkRestoreInput', () => {
  const request = { from: 'crm-db', time: '2026-11-27T10:00:00Z', backup: null, wait: false, timeoutMs: 1 };

  it('refuses restoring a cluster into itself, and a bad time, before any call', () => {
    expect(refusal(() => checkRestoreInput('crm-db', request, NOW)).message).toContain(
      "give it a name other than its source 'crm-db'",
    );
    expect(refusal(() => checkRestoreInput('copy', { ...request, time: 'soon' }, NOW)).field).toBe('--time');
    expect(checkRestoreInput('copy', request, NOW)?.iso).toBe('2026-11-27T10:00:00.000Z');
  });

  it('takes no --time, or --time latest, as the end of the archived WAL', () => {
    expect(checkRestoreInput('copy', { ...request, time: null }, NOW)).toBeNull();
    expect(checkRestoreInput('copy', { ...request, time: 'latest' }, NOW)).toBeNull();
    expect(checkRestoreInput('copy', { ...request, time: ' LATEST ' }, NOW)).toBeNull();
    expect(refusal(() => checkRestoreInput('crm-db', { ...request, time: null }, NOW)).field).toBe('name');
    expect(refusal(() => checkRestoreInput('copy', { ...request, time: 'lastest' }, NOW)).field).toBe('--time');
  });
});

describe('backup ids', () => {
  it('reads the start time a backup id stands for', () => {
    expect(backupIdTime('20261127T231500Z')).toBe(Date.parse('2026-11-27T23:15:00Z'));
  });

  it('refuses what is not a backup id, or not a real date', () => {
    for (const bad of ['2026-11-27T23:15:00Z', '20261127T231500', '20260230T000000Z', '20261127T256000Z', 'latest']) {
      const error = refusal(() => backupIdTime(bad));
      expect(error.field).toBe('--backup');
      expect(error.message).toContain(`--backup '${bad}' is not a backup id`);
    }
  });
});

const published = {
  backup_url: 'http://127.0.1.1:20002',
  backup_token: 'b'.repeat(43),
  backups: {
    count: 2,
    last: { id: '20261127T231500Z', finished_at: '2026-11-27T23:16:40.000Z', bytes: 50_000_000, verified: true },
    age_s: 3600,
    wal_files: 120,
    error: null,
    request: null,
  },
};
const backupsOf = (p: Record<string, unknown>): BackupsView | null => readBackupsView(p);

describe('backupSource', () => {
  it('takes the published backup API and backups', () => {
    expect(backupSource('crm-db', published, backupsOf(published))).toMatchObject({
      name: 'crm-db',
      backupUrl: 'http://127.0.1.1:20002',
      backupToken: 'b'.repeat(43),
      backups: { count: 2 },
    });
  });

  it('refuses a source that publishes no backup API (not a hyper_db with backups, or not published yet)', () => {
    const error = refusal(() => backupSource('web', { url: 'http://x' }, null));
    expect(error.code).toBe('HOX_CONFLICT');
    expect(error.message).toContain("cluster 'web' publishes no backup_url and backup_token");
  });

  it('refuses a source with no base backup yet, saying how to get one and the last error', () => {
    const none = {
      ...published,
      backups: { ...published.backups, count: 0, last: null, error: 'base backup failed: x' },
    };
    const error = refusal(() => backupSource('crm-db', none, backupsOf(none)));
    expect(error.message).toBe(
      "cluster 'crm-db' has no base backup yet: its first one is taken once it has a primary; or run hox db backup crm-db (last error: base backup failed: x)",
    );
    const unpublished = { backup_url: published.backup_url, backup_token: published.backup_token };
    expect(refusal(() => backupSource('crm-db', unpublished, null)).message).toContain('has published no backups yet');
  });
});

describe('assertTargetAfterBackup', () => {
  const source = backupSource('crm-db', published, backupsOf(published));
  const at = (iso: string) => Date.parse(iso);

  it('with --backup the last one, the target must come after it finished', () => {
    expect(() => assertTargetAfterBackup(source, at('2026-11-27T23:17:00Z'), '20261127T231500Z')).not.toThrow();
    const error = refusal(() => assertTargetAfterBackup(source, at('2026-11-27T23:16:00Z'), '20261127T231500Z'));
    expect(error.field).toBe('--time');
    expect(error.message).toContain('is not after the end of backup 20261127T231500Z (2026-11-27T23:16:40.000Z)');
  });

  it('with --backup an older one, the target must come after it started', () => {
    expect(() => assertTargetAfterBackup(source, at('2026-11-26T00:00:01Z'), '20261126T000000Z')).not.toThrow();
    expect(
      refusal(() => assertTargetAfterBackup(source, at('2026-11-25T23:00:00Z'), '20261126T000000Z')).message,
    ).toContain('is not after the start of backup 20261126T000000Z');
    expect(refusal(() => assertTargetAfterBackup(source, at('2026-11-27T00:00:00Z'), 'nope')).field).toBe('--backup');
  });

  it('without --backup, refuses only what no backup can reach: a time before the only one', () => {
    // Two backups: an older one may precede the target; the keeper chooses.
    expect(() => assertTargetAfterBackup(source, at('2026-11-01T00:00:00Z'), null)).not.toThrow();
    const single = { ...published, backups: { ...published.backups, count: 1 } };
    const one = backupSource('crm-db', single, backupsOf(single));
    expect(refusal(() => assertTargetAfterBackup(one, at('2026-11-01T00:00:00Z'), null)).message).toContain(
      "is not after the end of crm-db's only base backup 20261127T231500Z",
    );
    expect(() => assertTargetAfterBackup(one, at('2026-11-28T00:00:00Z'), null)).not.toThrow();
  });
});

describe('recentTargetWarning', () => {
  it('warns while the target may not be archived yet, not after', () => {
    expect(recentTargetWarning(NOW - 10_000, NOW, 60)).toContain('--time is 10 s ago and WAL may take up to 60 s');
    expect(recentTargetWarning(NOW - 60_000, NOW, 60)).toBeNull();
    expect(recentTargetWarning(NOW - 10_000, NOW, 5)).toBeNull();
  });
});

describe('restoreParameters', () => {
  const source = backupSource('crm-db', published, backupsOf(published));

  it('asks for the restore with the source backup API, and members only when given', () => {
    expect(restoreParameters(source, { targetTime: '2026-11-27T23:30:00.000Z', backup: null })).toEqual({
      restore: {
        backup_url: 'http://127.0.1.1:20002',
        backup_token: 'b'.repeat(43),
        target_time: '2026-11-27T23:30:00.000Z',
      },
    });
    expect(
      restoreParameters(source, { targetTime: '2026-11-27T23:30:00.000Z', backup: '20261127T231500Z', members: 1 }),
    ).toEqual({
      members: 1,
      restore: {
        backup_url: 'http://127.0.1.1:20002',
        backup_token: 'b'.repeat(43),
        target_time: '2026-11-27T23:30:00.000Z',
        backup: '20261127T231500Z',
      },
    });
    // Latest: no target_time at all (the release replays the whole archive).
    expect(restoreParameters(source, { targetTime: null, backup: null })).toEqual({
      restore: { backup_url: 'http://127.0.1.1:20002', backup_token: 'b'.repeat(43) },
    });
  });

  it('refuses a member count the release does not take, and a malformed backup id', () => {
    for (const members of [0, 8, 1.5])
      expect(refusal(() => restoreParameters(source, { targetTime: 'x', backup: null, members })).field).toBe(
        '--members',
      );
    expect(refusal(() => restoreParameters(source, { targetTime: 'x', backup: 'last' })).field).toBe('--backup');
  });
});
