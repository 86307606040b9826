/**
 * The master's `GET /metrics`, in the Prometheus text format (prom-client), for the admin's token only (Prometheus:
 * `authorization: { credentials: <admin token> }`):
 *
 * - the API: requests by route and status, and their durations (a histogram), counted by this master since it
 *   started;
 * - compute nodes: seconds since their last contact, and their own metrics as they last reported them (CPU time,
 *   load, memory, each filesystem's space and inodes: `src/agent/node-metrics.ts`);
 * - partitions: memory, processes and disk used and their limits, and each promise's last result, labelled with the
 *   node, the partition, the instance tree and the instance (as `hox show` reads them), and the tree's owner (its
 *   id: two users' trees may share a title);
 * - what partitions' services expose themselves (a hyper_db member's lag, WAL and commits), relayed by their
 *   nodes from `.hox/metrics.prom` and labelled the same way (`relayed-metrics.ts`).
 *
 * Node and partition series come from the store, read at each scrape: every master of one PostgreSQL store
 * answers the same. The series predictive maintenance forecasts (disk and inodes filling, memory) are these.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Body } from '../../protocol/schemas.js';
import type { Clock } from '../../shared/clock.js';
import type { InstanceRow, StoreTx } from '../../store/store.js';
import { relayedMetricsText } from './relayed-metrics.js';

/** Relayed series of a node that has not reported for this long are left out. */
const RELAYED_STALE_MS = 5 * 60_000;

/** The API's counters, one per HTTP server. */
export class ApiMetrics {
  readonly registry = new Registry();
  readonly #requests = new Counter({
    name: 'hox_api_requests_total',
    help: 'API requests answered, by route and HTTP status.',
    labelNames: ['route', 'status'],
    registers: [this.registry],
  });
  readonly #durations = new Histogram({
    name: 'hox_api_request_duration_seconds',
    help: 'Time to answer an API request, by route (long-polls included).',
    labelNames: ['route'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });

  /** `route` is the registered path (a bounded set), `unmatched` for anything else. */
  observe(route: string, status: number, seconds: number): void {
    this.#requests.inc({ route, status: String(status) });
    this.#durations.observe({ route }, seconds);
  }
}

/** The node and partition series, from the store as this transaction sees it. */
export async function storeMetrics(tx: StoreTx, clock: Clock): Promise<string> {
  const registry = new Registry();
  const gauge = (name: string, help: string, labelNames: string[]) =>
    new Gauge({ name, help, labelNames, registers: [registry] });
  const lastContact = gauge('hox_node_last_contact_age_seconds', 'Seconds since the node last called the master.', [
    'node',
  ]);
  const cpus = gauge('hox_node_cpus', 'Cores of the node.', ['node']);
  const cpuSeconds = new Counter({
    name: 'hox_node_cpu_seconds_total',
    help: 'CPU time since the node booted, all cores together, by mode.',
    labelNames: ['node', 'mode'],
    registers: [registry],
  });
  const load = gauge('hox_node_load', 'Load average over 1, 5 and 15 minutes.', ['node', 'minutes']);
  const memoryTotal = gauge('hox_node_memory_total_bytes', 'Memory of the node.', ['node']);
  const memoryAvailable = gauge('hox_node_memory_available_bytes', 'Memory available (MemAvailable).', ['node']);
  const fsSize = gauge('hox_node_filesystem_size_bytes', 'Size of a filesystem the node uses.', ['node', 'path']);
  const fsAvailable = gauge('hox_node_filesystem_available_bytes', 'Space free to unprivileged users.', [
    'node',
    'path',
  ]);
  const fsFiles = gauge('hox_node_filesystem_files', 'Inodes of the filesystem.', ['node', 'path']);
  const fsFilesFree = gauge('hox_node_filesystem_files_free', 'Free inodes of the filesystem.', ['node', 'path']);
  const reportAge = gauge('hox_node_metrics_age_seconds', "Seconds since the node's metrics were reported.", ['node']);

  const nowMs = clock.nowMs();
  const nodes = await tx.listNodes();
  for (const node of nodes)
    if (node.lastContactAtMs !== null)
      lastContact.set({ node: node.id }, Math.max(0, (nowMs - node.lastContactAtMs) / 1000));
  const nodeReports = await tx.listNodeMetrics();
  for (const row of nodeReports) {
    const node = row.nodeId;
    const m = row.metrics as unknown as Body<'nodeMetricsReport'>['metrics'];
    reportAge.set({ node }, Math.max(0, (nowMs - row.reportedAtMs) / 1000));
    cpus.set({ node }, m.cpus);
    for (const [mode, seconds] of Object.entries(m.cpu_seconds)) cpuSeconds.inc({ node, mode }, seconds);
    load.set({ node, minutes: '1' }, m.load1);
    load.set({ node, minutes: '5' }, m.load5);
    load.set({ node, minutes: '15' }, m.load15);
    memoryTotal.set({ node }, m.memory_total_bytes);
    memoryAvailable.set({ node }, m.memory_available_bytes);
    for (const fs of m.filesystems) {
      fsSize.set({ node, path: fs.path }, fs.size_bytes);
      fsAvailable.set({ node, path: fs.path }, fs.available_bytes);
      fsFiles.set({ node, path: fs.path }, fs.files);
      fsFilesFree.set({ node, path: fs.path }, fs.files_free);
    }
  }

  // `owner` (the tree owner's id) tells apart two users' trees of one title: hox metrics selects on both.
  const labels = ['node', 'partition', 'tree', 'instance', 'owner'];
  const partition = {
    memory: gauge('hox_partition_memory_bytes', "Memory the partition's processes use.", labels),
    memoryLimit: gauge('hox_partition_memory_limit_bytes', "The partition's memory limit.", labels),
    workingSet: gauge(
      'hox_partition_memory_working_set_bytes',
      'Memory the partition cannot give back: its memory less the inactive page cache.',
      labels,
    ),
    pids: gauge('hox_partition_pids', 'Processes and threads of the partition.', labels),
    disk: gauge('hox_partition_disk_bytes', 'Disk the partition uses (its directory and /tmp).', labels),
    diskLimit: gauge('hox_partition_disk_limit_bytes', "The partition's disk quota.", labels),
    oomKills: gauge('hox_partition_oom_kills', 'Processes the kernel killed for memory in the partition.', labels),
  };
  const promise = gauge(
    'hox_promise_ok',
    "1 when the promise's last check passed, 0 when it failed (never run: absent).",
    [...labels, 'promise'],
  );
  const instances = new Map<string, InstanceRow>();
  for (const node of nodes) for (const i of await tx.listNodeInstances(node.id)) instances.set(i.id, i);
  const trees = new Map<string, { title: string; ownerId: string }>();
  const labelsOf = async (row: { instanceId: string; nodeId: string; partitionId: string }) => {
    const instance = instances.get(row.instanceId);
    if (instance === undefined) return undefined;
    if (!trees.has(instance.treeId)) {
      const tree = await tx.getTree(instance.treeId);
      trees.set(instance.treeId, { title: tree?.title ?? '', ownerId: tree?.ownerId ?? '' });
    }
    const tree = trees.get(instance.treeId)!;
    return {
      node: row.nodeId,
      partition: row.partitionId,
      tree: tree.title,
      instance: instance.title,
      owner: tree.ownerId,
    };
  };
  for (const row of await tx.listPromiseResults([...instances.keys()])) {
    const l = await labelsOf(row);
    if (l === undefined) continue;
    for (const result of row.results)
      if (result.result !== 'never_run') promise.set({ ...l, promise: result.name }, result.result === 'ok' ? 1 : 0);
  }
  for (const row of await tx.listPartitionUsage([...instances.keys()])) {
    const l = await labelsOf(row);
    if (l === undefined) continue;
    const set = (g: Gauge, value: number | null | undefined) => {
      if (typeof value === 'number') g.set(l, value);
    };
    set(partition.memory, row.usage['memory_bytes']);
    set(partition.workingSet, row.usage['memory_working_set_bytes']);
    set(partition.pids, row.usage['pids']);
    set(partition.disk, row.usage['disk_bytes']);
    set(partition.oomKills, row.usage['oom_kills']);
    set(partition.memoryLimit, row.limits['memory_bytes']);
    set(partition.diskLimit, row.limits['disk_bytes']);
  }
  // What partitions' services expose, relayed by their nodes, labelled as the series above are.
  const onPartition = new Map<string, InstanceRow>();
  for (const i of instances.values())
    if (i.nodeId !== null && i.partitionId !== null) onPartition.set(`${i.nodeId}/${i.partitionId}`, i);
  const relayedLabels = new Map<string, Awaited<ReturnType<typeof labelsOf>>>();
  // A node silent for 5 minutes: its services' figures are left out rather than repeated as if current.
  const reports = nodeReports
    .filter((row) => nowMs - row.reportedAtMs <= RELAYED_STALE_MS)
    .map((row) => ({
      nodeId: row.nodeId,
      partitions: (row.metrics as unknown as Body<'nodeMetricsReport'>['metrics']).partitions ?? [],
    }));
  for (const { nodeId, partitions } of reports)
    for (const p of partitions) {
      const instance = onPartition.get(`${nodeId}/${p.compute_partition_id}`);
      // Reported for the instance on it now only: a late report of the partition's previous tenant is left out.
      if (instance?.id === p.instance_guid)
        relayedLabels.set(
          `${nodeId}/${p.compute_partition_id}`,
          await labelsOf({ instanceId: instance.id, nodeId, partitionId: p.compute_partition_id }),
        );
    }
  const relayed = relayedMetricsText(reports, (nodeId, partitionId) => relayedLabels.get(`${nodeId}/${partitionId}`));
  return (await registry.metrics()) + relayed;
}
