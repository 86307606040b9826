/**
 * The production store: PostgreSQL, shared by any number of master processes.
 *
 * - Every transaction runs SERIALIZABLE and is retried on serialization
 *   failure, deadlock or a unique violation caused by a concurrent insert, so
 *   two masters can never allocate one partition twice.
 * - Change records take a transaction-scoped advisory lock before they are
 *   written, so their sequence numbers commit in order and a watcher's cursor
 *   never skips a change committed late.
 * - `pg_notify('hox_change')` wakes the watchers of every master.
 * - Secret columns are sealed with the store key, which every master on the
 *   database must share (checked on open: see `BaseStore.unlock`).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Kysely, PostgresDialect, sql } from 'kysely';
import pg from 'pg';
import { BaseStore } from '../base-store.js';
import type { Database } from '../database.js';
import { KyselyStoreTx, type Db } from '../kysely-store.js';
import type { StoreLog } from '../private-files.js';
import type { SecretBox } from '../secret-box.js';
import type { StoreTx, TransactionOptions } from '../store.js';
import { HoxError } from '../../shared/errors.js';

export interface PostgresStoreOptions {
  /** `postgres://user:password@host:port/db` */
  connectionString: string;
  /** @default 10 */
  poolSize?: number;
  /** @default 20 */
  maxAttempts?: number;
  /** Seals the secret columns; the same key on every master of this database. */
  secrets: SecretBox;
  /** Where the store says what it fixed on open (values sealed). */
  log?: StoreLog;
}

/** Arbitrary constant naming the change-log lock. */
const CHANGE_LOCK_KEY = 0x484f58; // "HOX"
const ALLOCATION_LOCK_KEY = 0x484f59;
const RETRYABLE_SQLSTATES = new Set(['40001', '40P01', '23505']);

function sqlState(error: unknown): string | undefined {
  let e: unknown = error;
  for (let depth = 0; depth < 4 && e !== null && typeof e === 'object'; depth += 1) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code)) return code;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

export class PostgresStore extends BaseStore {
  readonly dialect = 'postgres' as const;
  private listener: pg.Client | undefined;
  private closed = false;
  private allocationQueue: Promise<void> = Promise.resolve();

  private constructor(
    db: Kysely<Database>,
    private readonly options: PostgresStoreOptions,
  ) {
    super(db, options.secrets);
  }

  /** Connects, runs migrations (under Kysely's migration lock) and starts listening for changes. */
  static async open(options: PostgresStoreOptions): Promise<PostgresStore> {
    const pool = new pg.Pool({ connectionString: options.connectionString, max: options.poolSize ?? 10 });
    // An idle pooled connection the server closes (restart, failover, admin termination) emits an error on the
    // pool; unhandled, it would crash the master. The pool drops that connection and the next query opens another.
    pool.on('error', () => undefined);
    const store = new PostgresStore(new Kysely<Database>({ dialect: new PostgresDialect({ pool }) }), options);
    try {
      await store.migrate();
      await store.unlock(options.log ?? (() => undefined));
      await store.listen();
    } catch (error) {
      await store.close();
      throw error;
    }
    return store;
  }

  private async listen(): Promise<void> {
    const client = new pg.Client({ connectionString: this.options.connectionString });
    client.on('notification', () => this.emitChange());
    client.on('error', () => {
      // The connection dropped: reconnect in the background; watchers fall back to their timeout meanwhile.
      this.listener = undefined;
      void this.reconnectListener();
    });
    await client.connect();
    await client.query('LISTEN hox_change');
    this.listener = client;
  }

  private async reconnectListener(): Promise<void> {
    for (let attempt = 0; attempt < 1000 && !this.closed; attempt += 1) {
      await sleep(Math.min(5000, 100 * 2 ** Math.min(attempt, 6)));
      if (this.closed) return;
      try {
        await this.listen();
        this.emitChange(); // something may have changed while deaf
        return;
      } catch {
        // try again
      }
    }
  }

  async transaction<T>(work: (tx: StoreTx) => Promise<T>, options: TransactionOptions = {}): Promise<T> {
    if (options.exclusive === undefined) return this.attempts(this.db, work);
    // One at a time in this process (no pool connection spent waiting), then across processes.
    const previous = this.allocationQueue;
    let release!: () => void;
    this.allocationQueue = new Promise<void>((resolve) => (release = resolve));
    await previous;
    try {
      return await this.db.connection().execute(async (conn) => {
        await sql`select pg_advisory_lock(${ALLOCATION_LOCK_KEY})`.execute(conn);
        try {
          return await this.attempts(conn, work);
        } finally {
          await sql`select pg_advisory_unlock(${ALLOCATION_LOCK_KEY})`.execute(conn);
        }
      });
    } finally {
      release();
    }
  }

  private async attempts<T>(db: Kysely<Database>, work: (tx: StoreTx) => Promise<T>): Promise<T> {
    const maxAttempts = this.options.maxAttempts ?? 20;
    for (let attempt = 1; ; attempt += 1) {
      let changed = false;
      try {
        const result = await db
          .transaction()
          .setIsolationLevel('serializable')
          .execute(async (trx) => {
            const tx = new KyselyStoreTx(trx, this.box, orderChanges);
            const out = await work(tx);
            changed = tx.changed;
            return out;
          });
        if (changed) this.emitChange();
        return result;
      } catch (error) {
        const state = sqlState(error);
        if (state === undefined || !RETRYABLE_SQLSTATES.has(state)) throw error;
        if (attempt >= maxAttempts)
          throw new HoxError('HOX_STORE_BUSY', `transaction failed ${attempt} times (SQLSTATE ${state})`, {
            cause: error,
          });
        await sleep(Math.random() * Math.min(500, 5 * 2 ** attempt));
      }
    }
  }

  override async close(): Promise<void> {
    this.closed = true;
    const listener = this.listener;
    this.listener = undefined;
    if (listener) await listener.end().catch(() => undefined);
    await super.close();
  }
}

async function orderChanges(db: Db): Promise<void> {
  await sql`select pg_advisory_xact_lock(${CHANGE_LOCK_KEY}), pg_notify('hox_change', '')`.execute(db);
}
