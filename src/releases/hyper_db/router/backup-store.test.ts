/** What the router publishes about its backup location: the archived WAL range and the newest backups. */
import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { BackupStore, RECENT_BACKUPS, walRange } from './backup-store.js';

describe('the backup location as published', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });
  const tmp = (): string => {
    const d = mkdtempSync(join(tmpdir(), 'hox-backup-store-'));
    dirs.push(d);
    return d;
  };

  it('gives the first and last archived segment (history and backup labels aside) and when the last arrived', () => {
    const wal = tmp();
    const names = [
      '000000010000000000000003',
      '00000002.history',
      '000000010000000000000002.00000028.backup',
      '000000020000000000000004',
      '000000010000000000000002',
    ];
    for (const n of names) writeFileSync(join(wal, n), '');
    const at = new Date('2026-11-27T10:00:00.000Z');
    utimesSync(join(wal, '000000020000000000000004'), at, at);
    expect(walRange(wal, names)).toEqual({
      segments: 3,
      first: '000000010000000000000002',
      last: '000000020000000000000004',
      lastArchivedAt: '2026-11-27T10:00:00.000Z',
    });
    expect(walRange(wal, ['00000002.history'])).toBeNull();
    expect(walRange(wal, [])).toBeNull();
  });

  it(`publishes the newest ${RECENT_BACKUPS} base backups, newest last, and the WAL range`, () => {
    const partition = tmp();
    const store = new BackupStore({ partitionPath: partition } as ConstructorParameters<typeof BackupStore>[0]);
    const base = join(partition, 'backups', 'base');
    const ids = Array.from({ length: RECENT_BACKUPS + 2 }, (_, i) => `202611${String(i + 1).padStart(2, '0')}T000000Z`);
    for (const id of ids) {
      mkdirSync(join(base, id), { recursive: true });
      const info = {
        id,
        startedAt: '',
        finishedAt: new Date().toISOString(),
        member: 'member-1',
        bytes: 1,
        verified: true,
      };
      writeFileSync(join(base, id, 'hyper_db-backup.json'), JSON.stringify(info));
    }
    mkdirSync(join(base, '20261231T000000Z.tmp'));
    mkdirSync(join(partition, 'backups', 'wal'));
    writeFileSync(join(partition, 'backups', 'wal', '000000010000000000000001'), '');
    const status = store.status();
    expect(status.count).toBe(RECENT_BACKUPS + 2);
    expect(status.recent.map((b) => b.id)).toEqual(ids.slice(-RECENT_BACKUPS));
    expect(status.last?.id).toBe(ids.at(-1));
    expect(status.walFiles).toBe(1);
    expect(status.wal).toMatchObject({
      segments: 1,
      first: '000000010000000000000001',
      last: '000000010000000000000001',
    });
  });
});
