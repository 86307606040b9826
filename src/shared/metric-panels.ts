/**
 * What `hox metrics NODE|TREE` shows (the master's `hox.get.v1.metrics`, src/master/metrics-query.ts): the PromQL of
 * each panel, run on the platform's monitor over the period asked, one line per series.
 */

/** Points per series over the period asked. */
export const METRIC_POINTS = 60;

export interface Panel {
  title: string;
  query: string;
  /** Labels telling the series of one panel apart (e.g. `instance`, `path`). */
  by: string[];
  unit: 'bytes' | 'bytes/s' | 'ratio' | 'count' | 'rate' | 'seconds';
}

/** A PromQL string literal. */
export function quoted(value: string): string {
  return `"${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`;
}

export function nodePanels(node: string): Panel[] {
  const n = `node=${quoted(node)}`;
  return [
    {
      title: 'cpu busy',
      query: `1 - sum(rate(hox_node_cpu_seconds_total{${n},mode="idle"}[2m])) / sum(rate(hox_node_cpu_seconds_total{${n}}[2m]))`,
      by: [],
      unit: 'ratio',
    },
    { title: 'load (1 min)', query: `hox_node_load{${n},minutes="1"}`, by: [], unit: 'count' },
    { title: 'memory available', query: `hox_node_memory_available_bytes{${n}}`, by: [], unit: 'bytes' },
    { title: 'disk free', query: `hox_node_filesystem_available_bytes{${n}}`, by: ['path'], unit: 'bytes' },
  ];
}

/** `selector`: the label matchers naming one tree's series (its title and its owner). */
export function treePanels(selector: string): Panel[] {
  const t = selector;
  return [
    { title: 'disk', query: `hox_partition_disk_bytes{${t}}`, by: ['instance'], unit: 'bytes' },
    { title: 'memory', query: `hox_partition_memory_working_set_bytes{${t}}`, by: ['instance'], unit: 'bytes' },
    { title: 'processes', query: `hox_partition_pids{${t}}`, by: ['instance'], unit: 'count' },
    // A hyper_db cluster's members (what they relay through their nodes; other trees have none of these).
    { title: 'primary', query: `hyperdb_member_role{${t},role="primary"}`, by: ['instance'], unit: 'count' },
    { title: 'lag', query: `hyperdb_replication_lag_bytes{${t}}`, by: ['instance'], unit: 'bytes' },
    { title: 'commits/s', query: `rate(hyperdb_commits_total{${t}}[2m])`, by: ['instance'], unit: 'rate' },
    { title: 'connections', query: `hyperdb_connections{${t}}`, by: ['instance'], unit: 'count' },
    { title: 'WAL written/s', query: `rate(hyperdb_wal_position_bytes{${t}}[2m])`, by: ['instance'], unit: 'bytes/s' },
    // A hyper_edge app's replicas (what their runners count from their proxies' access logs).
    {
      title: 'requests/s',
      query: `sum by (instance) (rate(hyperedge_requests_total{${t}}[2m]))`,
      by: ['instance'],
      unit: 'rate',
    },
    {
      title: '5xx/s',
      query: `sum by (instance) (rate(hyperedge_requests_total{${t},code=~"5.."}[2m]))`,
      by: ['instance'],
      unit: 'rate',
    },
    {
      title: 'latency p95',
      query: `histogram_quantile(0.95, sum by (instance, le) (rate(hyperedge_request_duration_seconds_bucket{${t}}[2m])))`,
      by: ['instance'],
      unit: 'seconds',
    },
    {
      title: 'web restarts',
      query: `increase(hyperedge_web_restarts_total{${t}}[5m])`,
      by: ['instance'],
      unit: 'count',
    },
    {
      title: 'WAL archive failures',
      query: `increase(hyperdb_wal_archive_failed_total{${t}}[5m])`,
      by: ['instance'],
      unit: 'count',
    },
  ];
}
