/**
 * Issue 16's remediation end to end, on a real platform (src/testing/maintenance-scenarios.ts): three `hox node`
 * processes, a TLS master, the admin's monitor (Prometheus and the watch program), and a hyper_db cluster whose
 * members have a 1 GiB disk quota (`disk_mib`).
 *
 * - quiet first: while the cluster settles, and then for 60 s under clients that write without retrying, no alert;
 * - the primary's partition filled at a steady rate: the monitor forecasts it and the master opens a `disk-full`
 *   alert, dated ahead; the master requests the cluster's switchover (`move-primary`) and the cluster carries it
 *   out before the quota is reached; the quota is then reached (the node stops that member), and no write failed;
 * - the cluster's WAL archive broken: a critical `wal-archive-failing` alert on the primary, resolved once repaired.
 *
 * Time is compressed: disk measured and scraped every second, an evaluation every 2 s, the fill takes 90 s.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { havePrometheus } from '../test/support/prometheus.js';
import { startHyperDbPlatform, type HyperDbPlatform } from '../src/testing/hyperdb-platform.js';
import {
  archiveFailureRun,
  diskFillRun,
  quietRun,
  requestMonitor,
  startGuardedCluster,
  startWriters,
  waitForQuiet,
} from '../src/testing/maintenance-scenarios.js';

const CLUSTER = 'guarded';

describe.skipIf(process.getuid?.() !== 0 && process.env.CI !== 'true')('move-primary on a real cluster', () => {
  let p: HyperDbPlatform | undefined;

  beforeAll(async () => {
    if (process.getuid?.() !== 0) throw new Error('members run as partition users: root is needed');
    if (!havePrometheus()) throw new Error('prometheus is needed (sh scripts/install-system-deps.sh)');
    p = await startHyperDbPlatform({
      nodes: 3,
      partitions: 2,
      nodeIdPrefix: 'guard-node',
      releases: ['hyper_db', 'hyper_monitor'],
      tls: true,
      usageIntervalS: 1,
    });
  }, 120_000);

  afterAll(async () => {
    await p?.stop();
  }, 120_000);

  it('switches a primary whose disk will fill away before it fills; no false alarm, no failed write', async () => {
    const platform = p!;
    const { admin } = platform;
    await requestMonitor(admin);
    await startGuardedCluster(platform, CLUSTER, 1024);
    await waitForQuiet(admin, CLUSTER, 10_000, 180_000);
    const writers = await startWriters(platform, CLUSTER);
    // Nothing was alerted while the cluster started: a starting PostgreSQL is no trend.
    expect((await admin.call('listAlerts', { all: true })).result_list.filter((a) => a.tree === CLUSTER)).toEqual([]);
    const quiet = await quietRun(admin, CLUSTER, 60);
    expect(quiet.falseAlarms).toEqual([]);

    const run = await diskFillRun(platform, { cluster: CLUSTER, quotaMiB: 1024, fillSeconds: 90, writers });
    const watch = async () =>
      (await platform.serviceLog('monitor', 'monitor', 'watch').catch((e: unknown) => String(e)))
        .split('\n')
        .slice(-30)
        .join('\n');
    const { alert, alertedMs } = run;
    if (alert === null || alertedMs === null)
      throw new Error(`no alert on ${run.member}; the watch log:\n${await watch()}`);
    process.stderr.write(
      `move-primary: alert ${Math.round((alertedMs - run.startedMs) / 1000)} s into the fill and ${Math.round((run.fullAtMs - alertedMs) / 1000)} s before the quota, primary moved ${run.movedMs === null ? 'never' : `${Math.round((run.fullAtMs - run.movedMs) / 1000)} s before`}; ${run.writes.requests} writes without retry, ${run.fillFailures.length} failed during the fill (${run.writes.failures.length} in all), longest ${Math.round(run.writes.maxStallMs)} ms\n`,
    );
    expect(Date.parse(alert.opened_at)).toBeGreaterThanOrEqual(run.startedMs - 1000);
    expect(Date.parse(alert.eta!)).toBeGreaterThan(alertedMs);
    expect(alert.action, JSON.stringify(alert)).toMatchObject({
      policy: 'move-primary',
      done: true,
      member: run.member,
    });
    // The primary moved before the quota was reached, and the quota was then reached.
    expect(run.movedMs).not.toBeNull();
    expect(run.quotaReachedMs).not.toBeNull();
    expect(run.movedMs!).toBeLessThan(run.quotaReachedMs!);
    expect(run.otherAlerts).toEqual([]);
    expect(run.fillFailures).toEqual([]);
    expect(run.writes.acked.length).toBeGreaterThan(100);
  }, 600_000);

  it("says at once that the cluster's WAL archive fails, and that it works again", async () => {
    const platform = p!;
    const run = await archiveFailureRun(platform, { cluster: CLUSTER, timeoutS: 120 });
    const { alert, alertedMs } = run;
    if (alert === null || alertedMs === null) {
      const watch = await platform.serviceLog('monitor', 'monitor', 'watch').catch((e: unknown) => String(e));
      throw new Error(
        `no wal-archive-failing alert on ${run.member}; the watch log:\n${watch.split('\n').slice(-30).join('\n')}`,
      );
    }
    process.stderr.write(
      `wal-archive-failing: alert ${Math.round((alertedMs - run.injectedMs) / 1000)} s after the archive broke, resolved ${run.resolvedMs === null ? 'never' : `${Math.round((run.resolvedMs - run.repairedMs!) / 1000)} s after it was repaired`}\n`,
    );
    expect(alert).toMatchObject({ severity: 'critical', instance: run.member, tree: CLUSTER, eta: null });
    expect(alert.summary).toMatch(/^WAL archiving fails on .+: backups miss what was written since, and pg_wal grows$/);
    expect(run.resolvedMs).not.toBeNull();
    expect(run.otherAlerts).toEqual([]);
  }, 600_000);
});
