/**
 * A whole platform for hyper_db tests and benchmarks: a master (SQLite, in
 * process) and N compute nodes, each a real `hox node` process (so a test can
 * kill an agent), with `hyper_db` supplied. Helpers request a cluster and a
 * database, wait for the published status, and find a member's processes.
 *
 * `stop()` kills the agents and every process of every partition user, removes
 * the partition users (when root) and the data directories.
 */
import { freePort } from './free-port.js';
import { execFile, type ChildProcessByStdio } from 'node:child_process';
import {
  createWriteStream,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import pg from 'pg';
import { removePartitionUser } from '../agent/format/partition-formatter.js';
import { partitionLayouts } from '../agent/format/partition-layout.js';
import { runNft } from '../agent/isolate/partition-firewall.js';
import { firewallTableName } from '../agent/isolate/partition-firewall-rules.js';
import { isNotReady, type MasterClient } from '../client/master-client.js';
import { spawnAgentProcess } from './agent-process.js';
import { startTestMaster, type TestMaster } from './test-master.js';
import { testIpPrefix } from './worker-slot.js';

const exec = promisify(execFile);

export interface PlatformNode {
  id: string;
  dataDir: string;
  partitions: number;
  agent: ChildProcessByStdio<null, Readable, Readable> | null;
}

/** What the router publishes on the cluster's root instance (see src/releases/hyper_db/router/router.ts). */
export interface ClusterStatus {
  primary: string | null;
  members: {
    name: string;
    host: string;
    port: number;
    role: string;
    term: number | null;
    timeline: number | null;
    streaming: boolean;
    sync_state: string | null;
    maintenance: boolean;
    /** MiB of WAL the member has not received yet, as of the primary's last heartbeat (null: unknown). */
    lag_mib?: number | null;
    /** The server certificate the member's PostgreSQL presents (null before it has one). */
    tls?: { serial: string; not_after: string; rotation: string | null } | null;
  }[];
  switchover?: { id: string; result: string; reason?: string; durationMs?: number } | null;
  last_failover?: { member: string; timings?: Record<string, number> } | null;
  rw_host?: string;
  rw_port?: number;
  ro_port?: number;
  [key: string]: unknown;
}

export interface HyperDbPlatform {
  master: TestMaster;
  admin: MasterClient;
  nodes: PlatformNode[];
  /** SIGKILL the node's agent (its services keep running, as after a crash). */
  killAgent(nodeId: string): void;
  startAgent(nodeId: string): void;
  /** The root instance's connection parameters (static + router's runtime status). */
  clusterStatus(title: string): Promise<ClusterStatus | undefined>;
  /** Polls {@link clusterStatus} until `ready` holds; throws with the last status after `timeoutMs`. */
  waitForCluster(title: string, ready: (s: ClusterStatus) => boolean, timeoutMs: number): Promise<ClusterStatus>;
  /** Requests (or updates) a cluster: tree `title`, release hyper_db, type cluster. */
  requestCluster(title: string, parameters?: Record<string, unknown>): Promise<void>;
  /** Requests a database (shared instance) on the cluster and waits for its connection parameters. */
  requestDatabase(
    cluster: string,
    title: string,
    parameters?: Record<string, unknown>,
    until?: (connection: Record<string, unknown>) => boolean,
  ): Promise<Record<string, unknown>>;
  /** Every member's keeper and PostgreSQL log tail, and the router's (for failure messages). */
  logs(title: string): Promise<string>;
  /** Pids of the processes whose cwd is inside `member`'s partition (keeper, postgres). */
  memberPids(title: string, member: string): Promise<number[]>;
  /** The partition directory of an instance of the cluster's tree. */
  partitionPath(title: string, instance: string): Promise<string>;
  /**
   * A connected superuser session on a member's PostgreSQL, through its unix socket (needs root: the
   * socket's directory belongs to the partition's user, mode 0700). The caller ends it.
   */
  superuserClient(title: string, member: string): Promise<pg.Client>;
  /** The whole log of a service of an instance (`keeper`, `router`), for assertions on what it decided. */
  serviceLog(title: string, instance: string, service: string): Promise<string>;
  stop(): Promise<void>;
}

/** Sends `signal` to each pid; one that exited meanwhile (ESRCH) is skipped. Returns how many got it. */
export function signalAll(pids: number[], signal: NodeJS.Signals): number {
  let sent = 0;
  for (const pid of pids) {
    try {
      process.kill(pid, signal);
      sent++;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
    }
  }
  return sent;
}

/**
 * node-postgres options for a PostgreSQL URL: its host, port, user, password and database, with TLS
 * verified against `ca` (hostname included: a hyper_db certificate names its member's and the router's
 * address). The URL's own `sslmode` is dropped: node-postgres would let it override `ssl`.
 *
 * @example
 * const db = await p.requestDatabase('db', 'app');
 * const client = new pg.Client(clientConfigFromUrl(String(db.rw_url), String(db.ca_cert)));
 */
export function clientConfigFromUrl(url: string, ca?: string): pg.ClientConfig {
  const u = new URL(url);
  return {
    host: decodeURIComponent(u.hostname),
    port: Number(u.port || 5432),
    user: decodeURIComponent(u.username),
    password: decodeURIComponent(u.password),
    database: decodeURIComponent(u.pathname.slice(1)),
    ...(ca === undefined ? {} : { ssl: { ca } }),
  };
}

/** The serial number (hex, as OpenSSL prints it) of the certificate a connected TLS client was shown. */
export function peerCertificateSerial(client: pg.Client): string {
  const socket = (client as unknown as { connection: { stream: TLSSocket } }).connection.stream;
  if (typeof socket.getPeerCertificate !== 'function') throw new Error('this connection does not use TLS');
  return socket.getPeerCertificate().serialNumber;
}

export function healthy(members: number): (s: ClusterStatus) => boolean {
  return (s) =>
    s.primary !== null &&
    s.members.length === members &&
    s.members.every((m) => m.role === 'primary' || (m.role === 'standby' && m.streaming));
}

export async function startHyperDbPlatform(
  options: {
    nodes?: number;
    partitions?: number;
    /** Node ids are `${nodeIdPrefix}-N` (they also pick the partitions' addresses). @default 'db-node' */
    nodeIdPrefix?: string;
    /** Built-in releases supplied on every node. @default ['hyper_db'] */
    releases?: string[];
    /** A TLS master (as `hox master`), its roots given to the agents; plain HTTP otherwise. */
    tls?: boolean;
    /** The agents' `--usage-interval` (seconds). @default the agent's (30) */
    usageIntervalS?: number;
  } = {},
): Promise<HyperDbPlatform> {
  // A fixed port: the master can be halted and restarted at the same URL (scenario 7).
  const master = await startTestMaster({
    listen: `127.0.0.1:${await freePort()}`,
    ...(options.tls === true ? { tls: true } : {}),
  });
  let caFile: string | undefined;
  if (master.ca !== undefined) {
    caFile = join(mkdtempSync(join(tmpdir(), 'hox-platform-ca-')), 'ca.pem');
    writeFileSync(caFile, master.ca);
  }
  const admin = master.admin;
  const nodes: PlatformNode[] = [];
  const tokens = new Map<string, string>();

  function startAgent(nodeId: string): void {
    const node = nodes.find((n) => n.id === nodeId);
    if (node === undefined) throw new Error(`no node ${nodeId}`);
    const token = tokens.get(nodeId);
    tokens.delete(nodeId);
    node.agent = spawnAgentProcess({
      masterUrl: master.url,
      dataDir: node.dataDir,
      nodeId,
      partitions: node.partitions,
      ...(token === undefined ? {} : { registerToken: token }),
      ...(caFile === undefined ? {} : { caFile }),
      ...(options.usageIntervalS === undefined ? {} : { usageIntervalS: options.usageIntervalS }),
    });
    // Kept for failure messages (`logs()`): an agent that cannot start says why only there.
    const out = createWriteStream(agentLogPath(node), { flags: 'a' });
    node.agent.stdout.pipe(out);
    node.agent.stderr.pipe(out);
  }

  const count = options.nodes ?? 3;
  for (let i = 1; i <= count; i++) {
    const id = `${options.nodeIdPrefix ?? 'db-node'}-${i}`;
    const { token } = await admin.call('createRegistrationToken', {});
    tokens.set(id, token);
    nodes.push({
      id,
      dataDir: mkdtempSync(join(tmpdir(), `hox-${id}-`)),
      partitions: options.partitions ?? 2,
      agent: null,
    });
    startAgent(id);
  }
  const deadline = Date.now() + 60_000;
  const formatted = async () =>
    (await admin.call('listNodes', {})).result_list.filter((n) => n.partition_count >= (options.partitions ?? 2))
      .length;
  while ((await formatted()) < count) {
    if (Date.now() > deadline) throw new Error('nodes did not register and format within 60 s');
    await sleep(100);
  }
  for (const n of nodes)
    for (const release of options.releases ?? ['hyper_db'])
      await admin.call('supply', { computer_guid: n.id, software_release_uri: release });

  async function tree(title: string) {
    const [t] = (await admin.call('listTreeStatus', { title })).result_list;
    return t;
  }

  async function clusterStatus(title: string): Promise<ClusterStatus | undefined> {
    const t = await tree(title);
    const root = t?.instance_list.find((i) => i.requester_guid === null);
    const params = root?.connection_parameters as ClusterStatus | undefined;
    return params !== undefined && Array.isArray(params.members) ? params : undefined;
  }

  async function instanceOf(title: string, instance: string) {
    const t = await tree(title);
    const found = t?.instance_list.find((i) => i.title === instance);
    if (found === undefined) throw new Error(`no instance ${instance} in ${title}`);
    return found;
  }

  async function partitionPath(title: string, instance: string): Promise<string> {
    const i = await instanceOf(title, instance);
    const node = nodes.find((n) => n.id === i.computer_guid);
    if (node === undefined || i.compute_partition_id === null) throw new Error(`${instance} is not allocated`);
    return join(node.dataDir, 'partitions', i.compute_partition_id);
  }

  /** The tail of every member's keeper log and PostgreSQL log, and of every node agent's, for failure messages. */
  async function logsOf(title: string): Promise<string> {
    const t = await tree(title).catch(() => undefined);
    const out: string[] = [];
    for (const node of nodes) out.push(`--- node agent ${node.id} ---`, tail(agentLogPath(node), 15));
    for (const i of t?.instance_list ?? []) {
      const node = nodes.find((n) => n.id === i.computer_guid);
      if (node === undefined || i.compute_partition_id === null) continue;
      const service = i.software_type === 'member' ? 'keeper' : 'router';
      out.push(`--- ${i.title} (${service}) ---`, keeperLogTail(node.dataDir, i.compute_partition_id, service, 25));
      if (i.software_type === 'member')
        out.push(
          `--- ${i.title} (postgresql) ---`,
          tail(join(node.dataDir, 'partitions', i.compute_partition_id, 'var', 'postgresql.log'), 15),
        );
    }
    return out.join('\n');
  }

  return {
    master,
    admin,
    nodes,
    killAgent(nodeId) {
      const node = nodes.find((n) => n.id === nodeId);
      node?.agent?.kill('SIGKILL');
      if (node) node.agent = null;
    },
    startAgent,
    clusterStatus,
    async waitForCluster(title, ready, timeoutMs) {
      const end = Date.now() + timeoutMs;
      let last: ClusterStatus | undefined;
      for (;;) {
        last = await clusterStatus(title).catch(() => last);
        if (last !== undefined && ready(last)) return last;
        if (Date.now() > end)
          throw new Error(
            `cluster ${title} not as expected within ${timeoutMs} ms; last status: ${JSON.stringify(last)}\n${await logsOf(title)}`,
          );
        await sleep(100);
      }
    },
    async requestCluster(title, parameters = {}) {
      await admin.call('requestInstance', {
        title,
        software_release_uri: 'hyper_db',
        software_type: 'cluster',
        parameters,
      });
    },
    logs: logsOf,
    async requestDatabase(cluster, title, parameters = {}, until = () => true) {
      const root = (await tree(cluster))?.instance_list.find((i) => i.requester_guid === null);
      if (root === undefined) throw new Error(`no cluster ${cluster}`);
      const end = Date.now() + 60_000;
      for (;;) {
        const answer = await admin.call('requestInstance', {
          title,
          software_release_uri: 'hyper_db',
          software_type: 'cluster',
          shared: true,
          parameters,
          sla_parameters: { instance_guid: root.instance_guid },
        });
        const dbname = isNotReady(answer) ? undefined : answer.connection_parameters.dbname;
        const status = await clusterStatus(cluster);
        const present = Array.isArray(status?.databases) && status.databases.includes(dbname);
        if (!isNotReady(answer) && typeof dbname === 'string' && present && until(answer.connection_parameters))
          return answer.connection_parameters;
        if (Date.now() > end) throw new Error(`database ${title} not ready within 60 s`);
        await sleep(200);
      }
    },
    async memberPids(title, member) {
      const path = await partitionPath(title, member);
      const pids: number[] = [];
      for (const entry of readdirSync('/proc')) {
        if (!/^\d+$/.test(entry)) continue;
        try {
          const cwd = readlinkSync(`/proc/${entry}/cwd`);
          if (cwd === path || cwd.startsWith(`${path}/`)) pids.push(Number(entry));
        } catch {
          // gone, or not ours to read
        }
      }
      return pids;
    },
    partitionPath,
    async superuserClient(title, member) {
      const i = await instanceOf(title, member);
      const port = (i.connection_parameters as { port?: unknown }).port;
      if (typeof port !== 'number') throw new Error(`${member} has not published its port`);
      const client = new pg.Client({
        host: join(await partitionPath(title, member), 'run'),
        port,
        user: 'hox_super',
        database: 'postgres',
        connectionTimeoutMillis: 3000,
      });
      client.on('error', () => {});
      await client.connect();
      return client;
    },
    async serviceLog(title, instance, service) {
      const i = await instanceOf(title, instance);
      const node = nodes.find((n) => n.id === i.computer_guid);
      if (node === undefined || i.compute_partition_id === null) throw new Error(`${instance} is not allocated`);
      return readFileSync(join(node.dataDir, 'logs', i.compute_partition_id, `${service}.log`), 'utf8');
    },
    async stop() {
      for (const n of nodes) n.agent?.kill('SIGKILL');
      if (caFile !== undefined) rmSync(join(caFile, '..'), { recursive: true, force: true });
      for (const n of nodes) {
        const layouts = partitionLayouts({
          nodeId: n.id,
          dataDir: n.dataDir,
          count: n.partitions,
          ipPrefix: testIpPrefix(n.id),
          portBase: 20000,
          portsPerPartition: 50,
        });
        await killPartitionUsers(layouts);
        // The agent was killed, not stopped: its nftables table (network isolation) is ours to remove.
        const prefix = layouts[0]?.ip.split('.').slice(0, 3).join('.');
        if (prefix !== undefined && process.getuid?.() === 0)
          await runNft(`delete table inet ${firewallTableName(prefix)}\n`).catch(() => {});
        rmSync(n.dataDir, { recursive: true, force: true });
      }
      await master.stop();
    },
  };
}

/**
 * Kills every process of each partition's user (a stopped agent leaves its services running, for a restarted
 * one to adopt; PostgreSQL's children do not share the keeper's directory or group), then removes the users.
 * Root only; a no-op otherwise.
 */
export async function killPartitionUsers(layouts: readonly { user: string }[]): Promise<void> {
  if (process.getuid?.() !== 0) return;
  for (const l of layouts) {
    await exec('pkill', ['-KILL', '-u', l.user]).catch(() => {});
    await sleep(100);
    await removePartitionUser(l.user).catch(() => {});
  }
}

/** Where a platform node's agent output goes (inside its data dir: removed with it). */
function agentLogPath(node: PlatformNode): string {
  return join(node.dataDir, 'agent-output.log');
}

/** The last lines of a service's log in a partition (for test failure messages). */
export function keeperLogTail(nodeDataDir: string, partitionId: string, service = 'keeper', lines = 30): string {
  return tail(join(nodeDataDir, 'logs', partitionId, `${service}.log`), lines);
}

function tail(path: string, lines: number): string {
  try {
    return readFileSync(path, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return `(no ${path})`;
  }
}
