import { describe, expect, it } from 'vitest';
import { formatRetainedBackups, retainedBackups, type RetainedSetView } from './retained-backups-view.js';

const set = (catalog: Record<string, unknown>[]): RetainedSetView => ({
  instance_guid: 'SOFTINST-1',
  title: 'old-db',
  instance_title: 'old-db',
  owner: 'alice',
  software_release_uri: 'hyper_db',
  software_type: 'cluster',
  computer_guid: 'n1',
  destroyed_at: '2026-12-01T10:00:00.000Z',
  expires_at: '2026-12-08T10:00:00.000Z',
  path_list: [{ path: 'backups', kind: 'hyper_db-backups', bytes: 3 * 1024 * 1024, catalog }],
});

describe('retained backups view', () => {
  it('reads the catalog (the router’s hyper_db-backup.json) newest last, skipping what is not a backup', () => {
    const view = set([
      {
        id: '20261130T000000Z',
        finishedAt: '2026-11-30T00:00:05.000Z',
        member: 'member-1',
        bytes: 100,
        verified: true,
      },
      { nonsense: true },
      { id: '20261129T000000Z', bytes: 'x', verified: false },
    ]);
    expect(retainedBackups(view)).toEqual([
      { id: '20261129T000000Z', finishedAt: null, member: null, bytes: null, verified: false },
      {
        id: '20261130T000000Z',
        finishedAt: '2026-11-30T00:00:05.000Z',
        member: 'member-1',
        bytes: 100,
        verified: true,
      },
    ]);
  });

  it('says the cluster is destroyed, where its backups are kept and until when, then lists them', () => {
    const now = Date.parse('2026-12-02T10:00:00.000Z');
    const lines = formatRetainedBackups(
      'old-db',
      [
        set([
          {
            id: '20261130T000000Z',
            finishedAt: '2026-11-30T00:00:05.000Z',
            member: 'member-1',
            bytes: 100,
            verified: true,
          },
        ]),
      ],
      now,
    );
    expect(lines[0]).toBe(
      "old-db: destroyed at 2026-12-01T10:00:00.000Z; its backups (3 MiB: base backups and archived WAL) are retained on compute node 'n1' until 2026-12-08T10:00:00.000Z (6 d left)",
    );
    expect(lines[1]).toMatch(/^ {2}ID +TAKEN AT \(finished\) +MEMBER +SIZE +VERIFIED$/);
    expect(lines[2]).toMatch(/^ {2}20261130T000000Z +2026-11-30T00:00:05.000Z +member-1 +100 B +yes$/);
    expect(lines.at(-1)).toMatch(/^restore: not yet from a destroyed cluster/);
    expect(formatRetainedBackups('old-db', [set([])], now)[1]).toBe(
      '  no base backup was taken before it was destroyed',
    );
  });
});
