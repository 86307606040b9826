/**
 * How `hox show` says a partition's limits and usage, on one line:
 * `memory 41.2 MiB of 64 MiB · cpu 2 cores · processes 3 of 40 · disk 80 KiB of 10 GiB · log 64 MiB per service (measured 12 s ago)`.
 * Every reading says its age: a status is a claim. Pure.
 */
import type { ResponseOf } from '../client/master-client.js';
import { formatBytes } from '../shared/bytes.js';

export type PartitionUsageView = NonNullable<
  ResponseOf<'listTreeStatus'>['result_list'][number]['instance_list'][number]['partition_usage']
>;

/** `1 core`, `2 cores`, `0.5 cores`. */
export function formatCores(cpus: number): string {
  const value = Math.round(cpus * 100) / 100;
  return `${value} core${value === 1 ? '' : 's'}`;
}

/** `0 s ago`, `45 s ago`, `3 min ago`, `5 h ago`, `2 d ago`. */
export function formatAge(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 120) return `${s} s ago`;
  if (s < 120 * 60) return `${Math.floor(s / 60)} min ago`;
  if (s < 48 * 3600) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

const used = (value: number | null, format: (n: number) => string): string => (value === null ? '?' : format(value));

/** The one line `hox show` prints after `limits:`. */
export function formatPartitionUsage(u: PartitionUsageView): string {
  const off = new Set(u.not_enforced);
  const oom =
    u.usage.oom_kills !== null && u.usage.oom_kills > 0 ? ` (${u.usage.oom_kills} killed for want of memory)` : '';
  const items = {
    memory_bytes: {
      enforced: `memory ${used(u.usage.memory_bytes, formatBytes)} of ${formatBytes(u.limits.memory_bytes)}${oom}`,
      bare: `memory ${formatBytes(u.limits.memory_bytes)}`,
    },
    cpus: { enforced: `cpu ${formatCores(u.limits.cpus)}`, bare: `cpu ${formatCores(u.limits.cpus)}` },
    pids: {
      enforced: `processes ${used(u.usage.pids, String)} of ${u.limits.pids}`,
      bare: `processes ${u.limits.pids}`,
    },
    disk_bytes: {
      enforced: `disk ${used(u.usage.disk_bytes, formatBytes)} of ${formatBytes(u.limits.disk_bytes)}`,
      bare: `disk ${formatBytes(u.limits.disk_bytes)}`,
    },
    log_bytes: {
      enforced: `log ${formatBytes(u.limits.log_bytes)} per service`,
      bare: `log ${formatBytes(u.limits.log_bytes)} per service`,
    },
  } as const;
  const names = Object.keys(items) as (keyof typeof items)[];
  const enforced = names.filter((n) => !off.has(n)).map((n) => items[n].enforced);
  const notEnforced = names.filter((n) => off.has(n)).map((n) => items[n].bare);
  const parts: string[] = [...enforced];
  if (notEnforced.length > 0)
    parts.push(
      `not enforced${u.not_enforced_reason === null ? '' : ` (${u.not_enforced_reason})`}: ${notEnforced.join(', ')}`,
    );
  // The disk is measured every 30 s, memory and processes at each report: say the disk's age when it differs.
  const diskAge =
    u.disk_age_ms !== null && Math.abs(u.disk_age_ms - u.age_ms) >= 2000 ? `, disk ${formatAge(u.disk_age_ms)}` : '';
  return `${parts.join(' · ')} (measured ${formatAge(u.age_ms)}${diskAge})`;
}
