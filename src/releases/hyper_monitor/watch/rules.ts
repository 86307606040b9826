/**
 * What the watch program looks for in Prometheus, and how a forecast becomes an alert. Pure: series in, alerts out.
 *
 * Each rule reads one resource series and its limit, and asks src/maintenance/time-to-threshold.ts when the
 * forecast (Holt-Winters with a daily season once two days of history exist, Holt's trend before) reaches it:
 *
 * | rule              | series                                   | limit                                 |
 * | ----------------- | ---------------------------------------- | ------------------------------------- |
 * | `disk-full`       | `hox_partition_disk_bytes`               | `hox_partition_disk_limit_bytes`      |
 * | `memory-full`     | `hox_partition_memory_working_set_bytes` | `hox_partition_memory_limit_bytes`    |
 * | `filesystem-full` | `hox_node_filesystem_available_bytes`    | 0 (falling)                           |
 * | `inodes-full`     | `hox_node_filesystem_files_free`         | 0 (falling)                           |
 * | `connections-full`| `hyperdb_connections`                    | `hyperdb_max_connections`             |
 * | `standby-behind`  | `hyperdb_replication_lag_bytes`          | `hyperdb_wal_keep_bytes`              |
 *
 * A forecast reaching the limit within `criticalS` is critical, within `warningS` a warning. An open alert stays
 * open until its forecast is past 1.25 × `warningS` (no flapping at the edge).
 *
 * A trend needs history: a series with fewer than {@link MIN_STEPS} grid steps is not judged, and a forecast
 * looks no further ahead than {@link MAX_EXTRAPOLATION} times the history it rests on. Without that, a service
 * starting (PostgreSQL's first files and buffers: hundreds of MiB in seconds) was forecast to fill its partition
 * within a minute, and the primary was moved for nothing (found by test-long/hyper-monitor-remediation.test.ts).
 *
 * And a forecast must hold: an alert is reported once its rule has fired at every evaluation for
 * {@link FOR_STEPS} steps (Prometheus's `for:`), see {@link confirmAlerts}. A level shift (a standby promoted, its
 * memory jumping by a hundred MiB) looks like a steep trend for a few steps, until the level holds
 * (bench/maintenance/online.ts saw one forecast to fill 2 GiB in 3 minutes).
 *
 * Not every rule is a forecast: `wal-archive-failing` ({@link judgeArchiving}) reports a hyper_db member whose WAL
 * archiving fails now.
 */
import { timeToThreshold } from '../../../maintenance/time-to-threshold.js';
import { durationText } from '../../../shared/duration-text.js';
import type { RangeSeries } from '../../../shared/prometheus-api.js';
import type { AlertSeverity, ReportedAlert } from '../protocol.js';

export type { RangeSeries };

export interface Rule {
  name: string;
  /** The resource series (PromQL). */
  query: string;
  /** The limit's series, matched on `match` labels; absent: the limit is `floor`. */
  limitQuery?: string;
  floor?: number;
  direction: 'rising' | 'falling';
  /** Labels naming one resource. */
  match: readonly string[];
  what: string;
}

export const RULES: readonly Rule[] = [
  {
    name: 'disk-full',
    query: 'hox_partition_disk_bytes',
    limitQuery: 'hox_partition_disk_limit_bytes',
    direction: 'rising',
    match: ['node', 'partition'],
    what: 'disk quota',
  },
  {
    name: 'memory-full',
    // Not hox_partition_memory_bytes: its page cache grows to the limit under any steady write load, and the
    // kernel reclaims it there instead of killing (a false alarm for every database).
    query: 'hox_partition_memory_working_set_bytes',
    limitQuery: 'hox_partition_memory_limit_bytes',
    direction: 'rising',
    match: ['node', 'partition'],
    what: 'memory limit',
  },
  {
    name: 'filesystem-full',
    query: 'hox_node_filesystem_available_bytes',
    floor: 0,
    direction: 'falling',
    match: ['node', 'path'],
    what: 'filesystem space',
  },
  {
    name: 'inodes-full',
    query: 'hox_node_filesystem_files_free',
    floor: 0,
    direction: 'falling',
    match: ['node', 'path'],
    what: 'filesystem inodes',
  },
  {
    name: 'connections-full',
    // A hyper_db member's client connections against its max_connections: past it, new clients are refused.
    query: 'hyperdb_connections',
    limitQuery: 'hyperdb_max_connections',
    direction: 'rising',
    match: ['node', 'partition'],
    what: 'connections',
  },
  {
    name: 'standby-behind',
    // A hyper_db standby's lag against the WAL its primary keeps for it (wal_keep_size, no replication slots):
    // past it, the standby cannot stream any more.
    query: 'hyperdb_replication_lag_bytes',
    limitQuery: 'hyperdb_wal_keep_bytes',
    direction: 'rising',
    match: ['node', 'partition'],
    what: 'WAL kept for the standby',
  },
];

/** The series {@link judgeArchiving} reads (a hyper_db member's, relayed by its node). */
export const ARCHIVING_QUERIES = {
  failedAt: 'hyperdb_wal_last_archive_failure_timestamp_seconds',
  archivedAt: 'hyperdb_wal_last_archived_timestamp_seconds',
  failures: 'hyperdb_wal_archive_failed_total',
} as const;
/**
 * The hold of `wal-archive-failing`, in steps, shorter than a forecast's: PostgreSQL tries a failed segment 3 times
 * a second apart, then again a minute later, so at the default step (a 72-hour window over 3 000 points: 87 s)
 * this is a failure that outlived several retry cycles, about 7 minutes, while a one-off failure the next attempt
 * repairs is never reported.
 */
export const ARCHIVING_FOR_STEPS = 5;
/** A failure older than this, never followed by a success, is not judged (its member stopped reporting it). */
export const ARCHIVING_RECENT_S = 600;

/**
 * `wal-archive-failing`, a fact rather than a forecast: a hyper_db member whose last attempt to archive a WAL
 * segment failed after its last success (PostgreSQL retries a failed segment every minute or so, so a failure not
 * followed by a success is still failing). Critical: nothing written since reaches the backups, point-in-time
 * recovery stops at the last archived segment, and the primary keeps every segment not archived in pg_wal, so its
 * disk fills at the pace of its writes. It resolves with the first success. It is held as forecasts are
 * (confirmAlerts), for {@link ARCHIVING_FOR_STEPS} steps only.
 */
export function judgeArchiving(
  series: { failedAt: readonly RangeSeries[]; archivedAt: readonly RangeSeries[]; failures: readonly RangeSeries[] },
  options: Pick<JudgeOptions, 'nowMs'>,
): ReportedAlert[] {
  const last = (list: readonly RangeSeries[]) => {
    const out = new Map<string, { metric: Record<string, string>; value: number }>();
    for (const s of list) {
      const point = s.values.at(-1);
      if (point !== undefined) out.set(memberKey(s.metric), { metric: s.metric, value: Number(point[1]) });
    }
    return out;
  };
  const archived = last(series.archivedAt);
  const failures = last(series.failures);
  const alerts: ReportedAlert[] = [];
  for (const [key, failed] of last(series.failedAt)) {
    const { node, partition } = failed.metric;
    if (node === undefined || partition === undefined || !Number.isFinite(failed.value)) continue;
    const success = archived.get(key)?.value;
    if (success !== undefined && success >= failed.value) continue;
    if (options.nowMs / 1000 - failed.value > ARCHIVING_RECENT_S) continue;
    const tree =
      failed.metric['tree'] === undefined ? '' : ` (${failed.metric['tree']}/${failed.metric['instance'] ?? ''})`;
    alerts.push({
      key: `wal-archive-failing:${key}`,
      rule: 'wal-archive-failing',
      severity: 'critical',
      resource: { node, partition },
      summary:
        `WAL archiving fails on ${node} partition ${partition}${tree}` +
        (success === undefined ? ', and never succeeded' : ` since ${new Date(success * 1000).toISOString()}`) +
        ': backups miss what was written since, and pg_wal grows',
      eta_ms: null,
      eta_earliest_ms: null,
      eta_latest_ms: null,
      evidence: {
        last_failure: new Date(failed.value * 1000).toISOString(),
        last_success: success === undefined ? null : new Date(success * 1000).toISOString(),
        failures: failures.get(key)?.value ?? null,
        query: ARCHIVING_QUERIES.failedAt,
      },
    });
  }
  return alerts;
}

function memberKey(metric: Record<string, string>): string {
  return `node=${metric['node'] ?? ''},partition=${metric['partition'] ?? ''}`;
}

export const MIN_STEPS = 30;
export const FOR_STEPS = 15;
export const MAX_EXTRAPOLATION = 3;
const RESOLVE_FACTOR = 1.25;

export interface JudgeOptions {
  nowMs: number;
  stepS: number;
  warningS: number;
  criticalS: number;
  /** Keys open after the previous evaluation (they resolve later than they open). */
  open: ReadonlySet<string>;
}

export function alertKey(rule: Rule, metric: Record<string, string>): string {
  return `${rule.name}:${rule.match.map((l) => `${l}=${metric[l] ?? ''}`).join(',')}`;
}

/** Alerts for one rule, from its series and (when it has one) its limits' series. */
export function judgeRule(
  rule: Rule,
  series: readonly RangeSeries[],
  limits: readonly RangeSeries[],
  options: JudgeOptions,
): ReportedAlert[] {
  const limitOf = new Map<string, number>();
  for (const l of limits) {
    const last = l.values.at(-1);
    if (last !== undefined) limitOf.set(alertKey(rule, l.metric), Number(last[1]));
  }
  const alerts: ReportedAlert[] = [];
  for (const s of series) {
    const key = alertKey(rule, s.metric);
    const node = s.metric['node'];
    if (node === undefined || node === '') continue;
    const threshold = rule.limitQuery === undefined ? (rule.floor ?? 0) : limitOf.get(key);
    // No limit known, or none set (a limit of 0).
    if (threshold === undefined || !Number.isFinite(threshold) || (rule.direction === 'rising' && threshold <= 0))
      continue;
    const samples = s.values.map(([t, v]) => ({ tMs: t * 1000, value: Number(v) }));
    if (samples.length < MIN_STEPS) continue;
    const wasOpen = options.open.has(key);
    const horizonS = wasOpen ? options.warningS * RESOLVE_FACTOR : options.warningS;
    const forecast = timeToThreshold(samples, threshold, {
      horizonMs: horizonS * 1000,
      stepMs: options.stepS * 1000,
      direction: rule.direction,
    });
    if (forecast.etaMs === null) continue;
    const last = samples.at(-1)!;
    const lastMs = last.tMs;
    const etaMs = lastMs + forecast.etaMs;
    const inS = Math.max(0, (etaMs - options.nowMs) / 1000);
    const historyS = (lastMs - samples[0]!.tMs) / 1000;
    if (forecast.etaMs > 0 && inS > historyS * MAX_EXTRAPOLATION) continue;
    const severity: AlertSeverity = inS <= options.criticalS ? 'critical' : 'warning';
    const resource =
      rule.match[1] === 'partition'
        ? { node, partition: s.metric['partition'] ?? '' }
        : { node, path: s.metric['path'] ?? '' };
    const where = 'partition' in resource ? `partition ${resource.partition}` : `${resource.path}`;
    const tree = s.metric['tree'] === undefined ? '' : ` (${s.metric['tree']}/${s.metric['instance'] ?? ''})`;
    alerts.push({
      key,
      rule: rule.name,
      severity,
      resource,
      summary:
        forecast.etaMs === 0
          ? `${rule.what} reached on ${node} ${where}${tree}`
          : `${rule.what} of ${node} ${where}${tree} forecast to run out in ${durationText(inS)}`,
      eta_ms: Math.round(etaMs),
      eta_earliest_ms: forecast.earliestMs === null ? null : Math.round(lastMs + forecast.earliestMs),
      eta_latest_ms: forecast.latestMs === null ? null : Math.round(lastMs + forecast.latestMs),
      evidence: {
        model: forecast.model,
        samples: samples.length,
        history_s: Math.round(historyS),
        step_s: options.stepS,
        current: last.value,
        limit: threshold,
        per_hour: perHour(samples),
        query: rule.query,
      },
    });
  }
  return alerts;
}

/**
 * The alerts to report: those already open (reported before) as long as their rule fires, and new ones once their
 * rule has fired at every evaluation for `forMs`. `pending` (key → when it first fired, without a gap) is
 * updated in place: keys that stopped firing are dropped.
 */
export function confirmAlerts(
  firing: readonly ReportedAlert[],
  options: { nowMs: number; forMs: number; open: ReadonlySet<string>; pending: Map<string, number> },
): ReportedAlert[] {
  const { nowMs, forMs, open, pending } = options;
  const keys = new Set(firing.map((a) => a.key));
  for (const key of [...pending.keys()]) if (!keys.has(key)) pending.delete(key);
  return firing.filter((alert) => {
    if (!pending.has(alert.key)) pending.set(alert.key, nowMs);
    return open.has(alert.key) || nowMs - pending.get(alert.key)! >= forMs;
  });
}

/** The mean change per hour over the series (what a person checks a forecast against). */
function perHour(samples: readonly { tMs: number; value: number }[]): number {
  const first = samples[0]!;
  const last = samples.at(-1)!;
  const hours = (last.tMs - first.tMs) / 3_600_000;
  return hours > 0 ? Math.round((last.value - first.value) / hours) : 0;
}
