/**
 * Starts a real master (on 127.0.0.1, random port) on a real store for tests
 * and benchmarks, plus helpers to register and format compute nodes. It
 * speaks plain HTTP unless `tls` is asked for: its clients live in the same
 * process, and most tests are about the API, not the channel. `hox master`
 * and `hox up` always speak HTTPS (test/master-tls.test.ts).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { MasterClient } from '../client/master-client.js';
import type { ArtifactSettings } from '../master/artifact-collector.js';
import type { AuditSettings } from '../master/audit-trail.js';
import { createMaster, type Master } from '../master/create-master.js';
import { resolveMasterConfig } from '../master/master-config.js';
import { newToken } from '../shared/ids.js';
import type { Clock } from '../shared/clock.js';

export type StoreKind = 'sqlite' | 'postgres';

export interface TestMaster {
  url: string;
  adminToken: string;
  /** With `tls`: the PEM roots its certificate chains to (what `admin` trusts). */
  ca: string | undefined;
  /** Client holding the admin token. */
  admin: MasterClient;
  master: Master;
  dataDir: string;
  /** Stops the master (its data stays). */
  halt(): Promise<void>;
  /** Starts it again on the same data and address (after {@link halt}). */
  restart(): Promise<void>;
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
  /** The store key file (tests of several masters on one PostgreSQL store); else `<dataDir>/store.key`, generated. */
  storeKeyFile?: string;
  /** `host:port` to listen on (a fixed port lets {@link TestMaster.restart} keep the URL). @default '127.0.0.1:0' */
  listen?: string;
  /** Artifact limit, quota, grace period, collection interval. @default ARTIFACT_DEFAULTS */
  artifacts?: Partial<ArtifactSettings>;
  /** Audit retention. @default AUDIT_DEFAULTS */
  audit?: Partial<AuditSettings>;
  /** HTTPS with a certificate from the platform CA, as `hox master`. @default false (plain HTTP) */
  tls?: boolean;
  /** Where the built web console is. @default this package's dist/console */
  consoleDir?: string;
  /** False: as `hox master --allow-nodes-without-certificates`. @default true with `tls`, as `hox master` */
  requireNodeCertificates?: boolean;
}

export async function startTestMaster(options: TestMasterOptions = {}): Promise<TestMaster> {
  const dataDir = mkdtempSync(join(tmpdir(), 'hox-master-'));
  const adminToken = newToken('admin');
  const config = resolveMasterConfig({
    dataDir,
    listen: options.listen ?? '127.0.0.1:0',
    adminToken,
    ...(options.databaseUrl === undefined ? {} : { databaseUrl: options.databaseUrl }),
    ...(options.storeKeyFile === undefined ? {} : { storeKeyFile: options.storeKeyFile }),
    ...(options.artifacts === undefined ? {} : { artifacts: options.artifacts }),
    ...(options.audit === undefined ? {} : { audit: options.audit }),
    insecurePlainHttp: options.tls !== true,
    ...(options.consoleDir === undefined ? {} : { consoleDir: options.consoleDir }),
    ...(options.requireNodeCertificates === undefined
      ? {}
      : { requireNodeCertificates: options.requireNodeCertificates }),
  });
  const build = (): Master =>
    createMaster(config, {
      logger:
        options.logStream === undefined
          ? pino({ level: options.logLevel ?? 'silent' })
          : pino({ level: options.logLevel ?? 'debug' }, options.logStream),
      ...(options.clock === undefined ? {} : { clock: options.clock }),
    });
  let master = build();
  let running = true;
  const { url } = await master.start();
  const ca = options.tls === true ? await master.caRootsPem() : undefined;
  const handle: TestMaster = {
    url,
    adminToken,
    ca,
    admin: new MasterClient({ url, token: adminToken, ...(ca === undefined ? {} : { ca }) }),
    master,
    dataDir,
    async halt() {
      if (!running) return;
      running = false;
      await master.stop();
    },
    async restart() {
      if (running) return;
      if (options.listen === undefined) throw new Error('restart() needs a fixed listen address');
      master = build();
      await master.start();
      handle.master = master;
      running = true;
    },
    async stop() {
      if (running) await master.stop();
      running = false;
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
  return handle;
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
