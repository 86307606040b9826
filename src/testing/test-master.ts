/**
 * Starts a real master (HTTP on 127.0.0.1, random port) on a real store for
 * tests and benchmarks, plus helpers to register and format compute nodes.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { MasterClient } from '../client/master-client.js';
import { createMaster, type Master } from '../master/create-master.js';
import { resolveMasterConfig } from '../master/master-config.js';
import { newToken } from '../shared/ids.js';
import type { Clock } from '../shared/clock.js';

export type StoreKind = 'sqlite' | 'postgres';

export interface TestMaster {
  url: string;
  adminToken: string;
  /** Client holding the admin token. */
  admin: MasterClient;
  master: Master;
  dataDir: string;
  stop(): Promise<void>;
}

export interface TestMasterOptions {
  /** A PostgreSQL connection string; SQLite in a temp dir when absent. */
  databaseUrl?: string;
  clock?: Clock;
  /** @default 'silent' */
  logLevel?: string;
  /** Where log lines go (tests that inspect what was logged). */
  logStream?: { write(line: string): void };
}

export async function startTestMaster(options: TestMasterOptions = {}): Promise<TestMaster> {
  const dataDir = mkdtempSync(join(tmpdir(), 'hox-master-'));
  const adminToken = newToken('admin');
  const config = resolveMasterConfig({
    dataDir,
    listen: '127.0.0.1:0',
    adminToken,
    ...(options.databaseUrl === undefined ? {} : { databaseUrl: options.databaseUrl }),
  });
  const master = createMaster(config, {
    logger:
      options.logStream === undefined
        ? pino({ level: options.logLevel ?? 'silent' })
        : pino({ level: options.logLevel ?? 'debug' }, options.logStream),
    ...(options.clock === undefined ? {} : { clock: options.clock }),
  });
  const { url } = await master.start();
  return {
    url,
    adminToken,
    admin: new MasterClient({ url, token: adminToken }),
    master,
    dataDir,
    async stop() {
      await master.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export interface TestNode {
  id: string;
  /** The node's bearer token. */
  token: string;
  client: MasterClient;
  partitionIds: string[];
}

/**
 * Registers a compute node through a one-time registration token, formats
 * `partitions` partitions (`p0`…) with distinct 127.x addresses, and supplies
 * the given releases.
 */
export async function addTestNode(
  admin: MasterClient,
  id: string,
  options: { partitions?: number; releases?: string[]; networkGuid?: string } = {},
): Promise<TestNode> {
  const { token: registration } = await admin.call('createRegistrationToken', {});
  const { token } = await admin.withToken(registration).call('registerNode', {
    computer_guid: id,
    ...(options.networkGuid === undefined ? {} : { network_guid: options.networkGuid }),
  });
  const client = admin.withToken(token);
  const count = options.partitions ?? 3;
  const partitionIds = Array.from({ length: count }, (_, i) => `p${i}`);
  const octet = (Math.abs(hash(id)) % 250) + 1;
  await client.call('formatNode', {
    computer_guid: id,
    compute_partition_list: partitionIds.map((pid, i) => ({
      partition_id: pid,
      ip_list: [{ 'ip-address': `127.${octet}.${Math.floor(i / 250)}.${(i % 250) + 1}`, 'network-interface': 'lo' }],
    })),
  });
  for (const url of options.releases ?? [])
    await admin.call('supply', { computer_guid: id, software_release_uri: url });
  return { id, token, client, partitionIds };
}

function hash(s: string): number {
  let h = 0;
  for (const c of s) h = (h * 31 + c.charCodeAt(0)) | 0;
  return h;
}
