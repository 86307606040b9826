/**
 * The README's "Several machines", on separate machines: network namespaces on one bridge
 * (src/testing/netns-lab.ts). The master (`hox master` on PostgreSQL, `--listen 0.0.0.0:8470`; it
 * requires node certificates by default), three nodes (`hox node --master https://… --ca-pin …
 * --ip-prefix …`, their partition addresses on their own interface) and a workstation (`hox login
 * --ca-pin`, `hox registration-token`, `hox supply`, `hox db …`) are five machines; a hyper_db cluster
 * has one member on each node. Only the CLI and the network are used, as an operator would.
 *
 * Asserted:
 * - every TCP port listening on a machine's network completes a TLS handshake verified against the
 *   platform CA (the master) or the cluster's CA (keepers, the router's API, PostgreSQL, PgBouncer, the
 *   read-only endpoint), and none answers plain text (no HTTP answer, no PostgreSQL login);
 * - a node's token without its certificate is refused, and so is a certificate of another CA; once its
 *   certificate is revoked, a call presenting it is refused, and the node gets a new one by itself;
 * - a failover across machines: the primary's machine taken off the network, another member is elected
 *   and takes writes through the published multi-host URL; nothing committed before is lost.
 *
 * The master's PostgreSQL runs on the host (a throwaway server), reached through its unix socket.
 * Machines share the host name, so each node is given `--node-id`.
 */
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { partitionLayouts } from '../src/agent/format/partition-layout.js';
import { clusterTlsFixture } from '../src/testing/cluster-tls-fixture.js';
import { killPartitionUsers } from '../src/testing/hyperdb-platform.js';
import { createNetnsLab, netnsLabUnavailableReason, type NetnsLab } from '../src/testing/netns-lab.js';
import {
  createDatabase,
  findPostgresBinDir,
  startPostgres,
  type PostgresServer,
} from '../src/testing/postgres-server.js';
import { HOX_FROM_SOURCES, ROOT } from '../test/support/hox-cli.js';

const MASTER_IP = '10.77.0.1';
const WORKSTATION_IP = '10.77.0.2';
const MASTER_URL = `https://${MASTER_IP}:8470`;
const NODES = [
  { name: 'n1', ip: '10.77.0.11', prefix: '10.77.1' },
  { name: 'n2', ip: '10.77.0.12', prefix: '10.77.2' },
  { name: 'n3', ip: '10.77.0.13', prefix: '10.77.3' },
];
const PARTITIONS = 3;
const CLUSTER = 'pg';
const PROBE = join(import.meta.dirname, 'support', 'probe-ports.mjs');
const CALL = join(import.meta.dirname, 'support', 'call-master.mjs');

const unavailable =
  netnsLabUnavailableReason() ?? (findPostgresBinDir() === undefined ? 'PostgreSQL 15 is not installed' : null);

/** Under CI a test that cannot run fails; elsewhere it is skipped with the reason. */
if (unavailable !== null && process.env['CI'] === 'true')
  describe('several machines (network namespaces)', () => {
    it('can run here', () => {
      expect(unavailable).toBeNull();
    });
  });

interface Listener {
  machine: string;
  host: string;
  port: number;
}

describe.skipIf(unavailable !== null)('several machines (network namespaces)', () => {
  let lab: NetnsLab;
  let postgres: PostgresServer;
  let work: string;
  let masterData: string;
  const stops: (() => Promise<void>)[] = [];
  const logs = new Map<string, string[]>();
  let pin: string;
  let platformCa: string;
  let clusterCa: string;
  let databaseUrl: string;

  const cliEnv = (): NodeJS.ProcessEnv => ({
    PATH: process.env['PATH'] ?? '/usr/bin:/bin',
    HOME: work,
    HOX_CONFIG: join(work, 'cli.json'),
  });
  /** `hox …` on the workstation. */
  const hox = async (args: string[], input?: string, timeoutMs = 180_000) => {
    const run = await lab.exec('work', [process.execPath, ...HOX_FROM_SOURCES, ...args], {
      env: cliEnv(),
      cwd: ROOT,
      timeoutMs,
      ...(input === undefined ? {} : { input }),
    });
    return run;
  };
  const hoxOk = async (args: string[], input?: string, timeoutMs?: number): Promise<string> => {
    const run = await hox(args, input, timeoutMs);
    if (run.code !== 0) throw new Error(`hox ${args.join(' ')}: exit ${run.code}\n${run.stderr}\n${run.stdout}`);
    return run.stdout;
  };
  /** Starts a long-running hox on a machine; its output is kept for failure messages. */
  const startHox = (machine: string, args: string[], env: NodeJS.ProcessEnv): void => {
    const child = lab.spawn(machine, [process.execPath, ...HOX_FROM_SOURCES, ...args], { env, cwd: ROOT });
    const lines: string[] = [];
    logs.set(machine, lines);
    for (const stream of [child.stdout, child.stderr])
      stream.on('data', (chunk: Buffer) => {
        lines.push(...chunk.toString().split('\n').filter(Boolean));
        if (lines.length > 400) lines.splice(0, lines.length - 400);
      });
    stops.push(async () => {
      if (child.exitCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await Promise.race([exited, sleep(60_000)]);
      if (child.exitCode === null) child.kill('SIGKILL');
    });
  };
  const tail = (machine: string): string => (logs.get(machine) ?? []).slice(-40).join('\n');

  /** Waits for `check` to return a value, polling; fails with `what` and the machines' logs. */
  async function waitFor<T>(
    what: string,
    check: () => Promise<T | undefined> | T | undefined,
    timeoutMs: number,
  ): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    let last: unknown;
    while (Date.now() < deadline) {
      try {
        const value = await check();
        if (value !== undefined) return value;
      } catch (error) {
        last = error;
      }
      await sleep(1000);
    }
    const machineLogs = [...logs.keys()].map((m) => `--- ${m}\n${tail(m)}`).join('\n');
    throw new Error(`${what}: not after ${timeoutMs} ms (${String(last)})\n${machineLogs}`);
  }

  /** `hox db status --json` of the cluster, from the workstation. */
  const status = async (): Promise<{
    primary: string | null;
    members: { name: string; host: string | null; role: string; term: number | null }[];
    router: string;
  }> => {
    const s = JSON.parse(await hoxOk(['db', 'status', CLUSTER, '--json'])) as {
      primary: string | null;
      connection_parameters: {
        members?: { name: string; host: string | null; role: string; term: number | null }[];
        rw_host: string;
      };
    };
    return {
      primary: s.primary,
      members: s.connection_parameters.members ?? [],
      router: s.connection_parameters.rw_host,
    };
  };
  /** The node whose partition has this address. */
  const nodeOf = (host: string | null | undefined) => NODES.find((n) => host?.startsWith(`${n.prefix}.`) === true);

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'hox-machines-'));
    // The nodes' data dirs are in it: their partition users must be able to traverse it.
    chmodSync(work, 0o711);
    masterData = join(work, 'master');
    lab = await createNetnsLab('hoxmm', [
      { name: 'master', ip: MASTER_IP },
      { name: 'work', ip: WORKSTATION_IP },
      ...NODES.map((n) => ({
        name: n.name,
        ip: n.ip,
        extra: Array.from({ length: PARTITIONS }, (_, i) => `${n.prefix}.${i + 1}`),
      })),
    ]);
    stops.push(() => lab.destroy());
    // A stopped agent leaves its partitions' services running (a restarted one adopts them): kill them,
    // then remove the partition users (after the agents are stopped: stops run last pushed first).
    stops.push(async () => {
      for (const node of NODES)
        await killPartitionUsers(
          partitionLayouts({
            nodeId: node.name,
            dataDir: join(work, node.name),
            count: PARTITIONS,
            ipPrefix: node.prefix,
            portBase: 20000,
            portsPerPartition: 50,
          }),
        );
    });
    postgres = await startPostgres();
    stops.push(() => postgres.stop());
    await createDatabase(postgres, 'hox');
    // The master's machine reaches this PostgreSQL through its unix socket (files cross namespaces).
    const databaseFile = join(work, 'database-url');
    writeFileSync(
      databaseFile,
      `postgres://hox@localhost:${postgres.port}/hox?host=${encodeURIComponent(postgres.dataDir)}\n`,
      { mode: 0o600 },
    );

    // hox master --data-dir … --listen 0.0.0.0:8470 --database-file …
    startHox(
      'master',
      ['master', '--data-dir', masterData, '--listen', '0.0.0.0:8470', '--database-file', databaseFile],
      { PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: work },
    );
    pin = await waitFor(
      'the master prints its CA pin',
      () => (logs.get('master') ?? []).join('\n').match(/CA pin: (sha256:[0-9a-f]{64})/)?.[1],
      120_000,
    );
    platformCa = readFileSync(join(masterData, 'ca.pem'), 'utf8');

    // On the workstation: hox login --url https://MASTER:8470 --ca-pin … --with-token - < admin-token
    const adminToken = readFileSync(join(masterData, 'admin-token'), 'utf8');
    await hoxOk(['login', '--url', MASTER_URL, '--ca-pin', pin, '--with-token', '-'], adminToken);

    // Each node: a registration token from the workstation, then hox node on its machine.
    for (const node of NODES) {
      const token = (await hoxOk(['registration-token'])).trim();
      const tokenFile = join(work, `${node.name}.token`);
      writeFileSync(tokenFile, `${token}\n`, { mode: 0o600 });
      startHox(
        node.name,
        [
          'node',
          '--master',
          MASTER_URL,
          '--ca-pin',
          pin,
          '--data-dir',
          join(work, node.name),
          '--partitions',
          String(PARTITIONS),
          '--ip-prefix',
          node.prefix,
          '--node-id',
          node.name,
          '--register-token-file',
          tokenFile,
        ],
        { PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: work },
      );
    }
    await waitFor(
      'three nodes registered, their partitions formatted',
      async () => {
        const nodes = JSON.parse(await hoxOk(['nodes', '--json'])) as { partition_count: number }[];
        return nodes.length === NODES.length && nodes.every((n) => n.partition_count === PARTITIONS)
          ? nodes
          : undefined;
      },
      120_000,
    );
    await hoxOk(['supply', 'hyper_db']);
    await hoxOk(['db', 'create', CLUSTER, '--members', '3', '--wait', '--timeout', '300'], undefined, 330_000);
    const db = JSON.parse(await hoxOk(['db', 'database', CLUSTER, 'app', '--reveal', '--json'])) as {
      connection_parameters: Record<string, unknown>;
    };
    const published = db.connection_parameters;
    clusterCa = String(published['ca_cert']);
    databaseUrl = String(published['database_url']);
    expect(clusterCa).toMatch(/BEGIN CERTIFICATE/);
    expect(databaseUrl).toMatch(/^postgresql:\/\//);
  }, 600_000);

  afterAll(async () => {
    for (const stop of stops.reverse()) await stop().catch(() => {});
    if (work !== undefined) rmSync(work, { recursive: true, force: true });
  }, 300_000);

  /** Every TCP listener of a machine (ss), its wildcard addresses replaced by the machine's own. */
  async function listeners(machine: string, ip: string): Promise<Listener[]> {
    const out = await lab.exec(machine, ['ss', '-Htln']);
    expect(out.code).toBe(0);
    return out.stdout
      .split('\n')
      .filter(Boolean)
      .map((line) => line.trim().split(/\s+/)[3] ?? '')
      .map((local) => {
        const at = local.lastIndexOf(':');
        const host = local
          .slice(0, at)
          .replace(/^\[|\]$/g, '')
          .replace(/%.*$/, '');
        return {
          machine,
          host: host === '0.0.0.0' || host === '*' || host === '::' ? ip : host,
          port: Number(local.slice(at + 1)),
        };
      });
  }

  it('every platform port on the network speaks TLS (platform CA or the cluster CA) and refuses plain text', async () => {
    const all = [
      ...(await listeners('master', MASTER_IP)),
      ...(await Promise.all(NODES.map((n) => listeners(n.name, n.ip)))).flat(),
    ];
    // What listens only on a machine's loopback cannot be reached from another machine.
    const reachable = all.filter((l) => !l.host.startsWith('127.') && l.host !== '::1');
    expect(reachable.length).toBeGreaterThanOrEqual(1 + 3 * 2 + 3);
    const targets = join(work, 'targets.json');
    writeFileSync(
      targets,
      JSON.stringify(
        reachable.map((l) => ({ host: l.host, port: l.port, cas: { platform: platformCa, cluster: clusterCa } })),
      ),
    );
    const probed = await lab.exec('work', [process.execPath, PROBE, targets], { timeoutMs: 300_000 });
    expect(probed.code, probed.stderr).toBe(0);
    const results = probed.stdout
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(results.length).toBe(reachable.length);
    const verdicts = results.map((r) => ({
      at: `${String(r['host'])}:${String(r['port'])}`,
      tls: (r['tls'] as string | null) ?? (r['postgresTls'] === null ? null : `postgres+${r['postgresTls'] as string}`),
      plainAnswered: String(r['plainHttp']).startsWith('HTTP/') || r['plainPostgres'] === 'R',
    }));
    process.stderr.write(
      `listening ports between machines:\n  ${verdicts.map((v) => `${v.at} ${v.tls ?? 'no TLS'}`).join('\n  ')}\n`,
    );
    expect(
      verdicts.filter((v) => v.tls === null || v.plainAnswered),
      JSON.stringify(results, null, 1),
    ).toEqual([]);
    // The master's port verifies against the platform CA; the cluster's against its own.
    expect(verdicts.find((v) => v.at === `${MASTER_IP}:8470`)?.tls).toBe('platform');
    expect(verdicts.filter((v) => v.tls === 'cluster').length).toBeGreaterThanOrEqual(3 + 1);
    expect(verdicts.filter((v) => v.tls === 'postgres+cluster').length).toBeGreaterThanOrEqual(3 + 2);
  });

  it('a node token without its certificate is refused, and so is a certificate of another CA or a revoked one', async () => {
    const node = NODES[2]!;
    const dataDir = join(work, node.name);
    const credentials = JSON.parse(readFileSync(join(dataDir, 'node.json'), 'utf8')) as Record<string, unknown>;
    const token = String(credentials['token']);
    const computerGuid = String(credentials['nodeId']);
    expect(computerGuid).toBe(node.name);
    const certificate = () =>
      JSON.parse(readFileSync(join(dataDir, 'node-certificate.json'), 'utf8')) as { key: string; certificate: string };
    const call = async (extra: Record<string, unknown>, path = '/slapos.allDocs.v0.compute_node_instance_list') => {
      const file = join(work, `call-${Math.random().toString(36).slice(2)}.json`);
      writeFileSync(
        file,
        JSON.stringify({
          url: MASTER_URL,
          path,
          token,
          ca: platformCa,
          body: { computer_guid: computerGuid },
          ...extra,
        }),
        { mode: 0o600 },
      );
      const run = await lab.exec(node.name, [process.execPath, CALL, file]);
      rmSync(file, { force: true });
      return JSON.parse(run.stdout.trim()) as { status?: number; body?: string; error?: string };
    };
    const own = certificate();
    expect((await call({ key: own.key, cert: own.certificate })).status).toBe(200);
    const without = await call({});
    expect([without.status, without.body], JSON.stringify(without)).toEqual([
      401,
      expect.stringMatching(/requires node certificates/),
    ]);
    // A certificate of another CA (valid, with its key, but not the platform's) does not get a request in.
    const stranger = await (await clusterTlsFixture('another CA')).identity(node.ip, node.name);
    const foreign = await call({ key: stranger.key, cert: stranger.cert });
    expect(foreign.status, JSON.stringify(foreign)).toBeGreaterThanOrEqual(400);

    // The admin revokes the node's certificates (SlapOS: slapos.remove.v0.compute_node_certificate).
    const admin = readFileSync(join(masterData, 'admin-token'), 'utf8').trim();
    const revoked = await call({ token: admin }, '/slapos.remove.v0.compute_node_certificate');
    expect(revoked.status, JSON.stringify(revoked)).toBe(200);
    const after = await call({ key: own.key, cert: own.certificate });
    expect([after.status, after.body], JSON.stringify(after)).toEqual([
      401,
      expect.stringMatching(/is revoked or unknown/),
    ]);
    // The node notices the refusal and asks for a new certificate with its token.
    const renewed = await waitFor(
      'the node holds a new certificate',
      () => {
        const now = certificate();
        return now.certificate !== own.certificate ? now : undefined;
      },
      120_000,
    );
    expect((await call({ key: renewed.key, cert: renewed.certificate })).status).toBe(200);
  });

  it('a failover across machines: the primary taken off the network, another member takes writes, nothing lost', async () => {
    const caFile = databaseUrl.match(/sslrootcert=([^&]+)/)?.[1];
    expect(caFile).toBeDefined();
    const psqlDir = join(work, 'psql');
    rmSync(psqlDir, { recursive: true, force: true });
    writeFileSync(join(work, caFile!), clusterCa);
    const psql = async (sql: string) =>
      lab.exec('work', ['psql', databaseUrl, '-v', 'ON_ERROR_STOP=1', '-At', '-c', sql], {
        env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', PGCONNECT_TIMEOUT: '5' },
        cwd: work,
        timeoutMs: 30_000,
      });
    const created = await psql(
      'CREATE TABLE ledger (id int primary key); INSERT INTO ledger SELECT generate_series(1, 100)',
    );
    expect(created.code, created.stderr).toBe(0);

    let before = await status();
    const routerNode = nodeOf(before.router);
    expect(routerNode, `the router at ${before.router} is on one of the nodes`).toBeDefined();
    // The router publishes the cluster's status: keep its machine on the network. A primary on the router's
    // machine first hands over (a switchover across machines) to a member elsewhere.
    const onRouterNode = (name: string | null) =>
      nodeOf(before.members.find((m) => m.name === name)?.host) === routerNode;
    if (onRouterNode(before.primary)) {
      const target = before.members.find((m) => m.name !== before.primary && nodeOf(m.host) !== routerNode);
      expect(target).toBeDefined();
      await hoxOk(['db', 'switchover', CLUSTER, '--to', target!.name], undefined, 240_000);
      before = await waitFor(
        `${target!.name} primary after the switchover`,
        async () => {
          const s = await status();
          return s.primary === target!.name ? s : undefined;
        },
        120_000,
      );
    }
    const primary = before.members.find((m) => m.name === before.primary);
    const victim = nodeOf(primary?.host);
    expect(victim, `the primary ${JSON.stringify(primary)} is on one of the nodes`).toBeDefined();
    expect(victim).not.toBe(routerNode);
    const oldTerm = primary!.term ?? 0;
    const t0 = Date.now();
    await lab.unplug(victim!.name);
    try {
      const elected = await waitFor(
        'another member is elected primary',
        async () => {
          const s = await status();
          const p = s.members.find((m) => m.name === s.primary);
          return p !== undefined && p.name !== primary!.name && (p.term ?? 0) > oldTerm ? p : undefined;
        },
        180_000,
      );
      const written = await waitFor(
        'a write through the published URL',
        async () => {
          const run = await psql('INSERT INTO ledger VALUES (101)');
          return run.code === 0 ? run : undefined;
        },
        120_000,
      );
      expect(written.code).toBe(0);
      process.stderr.write(
        `failover across machines: ${elected.name} primary in term ${String(elected.term)}, a write ${Date.now() - t0} ms after the primary's machine left the network\n`,
      );
      const count = await psql('SELECT count(*) FROM ledger');
      expect(count.stdout.trim()).toBe('101');
    } finally {
      await lab.plug(victim!.name);
    }
  });
});
