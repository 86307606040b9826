/**
 * Each instance's promises, one by one: what its node reports
 * (`hox.put.v1.promise_result`) and what `hox show` displays with the tree's
 * status. SlapOS keeps each promise's latest result on the node
 * (`.slapgrid/promise/result`) and tells the master only of an anomaly; here
 * the master keeps the latest result of every promise too, so whoever owns
 * the tree reads which one fails and why without a shell on the node.
 *
 * What this upholds:
 * - A node reports only for instances allocated on its own partitions, each on
 *   the partition it really has; anything else refuses the whole report (as
 *   for partition usage), so no node writes what another node's tenant reads.
 * - Bounded: at most 64 promises an instance, names and messages of bounded
 *   length, each name once (the schema and this module); the agent masks
 *   credentials in messages before sending them.
 * - A status is a claim: each result keeps when it was checked, placed in the
 *   master's clock from the age the node gives (its clock is not ours), and
 *   the report keeps when it arrived.
 * - No change record: the agent sends a report when a result changes (and at
 *   least every few minutes), and a promise turning ok or failed also changes
 *   the instance's status through its state or error report, which is what
 *   wakes the tree's watchers. An unchanged report wakes nobody.
 */
import { badRequest } from '../shared/errors.js';
import type { PromiseResultRow, StoredPromiseResult } from '../store/store.js';
import type { OpContext } from './context.js';
import { loadNode, reportedInstance, touchNode } from './nodes.js';

/** One promise as the node sends it (the protocol's `promiseReport` item). */
export interface PromiseReportItem {
  name: string;
  result: StoredPromiseResult['result'];
  message: string | null;
  age_ms: number | null;
}

/** One partition's report, as the node sends it. */
export interface InstancePromiseReport {
  compute_partition_id: string;
  instance_guid: string;
  promise_list: PromiseReportItem[];
}

/** What the tree status answers for an instance whose node reported its promises. */
export interface PromiseReportStatus {
  reported_at: string;
  reported_age_ms: number;
  promise_list: {
    name: string;
    result: StoredPromiseResult['result'];
    message: string | null;
    checked_at: string | null;
    age_ms: number | null;
  }[];
}

/** Stores the node's report, one row per instance, replacing the previous ones. Returns how many. */
export async function reportPromiseResults(
  ctx: OpContext,
  nodeId: string,
  items: readonly InstancePromiseReport[],
): Promise<number> {
  const node = await loadNode(ctx, nodeId);
  const now = ctx.clock.nowMs();
  const rows: PromiseResultRow[] = [];
  const seen = new Set<string>();
  for (const [index, item] of items.entries()) {
    const field = `promise_report_list.${index}`;
    const instance = await reportedInstance(ctx, nodeId, item, field, seen);
    rows.push({
      instanceId: instance.id,
      nodeId,
      partitionId: item.compute_partition_id,
      results: storedResults(item.promise_list, field, now),
      reportedAtMs: now,
    });
  }
  for (const row of rows) await ctx.tx.putPromiseResults(row);
  await touchNode(ctx, node);
  return rows.length;
}

/** The results as stored, checked beyond what the schema says: each name once, a result's fields consistent. */
function storedResults(list: readonly PromiseReportItem[], field: string, now: number): StoredPromiseResult[] {
  const names = new Set<string>();
  return list.map((p, index) => {
    const at = `${field}.promise_list.${index}`;
    if (names.has(p.name)) throw badRequest(`${at}.name`, `promise '${p.name}' is reported twice`);
    names.add(p.name);
    const ran = p.result !== 'never_run';
    if (ran !== (p.age_ms !== null))
      throw badRequest(`${at}.age_ms`, ran ? 'a checked promise needs its age' : 'a promise never run has no age');
    if (ran !== (p.message !== null))
      throw badRequest(`${at}.message`, ran ? 'a checked promise needs its message' : 'a promise never run has none');
    return {
      name: p.name,
      result: p.result,
      message: p.message,
      checkedAtMs: p.age_ms === null ? null : now - p.age_ms,
    };
  });
}

/** The stored report as answered at `nowMs`: times in ISO 8601, ages as of now. */
export function promiseReportStatus(row: PromiseResultRow, nowMs: number): PromiseReportStatus {
  return {
    reported_at: new Date(row.reportedAtMs).toISOString(),
    reported_age_ms: Math.max(0, nowMs - row.reportedAtMs),
    promise_list: row.results.map((r) => ({
      name: r.name,
      result: r.result,
      message: r.message,
      checked_at: r.checkedAtMs === null ? null : new Date(r.checkedAtMs).toISOString(),
      age_ms: r.checkedAtMs === null ? null : Math.max(0, nowMs - r.checkedAtMs),
    })),
  };
}
