/**
 * Divergent history on purpose, for hyper_db scenario 9 (an old primary
 * rejoins after a failover with writes of its own): rows the primary commits
 * that never reach any standby, and the checks that follow — which rows a
 * member holds, and when it streams from a given primary again. Everything
 * goes through the members' unix sockets as the cluster superuser (root
 * only, see {@link HyperDbPlatform.superuserClient}), in the `postgres`
 * database.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { signalAll, type HyperDbPlatform } from './hyperdb-platform.js';

/** Table of the divergent rows: `(id int primary key, origin text)`. */
export const DIVERGENCE_TABLE = 'hox_divergence';

/** Row count per `origin` in {@link DIVERGENCE_TABLE} on `member` (a standby answers too: hot standby). */
export async function rowsByOrigin(
  p: HyperDbPlatform,
  cluster: string,
  member: string,
): Promise<Record<string, number>> {
  const client = await p.superuserClient(cluster, member);
  try {
    const { rows } = await client.query<{ origin: string; n: number }>(
      `SELECT origin, count(*)::int AS n FROM ${DIVERGENCE_TABLE} GROUP BY origin ORDER BY origin`,
    );
    return Object.fromEntries(rows.map((r) => [r.origin, r.n]));
  } finally {
    await client.end();
  }
}

/**
 * Commits `count` rows (ids 1…count, origin `origin`) on `primary` that no standby receives: creates the
 * table and waits until every standby has it, freezes (SIGSTOP) the primary's WAL senders to
 * `standbys`, then inserts with `synchronous_commit = local` (the commit does not wait for the quorum,
 * as in `async` mode). WAL a frozen sender has not sent cannot reach a standby, so the rows are on the
 * primary only; other sessions' commits wait for the quorum meanwhile, unacknowledged.
 *
 * Returns the frozen WAL senders: the caller kills the primary (they die with it) — or SIGCONTs them.
 * On failure they are resumed before the error is thrown. Throws unless the rows are on the primary
 * and on no standby.
 */
export async function commitWithoutReplicating(
  p: HyperDbPlatform,
  cluster: string,
  options: { primary: string; standbys: readonly string[]; count: number; origin: string },
): Promise<number[]> {
  const onPrimary = await p.superuserClient(cluster, options.primary);
  let walSenders: number[] = [];
  try {
    await onPrimary.query(`CREATE TABLE ${DIVERGENCE_TABLE} (id int PRIMARY KEY, origin text)`);
    for (const standby of options.standbys) {
      const end = Date.now() + 10_000;
      while ((await rowsByOrigin(p, cluster, standby).catch(() => undefined)) === undefined) {
        if (Date.now() > end) throw new Error(`table ${DIVERGENCE_TABLE} not on ${standby} within 10 s`);
        await sleep(100);
      }
    }
    const { rows } = await onPrimary.query<{ pid: number }>(
      'SELECT pid FROM pg_stat_replication WHERE application_name = ANY($1)',
      [options.standbys],
    );
    if (rows.length !== options.standbys.length)
      throw new Error(`${rows.length} WAL senders to ${options.standbys.join(', ')}, expected one each`);
    walSenders = rows.map((r) => r.pid);
    signalAll(walSenders, 'SIGSTOP');
    await onPrimary.query('SET synchronous_commit = local');
    await onPrimary.query(`INSERT INTO ${DIVERGENCE_TABLE} SELECT g, $1 FROM generate_series(1, $2::int) g`, [
      options.origin,
      options.count,
    ]);
    const onPrimaryRows = await rowsByOrigin(p, cluster, options.primary);
    if (onPrimaryRows[options.origin] !== options.count)
      throw new Error(`${options.primary} holds ${JSON.stringify(onPrimaryRows)} after the insert`);
    for (const standby of options.standbys) {
      const onStandby = await rowsByOrigin(p, cluster, standby);
      if (Object.keys(onStandby).length > 0)
        throw new Error(`${standby} received rows it should not have: ${JSON.stringify(onStandby)}`);
    }
    return walSenders;
  } catch (error) {
    signalAll(walSenders, 'SIGCONT');
    throw error;
  } finally {
    await onPrimary.end().catch(() => {});
  }
}

/**
 * Polls `member`'s own socket until it is a standby whose WAL receiver streams from `senderHost`;
 * returns that moment (`Date.now()`), or `undefined` after `timeoutMs`.
 */
export async function waitForStreamingFrom(
  p: HyperDbPlatform,
  cluster: string,
  member: string,
  senderHost: string,
  timeoutMs: number,
): Promise<number | undefined> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    const state = await p
      .superuserClient(cluster, member)
      .then(async (client) => {
        try {
          const { rows } = await client.query<{ standby: boolean; status: string | null; sender: string | null }>(
            `SELECT pg_is_in_recovery() AS standby, (SELECT status FROM pg_stat_wal_receiver) AS status,
                    (SELECT sender_host FROM pg_stat_wal_receiver) AS sender`,
          );
          return rows[0];
        } finally {
          await client.end();
        }
      })
      .catch(() => undefined);
    if (state?.standby === true && state.status === 'streaming' && state.sender === senderHost) return Date.now();
    await sleep(100);
  }
  return undefined;
}
