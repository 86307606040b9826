/**
 * Artifacts in the store: the content once per SHA-256 (`artifact`), and one
 * claim per owner who uploaded it (`artifact_owner`). A claim is what lets an
 * owner — and the instances of that owner's trees — read the content, and
 * what counts against the owner's quota; the collector removes claims nothing
 * references any more, then content no claim names.
 *
 * Invariants:
 * - A claim never names missing content: `artifact_owner.sha256` references
 *   `artifact` (a foreign key). An upload racing the collector on PostgreSQL
 *   either sees the content and locks it (the collector's delete then fails
 *   and is retried on its next run), or finds it gone and inserts it again.
 * - An owner's claims never exceed the quota given with the upload: uploads
 *   of one owner are serialised (PostgreSQL: a transaction advisory lock on
 *   the owner; SQLite: one connection) between reading the usage and
 *   inserting the claim.
 */
import { sql, type Kysely, type Transaction } from 'kysely';
import { HoxError } from '../shared/errors.js';
import type { Database } from './database.js';

/** One owner's claim on an uploaded blob (an application's source tarball), named by the SHA-256 of its content. */
export interface ArtifactRow {
  sha256: string;
  /** A user id, or `admin`. */
  ownerId: string;
  sizeBytes: number;
  /** When this owner first uploaded it. */
  createdAtMs: number;
  /** Last upload or check by the owner: the collector's grace period runs from here. */
  touchedAtMs: number;
}

export interface ArtifactStore {
  /**
   * Stores the content (once, whoever uploads it) and the owner's claim on it; a claim the owner already
   * has is only touched. `quotaBytes` bounds the total size of the owner's claims (`null`: no bound).
   *
   * @throws HoxError `HOX_ARTIFACT_QUOTA_EXCEEDED` when the new claim would take the owner over `quotaBytes`.
   */
  put(row: ArtifactRow, content: Uint8Array, quotaBytes: number | null): Promise<void>;
  /** The content's size, if the store holds it (whoever owns it). */
  sizeOf(sha256: string): Promise<number | undefined>;
  /** The owner's claim on this artifact, if it has one. */
  get(sha256: string, ownerId: string): Promise<ArtifactRow | undefined>;
  /** Restarts the claim's grace period. */
  touch(sha256: string, ownerId: string, atMs: number): Promise<void>;
  read(sha256: string): Promise<Uint8Array | undefined>;
  /** Total size of the owner's claims. */
  usageBytes(ownerId: string): Promise<number>;
  /** Claims not touched since `touchedBeforeMs`, oldest first. */
  listIdle(touchedBeforeMs: number): Promise<ArtifactRow[]>;
  /**
   * Deletes the given claims if they are still untouched since `touchedBeforeMs` (an owner who uploaded or
   * checked one meanwhile keeps it), then the content of those no claim names any more. Returns the number
   * of claims deleted.
   */
  deleteIdle(claims: { sha256: string; ownerId: string }[], touchedBeforeMs: number): Promise<number>;
}

type Db = Kysely<Database> | Transaction<Database>;

/** PostgreSQL's foreign key violation: the content went between our check and our insert. */
const FOREIGN_KEY_VIOLATION = '23503';

export class KyselyArtifactStore implements ArtifactStore {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly dialect: () => 'sqlite' | 'postgres',
  ) {}

  async put(row: ArtifactRow, content: Uint8Array, quotaBytes: number | null): Promise<void> {
    for (let attempt = 1; ; attempt += 1) {
      try {
        await this.db.transaction().execute((trx) => this.putOnce(trx, row, content, quotaBytes));
        return;
      } catch (error) {
        if ((error as { code?: unknown }).code !== FOREIGN_KEY_VIOLATION || attempt >= 3) throw error;
      }
    }
  }

  private async putOnce(
    trx: Transaction<Database>,
    row: ArtifactRow,
    content: Uint8Array,
    quotaBytes: number | null,
  ): Promise<void> {
    if (this.dialect() === 'postgres')
      await sql`select pg_advisory_xact_lock(hashtext(${`hox artifact owner ${row.ownerId}`}))`.execute(trx);
    const claimed = await this.claim(trx, row.sha256, row.ownerId);
    if (claimed === undefined && quotaBytes !== null) {
      const used = await usage(trx, row.ownerId);
      if (used + row.sizeBytes > quotaBytes)
        throw new HoxError(
          'HOX_ARTIFACT_QUOTA_EXCEEDED',
          `artifact ${row.sha256} (${row.sizeBytes} bytes) would take owner '${row.ownerId}' to ` +
            `${used + row.sizeBytes} bytes of artifacts, over the quota of ${quotaBytes} bytes`,
        );
    }
    await trx
      .insertInto('artifact')
      .values({ sha256: row.sha256, size_bytes: row.sizeBytes, created_at_ms: row.createdAtMs, content })
      .onConflict((oc) => oc.column('sha256').doNothing())
      .execute();
    if (claimed !== undefined) await this.touchIn(trx, row.sha256, row.ownerId, row.touchedAtMs);
    else
      await trx
        .insertInto('artifact_owner')
        .values({
          sha256: row.sha256,
          owner_id: row.ownerId,
          size_bytes: row.sizeBytes,
          created_at_ms: row.createdAtMs,
          touched_at_ms: row.touchedAtMs,
        })
        .execute();
  }

  async sizeOf(sha256: string): Promise<number | undefined> {
    const r = await this.db.selectFrom('artifact').select('size_bytes').where('sha256', '=', sha256).executeTakeFirst();
    return r === undefined ? undefined : Number(r.size_bytes);
  }

  get(sha256: string, ownerId: string): Promise<ArtifactRow | undefined> {
    return this.claim(this.db, sha256, ownerId);
  }

  touch(sha256: string, ownerId: string, atMs: number): Promise<void> {
    return this.touchIn(this.db, sha256, ownerId, atMs);
  }

  async read(sha256: string): Promise<Uint8Array | undefined> {
    const r = await this.db.selectFrom('artifact').select('content').where('sha256', '=', sha256).executeTakeFirst();
    return r?.content;
  }

  usageBytes(ownerId: string): Promise<number> {
    return usage(this.db, ownerId);
  }

  async listIdle(touchedBeforeMs: number): Promise<ArtifactRow[]> {
    const rows = await this.db
      .selectFrom('artifact_owner')
      .selectAll()
      .where('touched_at_ms', '<', touchedBeforeMs)
      .orderBy('touched_at_ms')
      .execute();
    return rows.map(toRow);
  }

  async deleteIdle(claims: { sha256: string; ownerId: string }[], touchedBeforeMs: number): Promise<number> {
    if (claims.length === 0) return 0;
    return this.db.transaction().execute(async (trx) => {
      let deleted = 0;
      for (const c of claims) {
        const result = await trx
          .deleteFrom('artifact_owner')
          .where('sha256', '=', c.sha256)
          .where('owner_id', '=', c.ownerId)
          .where('touched_at_ms', '<', touchedBeforeMs)
          .executeTakeFirst();
        deleted += Number(result.numDeletedRows);
      }
      await trx
        .deleteFrom('artifact')
        .where(
          'sha256',
          'in',
          claims.map((c) => c.sha256),
        )
        .where((eb) =>
          eb.not(
            eb.exists(
              eb
                .selectFrom('artifact_owner')
                .select('artifact_owner.sha256')
                .whereRef('artifact_owner.sha256', '=', 'artifact.sha256'),
            ),
          ),
        )
        .execute();
      return deleted;
    });
  }

  private async claim(db: Db, sha256: string, ownerId: string): Promise<ArtifactRow | undefined> {
    const r = await db
      .selectFrom('artifact_owner')
      .selectAll()
      .where('sha256', '=', sha256)
      .where('owner_id', '=', ownerId)
      .executeTakeFirst();
    return r && toRow(r);
  }

  private async touchIn(db: Db, sha256: string, ownerId: string, atMs: number): Promise<void> {
    await db
      .updateTable('artifact_owner')
      .set({ touched_at_ms: atMs })
      .where('sha256', '=', sha256)
      .where('owner_id', '=', ownerId)
      .where('touched_at_ms', '<', atMs)
      .execute();
  }
}

async function usage(db: Db, ownerId: string): Promise<number> {
  const r = await db
    .selectFrom('artifact_owner')
    .select((eb) => eb.fn.sum<string | number | bigint>('size_bytes').as('total'))
    .where('owner_id', '=', ownerId)
    .executeTakeFirst();
  return Number(r?.total ?? 0);
}

function toRow(r: Database['artifact_owner']): ArtifactRow {
  return {
    sha256: r.sha256,
    ownerId: r.owner_id,
    sizeBytes: Number(r.size_bytes),
    createdAtMs: Number(r.created_at_ms),
    touchedAtMs: Number(r.touched_at_ms),
  };
}
