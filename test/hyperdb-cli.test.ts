/**
 * `hox db backups`, `hox db backup`, `hox db restore` (to a time and to the latest point) and
 * `hox db promote`, end to end through the real CLI (spawned, from the sources) against a real
 * platform: a master, one `hox node` process, real PostgreSQL 15 members. One source cluster for the
 * whole file, of one member; the two restores run at once, one of one member, the other of two (without
 * one of them there is no majority, which `promote` is for): this suite must stay fast.
 *
 * - A time restore has the rows committed before the target, not the one after; the latest restore has
 *   them all, the last one included; both say which point they restored to.
 * - A target before the base backup is refused (exit 2) before anything is requested.
 * - With the primary of the 2-member restore frozen, its standby is promoted only with
 *   --accept-data-loss; it has every row and accepts writes.
 * - Destroyed, the source's backups stay on its node (retained, until when) and `hox db backups` lists them.
 *
 * Runs under the hyper_db lock: flock /tmp/hyperdb.lock npx vitest run test/hyperdb-cli.test.ts
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { healthy, signalAll, startHyperDbPlatform, type HyperDbPlatform } from '../src/testing/hyperdb-platform.js';
import { runHox, type HoxRun } from './support/hox-cli.js';

const SOURCE = 'src';
const isRoot = process.getuid?.() === 0;

interface BackupsJson {
  cluster: string;
  count: number | null;
  backups: { id: string; finished_at: string | null; member: string | null; bytes: number | null; verified: boolean }[];
  wal: { segments: number | null; first: string; last: string; last_archived_at: string | null } | null;
}

interface RestoreJson {
  cluster: string;
  from: string;
  target_time: string | null;
  latest: boolean;
  ready: boolean;
  primary: string | null;
  restored_to: { lsn: string | null; last_transaction_at: string | null } | null;
}

describe.skipIf(!isRoot && process.env.CI !== 'true')(
  'hox db backups|backup|restore|promote through the CLI (needs root: members run as partition users)',
  () => {
    let p: HyperDbPlatform;
    let home: string;
    let env: NodeJS.ProcessEnv;
    const hox = (args: string[], timeoutMs = 300_000): Promise<HoxRun> => runHox(args, env, timeoutMs);
    const ok = async (args: string[], timeoutMs?: number): Promise<string> => {
      const r = await hox(args, timeoutMs);
      expect(r.code, `hox ${args.join(' ')}\n${r.stderr}\n${r.stdout}`).toBe(0);
      return r.stdout;
    };

    beforeAll(async () => {
      // Source (router + 1 member) and two restores (router + 1 member, router + 2 members): 7 partitions.
      // Node ids of its own: they pick the partitions' addresses, so a platform another test left behind does not collide.
      p = await startHyperDbPlatform({ nodes: 1, partitions: 7, nodeIdPrefix: 'dbcli-node' });
      home = mkdtempSync(join(tmpdir(), 'hox-db-cli-'));
      env = {
        ...process.env,
        HOX_CONFIG: join(home, 'config.json'),
        HOX_MASTER_URL: p.master.url,
        HOX_TOKEN: p.master.adminToken,
      };
    }, 120_000);

    afterAll(async () => {
      await p?.stop();
      if (home !== undefined) rmSync(home, { recursive: true, force: true });
    }, 120_000);

    /** Runs `text` as the superuser on a member of a cluster (database postgres). */
    async function sql<R extends Record<string, unknown>>(cluster: string, member: string, text: string): Promise<R[]> {
      const client = await p.superuserClient(cluster, member);
      try {
        return (await client.query<R>(text)).rows;
      } finally {
        await client.end();
      }
    }

    /**
     * A write on a cluster's primary, retried (≤ 90 s) while it is not writable yet: published as
     * primary, it may still be ending recovery, or restarting after a fence on a loaded machine.
     */
    async function write(cluster: string, member: string, text: string): Promise<void> {
      const deadline = Date.now() + 90_000;
      for (;;) {
        try {
          await sql(cluster, member, text);
          return;
        } catch (error) {
          if (Date.now() > deadline) throw error;
        }
        await sleep(500);
      }
    }

    async function backups(): Promise<BackupsJson> {
      return JSON.parse(await ok(['db', 'backups', SOURCE, '--json'])) as BackupsJson;
    }

    it('backs up, restores to a time and to the latest point, and promotes without a majority', async () => {
      // Requested directly (hox db create is covered elsewhere): its --wait also waits for the write probe.
      await p.requestCluster(SOURCE, { members: 1 });
      const s = await p.waitForCluster(SOURCE, healthy(1), 240_000);
      const primary = String(s.primary);
      await write(
        SOURCE,
        primary,
        'CREATE TABLE IF NOT EXISTS ledger (id int PRIMARY KEY, at timestamptz DEFAULT clock_timestamp())',
      );
      await write(SOURCE, primary, 'INSERT INTO ledger (id) VALUES (1) ON CONFLICT DO NOTHING');

      // hox db backup: a verified base backup now, listed by hox db backups, newest last.
      // A failed base backup exits 1 with pg_basebackup's reason (a member restarting on a loaded machine):
      // asked again once, as a user would.
      let first = await hox(['db', 'backup', SOURCE, '--timeout', '240']);
      if (first.code === 1 && first.stderr.includes('failed: base backup failed: '))
        first = await hox(['db', 'backup', SOURCE, '--timeout', '240']);
      expect(first.code, `${first.stderr}\n${first.stdout}`).toBe(0);
      const took = first.stdout;
      const id = /^src: backup (\d{8}T\d{6}Z) done: .+ \(verified\)/m.exec(took)?.[1];
      expect(id, took).toBeDefined();
      let listed = await backups();
      expect(listed.backups.at(-1)).toMatchObject({ id, member: primary, verified: true });
      expect(listed.count).toBe(listed.backups.length);
      expect(listed.backups.at(-1)?.bytes).toBeGreaterThan(1024 * 1024);
      const text = await ok(['db', 'backups', SOURCE]);
      expect(text).toMatch(new RegExp(`^ {2}${id} +\\S+ +${primary} +[\\d.]+ MiB +yes$`, 'm'));
      expect(text).toMatch(/^archived WAL: \d+ segments?, [0-9A-F]{24} … [0-9A-F]{24}; last archived /m);

      // Row 2 before the target, row 3 after it; then the segment holding row 3 goes to the archive.
      await write(SOURCE, primary, 'INSERT INTO ledger (id) VALUES (2) ON CONFLICT DO NOTHING');
      await sleep(1000);
      const target = new Date().toISOString();
      await sleep(1000);
      await write(SOURCE, primary, 'INSERT INTO ledger (id) VALUES (3) ON CONFLICT DO NOTHING');
      const [three] = await sql<{ at: Date }>(SOURCE, primary, 'SELECT at FROM ledger WHERE id = 3');
      const [{ segment } = { segment: '' }] = await sql<{ segment: string }>(
        SOURCE,
        primary,
        'SELECT pg_walfile_name(pg_switch_wal()) AS segment',
      );
      const deadline = Date.now() + 60_000;
      while (((listed = await backups()).wal?.last ?? '') < segment && Date.now() < deadline) await sleep(500);
      // Segment names of one timeline sort in WAL order.
      expect((listed.wal?.last ?? '') >= segment, `segment ${segment} archived: ${JSON.stringify(listed.wal)}`).toBe(
        true,
      );
      expect((listed.wal?.first ?? 'Z') <= segment).toBe(true);

      // A target before the backup the restore would start from: refused, nothing requested.
      const early = new Date(Date.parse(listed.backups.at(-1)?.finished_at ?? '') - 60_000).toISOString();
      const refused = await hox([
        'db',
        'restore',
        'copy-early',
        '--from',
        SOURCE,
        '--time',
        early,
        '--backup',
        id ?? '',
      ]);
      expect(refused.code, refused.stderr).toBe(2);
      expect(refused.stderr).toContain(`--time ${early} is not after the end of backup ${id ?? ''}`);

      // Both restores at once: to just before the target, and to the latest point.
      const [atTime, latest] = await Promise.all([
        hox(['db', 'restore', 'copy-time', '--from', SOURCE, '--time', target, '--members', '1', '--wait']),
        hox(['db', 'restore', 'copy-latest', '--from', SOURCE, '--members', '2', '--wait', '--json']),
      ]);
      expect(atTime.code, `${atTime.stderr}\n${atTime.stdout}\n${await p.logs('copy-time')}`).toBe(0);
      expect(latest.code, `${latest.stderr}\n${latest.stdout}\n${await p.logs('copy-latest')}`).toBe(0);
      expect(atTime.stdout).toContain(`copy-time: restored from src to just before ${target} — primary member-1`);
      const point =
        /^ {2}restored to: last replayed transaction committed at (\S+) \(LSN [0-9A-F]+\/[0-9A-F]+\)$/m.exec(
          atTime.stdout,
        );
      expect(point, atTime.stdout).not.toBeNull();
      expect(Date.parse(point?.[1] ?? '')).toBeLessThan(Date.parse(target));
      const restored = JSON.parse(latest.stdout) as RestoreJson;
      expect(restored).toMatchObject({ cluster: 'copy-latest', from: SOURCE, latest: true, target_time: null });
      expect(restored.ready).toBe(true);
      expect(restored.restored_to?.lsn).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/);
      expect(Date.parse(restored.restored_to?.last_transaction_at ?? '')).toBeGreaterThanOrEqual(
        three?.at.getTime() ?? Infinity,
      );

      const ids = async (cluster: string, member = 'member-1'): Promise<number[]> =>
        (await sql<{ id: number }>(cluster, member, 'SELECT id FROM ledger ORDER BY id')).map((r) => r.id);
      expect(await ids('copy-time')).toEqual([1, 2]);
      expect(await ids('copy-latest')).toEqual([1, 2, 3]);

      // hox db promote: refused without --accept-data-loss, before anything is requested. With the restore's
      // primary frozen, its standby alone is no majority (2 members: never promoted on its own); forced, it is
      // promoted, has every row, and takes writes.
      const copy = await p.waitForCluster('copy-latest', healthy(2), 60_000);
      const frozen = String(copy.primary);
      const standby = copy.members.find((m) => m.name !== frozen)?.name ?? '';
      const unaccepted = await hox(['db', 'promote', 'copy-latest', standby]);
      expect(unaccepted.code, unaccepted.stderr).toBe(2);
      expect(unaccepted.stderr).toContain('run again with --accept-data-loss');
      const pids = await p.memberPids('copy-latest', frozen);
      expect(signalAll(pids, 'SIGSTOP')).toBeGreaterThan(0);
      try {
        const promoted = await hox(
          ['db', 'promote', 'copy-latest', standby, '--accept-data-loss', '--timeout', '90'],
          120_000,
        );
        expect(promoted.code, `${promoted.stderr}\n${promoted.stdout}\n${await p.logs('copy-latest')}`).toBe(0);
        expect(promoted.stdout).toMatch(
          new RegExp(`^copy-latest: ${standby} promoted without a majority \\(promote-`, 'm'),
        );
        expect((await p.clusterStatus('copy-latest'))?.primary).toBe(standby);
        await write('copy-latest', standby, 'INSERT INTO ledger (id) VALUES (4) ON CONFLICT DO NOTHING');
        expect(await ids('copy-latest', standby)).toEqual([1, 2, 3, 4]);
      } finally {
        signalAll(pids, 'SIGCONT');
      }
    }, 600_000);

    it("keeps a destroyed cluster's backups on its node and still lists them (retained, until when)", async () => {
      const before = await backups();
      expect(before.backups.length, 'the test above took a backup').toBeGreaterThan(0);
      await ok(['destroy', SOURCE, '--yes', '--wait', '--timeout', '180'], 200_000);
      // The tree is gone; its backups are not.
      const listed = JSON.parse(await ok(['db', 'backups', SOURCE, '--json'])) as {
        destroyed: boolean;
        retained: {
          instance_guid: string;
          destroyed_at: string;
          expires_at: string;
          computer_guid: string;
          bytes: number | null;
          backups: { id: string; verified: boolean }[];
        }[];
      };
      expect(listed.destroyed).toBe(true);
      expect(listed.retained).toHaveLength(1);
      const [set] = listed.retained;
      expect(set?.backups.map((b) => b.id)).toEqual(before.backups.map((b) => b.id));
      expect(set?.backups.every((b) => b.verified)).toBe(true);
      // The node's default retention: 7 days (the node says the time left; the master places it in its clock).
      const keptMs = Date.parse(set?.expires_at ?? '') - Date.parse(set?.destroyed_at ?? '');
      expect(Math.abs(keptMs - 7 * 86_400_000)).toBeLessThan(60_000);
      expect(set?.bytes).toBeGreaterThan(0);
      // On the node: moved out of the partition into its root-only retained store, the base backups there.
      const dir = join(p.nodes[0]?.dataDir ?? '?', 'retained', set?.instance_guid ?? '?');
      expect(statSync(dir).mode & 0o777).toBe(0o700);
      const meta = JSON.parse(readFileSync(join(dir, 'meta.json'), 'utf8')) as { complete: boolean };
      expect(meta.complete).toBe(true);
      for (const b of before.backups) expect(existsSync(join(dir, 'data', 'backups', 'base', b.id))).toBe(true);
      const text = await ok(['db', 'backups', SOURCE]);
      expect(text).toMatch(new RegExp(`^${SOURCE}: destroyed at .*retained on compute node '.+' until `, 'm'));
      expect(text).toContain(before.backups[0]?.id ?? '?');
    }, 300_000);
  },
);
