import {
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
  existsSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { RetainSpec } from '../release-kit/types.js';
import { RetainedStore, retainPathProblem, type RetainSource } from './retained-store.js';
import { retainedListReport, retainedSetReport } from './retained-report.js';

const DAY_MS = 86_400_000;
const catalogBytes = (id: string, bytes: number) => JSON.stringify({ id, bytes, verified: true }).length;
const SPECS: RetainSpec[] = [
  { path: 'backups', kind: 'hyper_db-backups', catalog: { dir: 'base', file: 'hyper_db-backup.json' } },
];

describe('RetainedStore', () => {
  let root: string;
  let partition: string;
  let nowMs: number;
  let lines: string[];
  const clock = { nowMs: () => nowMs };
  const store = (retentionMs = 7 * DAY_MS) =>
    new RetainedStore({ dir: join(root, 'retained'), retentionMs, clock, log: (l) => lines.push(l) });
  const source = (overrides: Partial<RetainSource> = {}): RetainSource => ({
    partitionPath: partition,
    partitionId: 'p3',
    instanceGuid: 'SOFTINST-abc123',
    instanceTitle: 'crm-db',
    rootInstanceTitle: 'crm-db',
    releaseUrl: 'hyper_db',
    softwareType: 'cluster',
    specs: SPECS,
    ...overrides,
  });
  const backup = (id: string, bytes: number) => {
    const dir = join(partition, 'backups', 'base', id);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'hyper_db-backup.json'), JSON.stringify({ id, bytes, verified: true }));
    writeFileSync(join(dir, 'base.tar'), 'x'.repeat(bytes));
  };

  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'hox-retained-'));
    partition = join(root, 'partitions', 'p3');
    mkdirSync(partition, { recursive: true });
    nowMs = Date.parse('2026-01-10T12:00:00.000Z');
    lines = [];
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it('moves the declared paths out of the partition (a rename: same inode), with meta.json, root-only', async () => {
    backup('20260101T000000Z', 10);
    backup('20260102T000000Z', 20);
    mkdirSync(join(partition, 'backups', 'wal'));
    writeFileSync(join(partition, 'backups', 'wal', '000000010000000000000001'), 'w'.repeat(5));
    writeFileSync(join(partition, 'other'), 'not retained');
    const inode = statSync(join(partition, 'backups')).ino;

    const set = await store().retain(source());

    expect(set).not.toBeNull();
    expect(existsSync(join(partition, 'backups'))).toBe(false);
    expect(existsSync(join(partition, 'other'))).toBe(true);
    const moved = join(root, 'retained', 'SOFTINST-abc123', 'data', 'backups');
    expect(statSync(moved).ino).toBe(inode);
    expect(statSync(join(root, 'retained')).mode & 0o777).toBe(0o700);
    expect(statSync(join(root, 'retained', 'SOFTINST-abc123')).mode & 0o777).toBe(0o700);
    const meta = JSON.parse(readFileSync(join(root, 'retained', 'SOFTINST-abc123', 'meta.json'), 'utf8')) as Record<
      string,
      unknown
    >;
    expect(meta).toMatchObject({
      instance_guid: 'SOFTINST-abc123',
      instance_title: 'crm-db',
      software_release_uri: 'hyper_db',
      software_type: 'cluster',
      destroyed_at: '2026-01-10T12:00:00.000Z',
      expires_at: '2026-01-17T12:00:00.000Z',
      complete: true,
      paths: [
        {
          path: 'backups',
          kind: 'hyper_db-backups',
          moved: true,
          // the tars, the WAL segment and the two catalog files
          bytes: 10 + 20 + 5 + catalogBytes('20260101T000000Z', 10) + catalogBytes('20260102T000000Z', 20),
        },
      ],
    });
    const paths = meta.paths as { bytes: number; catalog: unknown[] }[];
    expect(paths[0]?.catalog).toEqual([
      { id: '20260101T000000Z', bytes: 10, verified: true },
      { id: '20260102T000000Z', bytes: 20, verified: true },
    ]);
    expect(lines.join('\n')).toContain('retained backups (hyper_db-backups');

    // Idempotent: run again (a failed report retries the whole destroy), the same set is answered.
    const again = await store().retain(source());
    expect(again?.destroyed_at).toBe('2026-01-10T12:00:00.000Z');

    // What the master is told: the time left in the node's clock, the catalog.
    nowMs += DAY_MS;
    const report = retainedSetReport('n1', again!, nowMs);
    expect(report).toMatchObject({ computer_guid: 'n1', instance_guid: 'SOFTINST-abc123', compute_partition_id: 'p3' });
    expect(report.expires_in_ms).toBe(6 * DAY_MS);
    expect(report.path_list[0]?.catalog).toHaveLength(2);
    expect(retainedListReport('n1', [again!], nowMs).retained_list).toEqual([
      { instance_guid: 'SOFTINST-abc123', expires_in_ms: 6 * DAY_MS },
    ]);
  });

  it('keeps nothing with a retention of 0, or when no declared path exists', async () => {
    backup('20260101T000000Z', 10);
    expect(await store(0).retain(source())).toBeNull();
    expect(existsSync(join(partition, 'backups'))).toBe(true);
    rmSync(join(partition, 'backups'), { recursive: true });
    expect(await store().retain(source())).toBeNull();
    expect(existsSync(join(root, 'retained', 'SOFTINST-abc123'))).toBe(false);
  });

  it('refuses paths that leave the partition; skips (never fatal) one through a link', async () => {
    expect(retainPathProblem('../etc')).toMatch(/without '\.\.'/);
    expect(retainPathProblem('/etc')).not.toBeNull();
    expect(retainPathProblem('backups/base')).toBeNull();
    await expect(store().retain(source({ specs: [{ path: '..', kind: 'x' }] }))).rejects.toThrow(/must be relative/);
    mkdirSync(join(root, 'elsewhere'));
    symlinkSync(join(root, 'elsewhere'), join(partition, 'backups'));
    // Skipped and logged, never fatal (the destroy must go on): nothing is kept, the link's target untouched.
    expect(await store().retain(source())).toBeNull();
    expect(lines.join('\n')).toMatch(/not retaining backups of .*: it goes through a link/);
    expect(existsSync(join(root, 'elsewhere'))).toBe(true);
    expect(existsSync(join(root, 'retained', 'SOFTINST-abc123'))).toBe(false);
  });

  it('finishes a move a crash interrupted, and removes what a crash left before any meta.json', async () => {
    backup('20260101T000000Z', 10);
    mkdirSync(join(partition, 'keep'));
    writeFileSync(join(partition, 'keep', 'f'), 'abc');
    const specs: RetainSpec[] = [...SPECS, { path: 'keep', kind: 'files' }];
    // As a crash after the first path moved: meta.json says so, the second path is still in the partition.
    const setDir = join(root, 'retained', 'SOFTINST-abc123');
    mkdirSync(join(setDir, 'data'), { recursive: true });
    const { renameSync } = await import('node:fs');
    renameSync(join(partition, 'backups'), join(setDir, 'data', 'backups'));
    writeFileSync(
      join(setDir, 'meta.json'),
      JSON.stringify({
        version: 1,
        instance_guid: 'SOFTINST-abc123',
        instance_title: 'crm-db',
        root_instance_title: 'crm-db',
        compute_partition_id: 'p3',
        software_release_uri: 'hyper_db',
        software_type: 'cluster',
        destroyed_at: '2026-01-10T11:00:00.000Z',
        expires_at: '2026-01-17T11:00:00.000Z',
        complete: false,
        paths: [
          { path: 'backups', kind: 'hyper_db-backups', moved: true, bytes: 0, catalog: [] },
          { path: 'keep', kind: 'files', moved: false, bytes: 0, catalog: [] },
        ],
      }),
    );
    const s = store();
    const swept = await s.sweep();
    expect(swept.kept).toEqual([]);
    expect(swept.problems.join('\n')).toMatch(/incomplete/);

    const set = await s.retain(source({ specs }));
    expect(set?.complete).toBe(true);
    expect(set?.destroyed_at).toBe('2026-01-10T11:00:00.000Z');
    expect(readFileSync(join(setDir, 'data', 'keep', 'f'), 'utf8')).toBe('abc');
    expect(set?.paths.map((p) => [p.path, p.bytes, p.catalog.length])).toEqual([
      ['backups', expect.any(Number), 1],
      ['keep', 3, 0],
    ]);

    // A set directory created just before a crash, before meta.json: removed when empty, reported otherwise.
    mkdirSync(join(root, 'retained', 'SOFTINST-empty1'));
    mkdirSync(join(root, 'retained', 'SOFTINST-stray1'));
    writeFileSync(join(root, 'retained', 'SOFTINST-stray1', 'x'), '');
    const after = await s.sweep();
    expect(existsSync(join(root, 'retained', 'SOFTINST-empty1'))).toBe(false);
    expect(existsSync(join(root, 'retained', 'SOFTINST-stray1', 'x'))).toBe(true);
    expect(after.problems.join('\n')).toMatch(/SOFTINST-stray1: no readable meta.json/);
    expect(after.kept.map((k) => k.instance_guid)).toEqual(['SOFTINST-abc123']);
  });

  it('sweeps expired sets (bounded per sweep, each logged) and keeps the others', async () => {
    const s = store(DAY_MS);
    for (const guid of ['SOFTINST-a', 'SOFTINST-b', 'SOFTINST-c']) {
      backup('20260101T000000Z', 1);
      await s.retain(source({ instanceGuid: guid }));
      nowMs += 3_600_000;
    }
    // a expires at +24 h, b at +25 h, c at +26 h; now is +3 h.
    expect((await s.sweep()).removed).toEqual([]);
    nowMs = Date.parse('2026-01-11T13:30:00.000Z'); // past a and b
    const first = await s.sweep(1);
    expect(first.removed).toHaveLength(1);
    const second = await s.sweep(1);
    expect([...first.removed, ...second.removed].sort()).toEqual(['SOFTINST-a', 'SOFTINST-b']);
    expect(second.kept.map((k) => k.instance_guid)).toEqual(['SOFTINST-c']);
    expect((await s.list()).map((k) => k.instance_guid)).toEqual(['SOFTINST-c']);
    expect(lines.filter((l) => l.includes('expired')).length).toBe(2);
  });
});
