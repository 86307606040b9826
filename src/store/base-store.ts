import { EventEmitter } from 'node:events';
import { Migrator, type Kysely } from 'kysely';
import type { Database } from './database.js';
import {
  SEALED_INSTANCE_COLUMNS,
  changesAfter,
  instanceSealContext,
  latestChangeSeq,
  pruneChanges,
} from './kysely-store.js';
import { pruneAudit } from './audit-log-store.js';
import { migrationProvider } from './migrations/index.js';
import type { StoreLog } from './private-files.js';
import { SecretBox } from './secret-box.js';
import { KyselyArtifactStore, type ArtifactStore } from './artifact-store.js';
import type { ChangeRow, Store, StoreTx, TransactionOptions } from './store.js';
import { HoxError } from '../shared/errors.js';

/** Sealed in the key check row: opening it proves the key is the store's. */
const KEY_CHECK_PLAINTEXT = 'hox store key check';
const KEY_CHECK_CONTEXT = 'hox_store_key.verifier:1';

/** What both stores share: migrations, the store key check, the change log, change listeners. */
export abstract class BaseStore implements Store {
  abstract readonly dialect: 'sqlite' | 'postgres';
  protected readonly events = new EventEmitter();
  /** Uploaded artifacts and their owners' claims (`src/store/artifact-store.ts`). */
  readonly artifacts: ArtifactStore;

  protected constructor(
    protected readonly db: Kysely<Database>,
    /** The store key: seals the store's secrets, and the platform CA's keys. */
    readonly box: SecretBox,
  ) {
    this.events.setMaxListeners(0);
    this.artifacts = new KyselyArtifactStore(db, () => this.dialect);
  }

  /**
   * Run once after {@link migrate}: checks that `box` holds the key this store's secrets are sealed with (the first
   * master to open the store records its key), then seals any value an older version left in clear.
   * Returns how many it sealed.
   *
   * @throws HoxError `HOX_STORE_KEY` when the store was sealed with another key, naming both keys and the file.
   */
  protected async unlock(log: StoreLog): Promise<number> {
    // Two masters opening a new PostgreSQL store at once: the first insert wins, both then check against it.
    await this.db
      .insertInto('hox_store_key')
      .values({
        id: 1,
        key_id: this.box.keyId,
        verifier: this.box.seal(KEY_CHECK_PLAINTEXT, KEY_CHECK_CONTEXT),
        created_at_ms: Date.now(),
      })
      .onConflict((oc) => oc.column('id').doNothing())
      .execute();
    const check = await this.db
      .selectFrom('hox_store_key')
      .select(['key_id', 'verifier'])
      .where('id', '=', 1)
      .executeTakeFirstOrThrow();
    let opens: boolean;
    try {
      opens = this.box.open(check.verifier, KEY_CHECK_CONTEXT) === KEY_CHECK_PLAINTEXT;
    } catch {
      opens = false;
    }
    if (check.key_id !== this.box.keyId || !opens)
      throw new HoxError(
        'HOX_STORE_KEY',
        `this ${this.dialect} store's secrets are sealed with store key ${check.key_id}, but ${this.box.source} holds ` +
          `${this.box.keyId}: give this master the store.key file of the masters already using this store ` +
          `(--store-key-file or HOX_STORE_KEY_FILE), or restore the original key file`,
      );
    const sealed = await this.sealPlaintext();
    if (sealed > 0) log(`sealed ${sealed} secret value(s) that an older version had stored in clear`, 'warn');
    return sealed;
  }

  /**
   * Seals what an older version wrote in clear. Each update names the old value, so a master that sealed it first
   * (several masters on one PostgreSQL) is not overwritten. Returns how many values it sealed.
   */
  private async sealPlaintext(): Promise<number> {
    let sealed = 0;
    for (const column of SEALED_INSTANCE_COLUMNS) {
      const rows = await this.db
        .selectFrom('instance')
        .select(['id', column])
        .where(column, 'not like', 'hox:v1:%')
        .execute();
      for (const row of rows) {
        const value = (row as Record<typeof column, string>)[column];
        if (SecretBox.isSealed(value)) continue;
        const result = await this.db
          .updateTable('instance')
          .set({ [column]: this.box.seal(value, instanceSealContext(column, row.id)) })
          .where('id', '=', row.id)
          .where(column, '=', value)
          .executeTakeFirst();
        sealed += Number(result.numUpdatedRows);
      }
    }
    return sealed;
  }

  async migrate(): Promise<void> {
    const migrator = new Migrator({
      db: this.db,
      provider: migrationProvider(this.dialect),
      migrationTableName: 'hox_migration',
      migrationLockTableName: 'hox_migration_lock',
    });
    const { error, results } = await migrator.migrateToLatest();
    if (error !== undefined) {
      const failed = results?.find((r) => r.status === 'Error')?.migrationName ?? 'unknown';
      throw new HoxError('HOX_INTERNAL', `store migration '${failed}' failed`, { cause: error });
    }
  }

  abstract transaction<T>(work: (tx: StoreTx) => Promise<T>, options?: TransactionOptions): Promise<T>;

  latestChangeSeq(): Promise<number> {
    return latestChangeSeq(this.db);
  }

  changesAfter(afterSeq: number, filter: { nodeId?: string; treeIds?: string[] }): Promise<ChangeRow[]> {
    return changesAfter(this.db, afterSeq, filter);
  }

  pruneChanges(beforeMs: number): Promise<number> {
    return pruneChanges(this.db, beforeMs);
  }

  pruneAudit(beforeMs: number, keepRows: number): Promise<number> {
    return pruneAudit(this.db, beforeMs, keepRows);
  }

  onChange(listener: () => void): () => void {
    this.events.on('change', listener);
    return () => this.events.off('change', listener);
  }

  protected emitChange(): void {
    this.events.emit('change');
  }

  async close(): Promise<void> {
    this.events.removeAllListeners();
    await this.db.destroy();
  }
}
