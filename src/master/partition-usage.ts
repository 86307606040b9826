/**
 * Each partition's limits and usage: what its node reports
 * (`hox.put.v1.partition_usage`) and what `hox show` displays with the tree's
 * status.
 *
 * What this upholds:
 * - A node reports only for instances allocated on its own partitions, each on
 *   the partition it really has; anything else refuses the whole report
 *   (HOX_INSTANCE_NOT_FOUND for an instance it does not run, as for every
 *   other instance a caller may not see), so no node can write what another
 *   node's tenant is shown.
 * - A status is a claim: every reading keeps when it was made. The node says
 *   how old its readings are (`age_ms`), not when, since its clock is not the
 *   master's; the master places them in its own clock and answers their age at
 *   the time of each answer.
 * - No change record: nodes report every 30 s or so, and a record would wake
 *   every watcher of every tree for a value nobody waits on. Whoever shows
 *   usage reads it when it shows it.
 */

import type { PartitionUsageRow } from '../store/store.js';
import type { OpContext } from './context.js';
import { loadNode, reportedInstance, touchNode } from './nodes.js';

/** The limits a partition has (`not_enforced` names some of them). */
export type LimitName = 'memory_bytes' | 'cpus' | 'pids' | 'disk_bytes' | 'log_bytes';

/** One partition's report, as the node sends it (the protocol's `partitionUsageReport` item). */
export interface PartitionUsageReportItem {
  compute_partition_id: string;
  instance_guid: string;
  limits: { memory_bytes: number; cpus: number; pids: number; disk_bytes: number; log_bytes: number };
  not_enforced: LimitName[];
  not_enforced_reason: string | null;
  usage: {
    memory_bytes: number | null;
    memory_working_set_bytes?: number | null;
    pids: number | null;
    oom_kills: number | null;
    disk_bytes: number | null;
  };
  age_ms: number;
  disk_age_ms: number | null;
}

/** What the tree status answers for an instance with a partition its node reported on. */
export interface PartitionUsageStatus {
  limits: PartitionUsageReportItem['limits'];
  not_enforced: PartitionUsageReportItem['not_enforced'];
  not_enforced_reason: string | null;
  usage: PartitionUsageReportItem['usage'];
  measured_at: string;
  age_ms: number;
  disk_measured_at: string | null;
  disk_age_ms: number | null;
}

/** Stores the node's report, one row per instance, replacing the previous ones. Returns how many. */
export async function reportPartitionUsage(
  ctx: OpContext,
  nodeId: string,
  items: readonly PartitionUsageReportItem[],
): Promise<number> {
  const node = await loadNode(ctx, nodeId);
  const now = ctx.clock.nowMs();
  const rows: PartitionUsageRow[] = [];
  const seen = new Set<string>();
  for (const [index, item] of items.entries()) {
    const field = `partition_usage_list.${index}`;
    const instance = await reportedInstance(ctx, nodeId, item, field, seen);
    rows.push({
      instanceId: instance.id,
      nodeId,
      partitionId: item.compute_partition_id,
      limits: item.limits,
      usage: item.usage,
      notEnforced: item.not_enforced,
      notEnforcedReason: item.not_enforced_reason,
      measuredAtMs: now - item.age_ms,
      diskMeasuredAtMs: item.disk_age_ms === null ? null : now - item.disk_age_ms,
      reportedAtMs: now,
    });
  }
  for (const row of rows) await ctx.tx.putPartitionUsage(row);
  await touchNode(ctx, node);
  return rows.length;
}

/** The stored report as answered at `nowMs`: times in ISO 8601, ages as of now. */
export function partitionUsageStatus(row: PartitionUsageRow, nowMs: number): PartitionUsageStatus {
  return {
    limits: row.limits as PartitionUsageStatus['limits'],
    not_enforced: row.notEnforced as LimitName[],
    not_enforced_reason: row.notEnforcedReason,
    usage: row.usage as PartitionUsageStatus['usage'],
    measured_at: new Date(row.measuredAtMs).toISOString(),
    age_ms: Math.max(0, nowMs - row.measuredAtMs),
    disk_measured_at: row.diskMeasuredAtMs === null ? null : new Date(row.diskMeasuredAtMs).toISOString(),
    disk_age_ms: row.diskMeasuredAtMs === null ? null : Math.max(0, nowMs - row.diskMeasuredAtMs),
  };
}
