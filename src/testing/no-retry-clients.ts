/**
 * Clients that never retry, as a plain app would be written: a `pg.Pool` of 4 inserting in a loop and a
 * loop of fresh `pg.Client` connect / insert / end. Every failed request is recorded (with its message),
 * every acknowledged row by id, and the longest time one request took (the stall an app's user sees).
 * Used by the switchover test (test/hyperdb.test.ts) and bench/hyperdb.
 */
import pg from 'pg';

export interface NoRetryStats {
  requests: number;
  failures: { atMs: number; who: 'pool' | 'fresh'; message: string }[];
  /** Longest single request (connect included for fresh clients), in ms. */
  maxStallMs: number;
  /** Ids of the rows whose insert was acknowledged. */
  acked: number[];
}

export interface NoRetryClients {
  stop(): Promise<NoRetryStats>;
  stats(): NoRetryStats;
}

/** Creates `table` (id bigserial, who text) if needed, then starts the loops. */
export async function startNoRetryClients(options: {
  config: pg.ClientConfig;
  table: string;
  poolSize?: number;
  /** Pause between two requests of one loop. */
  intervalMs?: number;
}): Promise<NoRetryClients> {
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(options.table)) throw new Error(`invalid table name '${options.table}'`);
  const setup = new pg.Client(options.config);
  await setup.connect();
  try {
    await setup.query(`CREATE TABLE IF NOT EXISTS ${options.table} (id bigserial PRIMARY KEY, who text NOT NULL)`);
  } finally {
    await setup.end();
  }
  const stats: NoRetryStats = { requests: 0, failures: [], maxStallMs: 0, acked: [] };
  const t0 = performance.now();
  let running = true;
  const interval = options.intervalMs ?? 2;
  const timed = async (who: 'pool' | 'fresh', work: () => Promise<number>): Promise<void> => {
    const start = performance.now();
    stats.requests++;
    try {
      stats.acked.push(await work());
    } catch (error) {
      stats.failures.push({ atMs: Math.round(start - t0), who, message: (error as Error).message });
    } finally {
      stats.maxStallMs = Math.max(stats.maxStallMs, performance.now() - start);
    }
    if (interval > 0) await new Promise((r) => setTimeout(r, interval));
  };
  const insert = `INSERT INTO ${options.table} (who) VALUES ($1) RETURNING id`;
  const pool = new pg.Pool({ ...options.config, max: options.poolSize ?? 4 });
  // An idle pooled connection that breaks is an error event on the pool: counted, never thrown.
  pool.on('error', (error) =>
    stats.failures.push({ atMs: Math.round(performance.now() - t0), who: 'pool', message: `idle: ${error.message}` }),
  );
  const loops = Array.from({ length: options.poolSize ?? 4 }, async () => {
    while (running)
      await timed('pool', async () => Number((await pool.query<{ id: string }>(insert, ['pool'])).rows[0]?.id));
  });
  loops.push(
    (async () => {
      while (running)
        await timed('fresh', async () => {
          const client = new pg.Client(options.config);
          client.on('error', () => {});
          try {
            await client.connect();
            return Number((await client.query<{ id: string }>(insert, ['fresh'])).rows[0]?.id);
          } finally {
            await client.end().catch(() => {});
          }
        });
    })(),
  );
  return {
    stats: () => ({ ...stats, failures: [...stats.failures], acked: [...stats.acked] }),
    async stop() {
      running = false;
      await Promise.all(loops);
      await pool.end();
      return { ...stats, maxStallMs: Math.round(stats.maxStallMs) };
    },
  };
}
