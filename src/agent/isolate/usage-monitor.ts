/**
 * Watches what partitions use of what the cgroups cannot limit: disk and log
 * space. Every `logCheckIntervalMs` it rotates the service logs past their
 * cap; every `diskCheckIntervalMs` it measures each partition's disk usage,
 * and when a partition goes over its quota (or back under it) it says so, so
 * the agent converges that partition again (which stops or restarts its
 * services: see `PartitionProcessor`). It also knows each partition's current
 * limits, set by the last convergence.
 */
import type { PartitionLimits } from '../../release-kit/types.js';
import type { FormattedPartition } from '../format/partition-formatter.js';
import { applyLimits, readCgroupUsage, type CgroupUsage, type ResolvedLimits } from './partition-cgroups.js';
import { diskQuotaProblem, diskUsageBytes } from './disk-quota.js';
import { resolveLimits } from './partition-limits.js';
import { rotateLogs } from './log-rotation.js';

export interface UsageMonitorOptions {
  partitions: () => readonly FormattedPartition[];
  /** Where the supervisor writes a partition's service logs. */
  logDir: (partitionId: string) => string;
  /** A partition's limits until its plan says otherwise. */
  defaults: ResolvedLimits;
  /** A partition went over its disk quota, or came back under it. */
  onQuotaChange: (partitionId: string, problem: string | null) => void;
  /** Every partition's disk was measured (every `diskCheckIntervalMs`): usage may be reported. */
  onMeasured?: () => void;
  log: (message: string) => void;
  /** @default 1000 */
  logCheckIntervalMs?: number;
  /** @default 30000 */
  diskCheckIntervalMs?: number;
  clock: { nowMs(): number };
}

/** What `hox show`-like views say about a partition. */
export interface PartitionUsage extends CgroupUsage {
  limits: ResolvedLimits;
  diskBytes: number | undefined;
  /** When the disk was measured (clock ms). */
  diskMeasuredAtMs: number | undefined;
}

export class PartitionUsageMonitor {
  readonly #options: UsageMonitorOptions;
  readonly #limits = new Map<string, ResolvedLimits>();
  readonly #disk = new Map<string, { bytes: number; atMs: number }>();
  readonly #problems = new Map<string, string>();
  #timers: NodeJS.Timeout[] = [];
  #busy = { logs: false, disk: false };

  constructor(options: UsageMonitorOptions) {
    this.#options = options;
  }

  get defaults(): ResolvedLimits {
    return this.#options.defaults;
  }

  start(): void {
    this.#timers = [
      setInterval(() => void this.#tick('logs', () => this.rotateAll()), this.#options.logCheckIntervalMs ?? 1000),
      setInterval(
        () =>
          void this.#tick('disk', async () => {
            await this.measureAll();
            this.#options.onMeasured?.();
          }),
        this.#options.diskCheckIntervalMs ?? 30_000,
      ),
    ];
    for (const timer of this.#timers) timer.unref();
  }

  stop(): void {
    for (const timer of this.#timers) clearInterval(timer);
    this.#timers = [];
  }

  /**
   * At each convergence, before any process starts: the plan's limits over the node's, written to
   * the partition's cgroups; then a fresh disk measurement. Returns the quota problem, or null.
   */
  async enforce(partition: FormattedPartition, planLimits: PartitionLimits | undefined): Promise<string | null> {
    const limits = resolveLimits(this.#options.defaults, planLimits);
    if (partition.cgroups !== undefined) await applyLimits(partition.cgroups, limits);
    this.#limits.set(partition.partitionId, limits);
    return this.#measure(partition, false);
  }

  /** The partition was wiped: back to the node's limits, nothing measured. */
  forget(partitionId: string): void {
    this.#limits.delete(partitionId);
    this.#disk.delete(partitionId);
    this.#problems.delete(partitionId);
  }

  limits(partitionId: string): ResolvedLimits {
    return this.#limits.get(partitionId) ?? this.#options.defaults;
  }

  /** Limits and usage now (memory and processes read fresh; disk as last measured). */
  async usage(partition: FormattedPartition): Promise<PartitionUsage> {
    const cgroup =
      partition.cgroups === undefined
        ? { memoryBytes: undefined, memoryWorkingSetBytes: undefined, pids: undefined, oomKills: undefined }
        : await readCgroupUsage(partition.cgroups);
    const disk = this.#disk.get(partition.partitionId);
    return {
      ...cgroup,
      limits: this.limits(partition.partitionId),
      diskBytes: disk?.bytes,
      diskMeasuredAtMs: disk?.atMs,
    };
  }

  async rotateAll(): Promise<void> {
    for (const partition of this.#options.partitions()) {
      const rotated = await rotateLogs(
        this.#options.logDir(partition.partitionId),
        this.limits(partition.partitionId).logBytes,
      );
      if (rotated.length > 0) this.#options.log(`partition ${partition.partitionId}: rotated ${rotated.join(', ')}`);
    }
  }

  async measureAll(): Promise<void> {
    for (const partition of this.#options.partitions()) await this.#measure(partition, true);
  }

  async #measure(partition: FormattedPartition, notify: boolean): Promise<string | null> {
    const { partitionId } = partition;
    const paths = [partition.path, ...(partition.privateDirs === undefined ? [] : [partition.privateDirs.tmpDir])];
    const bytes = await diskUsageBytes(paths);
    this.#disk.set(partitionId, { bytes, atMs: this.#options.clock.nowMs() });
    const problem = diskQuotaProblem(partitionId, bytes, this.limits(partitionId).diskBytes);
    const before = this.#problems.get(partitionId) ?? null;
    if (problem === null) this.#problems.delete(partitionId);
    else this.#problems.set(partitionId, problem);
    if (notify && (problem === null) !== (before === null)) this.#options.onQuotaChange(partitionId, problem);
    return problem;
  }

  async #tick(kind: 'logs' | 'disk', work: () => Promise<void>): Promise<void> {
    if (this.#busy[kind]) return;
    this.#busy[kind] = true;
    try {
      await work();
    } catch (error) {
      this.#options.log(`usage monitor (${kind}): ${error instanceof Error ? error.message : String(error)}`);
    } finally {
      this.#busy[kind] = false;
    }
  }
}
