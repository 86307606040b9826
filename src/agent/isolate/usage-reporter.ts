/**
 * Tells the master each busy partition's limits and usage
 * (`hox.put.v1.partition_usage`), which `hox show` displays.
 *
 * Asked after each convergence and after each disk measurement (every 30 s);
 * sends only the partitions whose report changed meaningfully since the last
 * one the master accepted (limits, what is enforced, an OOM kill, or a
 * quantity moving past its threshold, see {@link meaningfullyChanged}), and
 * every partition at least every `refreshMs` so the age `hox show` prints
 * stays true while the agent lives. Reports never overlap (asking during one
 * makes exactly one more), never block a convergence (callers do not wait),
 * and never throw: a failure is logged and the partitions go again next time.
 */
import type { MasterClient, RequestOf } from '../../client/master-client.js';
import { sendDroppingStale } from '../report-sender.js';
import type { FormattedPartition } from '../format/partition-formatter.js';
import type { PartitionUsage, PartitionUsageMonitor } from './usage-monitor.js';

export type UsageReportEntry = RequestOf<'reportPartitionUsage'>['partition_usage_list'][number];
type LimitName = UsageReportEntry['not_enforced'][number];

export interface UsageReporterOptions {
  nodeId: string;
  /** The node token's client. */
  client: MasterClient;
  partitions: () => readonly FormattedPartition[];
  /** The instance a partition hosts (not destroyed), or undefined. */
  instanceOn: (partitionId: string) => Promise<string | undefined>;
  monitor: Pick<PartitionUsageMonitor, 'usage'>;
  /** Why a partition without cgroups has no memory, cpu or pids limit (`node agent not root`). */
  noCgroupsReason: string;
  log: (message: string) => void;
  clock: { nowMs(): number };
  /** A partition's report is sent again after this long even if nothing changed. @default 300000 */
  refreshMs?: number;
}

const MiB = 1024 * 1024;

/** Past how much a quantity has moved for a new report: an absolute floor, or a fraction of the larger value. */
const THRESHOLDS = {
  memory_bytes: { floor: 4 * MiB, fraction: 0.1 },
  pids: { floor: 2, fraction: 0.1 },
  disk_bytes: { floor: 1 * MiB, fraction: 0.05 },
} as const;

function moved(before: number | null, after: number | null, threshold: { floor: number; fraction: number }): boolean {
  if (before === null || after === null) return before !== after;
  return Math.abs(after - before) > Math.max(threshold.floor, threshold.fraction * Math.max(before, after));
}

/**
 * Whether `next` says something `previous` did not: another instance or partition, other limits, other
 * enforcement, any new OOM kill, or memory, processes or disk moved past their threshold (memory and
 * processes wander by a little all the time; reporting each wobble would write every 30 s for nothing).
 * Ages are not compared: the periodic refresh keeps them honest. Pure.
 */
export function meaningfullyChanged(previous: UsageReportEntry | undefined, next: UsageReportEntry): boolean {
  if (previous === undefined) return true;
  if (previous.instance_guid !== next.instance_guid || previous.compute_partition_id !== next.compute_partition_id)
    return true;
  if (JSON.stringify(previous.limits) !== JSON.stringify(next.limits)) return true;
  if (JSON.stringify(previous.not_enforced) !== JSON.stringify(next.not_enforced)) return true;
  if (previous.not_enforced_reason !== next.not_enforced_reason) return true;
  if (previous.usage.oom_kills !== next.usage.oom_kills) return true;
  if (previous.disk_age_ms === null && next.disk_age_ms !== null) return true;
  return (
    moved(previous.usage.memory_bytes, next.usage.memory_bytes, THRESHOLDS.memory_bytes) ||
    moved(
      previous.usage.memory_working_set_bytes ?? null,
      next.usage.memory_working_set_bytes ?? null,
      THRESHOLDS.memory_bytes,
    ) ||
    moved(previous.usage.pids, next.usage.pids, THRESHOLDS.pids) ||
    moved(previous.usage.disk_bytes, next.usage.disk_bytes, THRESHOLDS.disk_bytes)
  );
}

/**
 * The limits a partition's cgroups do not enforce, and why: all three without cgroups (no partition users),
 * those whose v1 controller the machine lacks otherwise. Disk and log are the agent's own doing: always enforced.
 */
export function notEnforced(
  partition: Pick<FormattedPartition, 'cgroups'>,
  noCgroupsReason: string,
): { names: LimitName[]; reason: string | null } {
  const { cgroups } = partition;
  if (cgroups === undefined) return { names: ['memory_bytes', 'cpus', 'pids'], reason: noCgroupsReason };
  const missing: [LimitName, string][] = [];
  if (cgroups.v1.memory === undefined) missing.push(['memory_bytes', 'memory']);
  if (cgroups.v1.cpu === undefined) missing.push(['cpus', 'cpu']);
  if (cgroups.v1.pids === undefined) missing.push(['pids', 'pids']);
  if (missing.length === 0) return { names: [], reason: null };
  return {
    names: missing.map(([name]) => name),
    reason: `no ${missing.map(([, controller]) => controller).join(', ')} cgroup controller on this node`,
  };
}

/** One partition's report from the monitor's view of it. Pure. */
export function usageReportEntry(
  partition: Pick<FormattedPartition, 'partitionId' | 'cgroups'>,
  instanceGuid: string,
  usage: PartitionUsage,
  readAtMs: number,
  nowMs: number,
  noCgroupsReason: string,
): UsageReportEntry {
  const { names, reason } = notEnforced(partition, noCgroupsReason);
  const age = (atMs: number): number => Math.max(0, Math.round(nowMs - atMs));
  return {
    compute_partition_id: partition.partitionId,
    instance_guid: instanceGuid,
    limits: {
      memory_bytes: usage.limits.memoryBytes,
      cpus: usage.limits.cpus,
      pids: usage.limits.pids,
      disk_bytes: usage.limits.diskBytes,
      log_bytes: usage.limits.logBytes,
    },
    not_enforced: names,
    not_enforced_reason: reason,
    usage: {
      memory_bytes: usage.memoryBytes ?? null,
      memory_working_set_bytes: usage.memoryWorkingSetBytes ?? null,
      pids: usage.pids ?? null,
      oom_kills: usage.oomKills ?? null,
      disk_bytes: usage.diskBytes ?? null,
    },
    age_ms: age(readAtMs),
    disk_age_ms: usage.diskMeasuredAtMs === undefined ? null : age(usage.diskMeasuredAtMs),
  };
}

export class PartitionUsageReporter {
  readonly #options: UsageReporterOptions;
  /** The last report the master accepted, per partition, and when it was sent. */
  readonly #sent = new Map<string, { entry: UsageReportEntry; atMs: number }>();
  #running: Promise<void> | undefined;
  #again = false;
  #stopped = false;

  constructor(options: UsageReporterOptions) {
    this.#options = options;
  }

  /** Reports what changed, now or right after the report in flight. Never rejects. */
  request(): Promise<void> {
    if (this.#stopped) return Promise.resolve();
    if (this.#running !== undefined) {
      this.#again = true;
      return this.#running;
    }
    this.#running = (async () => {
      try {
        do {
          this.#again = false;
          await this.#report().catch((error: unknown) =>
            this.#options.log(
              `cannot report partition usage: ${error instanceof Error ? error.message : String(error)}`,
            ),
          );
        } while (this.#again && !this.#stopped);
      } finally {
        this.#running = undefined;
      }
    })();
    return this.#running;
  }

  /** No more reports; waits for the one in flight. */
  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#running;
  }

  async #report(): Promise<void> {
    const { clock, monitor, noCgroupsReason } = this.#options;
    const refreshMs = this.#options.refreshMs ?? 300_000;
    const due: UsageReportEntry[] = [];
    for (const partition of this.#options.partitions()) {
      const instanceGuid = await this.#options.instanceOn(partition.partitionId);
      if (instanceGuid === undefined) {
        this.#sent.delete(partition.partitionId);
        continue;
      }
      const readAtMs = clock.nowMs();
      const usage = await monitor.usage(partition);
      const entry = usageReportEntry(partition, instanceGuid, usage, readAtMs, clock.nowMs(), noCgroupsReason);
      const last = this.#sent.get(partition.partitionId);
      if (last !== undefined && clock.nowMs() - last.atMs < refreshMs && !meaningfullyChanged(last.entry, entry))
        continue;
      due.push(entry);
    }
    const sent = await sendDroppingStale(due, {
      list: 'partition_usage_list',
      what: 'partition usage',
      send: (entries) =>
        this.#options.client.call('reportPartitionUsage', {
          computer_guid: this.#options.nodeId,
          partition_usage_list: entries,
        }),
      log: this.#options.log,
    });
    const sentAtMs = clock.nowMs();
    for (const entry of sent) this.#sent.set(entry.compute_partition_id, { entry, atMs: sentAtMs });
  }
}
