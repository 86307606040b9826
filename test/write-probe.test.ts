/**
 * The hyper_db write probe (src/releases/hyper_db/probe/) against a real
 * PostgreSQL 15: it makes its least-privilege role and database once, passes
 * only when a write was committed, and fails — saying why, within its bounds —
 * on a frozen server, a read-only one, a commit no synchronous standby
 * confirms, and nothing listening. Also run as the program the `cluster`
 * profile's `rw-endpoint` promise runs. (test/hyperdb-status.test.ts checks
 * it through a whole cluster, TLS on.)
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { releaseProgram } from '../src/release-kit/program.js';
import {
  describeProbe,
  probeWrite,
  PROBE_CONNECTION_LIMIT,
  type WriteProbeConfig,
  type WriteProbeResult,
} from '../src/releases/hyper_db/probe/write-probe.js';
import { freePort } from '../src/testing/free-port.js';
import { startPostgres, type PostgresServer } from '../src/testing/postgres-server.js';

const HOST = '127.0.0.1';

async function sql<T extends pg.QueryResultRow>(url: string, text: string, values: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  client.on('error', () => {});
  await client.connect();
  try {
    return (await client.query<T>(text, values)).rows;
  } finally {
    await client.end();
  }
}

/** The failure's cause; fails the test when the probe passed. */
function causeOf(result: WriteProbeResult): string {
  if (result.ok) throw new Error(`the probe passed: ${JSON.stringify(result)}`);
  return result.cause;
}

describe('hyper_db write probe', () => {
  let server: PostgresServer;
  let config: WriteProbeConfig;
  let dir: string;

  beforeAll(async () => {
    server = await startPostgres();
    dir = await mkdtemp(join(tmpdir(), 'hox-probe-'));
    config = {
      host: HOST,
      port: server.port,
      role: 'hyperdb_probe',
      password: 'probe-password-0123456789',
      database: 'hyperdb_probe',
      caCertificate: null,
      setup: { members: [{ host: HOST, port: server.port }], superuser: 'hox', superuserPassword: '' },
      connectTimeoutMs: 1000,
      writeTimeoutMs: 1000,
    };
  });
  afterAll(async () => {
    await server?.stop();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  const reset = async (): Promise<void> => {
    await sql(server.connectionString, 'ALTER SYSTEM RESET ALL');
    await sql(server.connectionString, 'SELECT pg_reload_conf()');
    await sql(server.connectionString, 'ALTER ROLE hyperdb_probe RESET ALL');
  };

  it('makes its role and database once, least privilege, then commits a write each time', async () => {
    const first = await probeWrite(config);
    expect(first).toMatchObject({ ok: true, server: `${HOST}:${server.port}` });
    const [role] = await sql<{ rolsuper: boolean; rolcreatedb: boolean; rolcreaterole: boolean; rolconnlimit: number }>(
      server.connectionString,
      'SELECT rolsuper, rolcreatedb, rolcreaterole, rolconnlimit FROM pg_roles WHERE rolname = $1',
      ['hyperdb_probe'],
    );
    expect(role).toEqual({
      rolsuper: false,
      rolcreatedb: false,
      rolcreaterole: false,
      rolconnlimit: PROBE_CONNECTION_LIMIT,
    });
    const [db] = await sql<{ owner: string; acl: string }>(
      server.connectionString,
      `SELECT pg_get_userbyid(datdba) AS owner, datacl::text AS acl FROM pg_database WHERE datname = 'hyperdb_probe'`,
    );
    expect(db?.owner).toBe('hyperdb_probe');
    // PUBLIC (an empty grantee: "=c/…") may not connect.
    expect(db?.acl).not.toMatch(/[{,]=/);

    const second = await probeWrite(config);
    expect(second.ok).toBe(true);
    const probeUrl = server.connectionString.replace(/\/postgres$/, '/hyperdb_probe');
    const [row] = await sql<{ writes: string }>(probeUrl, 'SELECT writes FROM probe WHERE id = 1');
    expect(Number(row?.writes)).toBe(2);
    expect(describeProbe(config, second)).toMatch(
      new RegExp(`^a write committed through ${HOST}:${server.port} on ${HOST}:${server.port} in \\d+ ms$`),
    );
  });

  it('leaves alone a role of its name that owns another database', async () => {
    await sql(server.connectionString, 'CREATE ROLE tenant_probe LOGIN');
    await sql(server.connectionString, 'CREATE DATABASE tenant_probe OWNER tenant_probe');
    const result = await probeWrite({ ...config, role: 'tenant_probe', database: 'tenant_probe_x' });
    expect(causeOf(result)).toMatch(
      /database "tenant_probe_x" does not exist .*; and no primary to make the probe role on \(127\.0\.0\.1:\d+: role 'tenant_probe' exists and owns database 'tenant_probe': left alone\)/,
    );
  });

  it('fails while the server is frozen, within its bounds, and passes once it is thawed', async () => {
    const pid = Number(readFileSync(join(server.dataDir, 'pgdata', 'postmaster.pid'), 'utf8').split('\n')[0]);
    expect(pid).toBeGreaterThan(1);
    process.kill(pid, 'SIGSTOP');
    try {
      const t0 = performance.now();
      const frozen = await probeWrite(config);
      const tookMs = performance.now() - t0;
      // Bounded by the probe's own timeouts, not the server's good will: it gave up while the server was still
      // frozen, saying so (how long it took is a figure, not an assertion).
      expect(causeOf(frozen)).toMatch(/timeout|no connection within/i);
      console.log(`write probe against a frozen server gave up after ${Math.round(tookMs)} ms`);
      expect(describeProbe(config, frozen)).toMatch(
        new RegExp(`^no primary accepts writes through ${HOST}:${server.port}: `),
      );
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    expect((await probeWrite(config)).ok).toBe(true);
  });

  it('fails on a server that refuses writes (read-only), and on a commit no synchronous standby confirms', async () => {
    // Its role and database first (this test may run alone).
    expect((await probeWrite(config)).ok).toBe(true);
    try {
      await sql(server.connectionString, 'ALTER SYSTEM SET default_transaction_read_only = on');
      await sql(server.connectionString, 'SELECT pg_reload_conf()');
      expect(causeOf(await probeWrite(config))).toMatch(/read-only transaction .*SQLSTATE 25006/);
      await reset();
      // The test server runs with synchronous_commit off (its command line); a real member has it on.
      await sql(server.connectionString, `ALTER SYSTEM SET synchronous_standby_names = 'nobody'`);
      await sql(server.connectionString, `ALTER ROLE hyperdb_probe SET synchronous_commit = 'on'`);
      await sql(server.connectionString, 'SELECT pg_reload_conf()');
      expect(causeOf(await probeWrite(config))).toMatch(/^the commit was not acknowledged within 1000 ms$/);
      // Its session does not wait on for the standbys (PostgreSQL has no timeout there): the probe cancelled it.
      const waiting = async () =>
        (
          await sql<{ n: string }>(
            server.connectionString,
            `SELECT count(*) AS n FROM pg_stat_activity WHERE usename = 'hyperdb_probe' AND wait_event = 'SyncRep'`,
          )
        )[0]?.n;
      for (let i = 0; i < 50 && (await waiting()) !== '0'; i++) await sleep(100);
      expect(await waiting()).toBe('0');
    } finally {
      await reset();
    }
    expect((await probeWrite(config)).ok).toBe(true);
  });

  it('fails when nothing listens', async () => {
    const port = await freePort();
    expect(causeOf(await probeWrite({ ...config, port, setup: null }))).toMatch(/ECONNREFUSED/);
  });

  it('runs as the promise command: exit 0 with its line on stdout, 1 with the reason last on stderr', async () => {
    const file = join(dir, 'probe.json');
    const programUrl = new URL('../src/releases/hyper_db/release.ts', import.meta.url).href;
    const argv = releaseProgram(programUrl, process.execPath, 'probe/main', [file]);
    writeFileSync(file, JSON.stringify(config));
    const ok = spawnSync(argv[0] ?? '', argv.slice(1), { encoding: 'utf8', timeout: 30_000 });
    expect(ok.status).toBe(0);
    expect(ok.stdout).toMatch(/^a write committed through /);
    writeFileSync(file, JSON.stringify({ ...config, port: await freePort(), setup: null }));
    const failed = spawnSync(argv[0] ?? '', argv.slice(1), { encoding: 'utf8', timeout: 30_000 });
    expect(failed.status).toBe(1);
    expect(failed.stderr.trim().split('\n').at(-1)).toMatch(
      /^no primary accepts writes through 127\.0\.0\.1:\d+: .*ECONNREFUSED/,
    );
  });
});
