/**
 * What hyper_monitor's profile hands its watch program (`watch.json`), and the alerts the program reports to the
 * master (`hox.put.v1.alerts`, whose schema is `alertReport` in src/protocol/schemas.ts).
 */

/** The files the node's agent writes for a plan with `masterAccess` (src/agent/master-access.ts). */
export const MASTER_DIR = 'master';

export interface WatchConfig {
  /** The partition's Prometheus (HTTPS, the sites CA's certificate for its address, basic auth). */
  prometheus: { url: string; user: string; passwordFile: string; caFile: string };
  /** The master, as the agent wrote it into the partition. */
  master: { urlFile: string; tokenFile: string; caFile: string; instanceFile: string };
  /** Seconds between two evaluations. */
  intervalS: number;
  /** How much history each forecast reads, in seconds. */
  windowS: number;
  /** The grid the history is read on (Prometheus `query_range` step), in seconds. */
  stepS: number;
  /** A resource forecast to run out within this many seconds is a warning… */
  warningS: number;
  /** …and within this many, critical. */
  criticalS: number;
}

export type AlertSeverity = 'warning' | 'critical';

/** One alert as the watch program reports it; the master resolves the resource to its node, partition, instance. */
export interface ReportedAlert {
  /** Stable while the condition lasts: the rule and the series (e.g. `disk-full:node=n1,partition=p3`). */
  key: string;
  rule: string;
  severity: AlertSeverity;
  /** What it is about: a node's filesystem (`node`, `path`) or a partition (`node`, `partition`). */
  resource: { node: string; partition?: string; path?: string };
  summary: string;
  /** When the limit is forecast to be reached (ms since the epoch), and the 95 % band's earliest and latest. */
  eta_ms: number | null;
  eta_earliest_ms: number | null;
  eta_latest_ms: number | null;
  /** What the judgement rests on: the model, the samples, the current value and the limit. */
  evidence: Record<string, string | number | boolean | null>;
}
