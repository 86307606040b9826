import { describe, expect, it } from 'vitest';
import type { PartitionCgroups } from './partition-cgroups.js';
import { meaningfullyChanged, notEnforced, usageReportEntry, type UsageReportEntry } from './usage-reporter.js';

const MiB = 1024 * 1024;

function entry(patch: Partial<UsageReportEntry['usage']> = {}, more: Partial<UsageReportEntry> = {}): UsageReportEntry {
  return {
    compute_partition_id: 'p0',
    instance_guid: 'SOFTINST-a',
    limits: { memory_bytes: 64 * MiB, cpus: 1, pids: 40, disk_bytes: 100 * MiB, log_bytes: MiB },
    not_enforced: [],
    not_enforced_reason: null,
    usage: { memory_bytes: 30 * MiB, pids: 10, oom_kills: 0, disk_bytes: 20 * MiB, ...patch },
    age_ms: 0,
    disk_age_ms: 0,
    ...more,
  };
}

const ALL: PartitionCgroups = { v1: { memory: '/m', cpu: '/c', pids: '/p' }, v2: '/u' };

describe('meaningfullyChanged', () => {
  it('sends the first report, and skips one that says the same', () => {
    expect(meaningfullyChanged(undefined, entry())).toBe(true);
    expect(meaningfullyChanged(entry(), entry())).toBe(false);
    // Ages alone are no news (the periodic refresh keeps them true).
    expect(meaningfullyChanged(entry(), entry({}, { age_ms: 5000, disk_age_ms: 30_000 }))).toBe(false);
  });

  it('ignores memory, processes and disk wobbling under their thresholds', () => {
    expect(meaningfullyChanged(entry(), entry({ memory_bytes: 32 * MiB }))).toBe(false);
    expect(meaningfullyChanged(entry(), entry({ pids: 11 }))).toBe(false);
    expect(meaningfullyChanged(entry(), entry({ disk_bytes: 20.5 * MiB }))).toBe(false);
  });

  it('reports memory, processes or disk moving past their thresholds', () => {
    expect(meaningfullyChanged(entry(), entry({ memory_bytes: 40 * MiB }))).toBe(true);
    // The working set alone: a leak under a steady page cache.
    const steady = { memory_working_set_bytes: 10 * MiB };
    expect(meaningfullyChanged(entry(steady), entry({ memory_working_set_bytes: 10.5 * MiB }))).toBe(false);
    expect(meaningfullyChanged(entry(steady), entry({ memory_working_set_bytes: 16 * MiB }))).toBe(true);
    expect(meaningfullyChanged(entry(), entry({ pids: 14 }))).toBe(true);
    expect(meaningfullyChanged(entry(), entry({ disk_bytes: 30 * MiB }))).toBe(true);
    expect(meaningfullyChanged(entry({ disk_bytes: null }), entry())).toBe(true);
  });

  it('reports any OOM kill, other limits, other enforcement, another instance', () => {
    expect(meaningfullyChanged(entry(), entry({ oom_kills: 1 }))).toBe(true);
    const base = entry();
    expect(meaningfullyChanged(base, entry({}, { limits: { ...base.limits, pids: 41 } }))).toBe(true);
    expect(meaningfullyChanged(base, entry({}, { not_enforced: ['cpus'], not_enforced_reason: 'no cpu' }))).toBe(true);
    expect(meaningfullyChanged(base, entry({}, { instance_guid: 'SOFTINST-b' }))).toBe(true);
    expect(meaningfullyChanged(entry({}, { disk_age_ms: null }), entry())).toBe(true);
  });
});

describe('notEnforced', () => {
  it('is nothing with every controller, all three without cgroups, the missing ones otherwise', () => {
    expect(notEnforced({ cgroups: ALL }, 'node agent not root')).toEqual({ names: [], reason: null });
    expect(notEnforced({ cgroups: undefined }, 'node agent not root')).toEqual({
      names: ['memory_bytes', 'cpus', 'pids'],
      reason: 'node agent not root',
    });
    expect(notEnforced({ cgroups: { v1: { memory: '/m' }, v2: undefined } }, 'x')).toEqual({
      names: ['cpus', 'pids'],
      reason: 'no cpu, pids cgroup controller on this node',
    });
  });
});

describe('usageReportEntry', () => {
  it("turns the monitor's view into the protocol's, with ages instead of times", () => {
    const e = usageReportEntry(
      { partitionId: 'p3', cgroups: undefined },
      'SOFTINST-x',
      {
        limits: { memoryBytes: 64 * MiB, cpus: 0.5, pids: 40, diskBytes: 10 * MiB, logBytes: MiB },
        memoryBytes: undefined,
        memoryWorkingSetBytes: undefined,
        pids: undefined,
        oomKills: undefined,
        diskBytes: 4096,
        diskMeasuredAtMs: 1_000,
      },
      9_000,
      10_000,
      'node agent not root',
    );
    expect(e).toEqual({
      compute_partition_id: 'p3',
      instance_guid: 'SOFTINST-x',
      limits: { memory_bytes: 64 * MiB, cpus: 0.5, pids: 40, disk_bytes: 10 * MiB, log_bytes: MiB },
      not_enforced: ['memory_bytes', 'cpus', 'pids'],
      not_enforced_reason: 'node agent not root',
      usage: { memory_bytes: null, memory_working_set_bytes: null, pids: null, oom_kills: null, disk_bytes: 4096 },
      age_ms: 1_000,
      disk_age_ms: 9_000,
    });
  });
});
