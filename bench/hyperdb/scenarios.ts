/**
 * The fault scenarios of bench/hyperdb, run against any {@link ClusterUnderTest}
 * with the same write client (src/testing/pg-write-client.ts):
 *
 * - **member-death** (spec #3): with writes flowing, kill -9 the primary's agent
 *   and postmaster; the figure is the write downtime, from the last write
 *   acknowledged before the kill to the first one after it (`gapAround`).
 * - **rejoin** (spec #9, no divergence forced): in the same run, restart the
 *   killed member once writes resumed; the figure is the time from the restart
 *   until the cluster is healthy again (one primary, every standby streaming,
 *   so the old member is streaming again).
 * - **switchover** (spec #11): planned switchover under write load; the figure
 *   is the longest pause between two acknowledged writes from the request until
 *   the first write acknowledged by the new primary.
 *
 * - **switchover-no-retry** (issue 12, item 5): clients that never retry — a
 *   `pg.Pool` of 4 inserting in a loop and a loop of fresh connections
 *   (src/testing/no-retry-clients.ts) — through the peer's read-write endpoint
 *   during a planned switchover; the figures are the failed requests and the
 *   longest single request (the stall an app's user sees), and every
 *   acknowledged row is looked for afterwards (acked-lost). A peer without an
 *   endpoint of its own that follows the primary cannot run it (Patroni:
 *   HAProxy in front): the run says so.
 *
 * - **hung-primary** and **disk-full** (issue 12): see scenarios-faults.ts.
 *
 * Every run checks the invariants once writes resumed and the cluster is
 * healthy again: acked-lost (acknowledged ids missing on the primary) and
 * dual-primary (see `dualPrimaryOverlaps`). Every wait is bounded; a run that
 * times out is reported as failed with its reason and the next run starts
 * from a healthy cluster again.
 */
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { startNoRetryClients } from '../../src/testing/no-retry-clients.js';
import type { WriteClient } from '../../src/testing/pg-write-client.js';
import type { ClusterUnderTest } from './cluster-under-test.js';
import {
  AFTER_HEALTHY_MS,
  checkInvariants,
  describeError,
  memberOf,
  startWriting,
  writeOutage,
  type Context,
  type RunResult,
} from './scenario-context.js';
import { diskFullRun, hungPrimaryRun } from './scenarios-faults.js';

export type { RunResult } from './scenario-context.js';

export type ScenarioName =
  'member-death' | 'rejoin' | 'switchover' | 'switchover-no-retry' | 'hung-primary' | 'disk-full';
export const SCENARIO_NAMES: readonly ScenarioName[] = [
  'member-death',
  'rejoin',
  'switchover',
  'switchover-no-retry',
  'hung-primary',
  'disk-full',
];

export interface ScenarioResult {
  peer: string;
  scenario: ScenarioName;
  runs: RunResult[];
}

/** Options of {@link runScenarios}. */
export interface ScenarioOptions {
  /** Runs of each scenario. */
  runs: number;
  /** @default all of {@link SCENARIO_NAMES} */
  scenarios?: readonly ScenarioName[];
  /** Bound on waiting for a healthy cluster before a run and after a rejoin. @default 300_000 */
  healthyTimeoutMs?: number;
  /** Bound on waiting for writes to resume after a fault. @default 180_000 */
  recoverTimeoutMs?: number;
  /** Writes flowing before each fault. @default 2_000 */
  warmupMs?: number;
  log?: (line: string) => void;
}

/** Runs every selected scenario `runs` times on a started cluster; never throws for a failed run. */
export async function runScenarios(cluster: ClusterUnderTest, options: ScenarioOptions): Promise<ScenarioResult[]> {
  const selected = options.scenarios ?? SCENARIO_NAMES;
  const context: Context = {
    cluster,
    healthyTimeoutMs: options.healthyTimeoutMs ?? 300_000,
    recoverTimeoutMs: options.recoverTimeoutMs ?? 180_000,
    warmupMs: options.warmupMs ?? 2_000,
    log: options.log ?? (() => {}),
  };
  const results = new Map<ScenarioName, RunResult[]>(selected.map((name) => [name, []]));
  if (selected.includes('member-death') || selected.includes('rejoin')) {
    for (let run = 1; run <= options.runs; run += 1) {
      const { death, rejoin } = await memberDeathRun(context, run);
      context.log(`${cluster.name} member-death #${run}: ${JSON.stringify(death)} rejoin: ${JSON.stringify(rejoin)}`);
      results.get('member-death')?.push(death);
      results.get('rejoin')?.push(rejoin);
    }
  }
  if (selected.includes('switchover')) {
    for (let run = 1; run <= options.runs; run += 1) {
      const result = await switchoverRun(context, run);
      context.log(`${cluster.name} switchover #${run}: ${JSON.stringify(result)}`);
      results.get('switchover')?.push(result);
    }
  }
  if (selected.includes('switchover-no-retry')) {
    for (let run = 1; run <= options.runs; run += 1) {
      const result = await switchoverNoRetryRun(context, run);
      context.log(`${cluster.name} switchover-no-retry #${run}: ${JSON.stringify(result)}`);
      results.get('switchover-no-retry')?.push(result);
    }
  }
  const faults: [ScenarioName, (context: Context, run: number) => Promise<RunResult>][] = [
    ['hung-primary', hungPrimaryRun],
    ['disk-full', diskFullRun],
  ];
  for (const [scenario, runOnce] of faults) {
    if (!selected.includes(scenario)) continue;
    for (let run = 1; run <= options.runs; run += 1) {
      const result = await runOnce(context, run);
      context.log(`${cluster.name} ${scenario} #${run}: ${JSON.stringify(result)}`);
      results.get(scenario)?.push(result);
    }
  }
  return selected.map((scenario) => ({ peer: cluster.name, scenario, runs: results.get(scenario) ?? [] }));
}

async function memberDeathRun(context: Context, run: number): Promise<{ death: RunResult; rejoin: RunResult }> {
  const { cluster } = context;
  const death: RunResult = { run };
  const rejoin: RunResult = { run };
  let writer: WriteClient | undefined;
  let victim: string | undefined;
  let restarted = false;
  try {
    writer = await startWriting(context, `bench_death_${run}`);
    victim = await cluster.primary();
    death.from = victim;
    const killAt = performance.now();
    await cluster.killMember(victim);
    const outage = await writeOutage(context, writer, killAt, victim);
    death.valueMs = outage.durationMs;
    death.to = memberOf(cluster, outage.resumed);

    const restartAt = performance.now();
    await cluster.restartMember(victim);
    restarted = true;
    try {
      await cluster.waitHealthy(context.recoverTimeoutMs);
      rejoin.valueMs = performance.now() - restartAt;
    } catch (error) {
      rejoin.error = describeError(error);
    }
    Object.assign(death, await checkInvariants(context, writer));
  } catch (error) {
    death.error ??= describeError(error);
    rejoin.error ??= 'member-death run failed';
  } finally {
    await writer?.stop();
    if (victim !== undefined && !restarted) await cluster.restartMember(victim).catch(() => {});
  }
  return { death, rejoin };
}

async function switchoverRun(context: Context, run: number): Promise<RunResult> {
  const { cluster } = context;
  const result: RunResult = { run };
  let writer: WriteClient | undefined;
  try {
    writer = await startWriting(context, `bench_switchover_${run}`);
    const from = await cluster.primary();
    result.from = from;
    const requestedAt = performance.now();
    await cluster.switchover();
    const outage = await writeOutage(context, writer, requestedAt, from);
    result.valueMs = outage.durationMs;
    result.to = memberOf(cluster, outage.resumed);
    await cluster.waitHealthy(context.healthyTimeoutMs);
    Object.assign(result, await checkInvariants(context, writer));
  } catch (error) {
    result.error = describeError(error);
  } finally {
    await writer?.stop();
  }
  return result;
}

/** Clients without retries through the read-write endpoint, through one planned switchover. */
async function switchoverNoRetryRun(context: Context, run: number): Promise<RunResult> {
  const { cluster } = context;
  const result: RunResult = { run };
  if (cluster.readWriteEndpoint === undefined) {
    result.error = `${cluster.name} has no read-write endpoint of its own that follows the primary (HAProxy or a multi-host libpq URL does it in front of it): not measured`;
    return result;
  }
  const endpoint = cluster.readWriteEndpoint();
  const credentials = cluster.credentials();
  const config: pg.ClientConfig = { ...endpoint, ...credentials, connectionTimeoutMillis: 30_000 };
  let clients: Awaited<ReturnType<typeof startNoRetryClients>> | undefined;
  try {
    await cluster.waitHealthy(context.healthyTimeoutMs);
    clients = await startNoRetryClients({ config, table: `bench_no_retry_${run}` });
    await sleep(context.warmupMs);
    result.from = await cluster.primary();
    await cluster.switchover();
    await cluster.waitHealthy(context.healthyTimeoutMs);
    result.to = await cluster.primary();
    await sleep(AFTER_HEALTHY_MS);
    const stats = await clients.stop();
    clients = undefined;
    result.requests = stats.requests;
    result.failedRequests = stats.failures.length;
    result.valueMs = stats.maxStallMs;
    for (const f of stats.failures.slice(0, 3)) context.log(`${cluster.name} no-retry failure: ${f.who} ${f.message}`);
    const check = new pg.Client(config);
    await check.connect();
    try {
      const { rows } = await check.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM bench_no_retry_${run} WHERE id = ANY($1::bigint[])`,
        [stats.acked],
      );
      result.ackedLost = stats.acked.length - (rows[0]?.n ?? 0);
    } finally {
      await check.end();
    }
  } catch (error) {
    result.error = describeError(error);
  } finally {
    await clients?.stop();
  }
  return result;
}
