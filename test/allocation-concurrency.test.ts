import { join } from 'node:path';
/**
 * Several master processes on one PostgreSQL database never hand one
 * partition to two instances; one SQLite master under concurrent requests
 * neither.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HoxError } from '../src/shared/errors.js';
import { createDatabase, startPostgres, type PostgresServer } from '../src/testing/postgres-server.js';
import { addTestNode, startTestMaster, type TestMaster } from '../src/testing/test-master.js';
import { RELEASE, request } from './support/helpers.js';
import type { MasterClient } from '../src/client/master-client.js';

const PARTITIONS = 12;
const REQUESTS = 30;

/** Fires REQUESTS concurrent first requests spread over the clients; returns what each got. */
async function race(clients: MasterClient[]): Promise<{ allocated: string[]; refused: number }> {
  const results = await Promise.allSettled(
    Array.from({ length: REQUESTS }, (_, i) => request(clients[i % clients.length]!, `racer-${i}`)),
  );
  const allocated: string[] = [];
  let refused = 0;
  for (const r of results) {
    if (r.status === 'fulfilled') allocated.push(`${r.value.computer_guid}/${r.value.compute_partition_id}`);
    else if (r.reason instanceof HoxError && r.reason.code === 'HOX_NO_FREE_PARTITION') refused += 1;
    else throw r.reason;
  }
  return { allocated, refused };
}

describe('concurrent allocation', () => {
  let pg: PostgresServer;
  const masters: TestMaster[] = [];
  beforeAll(async () => {
    pg = await startPostgres();
  });
  afterAll(async () => {
    for (const m of masters) await m.stop();
    await pg.stop();
  });

  it('two masters on one PostgreSQL never allocate a partition twice', async () => {
    const databaseUrl = await createDatabase(pg, 'race');
    const a = await startTestMaster({ databaseUrl });
    // Masters sharing a store share its key (the first one generated it).
    const b = await startTestMaster({ databaseUrl, storeKeyFile: join(a.dataDir, 'store.key') });
    masters.push(a, b);
    await addTestNode(a.admin, 'n1', { partitions: PARTITIONS / 2, releases: [RELEASE] });
    await addTestNode(a.admin, 'n2', { partitions: PARTITIONS / 2, releases: [RELEASE] });
    const { allocated, refused } = await race([a.admin, b.admin]);
    expect(allocated.length).toBe(PARTITIONS);
    expect(new Set(allocated).size).toBe(PARTITIONS);
    expect(refused).toBe(REQUESTS - PARTITIONS);
    const trees = await a.admin.call('listTreeStatus', {});
    expect(trees.result_list.length).toBe(PARTITIONS);
  });

  it('one SQLite master under concurrent requests never allocates a partition twice', async () => {
    const m = await startTestMaster();
    masters.push(m);
    await addTestNode(m.admin, 'n1', { partitions: PARTITIONS, releases: [RELEASE] });
    const { allocated, refused } = await race([m.admin]);
    expect(new Set(allocated).size).toBe(PARTITIONS);
    expect(allocated.length).toBe(PARTITIONS);
    expect(refused).toBe(REQUESTS - PARTITIONS);
  });
});
