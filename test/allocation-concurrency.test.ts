import { join } from 'node:path';
/**
 * Several master processes on one PostgreSQL database never hand one
 * partition to two instances; one SQLite master under concurrent requests
 * neither. Requests beyond the room wait (SlapOS's pending allocation) and are
 * placed once room appears, by whichever master's allocator gets there first,
 * still one instance per partition.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isNotReady, type MasterClient } from '../src/client/master-client.js';
import { createDatabase, startPostgres, type PostgresServer } from '../src/testing/postgres-server.js';
import { addTestNode, startTestMaster, type TestMaster, type TestNode } from '../src/testing/test-master.js';
import { RELEASE } from './support/helpers.js';

const PARTITIONS = 12;
const REQUESTS = 30;
/** Partitions a node grows after the race: as many waiting instances get placed. */
const GROWN = 6;

/** Fires REQUESTS concurrent first requests spread over the clients; returns what each got. */
async function race(clients: MasterClient[]): Promise<{ allocated: string[]; waiting: number }> {
  const answers = await Promise.all(
    Array.from({ length: REQUESTS }, (_, i) =>
      clients[i % clients.length]!.call('requestInstance', {
        title: `racer-${i}`,
        software_release_uri: RELEASE,
        software_type: 'default',
      }),
    ),
  );
  const allocated: string[] = [];
  let waiting = 0;
  for (const a of answers) {
    if (isNotReady(a)) waiting += 1;
    else allocated.push(`${a.computer_guid}/${a.compute_partition_id}`);
  }
  return { allocated, waiting };
}

/** Where every racer is now (placed ones only). */
async function placements(client: MasterClient): Promise<string[]> {
  const trees = (await client.call('listTreeStatus', {})).result_list;
  return trees
    .map((t) => t.instance_list[0]!)
    .filter((i) => i.computer_guid !== null)
    .map((i) => `${i.computer_guid}/${i.compute_partition_id}`);
}

/** Gives `node` GROWN more partitions; the allocators place waiting racers on them, one each. */
async function growAndSettle(node: TestNode, client: MasterClient): Promise<void> {
  const ids = [...node.partitionIds, ...Array.from({ length: GROWN }, (_, i) => `g${i}`)];
  await node.client.call('formatNode', {
    computer_guid: node.id,
    compute_partition_list: ids.map((partition_id) => ({ partition_id })),
  });
  await expect.poll(async () => (await placements(client)).length, { timeout: 30_000 }).toBe(PARTITIONS + GROWN);
  const placed = await placements(client);
  expect(new Set(placed).size).toBe(placed.length);
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

  it('two masters on one PostgreSQL never allocate a partition twice, nor place a waiting request twice', async () => {
    const databaseUrl = await createDatabase(pg, 'race');
    const a = await startTestMaster({ databaseUrl });
    // Masters sharing a store share its key (the first one generated it).
    const b = await startTestMaster({ databaseUrl, storeKeyFile: join(a.dataDir, 'store.key') });
    masters.push(a, b);
    const n1 = await addTestNode(a.admin, 'n1', { partitions: PARTITIONS / 2, releases: [RELEASE] });
    await addTestNode(a.admin, 'n2', { partitions: PARTITIONS / 2, releases: [RELEASE] });
    const { allocated, waiting } = await race([a.admin, b.admin]);
    expect(allocated.length).toBe(PARTITIONS);
    expect(new Set(allocated).size).toBe(PARTITIONS);
    expect(waiting).toBe(REQUESTS - PARTITIONS);
    // Every request made its tree, placed or waiting.
    expect((await a.admin.call('listTreeStatus', {})).result_list.length).toBe(REQUESTS);
    await growAndSettle(n1, b.admin);
  });

  it('one SQLite master under concurrent requests never allocates a partition twice', async () => {
    const m = await startTestMaster();
    masters.push(m);
    const n1 = await addTestNode(m.admin, 'n1', { partitions: PARTITIONS, releases: [RELEASE] });
    const { allocated, waiting } = await race([m.admin]);
    expect(new Set(allocated).size).toBe(PARTITIONS);
    expect(allocated.length).toBe(PARTITIONS);
    expect(waiting).toBe(REQUESTS - PARTITIONS);
    await growAndSettle(n1, m.admin);
  });
});
