/** A master on PostgreSQL survives the server closing its connections (restart, failover, admin termination). */
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createDatabase, startPostgres, type PostgresServer } from '../src/testing/postgres-server.js';
import { addTestNode, startTestMaster } from '../src/testing/test-master.js';
import { waitFor } from './support/agent-harness.js';
import { RELEASE, request } from './support/helpers.js';

let server: PostgresServer;
beforeAll(async () => {
  server = await startPostgres();
});
afterAll(async () => {
  await server.stop();
});

it('keeps serving after every connection of its database was terminated', async () => {
  const databaseUrl = await createDatabase(server, 'resilience');
  const m = await startTestMaster({ databaseUrl });
  try {
    await addTestNode(m.admin, 'n1', { partitions: 2, releases: [RELEASE] });
    await request(m.admin, 'before');
    const killer = new pg.Client({ connectionString: server.connectionString });
    await killer.connect();
    const { rows } = await killer.query<{ n: string }>(
      'select count(pg_terminate_backend(pid)) as n from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()',
      ['resilience'],
    );
    await killer.end();
    expect(Number(rows[0]?.n)).toBeGreaterThan(0);
    // The pool replaces the dead connections; a request may need one retry while it notices.
    const after = await waitFor('a request after the termination', async () => request(m.admin, 'after'), 10_000);
    expect(after.computer_guid).toBe('n1');
  } finally {
    await m.stop();
  }
});
