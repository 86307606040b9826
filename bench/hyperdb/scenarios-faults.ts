/**
 * The two faults of issue 12 that do not kill anything, run against any
 * {@link ClusterUnderTest} like the scenarios of scenarios.ts:
 *
 * - **hung-primary**: with writes flowing, every PostgreSQL process of the
 *   primary (postmaster and children) is frozen with SIGSTOP while its agent
 *   (hyper_db's keeper, Patroni) runs on. The figure is the write downtime as
 *   in member-death (`writeOutage`). A peer that does not fail over within
 *   `recoverTimeoutMs` fails the run with that reason: a finding, not a bench
 *   error. Then SIGCONT, a bounded wait for a healthy cluster (which says
 *   whether the old primary rejoined), the invariants.
 * - **disk-full**: a standby's `pg_wal` is moved onto a loop-mounted ext4
 *   image of its own (wal-filesystem.ts) while it is killed, the member is
 *   restarted and made primary by a switchover, writes start, then the
 *   filesystem is filled but for 40 MiB and a bulk load (~10 MB per INSERT,
 *   through a client of its own, until one fails or 60 s) fills the rest. The figure is
 *   the time from the filling to the first write sent after it and
 *   acknowledged by another member (as test-long/hyperdb-faults.test.ts 'disk
 *   full on the primary'). Then the space is given back, the cluster waited
 *   healthy, the invariants checked; at the end, always, the member is killed,
 *   its WAL moved back onto the data directory's disk and the member restarted.
 *
 * Both peers go through exactly the same steps, through the interface only.
 */
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import type { AckedWrite, WriteClient } from '../../src/testing/pg-write-client.js';
import { firstAckAfter, writeGaps } from '../../src/testing/write-history.js';
import type { ClusterMember, ClusterUnderTest } from './cluster-under-test.js';
import { signalAll } from './process-tree.js';
import {
  address,
  checkInvariants,
  describeError,
  memberOf,
  startWriting,
  timelineChurn,
  waitHealthyWithout,
  writeOutage,
  type Context,
  type RunResult,
} from './scenario-context.js';
import { moveWalOntoLoopFilesystem, type WalFilesystem } from './wal-filesystem.js';

/** Larger than the WAL a member keeps (hyper_db: wal_keep_size 1 GB; Patroni: 128 MB and its slots). */
const WAL_IMAGE_BYTES = 1_400 * 1024 * 1024;
/** What the filler leaves free on the WAL filesystem before the bulk load. */
const LEAVE_FREE_BYTES = 40 * 1024 * 1024;
/** The bulk load: INSERTs of ~10 MB each (10,000 rows of 1 KiB), for at most this long. */
const BULK_MAX_INSERTS = 200;
const BULK_ROWS = 10_000;
const BULK_MAX_MS = 60_000;
const BULK_STATEMENT_TIMEOUT_MS = 20_000;
const SWITCHOVER_ATTEMPTS = 10;
const SWITCHOVER_RETRY_MS = 3_000;
const FREEZE_ROUNDS = 3;
const POLL_MS = 50;

/** The first line of an error, short enough for a table's footnote (the full text goes to the log). */
function brief(error: unknown): string {
  const line = describeError(error).split('\n')[0] ?? '';
  return line.length > 300 ? `${line.slice(0, 300)}…` : line;
}

const seconds = (ms: number): string => (ms / 1000).toFixed(1);

function memberNamed(cluster: ClusterUnderTest, name: string): ClusterMember {
  const member = cluster.members().find((m) => m.name === name);
  if (member === undefined) throw new Error(`no member '${name}'`);
  return member;
}

/**
 * SIGSTOPs every PostgreSQL process of `name`; lists again after each round, so that a child forked while
 * the first list was taken is frozen too. Returns every pid frozen.
 */
async function freezePostgres(cluster: ClusterUnderTest, name: string): Promise<number[]> {
  const frozen = new Set<number>();
  for (let round = 0; round < FREEZE_ROUNDS; round += 1) {
    const pids = (await cluster.postgresPids(name)).filter((pid) => !frozen.has(pid));
    if (pids.length === 0) break;
    signalAll(pids, 'SIGSTOP');
    for (const pid of pids) frozen.add(pid);
  }
  if (frozen.size === 0) throw new Error(`no PostgreSQL process of ${name} to freeze`);
  return [...frozen];
}

/** Healthy again after a fault on `victim`: led by another member when the fault moved the primary. */
async function recover(context: Context, victim: string, movedPrimary: boolean, sinceMs: number): Promise<string> {
  const what = movedPrimary ? `old primary ${victim} rejoined (cluster healthy)` : 'cluster healthy again';
  try {
    if (movedPrimary) await waitHealthyWithout(context, victim, context.recoverTimeoutMs);
    else await context.cluster.waitHealthy(context.recoverTimeoutMs);
    return `${what} ${seconds(performance.now() - sinceMs)} s after`;
  } catch (error) {
    context.log(`${context.cluster.name}: not healthy after the fault on ${victim}: ${describeError(error)}`);
    return `NOT ${what} within ${seconds(context.recoverTimeoutMs)} s: ${brief(error)}`;
  }
}

/** The member's log tail into the progress log, when the peer gives one: why a run failed. */
async function logTailOf(context: Context, name: string): Promise<void> {
  const tail = await context.cluster.logTail?.(name).catch((error: unknown) => `(no log: ${describeError(error)})`);
  if (tail !== undefined) context.log(`${context.cluster.name} ${name} log:\n${tail}`);
}

/** Stops the writer and checks the invariants; a failure of the check is a note, not the run's error. */
async function invariantsInto(context: Context, writer: WriteClient, result: RunResult): Promise<void> {
  try {
    Object.assign(result, await checkInvariants(context, writer));
  } catch (error) {
    result.notes?.push(`invariants not checked: ${brief(error)}`);
  }
}

export async function hungPrimaryRun(context: Context, run: number): Promise<RunResult> {
  const { cluster } = context;
  const result: RunResult = { run, notes: [] };
  let writer: WriteClient | undefined;
  let frozen: number[] = [];
  try {
    writer = await startWriting(context, `bench_hung_${run}`);
    const victim = await cluster.primary();
    result.from = victim;
    const freezeAt = performance.now();
    frozen = await freezePostgres(cluster, victim);
    let movedPrimary = false;
    try {
      const outage = await writeOutage(context, writer, freezeAt, victim);
      result.valueMs = outage.durationMs;
      result.to = memberOf(cluster, outage.resumed);
      movedPrimary = true;
    } catch (error) {
      result.error = `${brief(error)} (${frozen.length} PostgreSQL processes of ${victim} frozen, its agent running)`;
      await logTailOf(context, victim);
    }
    signalAll(frozen, 'SIGCONT');
    frozen = [];
    const thawAt = performance.now();
    result.notes?.push(`${await recover(context, victim, movedPrimary, thawAt)} the thaw`);
    const churn = timelineChurn(writer, freezeAt);
    if (churn !== undefined) result.notes?.push(churn);
    await invariantsInto(context, writer, result);
  } catch (error) {
    context.log(`${cluster.name} hung-primary #${run}: ${describeError(error)}`);
    result.error ??= brief(error);
  } finally {
    signalAll(frozen, 'SIGCONT');
    await writer?.stop();
  }
  return result;
}

/** A switchover to `to`, asked again (bounded) until `to` holds the role: a member just restarted may not be eligible yet. */
async function switchoverTo(context: Context, to: string): Promise<void> {
  const { cluster } = context;
  let last = 'not tried';
  for (let attempt = 1; attempt <= SWITCHOVER_ATTEMPTS; attempt += 1) {
    try {
      await cluster.switchover(to);
      await cluster.waitHealthy(context.healthyTimeoutMs);
      const primary = await cluster.primary();
      if (primary === to) return;
      last = `the primary is ${primary}`;
    } catch (error) {
      last = brief(error);
    }
    context.log(`${cluster.name}: switchover to ${to}, attempt ${attempt}: ${last}`);
    await sleep(SWITCHOVER_RETRY_MS);
  }
  throw new Error(`no switchover to ${to} in ${SWITCHOVER_ATTEMPTS} attempts: ${last}`);
}

/**
 * ~10 MB INSERTs on `primary` through a client of their own until one fails (the disk full, the server gone or
 * read-only) or the bound: a fixed handful is not enough, since PostgreSQL writes WAL into recycled segments that
 * take no new space, and how many a member holds varies. Returns what the load did, for the run's notes.
 */
async function bulkLoad(context: Context, primary: ClusterMember, table: string): Promise<string> {
  const startedAt = performance.now();
  const loader = new pg.Client({
    host: primary.host,
    port: primary.port,
    ...context.cluster.credentials(),
    connectionTimeoutMillis: 5_000,
    query_timeout: BULK_STATEMENT_TIMEOUT_MS,
  });
  loader.on('error', () => {});
  let committed = 0;
  let stoppedBy = `the bound (${BULK_MAX_INSERTS} INSERTs or ${seconds(BULK_MAX_MS)} s)`;
  try {
    await loader.connect();
    await loader.query(`CREATE TABLE IF NOT EXISTS ${table} (b text)`);
    while (committed < BULK_MAX_INSERTS && performance.now() - startedAt < BULK_MAX_MS) {
      await loader.query(
        `INSERT INTO ${table} SELECT repeat(md5(g::text), 32) FROM generate_series(1, ${BULK_ROWS}) g`,
      );
      committed += 1;
    }
  } catch (error) {
    stoppedBy = brief(error);
  } finally {
    await Promise.race([loader.end().catch(() => {}), sleep(1_000)]);
  }
  return `bulk load: ${committed} INSERTs of ~10 MB committed in ${seconds(performance.now() - startedAt)} s, stopped by ${stoppedBy}`;
}

/** The first write sent after `tMs` and acknowledged by another member than `address`; undefined after `timeoutMs`. */
async function firstAckElsewhere(
  writer: WriteClient,
  tMs: number,
  oldAddress: string,
  timeoutMs: number,
): Promise<AckedWrite | undefined> {
  const deadline = tMs + timeoutMs;
  for (;;) {
    const ack = writer.acked().find((a) => a.sentAtMs > tMs && a.member !== oldAddress);
    if (ack !== undefined || performance.now() >= deadline) return ack;
    await sleep(POLL_MS);
  }
}

/** What the writer saw from `tMs` until now: acks by `full` and by the others, and the longest pause between acks. */
function writesSince(writer: WriteClient, tMs: number, full: ClusterMember): string {
  const acks = writer.acked();
  const first = Math.max(0, firstAckAfter(acks, tMs) - 1);
  const since = acks.slice(first);
  const onFull = since.filter((a) => a.ackedAtMs > tMs && a.member === address(full)).length;
  const elsewhere = since.filter((a) => a.ackedAtMs > tMs && a.member !== address(full)).length;
  // A pause still running when this is read counts too: it is the outage of a peer that never recovered.
  const trailingMs = since.length === 0 ? 0 : performance.now() - since.at(-1)!.ackedAtMs;
  const maxGapMs = Math.max(writeGaps(since, 0).maxGapMs, trailingMs);
  return `after the filling: ${onFull} writes acknowledged by ${full.name}, ${elsewhere} by others; longest write gap ${seconds(maxGapMs)} s`;
}

export async function diskFullRun(context: Context, run: number): Promise<RunResult> {
  const { cluster } = context;
  const result: RunResult = { run, notes: [] };
  let writer: WriteClient | undefined;
  let wal: WalFilesystem | undefined;
  let victim: string | undefined;
  let killed = false;
  try {
    await cluster.waitHealthy(context.healthyTimeoutMs);
    const before = await cluster.primary();
    victim = cluster.members().find((m) => m.name !== before)!.name;
    const dataDir = await cluster.dataDir(victim);
    await cluster.killMember(victim);
    killed = true;
    wal = moveWalOntoLoopFilesystem(dataDir, WAL_IMAGE_BYTES);
    await cluster.restartMember(victim);
    killed = false;
    await cluster.waitHealthy(context.healthyTimeoutMs);
    await switchoverTo(context, victim);
    result.from = victim;
    writer = await startWriting(context, `bench_disk_full_${run}`);
    const primary = memberNamed(cluster, victim);

    wal.fill(LEAVE_FREE_BYTES);
    const fullAt = performance.now();
    result.notes?.push(await bulkLoad(context, primary, `bench_bulk_${run}`));
    const ack = await firstAckElsewhere(writer, fullAt, address(primary), context.recoverTimeoutMs);
    if (ack === undefined) {
      result.error = `no write acknowledged by another member within ${seconds(context.recoverTimeoutMs)} s of filling ${victim}'s WAL filesystem`;
      await logTailOf(context, victim);
    } else {
      result.valueMs = ack.ackedAtMs - fullAt;
      result.to = memberOf(cluster, ack);
    }
    result.notes?.push(writesSince(writer, fullAt, primary));
    const churn = timelineChurn(writer, fullAt);
    if (churn !== undefined) result.notes?.push(churn);

    wal.unfill();
    const spaceBackAt = performance.now();
    result.notes?.push(`${await recover(context, victim, ack !== undefined, spaceBackAt)} the space came back`);
    await invariantsInto(context, writer, result);
  } catch (error) {
    context.log(`${cluster.name} disk-full #${run}: ${describeError(error)}`);
    result.error ??= brief(error);
  } finally {
    await writer?.stop();
    if (victim !== undefined) await putWalBack(context, victim, wal, killed, result);
  }
  return result;
}

/** The cleanup of disk-full, whatever happened: the member's WAL back on its data directory's disk, the member running. */
async function putWalBack(
  context: Context,
  victim: string,
  wal: WalFilesystem | undefined,
  killed: boolean,
  result: RunResult,
): Promise<void> {
  const { cluster } = context;
  if (wal === undefined && !killed) return;
  try {
    if (wal !== undefined) {
      wal.unfill();
      if (!killed) await cluster.killMember(victim);
      wal.restore();
    }
    await cluster.restartMember(victim);
    await cluster.waitHealthy(context.healthyTimeoutMs);
  } catch (error) {
    context.log(`${cluster.name} disk-full cleanup of ${victim}: ${describeError(error)}`);
    result.notes?.push(`cleanup: ${brief(error)}`);
  }
}
