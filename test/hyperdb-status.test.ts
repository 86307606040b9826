/**
 * `hox db status` never says ok while no primary accepts writes (issue 12,
 * item 4), end to end: a master, three `hox node` processes, real
 * PostgreSQL 15 members, the real CLI. The cluster's `rw-endpoint` promise
 * is the write probe (src/releases/hyper_db/probe/): it commits a row
 * through the read-write endpoint, TLS verified against the cluster CA, as
 * its own least-privilege role. With the primary frozen (a paused cluster:
 * no failover ends the outage for us) the promise fails, the tree is in
 * error and the status says why; thawed and resumed, it is ok again.
 *
 * Runs under the hyper_db lock: flock /tmp/hyperdb.lock npx vitest run test/hyperdb-status.test.ts
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { healthy, signalAll, startHyperDbPlatform, type HyperDbPlatform } from '../src/testing/hyperdb-platform.js';
import type { ClusterListEntry } from '../src/cli/db/cluster-list.js';
import { runHox } from './support/hox-cli.js';

const CLUSTER = 'st';
const isRoot = process.getuid?.() === 0;

interface StatusJson {
  health: string;
  problem: string | null;
  stale: boolean;
  reported_age_ms: number | null;
  tree_health: string;
  primary: string | null;
  members_ready: string[];
  members_expected: number | null;
}

describe.skipIf(!isRoot && process.env.CI !== 'true')(
  'hyper_db status (needs root: members run as partition users)',
  () => {
    let p: HyperDbPlatform;
    let home: string;
    let env: NodeJS.ProcessEnv;

    beforeAll(async () => {
      // Nodes report their metrics every 5 s (30 s by default): the metrics test below waits for them.
      p = await startHyperDbPlatform({ nodes: 3, partitions: 2, usageIntervalS: 5 });
      home = mkdtempSync(join(tmpdir(), 'hox-status-cli-'));
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

    /** The root's tree status, as the master answers it. */
    async function tree() {
      const [t] = (await p.admin.call('listTreeStatus', { title: CLUSTER })).result_list;
      if (t === undefined) throw new Error(`no tree ${CLUSTER}`);
      return t;
    }

    async function until(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
      const deadline = Date.now() + timeoutMs;
      while (!(await check())) {
        if (Date.now() > deadline) {
          const t = await tree();
          throw new Error(
            `timed out waiting for ${what}: tree ${t.health} (${t.health_message ?? ''})\n${await p.logs(CLUSTER)}`,
          );
        }
        await sleep(250);
      }
    }

    /** This cluster's line in `hox db list --json` (and the text view's, to see it prints). */
    async function listed(): Promise<ClusterListEntry | undefined> {
      const text = await runHox(['db', 'list'], env);
      expect(text.code, text.stderr).toBe(0);
      expect(text.stdout).toMatch(new RegExp(`^${CLUSTER} `, 'm'));
      const json = await runHox(['db', 'list', '--json'], env);
      expect(json.code, json.stderr).toBe(0);
      return (JSON.parse(json.stdout) as ClusterListEntry[]).find((e) => e.cluster === CLUSTER);
    }

    async function status(): Promise<{ json: StatusJson; text: string }> {
      const json = await runHox(['db', 'status', CLUSTER, '--json'], env);
      expect(json.code, json.stderr).toBe(0);
      const text = await runHox(['db', 'status', CLUSTER], env);
      expect(text.code, text.stderr).toBe(0);
      return { json: JSON.parse(json.stdout) as StatusJson, text: text.stdout };
    }

    it('is ok only while a primary accepts writes through the read-write endpoint, and says why not', async () => {
      await p.requestCluster(CLUSTER);
      await p.waitForCluster(CLUSTER, healthy(3), 180_000);
      // Paused: no automatic failover, so no other member ends the outage the test makes.
      await p.requestCluster(CLUSTER, { paused: true });
      const s = await p.waitForCluster(CLUSTER, (x) => x.paused === true && healthy(3)(x), 60_000);
      const endpoint = `${String(s.rw_host)}:${String(s.rw_port)}`;
      await until('the write probe to pass', async () => (await tree()).health === 'ok', 120_000);
      await until('hox db status to say ok', async () => (await status()).json.health === 'ok', 60_000);

      let { json, text } = await status();
      expect(json).toMatchObject({ health: 'ok', problem: null, stale: false, tree_health: 'ok', primary: s.primary });
      expect([...json.members_ready].sort((a, b) => a.localeCompare(b))).toEqual(['member-1', 'member-2', 'member-3']);
      expect(json.reported_age_ms).toBeLessThan(75_000);
      expect(text).toMatch(/^cluster st {2}\(health ok\)\n/);
      expect(text).toMatch(/\n {2}as of: {7}\d+ s ago\n/);
      // hox db list gives the same verdict, with members ready of expected.
      expect(await listed()).toMatchObject({
        health: 'ok',
        problem: null,
        primary: s.primary,
        members_ready: 3,
        members_expected: 3,
        paused: true,
      });

      // The probe's role was made on the primary: no superuser, its own database only.
      const su = await p.superuserClient(CLUSTER, String(s.primary));
      try {
        const { rows } = await su.query<{ rolsuper: boolean; owned: string[] }>(
          `SELECT r.rolsuper, array(SELECT datname::text FROM pg_database WHERE datdba = r.oid) AS owned
         FROM pg_roles r WHERE r.rolname = 'hyperdb_probe'`,
        );
        expect(rows).toEqual([{ rolsuper: false, owned: ['hyperdb_probe'] }]);
      } finally {
        await su.end();
      }

      // Freeze the primary whole (keeper and PostgreSQL): nothing accepts writes any more.
      const primary = String(s.primary);
      const pids = await p.memberPids(CLUSTER, primary);
      expect(pids.some((pid) => readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('postgres'))).toBe(true);
      expect(signalAll(pids, 'SIGSTOP')).toBeGreaterThan(0);
      try {
        await until(
          'the write probe to fail',
          async () => {
            const t = await tree();
            return (
              t.health === 'error' && (t.health_message ?? '').includes(`no primary accepts writes through ${endpoint}`)
            );
          },
          60_000,
        );
        ({ json, text } = await status());
        expect(json.health).toBe('error');
        expect(json.problem).toMatch(
          new RegExp(`^no primary accepts writes through ${endpoint.replace(/\./g, '\\.')}: .+`),
        );
        // The member that no longer answers is not ready, whatever it said before.
        expect(json.members_ready).not.toContain(primary);
        expect(text.split('\n')[0]).toMatch(/^cluster st {2}\(health error: no primary accepts writes through /);
        // The problems list quotes the probe, not the command line the agent ran it with.
        expect(text).not.toContain('probe.json');
        const entry = await listed();
        expect(entry?.health).toBe('error');
        expect(entry?.problem).toMatch(/^no primary accepts writes through /);
      } finally {
        signalAll(pids, 'SIGCONT');
      }

      // Thawed and resumed: writes go through again, and the status says ok again.
      await p.requestCluster(CLUSTER, { paused: false });
      await p.waitForCluster(CLUSTER, (x) => x.paused === false && healthy(3)(x), 180_000);
      await until('the write probe to pass again', async () => (await tree()).health === 'ok', 120_000);
      await until('hox db status to say ok again', async () => (await status()).json.health === 'ok', 60_000);
      ({ json, text } = await status());
      expect(json).toMatchObject({ health: 'ok', problem: null, stale: false });
      expect(text.split('\n')[0]).toBe('cluster st  (health ok)');
    }, 600_000);

    it("each member's own metrics reach the master's /metrics through its node, labelled with the tree", async () => {
      // The cluster of the test above, healthy again (or made here when run alone).
      await p.requestCluster(CLUSTER, { paused: false });
      const s = await p.waitForCluster(CLUSTER, healthy(3), 180_000);
      const scrape = async () => {
        const answer = await fetch(`${p.master.url}/metrics`, {
          headers: { authorization: `Bearer ${p.master.adminToken}` },
        });
        expect(answer.status).toBe(200);
        return await answer.text();
      };
      /** The value of the series of `name` whose labels include all of `labels`, or undefined. */
      const valueOf = (text: string, name: string, labels: Record<string, string>): number | undefined => {
        for (const line of text.split('\n')) {
          if (!line.startsWith(`${name}{`)) continue;
          const body = line.slice(name.length + 1, line.lastIndexOf('}'));
          if (Object.entries(labels).every(([k, v]) => body.includes(`${k}="${v}"`)))
            return Number(line.slice(line.lastIndexOf(' ') + 1));
        }
        return undefined;
      };
      let text = '';
      const members = ['member-1', 'member-2', 'member-3'];
      const primary = String(s.primary);
      // The series are up to ~10 s old (written every 5 s, relayed every 5 s): the cluster may have settled on its
      // primary more recently than that (the test above paused and resumed it), so wait for them to say so too.
      await until(
        "every member's metrics at the master, the primary's role included",
        async () => {
          text = await scrape();
          return (
            members.every((m) => valueOf(text, 'hyperdb_commits_total', { member: m, tree: CLUSTER }) !== undefined) &&
            members.every(
              (m) =>
                valueOf(text, 'hyperdb_member_role', { member: m, tree: CLUSTER, role: 'primary' }) ===
                (m === primary ? 1 : 0),
            ) &&
            // A new primary lists its standbys once they stream from it again.
            members
              .filter((m) => m !== primary)
              .every(
                (standby) =>
                  valueOf(text, 'hyperdb_standby_replay_lag_bytes', { member: primary, standby }) !== undefined,
              )
          );
        },
        90_000,
      );
      for (const member of members) {
        const labels = { member, tree: CLUSTER };
        expect(valueOf(text, 'hyperdb_member_role', { ...labels, role: 'primary' }), member).toBe(
          member === primary ? 1 : 0,
        );
        // Labelled as the master knows the partition: its node, partition and instance.
        expect(text).toMatch(
          new RegExp(
            `^hyperdb_term\\{member="${member}",node="[^"]+",partition="[^"]+",tree="${CLUSTER}",instance="[^"]+",owner="admin"\\} \\d+$`,
            'm',
          ),
        );
        expect(valueOf(text, 'hyperdb_wal_directory_bytes', labels)).toBeGreaterThan(0);
        expect(valueOf(text, 'hyperdb_wal_position_bytes', labels)).toBeGreaterThan(0);
        expect(valueOf(text, 'hyperdb_max_connections', labels)).toBe(200);
        expect(valueOf(text, 'hyperdb_wal_archive_failed_total', labels)).toBe(0);
        expect(valueOf(text, 'hyperdb_database_bytes', labels)).toBeGreaterThan(0);
      }
      // The primary commits (the write probe does, every few seconds), and its standbys' replay lag is there.
      expect(valueOf(text, 'hyperdb_commits_total', { member: primary })).toBeGreaterThan(0);
      expect(valueOf(text, 'hyperdb_connections', { member: primary })).toBeGreaterThanOrEqual(1);
      for (const standby of members.filter((m) => m !== primary))
        expect(valueOf(text, 'hyperdb_standby_replay_lag_bytes', { member: primary, standby })).toBeGreaterThanOrEqual(
          0,
        );
      expect(text.match(/^# TYPE hyperdb_commits_total counter$/gm)).toHaveLength(1);
    }, 300_000);
  },
);
