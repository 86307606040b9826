/**
 * bench/maintenance (online): injected faults on a real platform, the platform's monitor watching. Needs root and
 * Debian's prometheus (sh scripts/install-system-deps.sh).
 *
 *   sudo npx tsx bench/maintenance/online.ts [--runs 2] [--fill-s 90] [--quota-mib 1024] [--json]
 *
 * Three `hox node` processes and a TLS master; the admin's monitor (src/testing/maintenance-scenarios.ts:
 * MONITOR_PARAMETERS); per run, a new hyper_db cluster whose members have a `--quota-mib` disk quota, clients
 * writing through its read-write endpoint without retrying, then
 *
 * 0. the cluster starting, until no alert is open on it for 10 s: an alert then is a false alarm;
 * 1. a quiet run as long as the fill: every alert opened on the cluster is a false alarm;
 * 2. the primary's partition filled at a steady rate, reaching its quota in `--fill-s` seconds;
 * 3. the cluster's WAL archive broken (its router's WAL directory made unwritable), then repaired.
 *
 * Measured per run: the warning's lead time (before the quota is reached), whether and when the master moved the
 * primary away (the move-primary policy), write failures and the longest write, alerts on anything else; how
 * long after the archive broke the `wal-archive-failing` alert came, and how long after the repair it resolved.
 *
 * The peer, measured on the same data in the same run: Prometheus's own `predict_linear`, as the usual alerting
 * rule writes it (`predict_linear(used[window], warning) > limit`, the monitor's window and warning horizon),
 * evaluated by the same Prometheus over the quiet run and the fill: when it would have fired first; for the
 * archive, `increase(hyperdb_wal_archive_failed_total[1m]) > 0`.
 *
 * Time is compressed: disk measured, reported and scraped every second (30 s and 15 s by default) and evaluated
 * every 2 s; the fill takes 90 s where a real one takes hours. The rules count in steps (30 steps of history at
 * least, no forecast beyond 3 times the history), so a run here behaves as one with 1-minute steps would, 60
 * times slower: 70 s of lead time here is about 70 minutes there.
 */
import { parseArgs } from 'node:util';
import { startHyperDbPlatform, type HyperDbPlatform } from '../../src/testing/hyperdb-platform.js';
import {
  archiveFailureRun,
  diskFillRun,
  MONITOR_PARAMETERS,
  quietRun,
  requestMonitor,
  startGuardedCluster,
  startWriters,
  waitForQuiet,
  type DiskFillResult,
} from '../../src/testing/maintenance-scenarios.js';
import { log, markdownTable } from '../support/report.js';
import { firingStarts } from './prometheus-peer.js';

interface RunFigures {
  run: number;
  start_false_alarms: number;
  start_false_alarms_predict_linear: number;
  quiet_false_alarms: number;
  quiet_false_alarms_predict_linear: number;
  alerted: boolean;
  lead_s: number | null;
  lead_s_predict_linear: number | null;
  primary_moved_before_quota: boolean;
  moved_lead_s: number | null;
  other_alerts: number;
  writes: number;
  write_failures: number;
  write_failures_quiet: number;
  longest_write_ms: number;
  /** The WAL archive broken after the fill: seconds to the alert, to its resolution once repaired, and the peer's. */
  archive_alert_s: number | null;
  archive_alert_s_peer: number | null;
  archive_resolved_s: number | null;
  archive_other_alerts: number;
}

/** When (ms) `predict_linear` over the monitor's window started firing on the cluster (or `member`) within [from, to]. */
async function predictLinearStarts(
  platform: HyperDbPlatform,
  cluster: string,
  member: string | null,
  fromMs: number,
  toMs: number,
): Promise<number[]> {
  const windowS = Math.round(MONITOR_PARAMETERS.window_hours * 3600);
  const aheadS = Math.round(MONITOR_PARAMETERS.warning_hours * 3600);
  const selector = `tree="${cluster}"${member === null ? '' : `,instance="${member}"`}`;
  const query =
    `predict_linear(hox_partition_disk_bytes{${selector}}[${windowS}s], ${aheadS}) ` +
    `> hox_partition_disk_limit_bytes{${selector}}`;
  return await firingStarts(platform, query, fromMs, toMs);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      runs: { type: 'string', default: '2' },
      'fill-s': { type: 'string', default: '90' },
      'quota-mib': { type: 'string', default: '1024' },
      json: { type: 'boolean', default: false },
    },
  });
  const runs = Number(values.runs);
  const fillS = Number(values['fill-s']);
  const quotaMiB = Number(values['quota-mib']);
  if (!(Number.isInteger(runs) && runs >= 1 && runs <= 10)) throw new Error('--runs: 1 to 10');
  if (!(fillS >= 30 && fillS <= 3600)) throw new Error('--fill-s: 30 to 3600 seconds');
  if (!(Number.isInteger(quotaMiB) && quotaMiB >= 256)) throw new Error('--quota-mib: 256 or more');
  if (process.getuid?.() !== 0) throw new Error('run as root: members run as partition users');

  const platform = await startHyperDbPlatform({
    nodes: 3,
    partitions: 1 + 2 * runs,
    nodeIdPrefix: 'mbench-node',
    releases: ['hyper_db', 'hyper_monitor'],
    tls: true,
    usageIntervalS: 1,
  });
  const figures: RunFigures[] = [];
  try {
    await requestMonitor(platform.admin);
    for (let run = 1; run <= runs; run++) {
      const cluster = `fill-${run}`;
      log(`run ${run}: cluster ${cluster} (members' quota ${quotaMiB} MiB)`);
      const requestedMs = Date.now();
      await startGuardedCluster(platform, cluster, quotaMiB);
      await waitForQuiet(platform.admin, cluster, 10_000, 300_000);
      // While the cluster started (nothing wrong either): what each would have alerted.
      const settledMs = Date.now();
      const startAlarms = (await platform.admin.call('listAlerts', { all: true })).result_list.filter(
        (a) => a.tree === cluster && Date.parse(a.opened_at) >= requestedMs,
      );
      const startPeer = await predictLinearStarts(platform, cluster, null, requestedMs, settledMs);
      const writers = await startWriters(platform, cluster);
      log(`run ${run}: quiet for ${fillS} s`);
      const quietFromMs = Date.now();
      const quiet = await quietRun(platform.admin, cluster, fillS);
      const quietPeer = await predictLinearStarts(platform, cluster, null, quietFromMs, Date.now());
      log(`run ${run}: filling the primary's partition in ${fillS} s`);
      const fill: DiskFillResult = await diskFillRun(platform, { cluster, quotaMiB, fillSeconds: fillS, writers });
      const quotaMs = fill.quotaReachedMs ?? fill.fullAtMs;
      const peer = await predictLinearStarts(platform, cluster, fill.member, fill.startedMs, quotaMs);
      const seconds = (ms: number) => Math.round(ms / 100) / 10;
      figures.push({
        run,
        start_false_alarms: startAlarms.length,
        start_false_alarms_predict_linear: startPeer.length,
        quiet_false_alarms: quiet.falseAlarms.length,
        quiet_false_alarms_predict_linear: quietPeer.length,
        alerted: fill.alertedMs !== null && fill.alertedMs < quotaMs,
        lead_s: fill.alertedMs === null ? null : seconds(quotaMs - fill.alertedMs),
        lead_s_predict_linear: peer.length === 0 ? null : seconds(quotaMs - Math.min(...peer)),
        primary_moved_before_quota: fill.movedMs !== null && fill.movedMs < quotaMs,
        moved_lead_s: fill.movedMs === null ? null : seconds(quotaMs - fill.movedMs),
        other_alerts: fill.otherAlerts.length,
        writes: fill.writes.requests,
        write_failures: fill.fillFailures.length,
        write_failures_quiet: fill.writes.failures.length - fill.fillFailures.length,
        longest_write_ms: Math.round(fill.writes.maxStallMs),
        archive_alert_s: null,
        archive_alert_s_peer: null,
        archive_resolved_s: null,
        archive_other_alerts: 0,
      });
      log(`run ${run}: breaking the cluster's WAL archive`);
      const archive = await archiveFailureRun(platform, { cluster, timeoutS: 180 });
      // The peer: the usual rule on pg_stat_archiver's failures (postgres_exporter's mixins write it so).
      const archivePeer = await firingStarts(
        platform,
        `increase(hyperdb_wal_archive_failed_total{tree="${cluster}",instance="${archive.member}"}[1m]) > 0`,
        archive.injectedMs,
        archive.repairedMs ?? Date.now(),
      );
      Object.assign(figures.at(-1)!, {
        archive_alert_s: archive.alertedMs === null ? null : seconds(archive.alertedMs - archive.injectedMs),
        archive_alert_s_peer: archivePeer.length === 0 ? null : seconds(Math.min(...archivePeer) - archive.injectedMs),
        archive_resolved_s:
          archive.resolvedMs === null || archive.repairedMs === null
            ? null
            : seconds(archive.resolvedMs - archive.repairedMs),
        archive_other_alerts: archive.otherAlerts.length,
      });
      log(`run ${run}: ${JSON.stringify(figures.at(-1))}`);
      for (const a of [...startAlarms, ...quiet.falseAlarms, ...fill.otherAlerts, ...archive.otherAlerts])
        log(
          `  alert ${a.rule} on ${a.instance ?? a.node}: ${a.summary} (opened ${a.opened_at}, ${JSON.stringify(a.evidence)}, action ${JSON.stringify(a.action)})`,
        );
      for (const f of fill.writes.failures.slice(0, 5)) log(`  write failed at ${f.atMs} ms (${f.who}): ${f.message}`);
      log(
        `  fill started ${new Date(fill.startedMs).toISOString()}, quota reached ${fill.quotaReachedMs === null ? '-' : new Date(fill.quotaReachedMs).toISOString()}`,
      );
      await platform.admin.call('requestInstance', {
        title: cluster,
        software_release_uri: 'hyper_db',
        software_type: 'cluster',
        state: 'destroyed',
      });
    }
  } finally {
    await platform.stop();
  }

  const alerted = figures.filter((f) => f.alerted).length;
  const falseAlarms = figures.reduce(
    (n, f) => n + f.start_false_alarms + f.quiet_false_alarms + f.other_alerts + f.archive_other_alerts,
    0,
  );
  const summary = {
    runs,
    fill_s: fillS,
    quota_mib: quotaMiB,
    recall: alerted / runs,
    precision: alerted + falseAlarms === 0 ? null : alerted / (alerted + falseAlarms),
    start_false_alarms: figures.reduce((n, f) => n + f.start_false_alarms, 0),
    start_false_alarms_predict_linear: figures.reduce((n, f) => n + f.start_false_alarms_predict_linear, 0),
    quiet_false_alarms: figures.reduce((n, f) => n + f.quiet_false_alarms, 0),
    quiet_false_alarms_predict_linear: figures.reduce((n, f) => n + f.quiet_false_alarms_predict_linear, 0),
    primary_moved_before_quota: figures.filter((f) => f.primary_moved_before_quota).length,
    write_failures: figures.reduce((n, f) => n + f.write_failures, 0),
    write_failures_quiet: figures.reduce((n, f) => n + f.write_failures_quiet, 0),
    archive_alerted: figures.filter((f) => f.archive_alert_s !== null).length,
    runs_detail: figures,
  };
  if (values.json) {
    process.stdout.write(`${JSON.stringify(summary)}\n`);
    return;
  }
  const cell = (v: number | null | boolean) => (v === null ? '-' : String(v));
  process.stdout.write(
    `${markdownTable(
      [
        'run',
        'warned s before full',
        'predict_linear: s before',
        'primary moved s before',
        'false alarms, cluster starting (ours / predict_linear)',
        'false alarms, quiet run (ours / predict_linear)',
        'other alerts',
        'writes',
        'failed (fill / quiet)',
        'longest write ms',
        'archive broken: alert s after (ours / increase > 0)',
        'resolved s after repair',
      ],
      figures.map((f) => [
        String(f.run),
        cell(f.lead_s),
        cell(f.lead_s_predict_linear),
        cell(f.moved_lead_s),
        `${f.start_false_alarms} / ${f.start_false_alarms_predict_linear}`,
        `${f.quiet_false_alarms} / ${f.quiet_false_alarms_predict_linear}`,
        cell(f.other_alerts),
        cell(f.writes),
        `${f.write_failures} / ${f.write_failures_quiet}`,
        cell(f.longest_write_ms),
        `${cell(f.archive_alert_s)} / ${cell(f.archive_alert_s_peer)}`,
        cell(f.archive_resolved_s),
      ]),
      1,
    )}\n\nrecall ${summary.recall}, precision ${cell(summary.precision)}, primary moved before the quota in ${summary.primary_moved_before_quota}/${runs} runs, ${summary.write_failures} failed writes during the fills (${summary.write_failures_quiet} during the quiet runs)\n`,
  );
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
