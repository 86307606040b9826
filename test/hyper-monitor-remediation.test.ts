/**
 * Issue 16's remediation end to end, on a real platform: three `hox node` processes, a TLS master, the admin's
 * monitor (Prometheus and the watch program), and a hyper_db cluster whose members have a 1 GiB disk quota
 * (`disk_mib`). The primary's partition fills at a steady rate (a file written into it, as a runaway log would):
 *
 * - the monitor forecasts it and the master opens a `disk-full` alert on that member, dated ahead;
 * - the master requests the cluster's switchover (the `move-primary` policy) and the cluster carries it out, so the
 *   primary is elsewhere before the quota is reached;
 * - the quota is then reached (the node stops that member), and clients writing through the read-write endpoint
 *   without retrying never saw a failure: no write downtime.
 *
 * Time is compressed: disk measured and scraped every second, an evaluation every 2 s, the fill takes about 90 s.
 */
import { execFileSync } from 'node:child_process';
import { appendFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  clientConfigFromUrl,
  healthy,
  startHyperDbPlatform,
  type HyperDbPlatform,
} from '../src/testing/hyperdb-platform.js';
import { startNoRetryClients } from '../src/testing/no-retry-clients.js';
import { waitFor } from './support/agent-harness.js';

const MiB = 1024 * 1024;
const QUOTA_MIB = 1024;
const CLUSTER = 'guarded';
const FILL_SECONDS = 90;

function havePrometheus(): boolean {
  try {
    execFileSync('prometheus', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

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

  it('switches a primary whose disk will fill away before it fills; writers never fail', async () => {
    const platform = p!;
    const admin = platform.admin;
    await admin.call('requestInstance', {
      title: 'monitor',
      software_release_uri: 'hyper_monitor',
      software_type: 'default',
      parameters: { scrape_interval_s: 1, evaluate_interval_s: 2, window_hours: 0.05, warning_hours: 0.25 },
    });
    await platform.requestCluster(CLUSTER, { disk_mib: QUOTA_MIB });
    await platform.waitForCluster(CLUSTER, healthy(3), 180_000);
    const db = await platform.requestDatabase(CLUSTER, 'app');
    const writers = await startNoRetryClients({
      config: { ...clientConfigFromUrl(String(db.rw_url), String(db.ca_cert)), connectionTimeoutMillis: 10_000 },
      table: 'guarded_writes',
      intervalMs: 20,
    });

    // First the quiet: a fresh cluster grows (its first base backup, WAL segments) and may be forecast to fill; the
    // test's fill must be what the monitor sees. No disk-full alert on the cluster for 10 s in a row.
    let quietSinceMs = Date.now();
    await waitFor(
      'no disk-full alert on the cluster for 10 s',
      async () => {
        const open = (await admin.call('listAlerts', {})).result_list.filter((a) => a.tree === CLUSTER);
        if (open.length > 0) quietSinceMs = Date.now();
        return Date.now() - quietSinceMs > 10_000;
      },
      180_000,
    );

    // The primary now (and no switchover the quiet's alerts may have asked for left to carry out).
    const before = await platform.waitForCluster(CLUSTER, healthy(3), 60_000);
    const filling = before.primary!;
    const quietAlerts = (await admin.call('listAlerts', { all: true })).result_list.filter((a) => a.tree === CLUSTER);
    expect(quietAlerts, 'false alarms on a cluster starting').toEqual([]);

    // What the member uses now, as its node last measured it; then fill the rest in FILL_SECONDS.
    const usedBytes = async (): Promise<number> => {
      const [tree] = (await admin.call('listTreeStatus', { title: CLUSTER })).result_list;
      const member = tree?.instance_list.find((i) => i.title === filling);
      return member?.partition_usage?.usage.disk_bytes ?? 0;
    };
    const startUsed = await waitFor('the member disk usage', async () => (await usedBytes()) || false, 60_000);
    const path = join(await platform.partitionPath(CLUSTER, filling), 'runaway.log');
    const rate = Math.ceil((QUOTA_MIB * MiB - startUsed) / FILL_SECONDS);
    const startedMs = Date.now();
    const fullAtMs = startedMs + FILL_SECONDS * 1000;
    let written = 0;
    let filler = true;
    const fill = (async () => {
      const chunk = Buffer.alloc(Math.ceil(rate / 4));
      while (filler && written < QUOTA_MIB * MiB) {
        appendFileSync(path, chunk);
        written += chunk.length;
        await sleep(250);
      }
    })();

    try {
      // The alert, and the action the master took for it.
      const alert = await waitFor(
        'a disk-full alert with an action on the filling primary',
        async () =>
          (await admin.call('listAlerts', {})).result_list.find(
            (a) => a.rule === 'disk-full' && a.tree === CLUSTER && a.instance === filling && a.action !== null,
          ),
        FILL_SECONDS * 1000,
      ).catch(async (error: unknown) => {
        const alerts = (await admin.call('listAlerts', { all: true })).result_list;
        const watch = await platform.serviceLog('monitor', 'monitor', 'watch').catch((e: unknown) => String(e));
        throw new Error(
          `${(error as Error).message}; filling ${filling}, ${written} bytes written over ${startUsed}; alerts: ${JSON.stringify(alerts)}\nwatch log:\n${watch.split('\n').slice(-30).join('\n')}`,
        );
      });
      const alertedMs = Date.now();
      expect(Date.parse(alert.opened_at)).toBeGreaterThanOrEqual(startedMs - 1000);
      expect(alert.action, JSON.stringify(alert)).toMatchObject({
        policy: 'move-primary',
        done: true,
        member: filling,
      });
      expect(Date.parse(alert.eta!)).toBeGreaterThan(alertedMs);
      // The switchover is carried out, away from the filling member, before its quota is reached.
      const after = await platform.waitForCluster(
        CLUSTER,
        (s) => s.switchover?.id === alert.action!['switchover'] && s.primary !== null && s.primary !== filling,
        120_000,
      );
      expect(after.switchover?.result).toBe('done');
      const movedMs = Date.now();
      expect(movedMs).toBeLessThan(fullAtMs);
      expect(written + startUsed).toBeLessThan(QUOTA_MIB * MiB);

      // The quota is reached: the node stops the member (now a standby); writes go on.
      await fill;
      await waitFor(
        'the member stopped by its quota',
        async () => {
          const [tree] = (await admin.call('listTreeStatus', { title: CLUSTER })).result_list;
          const member = tree?.instance_list.find((i) => i.title === filling);
          return /quota|disk/i.test(member?.access_status_message ?? '');
        },
        60_000,
      );
      await sleep(3000);
      const stats = await writers.stop();
      process.stderr.write(
        `move-primary: alert ${Math.round((alertedMs - startedMs) / 1000)} s after the fill started and ${Math.round((fullAtMs - alertedMs) / 1000)} s before the quota, primary moved ${Math.round((fullAtMs - movedMs) / 1000)} s before; ${stats.requests} writes without retry, ${stats.failures.length} failed, longest ${Math.round(stats.maxStallMs)} ms\n`,
      );
      expect(stats.failures).toEqual([]);
      expect(stats.acked.length).toBeGreaterThan(100);
    } finally {
      filler = false;
      await fill.catch(() => undefined);
      await writers.stop().catch(() => undefined);
      rmSync(path, { force: true });
    }
  }, 420_000);
});
