/**
 * Issue 16's injected faults on a real platform, shared by test-long/hyper-monitor-remediation.test.ts (which asserts
 * on them) and bench/maintenance/online.ts (which prints them): the platform's monitor, a hyper_db cluster with
 * a disk quota per member, clients writing through its read-write endpoint without retrying, then
 *
 * - {@link quietRun}: nothing injected; every alert opened on the cluster is a false alarm;
 * - {@link diskFillRun}: the primary's partition filled at a steady rate up to its quota (a file written into it,
 *   as a runaway log would), timed: when the alert opened, what the master did, when the primary moved, when the
 *   quota was reached, and what the writers saw;
 * - {@link archiveFailureRun}: the cluster's WAL archive broken, then repaired: when the alert opened and resolved;
 * - {@link leakRun}: a hyper_edge app's replica leaking memory at a steady rate up to its limit: when the alert
 *   opened, when the master's restart was applied, what the memory and the app's requests did.
 *
 * Time is compressed: the agents measure disk every second (`usageIntervalS: 1`), Prometheus scrapes every second
 * and the monitor evaluates every 2 s ({@link MONITOR_PARAMETERS}).
 */
import { appendFileSync, chmodSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { MasterClient, ResponseOf } from '../client/master-client.js';
import type { PrometheusAccess } from '../shared/prometheus-api.js';
import { clientConfigFromUrl, healthy, type HyperDbPlatform } from './hyperdb-platform.js';
import { waitFor } from './wait-for.js';
import { startNoRetryClients, type NoRetryClients, type NoRetryStats } from './no-retry-clients.js';

export type AlertView = ResponseOf<'listAlerts'>['result_list'][number];

const MiB = 1024 * 1024;

/** The monitor's parameters for a compressed run: 1 s scrapes, 2 s evaluations, 3 min of history, 15 min ahead. */
export const MONITOR_PARAMETERS = {
  scrape_interval_s: 1,
  evaluate_interval_s: 2,
  window_hours: 0.05,
  warning_hours: 0.25,
} as const;

export async function requestMonitor(admin: MasterClient): Promise<void> {
  await admin.call('requestInstance', {
    title: 'monitor',
    software_release_uri: 'hyper_monitor',
    software_type: 'default',
    parameters: MONITOR_PARAMETERS,
  });
}

/** How to query the monitor's Prometheus (its published URL and password, the sites CA in its partition). */
export async function monitorAccess(platform: HyperDbPlatform): Promise<PrometheusAccess> {
  const monitor = await platform.admin.call('getInstanceTree', { title: 'monitor' });
  if (!('connection_parameters' in monitor)) throw new Error('the monitor is not ready');
  const c = monitor.connection_parameters as { url: string; user: string; password: string };
  const node = platform.nodes.find((n) => n.id === monitor.computer_guid)!;
  const ca = readFileSync(join(node.dataDir, 'partitions', monitor.compute_partition_id, 'certificates', 'ca.crt'));
  return { url: c.url, user: c.user, password: c.password, ca: ca.toString() };
}

/** Alerts on `tree` (open, and resolved ones with `all`). */
async function treeAlerts(admin: MasterClient, tree: string): Promise<AlertView[]> {
  return (await admin.call('listAlerts', { all: true })).result_list.filter((a) => a.tree === tree);
}

/** A healthy cluster whose members have a `disk_mib` quota. */
export async function startGuardedCluster(platform: HyperDbPlatform, cluster: string, diskMib: number): Promise<void> {
  await platform.requestCluster(cluster, { disk_mib: diskMib });
  await platform.waitForCluster(cluster, healthy(3), 180_000);
}

/** Clients writing without retrying, and when they started (their failures' times count from it). */
export interface Writers {
  clients: NoRetryClients;
  startedMs: number;
}

/** Clients writing through the cluster's read-write endpoint without retrying (a database `app` of it). */
export async function startWriters(platform: HyperDbPlatform, cluster: string): Promise<Writers> {
  const db = await platform.requestDatabase(cluster, 'app');
  const startedMs = Date.now();
  const clients = await startNoRetryClients({
    config: { ...clientConfigFromUrl(String(db.rw_url), String(db.ca_cert)), connectionTimeoutMillis: 10_000 },
    table: 'guarded_writes',
    intervalMs: 50,
  });
  return { clients, startedMs };
}

/** Waits until no alert is open on `tree` for `quietMs` in a row (a cluster starting settles). */
export async function waitForQuiet(admin: MasterClient, tree: string, quietMs: number, timeoutMs: number) {
  let quietSinceMs = Date.now();
  await waitFor(
    `no alert on ${tree} for ${quietMs} ms`,
    async () => {
      if ((await treeAlerts(admin, tree)).some((a) => a.state === 'open')) quietSinceMs = Date.now();
      return Date.now() - quietSinceMs > quietMs;
    },
    timeoutMs,
  );
}

export interface QuietResult {
  seconds: number;
  /** Alerts opened on the cluster during the run: false alarms, nothing being wrong. */
  falseAlarms: AlertView[];
}

/** `seconds` of the cluster under its writers with nothing injected. */
export async function quietRun(admin: MasterClient, cluster: string, seconds: number): Promise<QuietResult> {
  const startedMs = Date.now();
  await sleep(seconds * 1000);
  const falseAlarms = (await treeAlerts(admin, cluster)).filter((a) => Date.parse(a.opened_at) >= startedMs);
  return { seconds, falseAlarms };
}

export interface DiskFillResult {
  member: string;
  quotaBytes: number;
  /** What the member used when the fill started, and the rate it was filled at. */
  startBytes: number;
  bytesPerSecond: number;
  startedMs: number;
  /** When the fill would reach the quota at its rate, and when the node said it did (null: not seen). */
  fullAtMs: number;
  quotaReachedMs: number | null;
  /** The alert on the filling member (null: none before the quota). */
  alert: AlertView | null;
  alertedMs: number | null;
  /** When the cluster had moved its primary away (the master's switchover done), null if it did not. */
  movedMs: number | null;
  /** Alerts on the cluster other than the filling member's disk-full, opened during the run. */
  otherAlerts: AlertView[];
  /** Everything the writers saw, from their start (the quiet run before included). */
  writes: NoRetryStats;
  /** The writes that failed from the start of the fill on. */
  fillFailures: NoRetryStats['failures'];
}

/**
 * Fills the current primary's partition up to `quotaMiB` in about `fillSeconds`, then waits for the node to stop
 * it (its quota) and stops the writers. The file is removed at the end.
 */
export async function diskFillRun(
  platform: HyperDbPlatform,
  options: { cluster: string; quotaMiB: number; fillSeconds: number; writers: Writers },
): Promise<DiskFillResult> {
  const { admin } = platform;
  const { cluster } = options;
  const quotaBytes = options.quotaMiB * MiB;
  const status = await platform.waitForCluster(cluster, healthy(3), 60_000);
  const member = status.primary!;
  const instance = async () =>
    (await admin.call('listTreeStatus', { title: cluster })).result_list[0]?.instance_list.find(
      (i) => i.title === member,
    );
  const startBytes = await waitFor(
    `${member}'s disk usage`,
    async () => (await instance())?.partition_usage?.usage.disk_bytes ?? undefined,
    60_000,
  );
  const path = join(await platform.partitionPath(cluster, member), 'runaway.log');
  const bytesPerSecond = Math.ceil((quotaBytes - startBytes) / options.fillSeconds);
  const startedMs = Date.now();
  const fullAtMs = startedMs + options.fillSeconds * 1000;
  let written = 0;
  let filling = true;
  const fill = (async () => {
    const chunk = Buffer.alloc(Math.ceil(bytesPerSecond / 4));
    // A little past the quota: the node notices at its next measurement.
    while (filling && startBytes + written < quotaBytes + 8 * MiB) {
      appendFileSync(path, chunk);
      written += chunk.length;
      await sleep(250);
    }
  })();
  let alert: AlertView | null = null;
  let alertedMs: number | null = null;
  let movedMs: number | null = null;
  let quotaReachedMs: number | null = null;
  try {
    const deadline = fullAtMs + 60_000;
    while (Date.now() < deadline && (quotaReachedMs === null || (alert !== null && movedMs === null))) {
      const alerts = await treeAlerts(admin, cluster);
      if (alert === null) {
        const found = alerts.find((a) => a.rule === 'disk-full' && a.instance === member && a.action !== null);
        if (found !== undefined) [alert, alertedMs] = [found, Date.now()];
      }
      if (alert !== null && movedMs === null && alert.action?.['done'] === true) {
        const now = await platform.clusterStatus(cluster);
        const switchover = now?.switchover;
        if (
          switchover != null &&
          switchover.id === alert.action['switchover'] &&
          switchover.result === 'done' &&
          now?.primary !== member
        )
          movedMs = Date.now();
      }
      if (quotaReachedMs === null && /quota|disk/i.test((await instance())?.access_status_message ?? ''))
        quotaReachedMs = Date.now();
      await sleep(250);
    }
    await sleep(3000); // the writers keep going past the member's stop
    const otherAlerts = (await treeAlerts(admin, cluster)).filter(
      (a) => Date.parse(a.opened_at) >= startedMs && !(a.rule === 'disk-full' && a.instance === member),
    );
    const writes = await options.writers.clients.stop();
    return {
      member,
      quotaBytes,
      startBytes,
      bytesPerSecond,
      startedMs,
      fullAtMs,
      quotaReachedMs,
      alert,
      alertedMs,
      movedMs,
      otherAlerts,
      writes,
      fillFailures: writes.failures.filter((f) => options.writers.startedMs + f.atMs >= startedMs),
    };
  } finally {
    filling = false;
    await fill.catch(() => undefined);
    rmSync(path, { force: true });
  }
}

export interface ArchiveFailureResult {
  member: string;
  injectedMs: number;
  /** The `wal-archive-failing` alert on the primary (null: none within the wait), and when it was seen. */
  alert: AlertView | null;
  alertedMs: number | null;
  /** When archiving was repaired, and when the alert was seen resolved (null: not within the wait). */
  repairedMs: number | null;
  resolvedMs: number | null;
  /** Alerts on the cluster other than that one, opened during the run. */
  otherAlerts: AlertView[];
}

/**
 * Breaks the cluster's WAL archive (its router's `backups/wal` made unwritable: every archive_command fails, as
 * with a full or read-only backup volume), ends a WAL segment on the primary so it is archived at once, waits for
 * the monitor's `wal-archive-failing` alert on the primary, then repairs the archive, ends another segment and
 * waits for the alert to resolve.
 */
export async function archiveFailureRun(
  platform: HyperDbPlatform,
  options: { cluster: string; timeoutS: number },
): Promise<ArchiveFailureResult> {
  const { admin } = platform;
  const { cluster } = options;
  const status = await platform.waitForCluster(cluster, healthy(3), 180_000);
  const member = status.primary!;
  const walDir = join(await platform.partitionPath(cluster, cluster), 'backups', 'wal');
  const mode = statSync(walDir).mode & 0o7777;
  const switchWal = async () => {
    const su = await platform.superuserClient(cluster, member);
    try {
      // Something to archive: a segment switch with no WAL since the last one does nothing.
      await su.query('CREATE TEMP TABLE t (x int); INSERT INTO t VALUES (1)');
      await su.query('SELECT pg_switch_wal()');
    } finally {
      await su.end();
    }
  };
  const failing = (alerts: AlertView[]) =>
    alerts.find((a) => a.rule === 'wal-archive-failing' && a.instance === member);
  const injectedMs = Date.now();
  chmodSync(walDir, 0o500);
  let alert: AlertView | null = null;
  let alertedMs: number | null = null;
  let repairedMs: number | null = null;
  let resolvedMs: number | null = null;
  try {
    await switchWal();
    const found = await waitFor(
      `a wal-archive-failing alert on ${member}`,
      async () => failing(await treeAlerts(admin, cluster)),
      options.timeoutS * 1000,
    ).catch(() => undefined);
    if (found !== undefined) [alert, alertedMs] = [found, Date.now()];
  } finally {
    chmodSync(walDir, mode);
    repairedMs = Date.now();
  }
  if (alert !== null) {
    await switchWal();
    const resolved = await waitFor(
      `the wal-archive-failing alert on ${member} to resolve`,
      async () => failing(await treeAlerts(admin, cluster))?.state === 'resolved',
      options.timeoutS * 1000,
    ).catch(() => false);
    if (resolved) resolvedMs = Date.now();
  }
  const otherAlerts = (await treeAlerts(admin, cluster)).filter(
    (a) => Date.parse(a.opened_at) >= injectedMs && !(a.rule === 'wal-archive-failing' && a.instance === member),
  );
  return { member, injectedMs, alert, alertedMs, repairedMs, resolvedMs, otherAlerts };
}

/**
 * An app whose web process, on the replica `LEAK` names, leaks memory at a steady rate (zeroed buffers, resident)
 * once it has served for `LEAK_AFTER_S` seconds, as a leak under traffic does: `LEAK_KIB` every 250 ms.
 */
export const LEAKING_SERVER = `import { createServer } from 'node:http';
const kept = [];
const server = createServer((req, res) => {
  if (req.url === '/healthz') return res.end('ok\\n');
  res.end(\`leak on \${process.env.HOX_REPLICA} pid \${process.pid}\\n\`);
});
server.keepAliveTimeout = 1000;
server.listen(Number(process.env.PORT), process.env.HOST, () => {
  if (process.env.HOX_REPLICA !== process.env.LEAK) return;
  const kib = Number(process.env.LEAK_KIB);
  setTimeout(() => setInterval(() => kept.push(Buffer.alloc(kib * 1024, 1)), 250), Number(process.env.LEAK_AFTER_S) * 1000);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
`;

export interface LeakResult {
  /** When the leak started (its process's start + LEAK_AFTER_S, as seen from here) and its rate. */
  leakFromMs: number;
  bytesPerSecond: number;
  limitBytes: number;
  /** When the leak would have reached the limit at its rate, from the working set when it started. */
  fullAtMs: number;
  alert: AlertView | null;
  alertedMs: number | null;
  /** The working set when the alert was seen, and after the restart (null: not seen). */
  atAlertBytes: number | null;
  afterRestartBytes: number | null;
  /** When the restart was applied (the runner published the master's restart id), null if not. */
  restartedMs: number | null;
  oomKills: number;
  /** Alerts on the app other than replica-1's memory-full, opened from the deploy on: false alarms. */
  otherAlerts: AlertView[];
  /** Alerts opened on the app before the leak started: false alarms. */
  quietAlerts: AlertView[];
  requests: number;
  failedRequests: string[];
}

/**
 * Deploys `app` (2 replicas, `memoryMib` each) as the user whose CLI `hox` runs, with replica-1 leaking
 * `leakMibPerS` from `quietS` seconds after its web starts; requests go through the app's URL every 50 ms from the
 * deploy on. Waits for replica-1's `memory-full` alert and the master's restart, then for the memory to fall back.
 */
export async function leakRun(
  platform: HyperDbPlatform,
  options: {
    app: string;
    userToken: string;
    memoryMib: number;
    leakMibPerS: number;
    quietS: number;
    /** Runs the `hox` CLI as the user; returns its stdout, throws when it fails. */
    hox: (args: string[]) => Promise<string>;
    /** A directory to write the app's sources in. */
    dir: string;
  },
): Promise<LeakResult> {
  const { app, hox } = options;
  const user = platform.admin.withToken(options.userToken);
  mkdirSync(options.dir, { recursive: true });
  writeFileSync(
    join(options.dir, 'package.json'),
    `{ "name": "${app}", "version": "1.0.0", "private": true, "type": "module" }\n`,
  );
  writeFileSync(join(options.dir, 'server.js'), LEAKING_SERVER);
  writeFileSync(join(options.dir, 'Procfile'), 'web: node server.js\n');
  writeFileSync(join(options.dir, 'hox.toml'), '[healthcheck]\npath = "/healthz"\ntimeout = 10\n');
  const kib = Math.round((options.leakMibPerS * 1024) / 4);
  const deployed = await hox([
    'app',
    'deploy',
    app,
    options.dir,
    '--scale',
    '2',
    '--env',
    'LEAK=replica-1',
    '--env',
    `LEAK_KIB=${kib}`,
    '--env',
    `LEAK_AFTER_S=${options.quietS}`,
  ]);
  const deployedMs = Date.now();
  const url = /serving at (http:\S+)/.exec(deployed)![1]!;
  await hox(['app', 'scale', app, '2', '--memory-mib', String(options.memoryMib)]);
  const limitBytes = options.memoryMib * MiB;
  const replica1 = async () =>
    (await user.call('listTreeStatus', { title: app })).result_list[0]!.instance_list.find(
      (i) => i.title === 'replica-1',
    )!;
  await waitFor(
    "replica-1's memory limit",
    async () => (await replica1()).partition_usage?.limits.memory_bytes === limitBytes,
    60_000,
  );
  const appAlerts = async () =>
    (await platform.admin.call('listAlerts', { all: true })).result_list.filter((a) => a.tree === app);

  let stop = false;
  const results: string[] = [];
  const load = (async () => {
    for (let i = 0; i < 40_000 && !stop; i++) {
      results.push(
        await fetch(url).then(
          async (r) => `${r.status} ${(await r.text()).trim()}`,
          (error: Error) => `0 ${error.message}`,
        ),
      );
      await sleep(50);
    }
  })();
  try {
    // The web process started during the deploy: the leak starts quietS after it; count from the deploy.
    const leakFromMs = deployedMs + options.quietS * 1000;
    await sleep(Math.max(0, leakFromMs - Date.now()));
    const quietAlerts = (await appAlerts()).filter((a) => Date.parse(a.opened_at) >= deployedMs);
    const startBytes = (await replica1()).partition_usage?.usage.memory_working_set_bytes ?? 0;
    const bytesPerSecond = options.leakMibPerS * MiB;
    const fullAtMs = leakFromMs + ((limitBytes - startBytes) / bytesPerSecond) * 1000;
    let alert: AlertView | null = null;
    let alertedMs: number | null = null;
    let atAlertBytes: number | null = null;
    let restartedMs: number | null = null;
    let afterRestartBytes: number | null = null;
    let oomKills = 0;
    const deadline = fullAtMs + 120_000;
    while (Date.now() < deadline) {
      const r1 = await replica1();
      const usage = r1.partition_usage?.usage;
      oomKills = Math.max(oomKills, usage?.oom_kills ?? 0);
      if (alert === null) {
        const found = (await appAlerts()).find(
          (a) => a.rule === 'memory-full' && a.instance === 'replica-1' && a.action !== null,
        );
        if (found !== undefined)
          [alert, alertedMs, atAlertBytes] = [found, Date.now(), usage?.memory_working_set_bytes ?? null];
      }
      if (alert !== null && restartedMs === null && alert.action?.['done'] === true) {
        const applied = (r1.connection_parameters['restart'] as { id?: string } | undefined)?.id;
        if (applied === alert.action['restart']) restartedMs = Date.now();
      }
      if (restartedMs !== null && atAlertBytes !== null) {
        const now = usage?.memory_working_set_bytes ?? Infinity;
        if (now < atAlertBytes - 40 * MiB) {
          afterRestartBytes = now;
          break;
        }
      }
      if (alert !== null && alert.action?.['done'] !== true) break; // refused: nothing to wait for
      await sleep(250);
    }
    const otherAlerts = (await appAlerts()).filter(
      (a) => Date.parse(a.opened_at) >= deployedMs && !(a.rule === 'memory-full' && a.instance === 'replica-1'),
    );
    return {
      leakFromMs,
      bytesPerSecond,
      limitBytes,
      fullAtMs,
      alert,
      alertedMs,
      atAlertBytes,
      afterRestartBytes,
      restartedMs,
      oomKills,
      otherAlerts,
      quietAlerts,
      requests: results.length,
      failedRequests: results.filter((r) => !r.startsWith('200 ')),
    };
  } finally {
    stop = true;
    await load;
  }
}
