/**
 * The "writing client" of the hyper_db fault scenarios
 * (`shared/specs/hyperdb-scenarios.md`): it writes continuously to whichever
 * member of a PostgreSQL cluster accepts writes and records every commit it saw
 * acknowledged, so that a scenario can measure write downtime and check the
 * invariants afterwards (acked-lost = 0, dual-primary = 0).
 *
 * One autocommit `INSERT` at a time, with a client-side increasing id. The
 * writable member is found like libpq's `target_session_attrs=read-write`:
 * the targets are tried in order and a session is kept only when the member is
 * not in recovery and its `transaction_read_only` is off. Any error drops the
 * session; the next round starts after a short pause.
 *
 * An id is never retried: a commit whose answer was lost (connection dropped,
 * timeout, or PostgreSQL's "canceling wait for synchronous replication"
 * warning, which turns a cancelled commit into a success that was never
 * replicated) is counted as *unknown*, never as acked, and the next attempt
 * takes the next id.
 *
 * Times are `performance.now()` of this process (ms); pass fault times taken
 * the same way to {@link WriteClient.gapAround}.
 */
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import {
  dualPrimaryOverlaps,
  firstAckAfter,
  gapAround,
  writeGaps,
  type AckedWrite,
  type DualPrimaryOverlap,
  type WriteGap,
} from './write-history.js';

export type { AckedWrite, DualPrimaryOverlap, WriteGap } from './write-history.js';

/** A member to try, as `host:port` in the records. */
export interface WriteTarget {
  host: string;
  port: number;
}

/** Options of {@link startWriteClient}. */
export interface WriteClientOptions {
  /** Members to try, in this order, every time a writable one is needed. */
  targets: readonly WriteTarget[];
  user: string;
  password?: string;
  database: string;
  /** Created when missing on every writable member reached: `(id bigint primary key, at timestamptz, member text)`. @default 'hox_writes' */
  table?: string;
  /** Pause after each acknowledged insert. @default 5 */
  intervalMs?: number;
  /** Bound on opening one connection (TCP, startup, authentication). */
  connectTimeoutMs: number;
  /** Bound on every statement, client side and as the server's `statement_timeout`; past it the commit is unknown. @default 2000 */
  statementTimeoutMs?: number;
  /** Pause after an error or a round with no writable member; at most 50. @default 20 */
  reconnectDelayMs?: number;
  /** {@link WriteStats.gaps} lists the pauses between two consecutive acks longer than this. @default 100 */
  gapThresholdMs?: number;
  /** The client stops writing by itself after this long, whatever happens. @default 3_600_000 */
  maxRunMs?: number;
  /** The first id; ids must be new to the table. @default 1 */
  firstId?: number;
  /** Receives connection changes and errors (not every write). */
  log?: (line: string) => void;
  /** TLS options of every connection (node-postgres `ssl`), e.g. `{ ca }` for a hyper_db cluster. @default none */
  ssl?: pg.ClientConfig['ssl'];
}

/** Counters of a write client. */
export interface WriteStats {
  acked: number;
  /** Inserts sent whose outcome is unknown (answer lost or timed out). */
  unknown: number;
  /** Every failure: connecting, checking a member, inserting. */
  errors: number;
  /** The longest pause between two consecutive acks (0 with fewer than two acks). */
  maxGapMs: number;
  /** Pauses between consecutive acks longer than `gapThresholdMs`, in order. */
  gaps: WriteGap[];
}

/** A running write client. */
export interface WriteClient {
  /** Stops writing, closes the connection and clears every timer. Idempotent. */
  stop(): Promise<void>;
  /** Every acknowledged write, in order of acknowledgement (the client is sequential, so also of id). */
  acked(): readonly AckedWrite[];
  stats(): WriteStats;
  /**
   * The write gap around a fault at `tMs`: from the last ack at or before `tMs`
   * (or the client's start) to the first ack after it; `undefined` while no
   * write has been acked after `tMs`.
   */
  gapAround(tMs: number): WriteGap | undefined;
  /** Resolves with the first ack after `tMs` (polled every 10 ms); rejects after `timeoutMs`. */
  waitForAck(tMs: number, timeoutMs: number): Promise<AckedWrite>;
  /** Ids acked but missing from `primary`'s table, ascending; queried in batches of 10,000. */
  ackedLost(primary: WriteTarget): Promise<number[]>;
  /** {@link dualPrimaryOverlaps} of the acks so far. */
  dualPrimary(): DualPrimaryOverlap[];
}

const DEFAULTS = {
  table: 'hox_writes',
  intervalMs: 5,
  statementTimeoutMs: 2_000,
  reconnectDelayMs: 20,
  gapThresholdMs: 100,
  maxRunMs: 3_600_000,
  firstId: 1,
} as const;
const MAX_RECONNECT_DELAY_MS = 50;
const APPLICATION_NAME = 'hox-write-client';
const LOST_BATCH = 10_000;
const CLOSE_TIMEOUT_MS = 1_000;
const ACK_POLL_MS = 10;
/** PostgreSQL's warning when a commit stops waiting for its synchronous standby: committed locally, maybe not replicated. */
const SYNC_REP_CANCELLED = /synchronous replication/i;

type Resolved = Required<Omit<WriteClientOptions, 'password' | 'log' | 'ssl'>> &
  Pick<WriteClientOptions, 'password' | 'log' | 'ssl'>;

function resolveOptions(options: WriteClientOptions): Resolved {
  const given = Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined));
  const resolved = { ...DEFAULTS, ...given } as Resolved;
  if (resolved.targets.length === 0) throw new Error('write client: no target given');
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(resolved.table)) {
    throw new Error(`write client: table name '${resolved.table}' must match [a-z_][a-z0-9_]*, at most 63 bytes`);
  }
  if (resolved.reconnectDelayMs > MAX_RECONNECT_DELAY_MS) {
    throw new Error(`write client: reconnectDelayMs ${resolved.reconnectDelayMs} is above ${MAX_RECONNECT_DELAY_MS}`);
  }
  if (!Number.isSafeInteger(resolved.firstId))
    throw new Error(`write client: firstId ${resolved.firstId} is not a safe integer`);
  return resolved;
}

function memberName(target: WriteTarget): string {
  return `${target.host}:${target.port}`;
}

function describeError(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Rejects after `ms` unless `promise` settles first; the timer never outlives the race. */
async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Closes politely when the server answers, otherwise tears the socket down. */
async function closeClient(client: pg.Client): Promise<void> {
  await withTimeout(client.end(), CLOSE_TIMEOUT_MS, 'close').catch(() => {});
  client.connection.stream.destroy();
}

function newClient(options: Resolved, target: WriteTarget): pg.Client {
  const client = new pg.Client({
    host: target.host,
    port: target.port,
    user: options.user,
    password: options.password,
    database: options.database,
    application_name: APPLICATION_NAME,
    connectionTimeoutMillis: options.connectTimeoutMs,
    statement_timeout: options.statementTimeoutMs,
    ...(options.ssl === undefined ? {} : { ssl: options.ssl }),
  });
  // Failures surface through the pending query's promise; an idle socket error must not crash the process.
  client.on('error', () => {});
  return client;
}

/** A session on a member that accepts writes. */
interface Session {
  client: pg.Client;
  member: string;
  timeline: number;
  /** Set when the server warned that a commit stopped waiting for synchronous replication. */
  syncWaitCancelled: boolean;
}

/**
 * Opens a session on `target` if it accepts writes (not in recovery,
 * `transaction_read_only` off) and makes sure the table exists there;
 * `undefined` for a read-only member. Throws on connection or query errors.
 */
async function openWritable(options: Resolved, target: WriteTarget): Promise<Session | undefined> {
  const client = newClient(options, target);
  try {
    await withTimeout(client.connect(), options.connectTimeoutMs + CLOSE_TIMEOUT_MS, 'connect');
    const { rows } = await withTimeout(
      client.query<{ in_recovery: boolean; read_only: string; wal_file: string | null }>(
        `select pg_is_in_recovery() as in_recovery, current_setting('transaction_read_only') as read_only,
                case when pg_is_in_recovery() then null else pg_walfile_name(pg_current_wal_lsn()) end as wal_file`,
      ),
      options.statementTimeoutMs,
      'member check',
    );
    const row = rows[0];
    if (!row || row.in_recovery || row.read_only !== 'off' || row.wal_file === null) {
      await closeClient(client);
      return undefined;
    }
    await withTimeout(
      client.query(
        `create table if not exists ${options.table} ` +
          '(id bigint primary key, at timestamptz default clock_timestamp(), member text)',
      ),
      options.statementTimeoutMs,
      'create table',
    );
    // A WAL file name starts with the timeline, 8 hex digits.
    const session: Session = {
      client,
      member: memberName(target),
      timeline: Number.parseInt(row.wal_file.slice(0, 8), 16),
      syncWaitCancelled: false,
    };
    client.on('notice', (notice) => {
      if (SYNC_REP_CANCELLED.test(notice.message ?? '')) session.syncWaitCancelled = true;
    });
    return session;
  } catch (error) {
    client.connection.stream.destroy();
    throw error;
  }
}

/**
 * SQLSTATE classes that an autocommit INSERT gets only before its commit:
 * data (22), integrity (23), read-only transaction (25), rollback (40), syntax
 * or missing table (42). Anything else — a timeout, a lost socket, or class 57
 * (e.g. a shutdown that also cancels the wait for a synchronous standby after
 * the local commit) — leaves the outcome unknown.
 */
function refusedBeforeCommit(error: unknown): boolean {
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' && ['22', '23', '25', '40', '42'].includes(code.slice(0, 2));
}

/**
 * Starts writing in the background and returns at once; the first writes land
 * when a writable member is found.
 *
 * @example
 * const writer = startWriteClient({ targets: [{ host: '127.0.0.11', port: 5432 }], user: 'hox', database: 'postgres', connectTimeoutMs: 1000 });
 * const faultAt = performance.now();
 * await killPrimary();
 * await writer.waitForAck(faultAt, 60_000);
 * console.log(writer.gapAround(faultAt)?.durationMs);
 * await writer.stop();
 */
export function startWriteClient(options: WriteClientOptions): WriteClient {
  const client = new PgWriteClient(resolveOptions(options));
  client.start();
  return client;
}

/** The write loop and its record; see {@link startWriteClient}. */
class PgWriteClient implements WriteClient {
  private readonly startedAtMs = performance.now();
  private readonly acks: AckedWrite[] = [];
  private readonly counters = { unknown: 0, errors: 0 };
  private readonly abort = new AbortController();
  private session: Session | undefined;
  private nextId: number;
  private loop: Promise<void> = Promise.resolve();
  private stopping: Promise<void> | undefined;

  constructor(private readonly config: Resolved) {
    this.nextId = config.firstId;
  }

  start(): void {
    this.loop = this.run().catch((error: unknown) => this.log(`write loop failed: ${describeError(error)}`));
  }

  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.abort.abort();
      // Do not wait for a blocked commit: drop the socket, the loop then ends at once.
      this.session?.client.connection.stream.destroy();
      await this.loop;
    })();
    return this.stopping;
  }

  acked(): readonly AckedWrite[] {
    return this.acks;
  }

  stats(): WriteStats {
    return { acked: this.acks.length, ...this.counters, ...writeGaps(this.acks, this.config.gapThresholdMs) };
  }

  gapAround(tMs: number): WriteGap | undefined {
    return gapAround(this.acks, tMs, this.startedAtMs);
  }

  async waitForAck(tMs: number, timeoutMs: number): Promise<AckedWrite> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const ack = this.acks[firstAckAfter(this.acks, tMs)];
      if (ack !== undefined) return ack;
      if (performance.now() >= deadline) throw new Error(`no write acknowledged within ${timeoutMs} ms`);
      await sleep(ACK_POLL_MS);
    }
  }

  ackedLost(primary: WriteTarget): Promise<number[]> {
    return ackedLost(this.config, primary, this.acks);
  }

  dualPrimary(): DualPrimaryOverlap[] {
    return dualPrimaryOverlaps(this.acks);
  }

  private log(line: string): void {
    try {
      this.config.log?.(line);
    } catch {
      // A failing logger must not stop the writes.
    }
  }

  private pause(ms: number): Promise<void> {
    return sleep(ms, undefined, { signal: this.abort.signal }).catch(() => {});
  }

  /** Bounded in time: stop() or maxRunMs ends it. */
  private running(): boolean {
    return !this.abort.signal.aborted && performance.now() - this.startedAtMs < this.config.maxRunMs;
  }

  private async run(): Promise<void> {
    while (this.running()) {
      this.session = await this.findWritable();
      while (this.session !== undefined && this.running() && (await this.writeOnce(this.session))) {
        await this.pause(this.config.intervalMs);
      }
      if (this.session !== undefined) await closeClient(this.session.client);
      this.session = undefined;
      await this.pause(this.config.reconnectDelayMs);
    }
  }

  /** One round over the targets, in order; the first writable member wins. */
  private async findWritable(): Promise<Session | undefined> {
    for (const target of this.config.targets) {
      if (!this.running()) return undefined;
      try {
        const found = await openWritable(this.config, target);
        if (found) {
          this.log(`writing to ${found.member} (timeline ${found.timeline})`);
          return found;
        }
      } catch (error) {
        this.counters.errors += 1;
        this.log(`${memberName(target)}: ${describeError(error)}`);
      }
    }
    return undefined;
  }

  /** Inserts the next id; returns false when the session must be dropped. */
  private async writeOnce(session: Session): Promise<boolean> {
    const id = this.nextId;
    this.nextId += 1;
    const sentAtMs = performance.now();
    session.syncWaitCancelled = false;
    try {
      await withTimeout(
        session.client.query(`insert into ${this.config.table} (id, member) values ($1, $2)`, [id, session.member]),
        this.config.statementTimeoutMs,
        'insert',
      );
    } catch (error) {
      this.counters.errors += 1;
      if (!refusedBeforeCommit(error)) this.counters.unknown += 1;
      this.log(`${session.member}: insert ${id}: ${describeError(error)}`);
      return false;
    }
    if (session.syncWaitCancelled) {
      this.counters.unknown += 1;
      this.log(`${session.member}: insert ${id} stopped waiting for synchronous replication; outcome unknown`);
      return false;
    }
    const ack = { id, member: session.member, timeline: session.timeline, sentAtMs };
    this.acks.push({ ...ack, ackedAtMs: performance.now(), ackedAt: new Date() });
    return true;
  }
}

async function ackedLost(config: Resolved, primary: WriteTarget, acks: readonly AckedWrite[]): Promise<number[]> {
  const client = newClient(config, primary);
  try {
    await withTimeout(client.connect(), config.connectTimeoutMs + CLOSE_TIMEOUT_MS, 'connect');
    const lost: number[] = [];
    for (let start = 0; start < acks.length; start += LOST_BATCH) {
      const ids = acks.slice(start, start + LOST_BATCH).map((ack) => ack.id);
      const { rows } = await withTimeout(
        client.query<{ id: string }>(`select id from ${config.table} where id = any($1::bigint[])`, [ids]),
        config.statementTimeoutMs,
        'acked-lost query',
      );
      const present = new Set(rows.map((row) => Number(row.id)));
      for (const id of ids) if (!present.has(id)) lost.push(id);
    }
    return lost.sort((a, b) => a - b);
  } catch (error) {
    throw new Error(`acked-lost check on ${memberName(primary)} failed: ${describeError(error)}`, { cause: error });
  } finally {
    await closeClient(client);
  }
}
