/**
 * The measuring side of hyper_db scenario 21 (routing after promotion): loops
 * that each open a fresh connection, write one row and close it, one after
 * the other, to some members' own addresses (`direct`) and to the router's
 * read-write endpoint (`rw`). Every acknowledged write is recorded with the
 * address of the server that took it (`inet_server_addr()` and port: members
 * on distinct nodes may share a port number), so a test can tell
 * when a member first accepted writes directly and when a *new* connection
 * through the endpoint first reached it and wrote — the router's delay.
 *
 * A fresh connection each time on purpose: scenario 21 is about where new
 * sessions land, and a kept session would only say where an old one was.
 * Times are `performance.now()` of this process (ms).
 */
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';

/** An address to connect to. */
export interface ProbeTarget {
  host: string;
  port: number;
}

/** One acknowledged probe write. */
export interface ProbeWrite {
  /** `rw`: through the router's read-write endpoint; `direct`: to the member's own address. */
  via: 'direct' | 'rw';
  /** `host:port` of the server that committed it (its own address, even through the router). */
  server: string;
  /** When the commit was acknowledged. */
  ackedAtMs: number;
}

/** Options of {@link startRoutingProbe}. */
export interface RoutingProbeOptions {
  /** The router's read-write endpoint. */
  rw: ProbeTarget;
  /** Members probed on their own address (e.g. the switchover target, or every standby). */
  members: readonly ProbeTarget[];
  user: string;
  password: string;
  database: string;
  /** TLS options of every connection (node-postgres `ssl`). @default none */
  ssl?: pg.ClientConfig['ssl'];
  /** Created through `rw` when missing: `(at timestamptz)`. @default 'hox_routing_probe' */
  table?: string;
  /** Pause after each attempt, written or not. @default 20 */
  intervalMs?: number;
  /** Bound on opening one connection and on its statement. @default 1000 */
  timeoutMs?: number;
  /** The loops stop by themselves after this long. @default 120_000 */
  maxRunMs?: number;
}

/** Running probe loops. */
export interface RoutingProbe {
  /** Every acknowledged write so far, in order of acknowledgement. */
  writes(): readonly ProbeWrite[];
  /** Resolves with the first write after `afterMs` via `via` taken by `member`; rejects after `timeoutMs`. */
  waitForWrite(via: ProbeWrite['via'], member: ProbeTarget, afterMs: number, timeoutMs: number): Promise<ProbeWrite>;
  /** Stops every loop (each finishes its attempt in flight). Idempotent. */
  stop(): Promise<void>;
}

/**
 * Creates the probe table through the endpoint, then starts one loop per target.
 *
 * @example
 * const probe = await startRoutingProbe({ rw, members: [target], user, password, database, ssl: { ca } });
 * const direct = await probe.waitForWrite('direct', target, t0, 30_000);
 * const routed = await probe.waitForWrite('rw', target, t0, 30_000);
 * const delayMs = routed.ackedAtMs - direct.ackedAtMs;
 */
export async function startRoutingProbe(options: RoutingProbeOptions): Promise<RoutingProbe> {
  const table = options.table ?? 'hox_routing_probe';
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(table)) throw new Error(`invalid probe table name '${table}'`);
  const intervalMs = options.intervalMs ?? 20;
  const timeoutMs = options.timeoutMs ?? 1000;
  const endAt = performance.now() + (options.maxRunMs ?? 120_000);
  const writes: ProbeWrite[] = [];
  let stopped = false;

  /** Runs `sql` on a fresh connection; returns the `server` column of its first row ('' without one). */
  const writeOnce = async (target: ProbeTarget, sql: string): Promise<string> => {
    const client = new pg.Client({
      host: target.host,
      port: target.port,
      user: options.user,
      password: options.password,
      database: options.database,
      connectionTimeoutMillis: timeoutMs,
      query_timeout: timeoutMs,
      application_name: 'hox-routing-probe',
      ...(options.ssl === undefined ? {} : { ssl: options.ssl }),
    });
    client.on('error', () => {});
    try {
      await client.connect();
      const { rows } = await client.query<{ server: string }>(sql);
      return rows[0]?.server ?? '';
    } finally {
      await Promise.race([client.end().catch(() => {}), sleep(timeoutMs)]);
    }
  };

  await writeOnce(options.rw, `CREATE TABLE IF NOT EXISTS ${table} (at timestamptz)`);

  const loop = async (via: ProbeWrite['via'], target: ProbeTarget): Promise<void> => {
    while (!stopped && performance.now() < endAt) {
      try {
        const server = await writeOnce(
          target,
          `INSERT INTO ${table} VALUES (now()) RETURNING host(inet_server_addr()) || ':' || inet_server_port() AS server`,
        );
        writes.push({ via, server, ackedAtMs: performance.now() });
      } catch {
        // Not writable (yet), refused, cut, timed out: the next attempt tells.
      }
      await sleep(intervalMs);
    }
  };
  const loops = [loop('rw', options.rw), ...options.members.map((m) => loop('direct', m))];

  return {
    writes: () => writes,
    async waitForWrite(via, member, afterMs, waitMs) {
      const server = `${member.host}:${member.port}`;
      const end = performance.now() + waitMs;
      for (;;) {
        const found = writes.find((w) => w.via === via && w.server === server && w.ackedAtMs > afterMs);
        if (found !== undefined) return found;
        if (performance.now() > end || stopped)
          throw new Error(`no probe write via ${via} taken by ${server} within ${waitMs} ms`);
        await sleep(10);
      }
    },
    async stop() {
      stopped = true;
      await Promise.all(loops);
    },
  };
}
