/**
 * The embedded default store: one SQLite file in WAL mode. Transactions are
 * serialised inside the process (one connection), which is what makes
 * allocation safe; one master process per file.
 */
import SqliteDatabase from 'better-sqlite3';
import { Kysely, SqliteDialect } from 'kysely';
import { BaseStore } from '../base-store.js';
import type { Database } from '../database.js';
import { KyselyStoreTx } from '../kysely-store.js';
import type { StoreTx, TransactionOptions } from '../store.js';

export interface SqliteStoreOptions {
  /** Path of the database file, or `:memory:`. */
  filename: string;
}

export class SqliteStore extends BaseStore {
  readonly dialect = 'sqlite' as const;

  private constructor(db: Kysely<Database>) {
    super(db);
  }

  /** Opens (creating if needed) the file and runs migrations. */
  static async open(options: SqliteStoreOptions): Promise<SqliteStore> {
    const sqlite = new SqliteDatabase(options.filename);
    sqlite.pragma('journal_mode = WAL');
    sqlite.pragma('synchronous = NORMAL');
    sqlite.pragma('foreign_keys = ON');
    sqlite.pragma('busy_timeout = 5000');
    const store = new SqliteStore(new Kysely<Database>({ dialect: new SqliteDialect({ database: sqlite }) }));
    await store.migrate();
    return store;
  }

  /** One connection: transactions already run one at a time, `exclusive` or not. */
  async transaction<T>(work: (tx: StoreTx) => Promise<T>, _options?: TransactionOptions): Promise<T> {
    let changed = false;
    const result = await this.db.transaction().execute(async (trx) => {
      const tx = new KyselyStoreTx(trx);
      const out = await work(tx);
      changed = tx.changed;
      return out;
    });
    if (changed) this.emitChange();
    return result;
  }
}
