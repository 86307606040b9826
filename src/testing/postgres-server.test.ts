import { existsSync } from 'node:fs';
import { describe, it, expect } from 'vitest';
import pg from 'pg';
import { createDatabase, findPostgresBinDir, startPostgres } from './postgres-server.js';

async function query<T extends pg.QueryResultRow>(connectionString: string, text: string): Promise<T[]> {
  const client = new pg.Client({ connectionString });
  await client.connect();
  try {
    return (await client.query<T>(text)).rows;
  } finally {
    await client.end();
  }
}

describe('postgres-server', () => {
  it('finds the PostgreSQL binaries', () => {
    expect(findPostgresBinDir()).toMatch(/bin$/);
  });

  it('starts a throwaway server, creates a database and removes everything on stop', async () => {
    const server = await startPostgres();
    let stopped = false;
    try {
      expect(server.connectionString).toBe(`postgres://hox@127.0.0.1:${server.port}/postgres`);
      expect(existsSync(server.dataDir)).toBe(true);

      expect(await query<{ one: number }>(server.connectionString, 'select 1 as one')).toEqual([{ one: 1 }]);
      expect(await query<{ fsync: string }>(server.connectionString, 'show fsync')).toEqual([{ fsync: 'off' }]);

      const url = await createDatabase(server, 'hox_harness_test');
      expect(url).toBe(`postgres://hox@127.0.0.1:${server.port}/hox_harness_test`);
      const rows = await query<{ db: string; usr: string }>(
        url,
        'select current_database() as db, current_user as usr',
      );
      expect(rows).toEqual([{ db: 'hox_harness_test', usr: 'hox' }]);
      await expect(createDatabase(server, 'hox_harness_test')).rejects.toThrow(/already exists/);

      await server.stop();
      stopped = true;
      expect(existsSync(server.dataDir)).toBe(false);
      await server.stop(); // idempotent
    } finally {
      if (!stopped) await server.stop();
    }
  });
});
