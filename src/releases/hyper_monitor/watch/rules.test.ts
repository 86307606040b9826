import { describe, expect, it } from 'vitest';
import {
  alertKey,
  ARCHIVING_RECENT_S,
  confirmAlerts,
  judgeArchiving,
  judgeRule,
  MIN_STEPS,
  RULES,
  type RangeSeries,
} from './rules.js';

const rule = (name: string) => RULES.find((r) => r.name === name)!;
const STEP_S = 60;
const T0 = 1_800_000_000; // seconds

/** A partition series of `n` points every STEP_S, valued by `f(k)`. */
function series(labels: Record<string, string>, n: number, f: (k: number) => number): RangeSeries {
  return { metric: labels, values: Array.from({ length: n }, (_, k) => [T0 + k * STEP_S, String(f(k))]) };
}
const partition = { node: 'n1', partition: 'p3', tree: 'pilot-db', instance: 'member-2' };
const options = (n: number, open: string[] = []) => ({
  nowMs: (T0 + (n - 1) * STEP_S) * 1000,
  stepS: STEP_S,
  warningS: 6 * 3600,
  criticalS: 3600,
  open: new Set(open),
});

describe('hyper_monitor rules', () => {
  it('a disk filling at a steady rate: a warning with the date it fills, then critical when near', () => {
    // 1 GiB quota, 2 MiB a minute from 400 MiB: full 312 minutes after the last of 2 hours of samples.
    const MiB = 1024 * 1024;
    const used = series(partition, 120, (k) => 400 * MiB + k * 2 * MiB + (k % 3) * 0.1 * MiB);
    const limit = series(partition, 120, () => 1024 * MiB);
    const [alert, ...rest] = judgeRule(rule('disk-full'), [used], [limit], options(120));
    expect(rest).toEqual([]);
    expect(alert).toMatchObject({
      key: 'disk-full:node=n1,partition=p3',
      rule: 'disk-full',
      severity: 'warning',
      resource: { node: 'n1', partition: 'p3' },
    });
    const lastMs = (T0 + 119 * STEP_S) * 1000;
    const expectedMs = lastMs + ((1024 - 400 - 119 * 2) / 2) * 60_000;
    expect(Math.abs(alert!.eta_ms! - expectedMs)).toBeLessThan(10 * 60_000);
    expect(alert!.eta_earliest_ms!).toBeLessThanOrEqual(alert!.eta_ms!);
    expect(alert!.eta_latest_ms!).toBeGreaterThanOrEqual(alert!.eta_ms!);
    expect(alert!.summary).toMatch(
      /disk quota of n1 partition p3 \(pilot-db\/member-2\) forecast to run out in 3\.\d h/,
    );
    expect(alert!.evidence).toMatchObject({ samples: 120, limit: 1024 * MiB, per_hour: expect.any(Number) as number });
    // Closer to the limit: critical.
    const near = series(partition, 120, (k) => 880 * MiB + k * MiB);
    expect(judgeRule(rule('disk-full'), [near], [limit], options(120))[0]?.severity).toBe('critical');
    // Over it: critical, "reached".
    const over = series(partition, 120, () => 1100 * MiB);
    expect(judgeRule(rule('disk-full'), [over], [limit], options(120))[0]?.summary).toMatch(/reached/);
  });

  it('no alert for a flat or slow series, no limit, too little history, or another series', () => {
    const limit = series(partition, 120, () => 1000);
    const flat = series(partition, 120, (k) => 500 + (k % 5));
    expect(judgeRule(rule('disk-full'), [flat], [limit], options(120))).toEqual([]);
    // Growing, but full in about 8 h: beyond the 6 h warning horizon.
    const slow = series(partition, 120, (k) => 500 + k * (500 / 600));
    expect(judgeRule(rule('disk-full'), [slow], [limit], options(120))).toEqual([]);
    const fast = series(partition, 120, (k) => 500 + k * 3);
    expect(judgeRule(rule('disk-full'), [fast], [], options(120))).toEqual([]); // no limit known
    expect(judgeRule(rule('disk-full'), [fast], [series(partition, 120, () => 0)], options(120))).toEqual([]);
    const short = series(partition, MIN_STEPS - 1, (k) => 500 + k * 50);
    expect(judgeRule(rule('disk-full'), [short], [limit], options(MIN_STEPS - 1))).toEqual([]);
    const otherPartition = series({ ...partition, partition: 'p4' }, 120, () => 10);
    expect(judgeRule(rule('disk-full'), [fast], [otherPartition], options(120))).toEqual([]);
  });

  it('an open alert stays open a little past the horizon (no flapping), a new one does not open there', () => {
    // Full in about 7 h (3 h of history): past the 6 h horizon, within 1.25 × 6 h.
    const long = series(partition, 180, () => 1000);
    const growing = series(partition, 180, (k) => 500 + k * (500 / 600));
    const key = alertKey(rule('disk-full'), partition);
    expect(judgeRule(rule('disk-full'), [growing], [long], options(180))).toEqual([]);
    expect(judgeRule(rule('disk-full'), [growing], [long], options(180, [key])).map((a) => a.key)).toEqual([key]);
  });

  it('looks no further ahead than 3 times its history: a service starting is no trend', () => {
    const limit = series(partition, 40, () => 1000);
    // Both at 700 of 1000, 2 a minute: full in 2.5 h. Over 39 minutes of history that is not judged yet; over 60, it is.
    const young = series(partition, 40, (k) => 622 + k * 2);
    expect(judgeRule(rule('disk-full'), [young], [limit], options(40))).toEqual([]);
    const older = series(partition, 61, (k) => 580 + k * 2);
    expect(judgeRule(rule('disk-full'), [older], [series(partition, 61, () => 1000)], options(61))).toHaveLength(1);
  });

  it("a node's filesystem falling towards 0 free", () => {
    const fs = { node: 'n2', path: '/srv/hox' };
    const free = series(fs, 120, (k) => 1_000_000 - k * 8000);
    const [alert] = judgeRule(rule('filesystem-full'), [free], [], options(120));
    expect(alert).toMatchObject({
      key: 'filesystem-full:node=n2,path=/srv/hox',
      resource: { node: 'n2', path: '/srv/hox' },
      severity: 'critical',
    });
    expect(alert!.summary).toMatch(/^filesystem space of n2 \/srv\/hox forecast to run out in \d+ min$/);
  });

  it('reports a new alert once it fired for the whole hold time, an open one at once; a gap starts over', () => {
    const alert = (key: string) => ({ ...judgeRule(rule('filesystem-full'), [free], [], options(120))[0]!, key });
    const free = series({ node: 'n2', path: '/srv' }, 120, (k) => 1_000_000 - k * 8000);
    const pending = new Map<string, number>();
    const at = (nowMs: number, keys: string[], open: string[] = []) =>
      confirmAlerts(
        keys.map((k) => alert(k)),
        { nowMs, forMs: 15_000, open: new Set(open), pending },
      ).map((a) => a.key);
    expect(at(0, ['a', 'b'])).toEqual([]);
    expect(at(10_000, ['a', 'b'])).toEqual([]);
    expect(at(15_000, ['a'])).toEqual(['a']); // b stopped firing: forgotten
    expect(at(20_000, ['a', 'b'])).toEqual(['a']);
    expect(at(34_000, ['a', 'b'])).toEqual(['a']);
    expect(at(35_000, ['a', 'b'])).toEqual(['a', 'b']);
    // Already open (reported by the previous evaluation): no hold.
    expect(at(36_000, ['c'], ['c'])).toEqual(['c']);
  });
  it('a standby falling behind at a steady pace: warned before its lag passes the WAL its primary keeps', () => {
    const MiB = 1024 * 1024;
    // 1 GiB kept, the lag grows 8 MiB a minute: past it about 65 minutes after the last sample.
    const lag = series(partition, 60, (k) => 30 * MiB + k * 8 * MiB);
    const kept = series(partition, 60, () => 1024 * MiB);
    const [alert] = judgeRule(rule('standby-behind'), [lag], [kept], options(60));
    expect(alert).toMatchObject({ key: 'standby-behind:node=n1,partition=p3', severity: 'warning' });
    expect(alert!.summary).toMatch(
      /^WAL kept for the standby of n1 partition p3 \(pilot-db\/member-2\) forecast to run out in /,
    );
    // A steady small lag (a healthy standby) is no alert.
    const steady = series(partition, 60, (k) => 2 * MiB + (k % 5) * 64 * 1024);
    expect(judgeRule(rule('standby-behind'), [steady], [kept], options(60))).toEqual([]);
  });

  it("a database's connections climbing: warned before they reach max_connections", () => {
    // 200 allowed, 1 more a minute from 20: all taken about 2 hours after the last sample.
    const used = series(partition, 60, (k) => 20 + k + (k % 2));
    const max = series(partition, 60, () => 200);
    const [alert] = judgeRule(rule('connections-full'), [used], [max], options(60));
    expect(alert).toMatchObject({ key: 'connections-full:node=n1,partition=p3', severity: 'warning' });
    expect(alert!.summary).toMatch(/^connections of n1 partition p3 \(pilot-db\/member-2\) forecast to run out in /);
    // A steady number of connections is no alert.
    expect(
      judgeRule(rule('connections-full'), [series(partition, 60, (k) => 40 + (k % 3))], [max], options(60)),
    ).toEqual([]);
  });

  it('WAL archiving: failing after the last success is critical, a success since resolves it, an old one is not judged', () => {
    const nowS = T0 + 3600;
    const point = (labels: Record<string, string>, value: number): RangeSeries => ({
      metric: labels,
      values: [[nowS, String(value)]],
    });
    const judge = (failedAt: number, archivedAt?: number) =>
      judgeArchiving(
        {
          failedAt: [point(partition, failedAt)],
          archivedAt: archivedAt === undefined ? [] : [point(partition, archivedAt)],
          failures: [point(partition, 7)],
        },
        { nowMs: nowS * 1000 },
      );
    const [alert, ...rest] = judge(nowS - 30, nowS - 400);
    expect(rest).toEqual([]);
    expect(alert).toMatchObject({
      key: 'wal-archive-failing:node=n1,partition=p3',
      rule: 'wal-archive-failing',
      severity: 'critical',
      resource: { node: 'n1', partition: 'p3' },
      eta_ms: null,
      evidence: { failures: 7, last_success: new Date((nowS - 400) * 1000).toISOString() },
    });
    expect(alert!.summary).toMatch(/^WAL archiving fails on n1 partition p3 \(pilot-db\/member-2\) since /);
    expect(judge(nowS - 30)[0]!.summary).toMatch(/, and never succeeded: /);
    expect(judge(nowS - 30, nowS - 10)).toEqual([]);
    expect(judge(nowS - ARCHIVING_RECENT_S - 60)).toEqual([]);
  });
});
