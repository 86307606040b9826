/**
 * The embedded default store: one SQLite file in WAL mode. Transactions are
 * serialised inside the process (one connection), which is what makes
 * allocation safe; one master process per file.
 *
 * The file and its `-wal`/`-shm` companions are mode 0600 whatever they were
 * (SQLite gives the companions the mode of the main file; a file an older
 * version created 0644 is narrowed on open).
 */
import SqliteDatabase from 'better-sqlite3';
import { Kysely, SqliteDialect } from 'kysely';
import { BaseStore } from '../base-store.js';
import type { Database } from '../database.js';
import { KyselyStoreTx } from '../kysely-store.js';
import { createPrivateFile, restrictFile, type StoreLog } from '../private-files.js';
import type { SecretBox } from '../secret-box.js';
import type { StoreTx, TransactionOptions } from '../store.js';

export interface SqliteStoreOptions {
  /** Path of the database file, or `:memory:`. */
  filename: string;
  /** Seals the secret columns (see src/store/secret-box.ts). */
  secrets: SecretBox;
  /** Where the store says what it fixed on open (modes narrowed, values sealed). */
  log?: StoreLog;
}

const COMPANIONS = ['', '-wal', '-shm', '-journal'];

export class SqliteStore extends BaseStore {
  readonly dialect = 'sqlite' as const;

  private constructor(db: Kysely<Database>, box: SecretBox) {
    super(db, box);
  }

  /** Opens (creating if needed) the file and runs migrations. */
  static async open(options: SqliteStoreOptions): Promise<SqliteStore> {
    const log = options.log ?? (() => undefined);
    const onDisk = options.filename !== ':memory:' && options.filename !== '';
    if (onDisk) {
      createPrivateFile(options.filename);
      for (const suffix of COMPANIONS) restrictFile(options.filename + suffix, log);
    }
    const sqlite = new SqliteDatabase(options.filename);
    sqlite.pragma('journal_mode = WAL');
    sqlite.pragma('synchronous = NORMAL');
    sqlite.pragma('foreign_keys = ON');
    sqlite.pragma('busy_timeout = 5000');
    const store = new SqliteStore(
      new Kysely<Database>({ dialect: new SqliteDialect({ database: sqlite }) }),
      options.secrets,
    );
    try {
      await store.migrate();
      if ((await store.unlock(log)) > 0) {
        // The cleartext an older version wrote is still in freed pages and in the WAL: rebuild the file, empty the WAL.
        sqlite.exec('VACUUM');
        sqlite.pragma('wal_checkpoint(TRUNCATE)');
      }
      // WAL mode made its companions; one left by an older version could still be wide.
      if (onDisk) for (const suffix of COMPANIONS) restrictFile(options.filename + suffix, log);
    } catch (error) {
      await store.close();
      throw error;
    }
    return store;
  }

  /** One connection: transactions already run one at a time, `exclusive` or not. */
  async transaction<T>(work: (tx: StoreTx) => Promise<T>, _options?: TransactionOptions): Promise<T> {
    let changed = false;
    const result = await this.db.transaction().execute(async (trx) => {
      const tx = new KyselyStoreTx(trx, this.box);
      const out = await work(tx);
      changed = tx.changed;
      return out;
    });
    if (changed) this.emitChange();
    return result;
  }
}
