import { EventEmitter } from 'node:events';
import { Migrator, type Kysely } from 'kysely';
import type { Database } from './database.js';
import { changesAfter, latestChangeSeq, pruneChanges } from './kysely-store.js';
import { migrationProvider } from './migrations/index.js';
import type { ArtifactRow, ChangeRow, Store, StoreTx, TransactionOptions } from './store.js';
import { HoxError } from '../shared/errors.js';

/** What both stores share: migrations, the change log, change listeners. */
export abstract class BaseStore implements Store {
  abstract readonly dialect: 'sqlite' | 'postgres';
  protected readonly events = new EventEmitter();

  protected constructor(protected readonly db: Kysely<Database>) {
    this.events.setMaxListeners(0);
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

  async putArtifact(row: ArtifactRow, content: Uint8Array): Promise<void> {
    await this.db
      .insertInto('artifact')
      .values({
        sha256: row.sha256,
        owner_id: row.ownerId,
        size_bytes: row.sizeBytes,
        created_at_ms: row.createdAtMs,
        content,
      })
      .onConflict((oc) => oc.column('sha256').doNothing())
      .execute();
  }

  async getArtifact(sha256: string): Promise<ArtifactRow | undefined> {
    const r = await this.db
      .selectFrom('artifact')
      .select(['sha256', 'owner_id', 'size_bytes', 'created_at_ms'])
      .where('sha256', '=', sha256)
      .executeTakeFirst();
    return r === undefined
      ? undefined
      : {
          sha256: r.sha256,
          ownerId: r.owner_id,
          sizeBytes: Number(r.size_bytes),
          createdAtMs: Number(r.created_at_ms),
        };
  }

  async readArtifact(sha256: string): Promise<Uint8Array | undefined> {
    const r = await this.db.selectFrom('artifact').select('content').where('sha256', '=', sha256).executeTakeFirst();
    return r?.content;
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
