/**
 * Anomalies as alerts: the streaming detector scored on NAB (src/maintenance/anomaly-detector.ts) run on the
 * platform's own series, one detector per series, fed each point once, in order, as the watch program reads them
 * back from Prometheus (the first time a series is seen, its whole window: the detector learns from it).
 *
 * A point the detector reports (a score at its report level: the strong tier, not the weak one NAB's standard
 * profile also counts) opens an `anomaly` alert on the series' partition for {@link ANOMALY_HOLD_STEPS} steps,
 * a warning with no ETA: something unusual happened, here is the value and what the series usually does. Two more
 * conditions keep the alerts to what matters, as the series are all harmful when high: the value must be past the
 * series' `floor` (a standby 2 MiB behind is unusual for a calm cluster and harmless), and at least
 * {@link ANOMALY_RATIO} times the 95th percentile of its last values. The detector alone, on a calm series of
 * Gaussian noise (10 % around its level), reports once every 500 steps or so (8 hours at 1-minute steps); no
 * such wobble doubles a series' usual high.
 *
 * | rule series             | query                                         | floor                               |
 * | ----------------------- | --------------------------------------------- | ----------------------------------- |
 * | `standby-replay-lag`    | `hyperdb_standby_replay_lag_bytes` (primary)  | 16 MiB (one WAL segment)            |
 * | `connections`           | `hyperdb_connections / hyperdb_max_connections` | 0.5 (half the connections in use) |
 * | `wal-rate`              | `rate(hyperdb_wal_position_bytes[1m])`        | 1 MiB/s                             |
 * | `edge-latency`          | a hyper_edge replica's 95th percentile latency | 250 ms                             |
 * | `edge-errors`           | its share of 5xx answers                      | 5 %                                 |
 */
import { AnomalyDetector, DEFAULT_DETECTOR_OPTIONS } from '../../../maintenance/anomaly-detector.js';
import type { RangeSeries } from '../../../shared/prometheus-api.js';
import type { ReportedAlert } from '../protocol.js';

export interface AnomalySeries {
  /** Names the alert's key: `anomaly:<name>:node=…,partition=…[,<extra label>=…]`. */
  name: string;
  query: string;
  /** What the value is, for the summary. */
  what: string;
  /** Below it (in the query's unit) nothing is alerted, however unusual. */
  floor: number;
  format: (value: number) => string;
  /** A label beyond node and partition naming the series (a standby, seen from its primary). */
  extraLabel?: string;
}

const MiB = 1024 * 1024;
const mib = (v: number) => `${(v / MiB).toFixed(v < 10 * MiB ? 1 : 0)} MiB`;

export const ANOMALY_SERIES: readonly AnomalySeries[] = [
  {
    name: 'standby-replay-lag',
    query: 'hyperdb_standby_replay_lag_bytes',
    what: 'replay lag',
    floor: 16 * MiB,
    format: mib,
    extraLabel: 'standby',
  },
  {
    name: 'connections',
    query: 'hyperdb_connections / hyperdb_max_connections',
    what: 'share of connections in use',
    floor: 0.5,
    format: (v) => `${Math.round(v * 100)} %`,
  },
  {
    name: 'edge-latency',
    query:
      'histogram_quantile(0.95, sum by (node, partition, tree, instance, le) (rate(hyperedge_request_duration_seconds_bucket[1m])))',
    what: '95th percentile latency',
    floor: 0.25,
    format: (v) => (v < 1 ? `${Math.round(v * 1000)} ms` : `${v.toFixed(1)} s`),
  },
  {
    name: 'edge-errors',
    query:
      'sum by (node, partition, tree, instance) (rate(hyperedge_requests_total{code=~"5.."}[1m])) / sum by (node, partition, tree, instance) (rate(hyperedge_requests_total[1m]))',
    what: 'share of 5xx answers',
    floor: 0.05,
    format: (v) => `${Math.round(v * 100)} %`,
  },
  {
    name: 'wal-rate',
    query: 'rate(hyperdb_wal_position_bytes[1m])',
    what: 'WAL written',
    floor: MiB,
    format: (v) => `${mib(v)}/s`,
  },
];

/** How long (in steps) an alert stays open after the point the detector reported. */
export const ANOMALY_HOLD_STEPS = 30;
/** The score of a report (DEFAULT_DETECTOR_OPTIONS.reportRatio: z = 1.25 × the series' usual z scores 1.25 / 2.25). */
export const ANOMALY_SCORE = DEFAULT_DETECTOR_OPTIONS.reportRatio / (DEFAULT_DETECTOR_OPTIONS.reportRatio + 1);
/** A reported value must also be at least this many times the 95th percentile of the values before it. */
export const ANOMALY_RATIO = 2;
/** Values kept per series to say what it usually does. */
const USUAL_VALUES = 1000;

interface Tracked {
  detector: AnomalyDetector;
  /** The last point fed (seconds). */
  lastS: number;
  recent: number[];
  /** The last report: when (seconds), its value and score, and what was usual then. */
  report: { atS: number; value: number; score: number; p50: number; p95: number } | null;
  metric: Record<string, string>;
}

function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.round(q * (sorted.length - 1))))]!;
}

/** The detectors of the watch program's lifetime, one per series. */
export class AnomalyWatch {
  readonly #tracked = new Map<string, Tracked>();

  /**
   * Feeds each series the points after the last one it was fed, and returns the alerts open now. `series` is what
   * Prometheus answered for `spec.query` over the watch window; a series missing for longer than `forgetS` is
   * forgotten (its detector with it).
   */
  judge(
    spec: AnomalySeries,
    series: readonly RangeSeries[],
    options: { nowMs: number; stepS: number; forgetS: number },
  ): ReportedAlert[] {
    const nowS = options.nowMs / 1000;
    const alerts: ReportedAlert[] = [];
    for (const s of series) {
      const node = s.metric['node'];
      const partition = s.metric['partition'];
      if (node === undefined || partition === undefined) continue;
      const extra = spec.extraLabel === undefined ? '' : `,${spec.extraLabel}=${s.metric[spec.extraLabel] ?? ''}`;
      const key = `anomaly:${spec.name}:node=${node},partition=${partition}${extra}`;
      let t = this.#tracked.get(key);
      if (t === undefined) {
        t = { detector: new AnomalyDetector(), lastS: -Infinity, recent: [], report: null, metric: s.metric };
        this.#tracked.set(key, t);
      }
      t.metric = s.metric;
      for (const [atS, text] of s.values) {
        if (atS <= t.lastS) continue;
        const value = Number(text);
        t.lastS = atS;
        if (!Number.isFinite(value)) continue;
        const score = t.detector.update(value, atS * 1000);
        if (score >= ANOMALY_SCORE && value >= spec.floor) {
          const before = [...t.recent].sort((a, b) => a - b);
          const p95 = quantile(before, 0.95);
          if (!(value < ANOMALY_RATIO * p95)) t.report = { atS, value, score, p50: quantile(before, 0.5), p95 };
        }
        t.recent.push(value);
        if (t.recent.length > USUAL_VALUES) t.recent.shift();
      }
      const r = t.report;
      if (r === null || nowS - r.atS > ANOMALY_HOLD_STEPS * options.stepS) continue;
      const tree = s.metric['tree'] === undefined ? '' : ` (${s.metric['tree']}/${s.metric['instance'] ?? ''})`;
      const of = spec.extraLabel === undefined ? '' : ` for ${spec.extraLabel} ${s.metric[spec.extraLabel] ?? ''}`;
      alerts.push({
        key,
        rule: 'anomaly',
        severity: 'warning',
        resource: { node, partition },
        summary: `unusual ${spec.what}${of} on ${node} partition ${partition}${tree}: ${spec.format(r.value)}, where half the last values were below ${spec.format(r.p50)} and 95 % below ${spec.format(r.p95)}`,
        eta_ms: null,
        eta_earliest_ms: null,
        eta_latest_ms: null,
        evidence: {
          model: 'streaming anomaly detector (anomaly-detector.ts)',
          series: spec.name,
          at: new Date(r.atS * 1000).toISOString(),
          value: r.value,
          score: Math.round(r.score * 1000) / 1000,
          usual_median: r.p50,
          usual_p95: r.p95,
          floor: spec.floor,
          query: spec.query,
        },
      });
    }
    for (const [key, t] of this.#tracked)
      if (key.startsWith(`anomaly:${spec.name}:`) && nowS - t.lastS > options.forgetS) this.#tracked.delete(key);
    return alerts;
  }
}
