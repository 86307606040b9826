/**
 * The release command (`release: node migrate.js`): brings the schema up to date.
 *
 * Migrations are the files `migrations/NNN_name.sql`, applied in order of NNN.
 * Each runs in its own transaction together with its row in
 * `schema_migrations`, so a migration is either fully applied and recorded or
 * not at all. The whole run holds a session advisory lock: concurrent runs
 * (two deploys, a retry) wait for each other, and the second finds nothing to
 * do. A connection cut (failover) restarts the run after a short pause; that is
 * safe because applied migrations are skipped.
 *
 * Exit status: 0 when the schema is up to date, 1 otherwise.
 */
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { isTransientError } from './db.js';

const MIGRATIONS_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), 'migrations');
/** Key of the advisory lock that serialises runs (any constant unique to this app's migrations). */
const MIGRATION_LOCK_KEY = 7_301_914_021;
const RETRY_DELAYS_MS = [500, 1_000, 2_000, 4_000];

/** The migration files, sorted by their number. */
async function loadMigrations() {
  const files = (await readdir(MIGRATIONS_DIR)).filter((file) => /^\d+_[\w-]+\.sql$/.test(file));
  const migrations = await Promise.all(
    files.map(async (file) => ({
      version: Number.parseInt(file, 10),
      name: file.slice(0, -'.sql'.length),
      sql: await readFile(path.join(MIGRATIONS_DIR, file), 'utf8'),
    })),
  );
  migrations.sort((a, b) => a.version - b.version);
  for (let i = 1; i < migrations.length; i += 1) {
    if (migrations[i].version === migrations[i - 1].version) {
      throw new Error(
        `two migrations share number ${migrations[i].version}: ${migrations[i - 1].name}, ${migrations[i].name}`,
      );
    }
  }
  return migrations;
}

/** One run on one connection, under the lock. Returns the names of the migrations it applied. */
async function migrateOnce(migrations) {
  const client = new pg.Client({ connectionString: process.env.DATABASE_URL, connectionTimeoutMillis: 10_000 });
  client.on('error', () => {}); // the failing query reports it
  await client.connect();
  try {
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
    await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version integer PRIMARY KEY,
      name text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now()
    )`);
    const { rows } = await client.query('SELECT version FROM schema_migrations');
    const applied = new Set(rows.map((row) => row.version));
    const known = new Set(migrations.map((migration) => migration.version));
    const unknown = [...applied].filter((version) => !known.has(version));
    if (unknown.length > 0) {
      // A rollback to an older version of the app: keep the newer schema, it was written to stay compatible.
      console.log(`the database has migrations this version does not know: ${unknown.join(', ')}; leaving them`);
    }
    const done = [];
    for (const migration of migrations) {
      if (applied.has(migration.version)) continue;
      await client.query('BEGIN');
      try {
        await client.query(migration.sql);
        await client.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [
          migration.version,
          migration.name,
        ]);
        await client.query('COMMIT');
      } catch (error) {
        await client.query('ROLLBACK').catch(() => {});
        if (isTransientError(error)) throw error; // the run is retried
        throw new Error(`migration ${migration.name} failed: ${error.message}`, { cause: error });
      }
      console.log(`applied migration ${migration.name}`);
      done.push(migration.name);
    }
    // Closing the session releases the lock as well; unlocking explicitly keeps the intent visible.
    await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]);
    return done;
  } finally {
    await client.end().catch(() => {});
  }
}

async function main() {
  const migrations = await loadMigrations();
  for (let attempt = 0; ; attempt += 1) {
    try {
      const done = await migrateOnce(migrations);
      console.log(`schema up to date: ${migrations.length} migrations, ${done.length} applied now`);
      return;
    } catch (error) {
      const delayMs = RETRY_DELAYS_MS[attempt];
      if (!isTransientError(error) || delayMs === undefined) throw error;
      console.log(`database unavailable (${error.message}); retrying in ${delayMs} ms`);
      await sleep(delayMs);
    }
  }
}

try {
  await main();
} catch (error) {
  console.error(`migrate: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 1;
}
