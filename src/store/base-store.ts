import { EventEmitter } from 'node:events';
import { Migrator, type Kysely } from 'kysely';
import type { Database } from './database.js';
import { changesAfter, latestChangeSeq, pruneChanges } from './kysely-store.js';
import { migrationProvider } from './migrations/index.js';
import { KyselyArtifactStore, type ArtifactStore } from './artifact-store.js';
import type { ChangeRow, Store, StoreTx, TransactionOptions } from './store.js';
import { HoxError } from '../shared/errors.js';

/** What both stores share: migrations, the change log, change listeners. */
export abstract class BaseStore implements Store {
  abstract readonly dialect: 'sqlite' | 'postgres';
  protected readonly events = new EventEmitter();
  /** Uploaded artifacts and their owners' claims (`src/store/artifact-store.ts`). */
  readonly artifacts: ArtifactStore;

  protected constructor(protected readonly db: Kysely<Database>) {
    this.events.setMaxListeners(0);
    this.artifacts = new KyselyArtifactStore(db, () => this.dialect);
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
