import { formatBytes } from '../shared/bytes.js';
import { describe, expect, it } from 'vitest';
import { formatAge, formatCores, formatPartitionUsage, type PartitionUsageView } from './partition-usage-view.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

function view(patch: Partial<PartitionUsageView> = {}): PartitionUsageView {
  return {
    limits: { memory_bytes: 2 * GiB, cpus: 2, pids: 1024, disk_bytes: 10 * GiB, log_bytes: 64 * MiB },
    not_enforced: [],
    not_enforced_reason: null,
    usage: { memory_bytes: 512 * MiB, pids: 12, oom_kills: 0, disk_bytes: 80 * MiB },
    measured_at: '2025-01-01T00:00:00.000Z',
    age_ms: 12_400,
    disk_measured_at: '2025-01-01T00:00:00.000Z',
    disk_age_ms: 12_400,
    ...patch,
  };
}

describe('formatPartitionUsage', () => {
  it('says every limit with what is used of it, and how old the reading is', () => {
    expect(formatPartitionUsage(view())).toBe(
      'memory 512 MiB of 2 GiB · cpu 2 cores · processes 12 of 1024 · disk 80 MiB of 10 GiB · log 64 MiB per service (measured 12 s ago)',
    );
  });

  it("says the disk's age when it was measured at another time than memory and processes", () => {
    expect(formatPartitionUsage(view({ age_ms: 1_000, disk_age_ms: 29_500 }))).toMatch(
      /\(measured 1 s ago, disk 29 s ago\)$/,
    );
    expect(formatPartitionUsage(view({ age_ms: 1_000, disk_age_ms: 2_500 }))).toMatch(/\(measured 1 s ago\)$/);
  });

  it('names what is not enforced and why, with the limit the plan set', () => {
    const line = formatPartitionUsage(
      view({
        limits: { memory_bytes: 64 * MiB, cpus: 0.5, pids: 40, disk_bytes: 10 * GiB, log_bytes: 64 * MiB },
        not_enforced: ['memory_bytes', 'cpus', 'pids'],
        not_enforced_reason: 'node agent not root',
        usage: { memory_bytes: null, pids: null, oom_kills: null, disk_bytes: 4096 },
      }),
    );
    expect(line).toBe(
      'disk 4 KiB of 10 GiB · log 64 MiB per service · not enforced (node agent not root): memory 64 MiB, cpu 0.5 cores, processes 40 (measured 12 s ago)',
    );
  });

  it('says what was not measured yet, and the OOM kills', () => {
    const line = formatPartitionUsage(
      view({
        usage: { memory_bytes: 63 * MiB, pids: null, oom_kills: 3, disk_bytes: null },
        disk_measured_at: null,
        disk_age_ms: null,
      }),
    );
    expect(line).toContain('memory 63 MiB of 2 GiB (3 killed for want of memory)');
    expect(line).toContain('processes ? of 1024');
    expect(line).toContain('disk ? of 10 GiB');
    expect(line).toMatch(/\(measured 12 s ago\)$/);
  });
});

describe('units', () => {
  it('formats bytes in binary units, with one decimal only when not whole', () => {
    expect(formatBytes(0)).toBe('0 B');
    expect(formatBytes(1023)).toBe('1023 B');
    expect(formatBytes(1536)).toBe('1.5 KiB');
    expect(formatBytes(80.3 * MiB)).toBe('80.3 MiB');
    expect(formatBytes(2 * GiB)).toBe('2 GiB');
  });

  it('formats cores and ages', () => {
    expect(formatCores(1)).toBe('1 core');
    expect(formatCores(0.5)).toBe('0.5 cores');
    expect(formatCores(16)).toBe('16 cores');
    expect(formatAge(-5)).toBe('0 s ago');
    expect(formatAge(119_999)).toBe('119 s ago');
    expect(formatAge(120_000)).toBe('2 min ago');
    expect(formatAge(3 * 3600_000)).toBe('3 h ago');
    expect(formatAge(3 * 86400_000)).toBe('3 d ago');
  });
});
