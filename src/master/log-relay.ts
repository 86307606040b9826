/**
 * Logs through the master. Logs stay on the compute nodes, and nodes only
 * connect out (SlapOS's pull model): so a log read is a rendezvous in the
 * store, which every master shares.
 *
 * 1. `readTreeLogs` (the CLI, as the tree's owner or the admin) writes one
 *    `log_request` row per node running the tree's instances, and a change
 *    record that wakes every master's waiters (PostgreSQL NOTIFY). The record
 *    names no node and no tree: it must not make the node's agent reconverge
 *    nor wake the tree's watchers, only the log waiters below.
 * 2. `listLogRequests` (the node's agent, long-polling any master) answers as
 *    soon as a request for its node is pending.
 * 3. `answerLogRequest` (the agent) records the lines — only for a request
 *    addressed to its node — sealed at rest, with another such record.
 * 4. The master from 1 polls its rows (woken by those records), bounded by
 *    {@link LOG_ANSWER_TIMEOUT_MS}, then deletes them. Rows a stopped master
 *    left behind are purged after {@link LOG_REQUEST_TTL_MS}.
 *
 * Log lines are never logged here.
 */
import type { Body } from '../protocol/schemas.js';
import type { Clock } from '../shared/clock.js';
import { HoxError } from '../shared/errors.js';
import { newId } from '../shared/ids.js';
import type { InstanceRow, JsonObject, Store, StoreTx } from '../store/store.js';
import { ADMIN_OWNER_ID, assertNodeAccess, authenticate, describePrincipal } from './principal.js';

/** How long the master waits for the nodes' answers. */
export const LOG_ANSWER_TIMEOUT_MS = 10_000;
/** Requests older than this are no longer handed to nodes, and are purged. */
export const LOG_REQUEST_TTL_MS = 60_000;
/** Cap of one node's answer (JSON-encoded lines): under the master's 2 MiB body limit. */
export const LOG_ANSWER_MAX_BYTES = 1024 * 1024;
const POLL_MS = 250;

export interface LogRelayOptions {
  store: Store;
  clock: Clock;
  adminTokenHash: string;
}

type TreeLogResult = Body<'treeLogResult'>;
type NodeLog = Body<'logRequestAnswer'>['log_list'][number];

/** Resolves after the next committed change in any master, or after `ms`, or on abort. */
function nextNotice(store: Store, ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      unsubscribe();
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, Math.max(0, ms));
    const unsubscribe = store.onChange(done);
    signal?.addEventListener('abort', done, { once: true });
  });
}

function describeContact(lastContactAtMs: number | null, nowMs: number): string {
  if (lastContactAtMs === null) return 'it has never contacted the master';
  const ageS = Math.max(0, Math.round((nowMs - lastContactAtMs) / 1000));
  return `its last contact was ${new Date(lastContactAtMs).toISOString()} (${ageS} s ago)`;
}

/** `hox.get.v1.instance_tree_log`: authenticate, ask each node, wait (bounded) outside any transaction. */
export async function readTreeLogs(
  options: LogRelayOptions,
  token: string,
  body: Body<'treeLog'>,
  signal: AbortSignal,
): Promise<TreeLogResult> {
  const { store, clock } = options;
  const timeoutMs = body.wait_ms ?? LOG_ANSWER_TIMEOUT_MS;
  const lines = body.lines ?? 50;
  const asked = await store.transaction(async (tx) => {
    const p = await authenticate(tx, token, options.adminTokenHash, clock);
    if (p.kind !== 'user' && p.kind !== 'admin')
      throw new HoxError('HOX_FORBIDDEN', `${describePrincipal(p)} may not read instance tree logs`);
    const tree = await tx.findTree(p.kind === 'user' ? p.userId : ADMIN_OWNER_ID, body.title);
    if (tree === undefined)
      throw new HoxError('HOX_INSTANCE_TREE_NOT_FOUND', `instance tree '${body.title}' not found`);
    const byNode = new Map<string, InstanceRow[]>();
    for (const i of await tx.listTreeInstances(tree.id)) {
      if (i.shared || i.nodeId === null || i.partitionId === null || i.requestedState === 'destroyed') continue;
      byNode.set(i.nodeId, [...(byNode.get(i.nodeId) ?? []), i]);
    }
    const now = clock.nowMs();
    await tx.purgeLogRequests(now - LOG_REQUEST_TTL_MS);
    const requests: { id: string; nodeId: string; instances: InstanceRow[] }[] = [];
    for (const [nodeId, instances] of byNode) {
      const guids = new Set(instances.map((i) => i.id));
      const offsets = body.offset_list?.filter((o) => guids.has(o.instance_guid)) ?? null;
      const spec = {
        instance_list: instances.map((i) => ({ instance_guid: i.id, compute_partition_id: i.partitionId! })),
        service: body.service ?? null,
        lines,
        max_bytes: LOG_ANSWER_MAX_BYTES,
        offset_list: body.offset_list === undefined ? null : offsets,
      } satisfies Omit<Body<'logRequestList'>['result_list'][number], 'request_id'>;
      const id = newId('LOGREQ-', 16);
      await tx.insertLogRequest({ id, nodeId, spec, createdAtMs: now });
      requests.push({ id, nodeId, instances });
    }
    if (requests.length > 0) await tx.appendChange({ nodeId: null, treeId: null, atMs: now });
    return requests;
  });
  if (asked.length === 0) return { log_list: [], problem_list: [] };

  const answers = new Map<string, JsonObject>();
  const deadline = Date.now() + timeoutMs;
  try {
    for (;;) {
      const pending = asked.filter((r) => !answers.has(r.id));
      const rows = await store.transaction(async (tx) =>
        Promise.all(pending.map(async (r) => ({ id: r.id, row: await tx.getLogRequest(r.id) }))),
      );
      for (const { id, row } of rows) if (row?.answer != null) answers.set(id, row.answer);
      const remaining = deadline - Date.now();
      if (answers.size === asked.length || remaining <= 0 || signal.aborted) break;
      await nextNotice(store, Math.min(POLL_MS, remaining), signal);
    }
  } finally {
    await store.transaction((tx) => tx.deleteLogRequests(asked.map((r) => r.id))).catch(() => undefined);
  }

  const result: TreeLogResult = { log_list: [], problem_list: [] };
  const silent = asked.filter((r) => !answers.has(r.id));
  const nodes = await store.transaction(async (tx: StoreTx) =>
    Promise.all(silent.map(async (r) => ({ r, node: await tx.getNode(r.nodeId) }))),
  );
  const now = clock.nowMs();
  for (const { r, node } of nodes)
    result.problem_list.push({
      computer_guid: r.nodeId,
      message: `compute node '${r.nodeId}' did not answer within ${Math.round(timeoutMs / 1000)} s: ${describeContact(node?.lastContactAtMs ?? null, now)}`,
    });
  for (const r of asked) {
    const answer = answers.get(r.id) as { log_list?: NodeLog[]; error?: string | null } | undefined;
    if (answer === undefined) continue;
    if (typeof answer.error === 'string')
      result.problem_list.push({ computer_guid: r.nodeId, message: `compute node '${r.nodeId}': ${answer.error}` });
    const titles = new Map(r.instances.map((i) => [i.id, i.title]));
    for (const log of answer.log_list ?? []) {
      const title = titles.get(log.instance_guid);
      // A node answers for the instances it was asked about, nothing else.
      if (title === undefined) continue;
      result.log_list.push({ instance_title: title, computer_guid: r.nodeId, ...log });
    }
  }
  if (result.log_list.length === 0 && silent.length === asked.length)
    throw new HoxError(
      'HOX_NODE_NOT_ANSWERING',
      `logs of '${body.title}' unavailable: ${result.problem_list.map((p) => p.message).join('; ')}`,
    );
  return result;
}

export const DEFAULT_LOG_WAIT_MS = 25_000;

/** `hox.get.v1.log_request_list`: the node's agent waits (bounded) for requests addressed to its node. */
export async function listLogRequests(
  options: LogRelayOptions,
  token: string,
  body: Body<'logRequestWait'>,
  signal: AbortSignal,
): Promise<Body<'logRequestList'>> {
  const { store, clock } = options;
  await store.transaction(async (tx) => {
    const p = await authenticate(tx, token, options.adminTokenHash, clock);
    assertNodeAccess(p, body.computer_guid);
  });
  const deadline = Date.now() + (body.timeout_ms ?? DEFAULT_LOG_WAIT_MS);
  for (;;) {
    const seen = new Set(body.seen_list ?? []);
    const rows = (
      await store.transaction((tx) => tx.listPendingLogRequests(body.computer_guid, clock.nowMs() - LOG_REQUEST_TTL_MS))
    ).filter((r) => !seen.has(r.id));
    if (rows.length > 0)
      return {
        result_list: rows.map((r) => ({ request_id: r.id, ...(r.spec as Omit<LogRequestItem, 'request_id'>) })),
      };
    const remaining = deadline - Date.now();
    if (remaining <= 0 || signal.aborted) return { result_list: [] };
    // Woken by the change record of a new request; the poll only covers a missed notice (a listener reconnecting).
    await nextNotice(store, Math.min(5_000, remaining), signal);
  }
}

type LogRequestItem = Body<'logRequestList'>['result_list'][number];

/** `hox.put.v1.log_request`: a node's answer, accepted only for a pending request addressed to it. */
export async function answerLogRequest(tx: StoreTx, clock: Clock, body: Body<'logRequestAnswer'>): Promise<void> {
  const answer = { log_list: body.log_list, error: body.error };
  const now = clock.nowMs();
  if (!(await tx.answerLogRequest(body.request_id, body.computer_guid, answer, now)))
    throw new HoxError(
      'HOX_NOT_FOUND',
      `no pending log request '${body.request_id}' for compute node '${body.computer_guid}' (answered, expired or another node's)`,
    );
  await tx.appendChange({ nodeId: null, treeId: null, atMs: now });
}
