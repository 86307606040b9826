/**
 * A compute node's own metrics, read by its agent every 30 s and sent to the master (`hox.put.v1.node_metrics`),
 * which exposes them with the partitions' usage for Prometheus (`GET /metrics`, `src/master/http/metrics.ts`):
 * CPU time by mode (all cores together), load averages, memory (total and available, as the kernel counts it in
 * `/proc/meminfo`), and the space and inodes of each filesystem the node uses (its data directory's, and its
 * partitions' when they are elsewhere), once per filesystem.
 *
 * What predictive maintenance forecasts from (disk and inodes running out, memory) comes from here and from the
 * partitions' own usage (`isolate/usage-monitor.ts`).
 */
import { cpus, freemem, loadavg, totalmem } from 'node:os';
import { readFile, stat, statfs } from 'node:fs/promises';
import type { MasterClient, RequestOf } from '../client/master-client.js';

export type NodeMetrics = RequestOf<'reportNodeMetrics'>['metrics'];

/** `MemAvailable` of `/proc/meminfo` in bytes, or the free memory Node knows when there is none (not Linux). */
async function availableMemory(): Promise<number> {
  try {
    const match = /^MemAvailable:\s+(\d+) kB$/m.exec(await readFile('/proc/meminfo', 'utf8'));
    if (match !== null) return Number(match[1]) * 1024;
  } catch {
    // below
  }
  return freemem();
}

/** Reads the metrics; each path's filesystem once (paths on one device count once, under the first path). */
export async function collectNodeMetrics(paths: readonly string[]): Promise<NodeMetrics> {
  const ms = { user: 0, nice: 0, system: 0, idle: 0, irq: 0 };
  const cores = cpus();
  for (const { times } of cores) {
    ms.user += times.user;
    ms.nice += times.nice;
    ms.system += times.sys;
    ms.idle += times.idle;
    ms.irq += times.irq;
  }
  const [load1, load5, load15] = loadavg();
  const filesystems: NodeMetrics['filesystems'] = [];
  const seen = new Set<number>();
  for (const path of paths) {
    let device: number;
    try {
      device = (await stat(path)).dev;
    } catch {
      continue; // not there (yet): nothing to measure
    }
    if (seen.has(device)) continue;
    seen.add(device);
    const fs = await statfs(path);
    filesystems.push({
      path,
      size_bytes: fs.blocks * fs.bsize,
      free_bytes: fs.bfree * fs.bsize,
      available_bytes: fs.bavail * fs.bsize,
      files: fs.files,
      files_free: fs.ffree,
    });
  }
  return {
    cpus: cores.length,
    cpu_seconds: {
      user: ms.user / 1000,
      nice: ms.nice / 1000,
      system: ms.system / 1000,
      idle: ms.idle / 1000,
      irq: ms.irq / 1000,
    },
    load1: load1 ?? 0,
    load5: load5 ?? 0,
    load15: load15 ?? 0,
    memory_total_bytes: totalmem(),
    memory_available_bytes: await availableMemory(),
    filesystems,
  };
}

/**
 * Reads and sends the node's metrics, with what its partitions' services expose (`partition-metrics.ts`); a
 * failure is logged, and the next period tries again.
 */
export async function reportNodeMetrics(
  client: MasterClient,
  nodeId: string,
  paths: readonly string[],
  log: (message: string) => void,
  partitions?: () => Promise<NonNullable<NodeMetrics['partitions']>>,
): Promise<void> {
  try {
    const metrics = await collectNodeMetrics(paths);
    const relayed = partitions === undefined ? [] : await partitions();
    await client.call('reportNodeMetrics', {
      computer_guid: nodeId,
      metrics: relayed.length > 0 ? { ...metrics, partitions: relayed } : metrics,
    });
  } catch (error) {
    log(`node metrics not reported: ${(error as Error).message}`);
  }
}
