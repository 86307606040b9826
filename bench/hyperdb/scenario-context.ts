/**
 * What every scenario of bench/hyperdb shares (scenarios.ts, scenarios-faults.ts):
 * the result of one run, the context a run gets, and the steps they all take —
 * start writing on a healthy cluster, measure the write outage after a fault,
 * check the invariants once writes resumed.
 */
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { startWriteClient, type AckedWrite, type WriteClient } from '../../src/testing/pg-write-client.js';
import { writeGaps } from '../../src/testing/write-history.js';
import type { ClusterMember, ClusterUnderTest } from './cluster-under-test.js';

/** One run of one scenario. */
export interface RunResult {
  run: number;
  /** The scenario's figure (ms); undefined when the run failed. */
  valueMs?: number;
  /** Invariants, checked after the run; undefined when not checked (failed run, or rejoin which shares member-death's). */
  ackedLost?: number;
  dualPrimary?: number;
  /** Commits whose outcome the client never learnt (not acked, so not counted as lost either). */
  unknownCommits?: number;
  /** switchover-no-retry: requests made and requests that failed (the client never retries). */
  requests?: number;
  failedRequests?: number;
  /** The primary before and after the fault. */
  from?: string;
  to?: string;
  /** What else the run saw, printed under the table (e.g. whether the old primary rejoined). */
  notes?: string[];
  error?: string;
}

/** What a run is given. */
export interface Context {
  cluster: ClusterUnderTest;
  healthyTimeoutMs: number;
  recoverTimeoutMs: number;
  warmupMs: number;
  log: (line: string) => void;
}

const CONNECT_TIMEOUT_MS = 1_000;
/** Writes keep flowing this long on the healthy cluster before the invariants are checked. */
export const AFTER_HEALTHY_MS = 500;
const HEALTHY_POLL_MS = 500;

export function describeError(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** `host:port`, as the write client records the member that acknowledged a write. */
export function address(member: ClusterMember): string {
  return `${member.host}:${member.port}`;
}

/** A healthy cluster with writes flowing for the warm-up time. */
export async function startWriting(context: Context, table: string): Promise<WriteClient> {
  const { cluster } = context;
  await cluster.waitHealthy(context.healthyTimeoutMs);
  const writer = startWriteClient({
    targets: cluster.members().map(({ host, port }) => ({ host, port })),
    ...cluster.credentials(),
    table,
    connectTimeoutMs: CONNECT_TIMEOUT_MS,
  });
  try {
    await writer.waitForAck(performance.now(), context.recoverTimeoutMs);
    await sleep(context.warmupMs);
    return writer;
  } catch (error) {
    await writer.stop();
    throw error;
  }
}

/** Stops the writer once the cluster is healthy and checks the invariants against the primary. */
export async function checkInvariants(
  context: Context,
  writer: WriteClient,
): Promise<Required<Pick<RunResult, 'ackedLost' | 'dualPrimary' | 'unknownCommits'>>> {
  await sleep(AFTER_HEALTHY_MS);
  await writer.stop();
  const primaryName = await context.cluster.primary();
  const primary = context.cluster.members().find((m) => m.name === primaryName)!;
  const lost = await writer.ackedLost(primary);
  return { ackedLost: lost.length, dualPrimary: writer.dualPrimary().length, unknownCommits: writer.stats().unknown };
}

/**
 * Healthy, and led by another member than `deposed`: a peer's published state may lag the failover
 * that writes already showed, and still name the old primary for a moment.
 */
export async function waitHealthyWithout(context: Context, deposed: string, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    await context.cluster.waitHealthy(Math.max(1, deadline - performance.now()));
    const primary = await context.cluster.primary();
    if (primary !== deposed) return;
    if (performance.now() >= deadline) {
      throw new Error(`cluster healthy but still led by ${deposed} after ${timeoutMs} ms`);
    }
    await sleep(HEALTHY_POLL_MS);
  }
}

/**
 * The write outage caused by a fault at `tMs` on the primary `oldPrimary`: the
 * longest pause between consecutive acks from the last ack before `tMs` to
 * the first ack by another member. (Not just the pause around `tMs`: a commit
 * in flight may still be acked by the old primary just after the fault, and a
 * switchover stops writes only some time after it is requested.)
 */
export async function writeOutage(
  context: Context,
  writer: WriteClient,
  tMs: number,
  oldPrimary: string,
): Promise<{ durationMs: number; resumed: AckedWrite }> {
  const oldMember = context.cluster.members().find((m) => m.name === oldPrimary);
  const oldAddress = oldMember === undefined ? oldPrimary : address(oldMember);
  const deadline = performance.now() + context.recoverTimeoutMs;
  for (;;) {
    const acks = writer.acked();
    const resumedAt = acks.findIndex((a) => a.ackedAtMs > tMs && a.member !== oldAddress);
    if (resumedAt >= 0) {
      let first = resumedAt;
      while (first > 0 && acks[first]!.ackedAtMs > tMs) first -= 1;
      return { durationMs: writeGaps(acks.slice(first, resumedAt + 1), 0).maxGapMs, resumed: acks[resumedAt]! };
    }
    if (performance.now() >= deadline) {
      throw new Error(`no write acknowledged by a new primary within ${context.recoverTimeoutMs} ms`);
    }
    await sleep(20);
  }
}

/** The name of the member that acknowledged `ack`. */
export function memberOf(cluster: ClusterUnderTest, ack: AckedWrite): string {
  return cluster.members().find((m) => address(m) === ack.member)?.name ?? ack.member;
}

/**
 * The timeline of the writer's last ack before `tMs` and of its last ack so far, e.g. `timeline 3 → 4`: each
 * promotion starts a new timeline, so the difference counts the primaries the fault went through.
 */
export function timelineChurn(writer: WriteClient, tMs: number): string | undefined {
  const acks = writer.acked();
  const before = acks.filter((a) => a.ackedAtMs <= tMs).at(-1);
  const last = acks.at(-1);
  if (before === undefined || last === undefined) return undefined;
  return `timeline ${before.timeline} → ${last.timeline}`;
}
