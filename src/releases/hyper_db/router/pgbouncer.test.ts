/**
 * The router's PgBouncer: its configuration as rendered (escaping, refusals), then the real PgBouncer in
 * front of two real PostgreSQL servers: a pool of 4 and fresh clients that never retry see no failure
 * while the endpoint is paused, pointed at the other server and resumed.
 */
import { spawn } from 'node:child_process';
import { randomInt } from 'node:crypto';
import net from 'node:net';
import { mkdtempSync, readFileSync, rmSync, statSync, chownSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../../testing/free-port.js';
import { startPostgres, type PostgresServer } from '../../../testing/postgres-server.js';
import { probeWrite } from '../probe/write-probe.js';
import { PgBouncer, PGBOUNCER_BINARY } from './pgbouncer.js';
import { renderAuthFile, renderPgBouncerIni, type PgBouncerSettings } from './pgbouncer-config.js';
import { existsSync } from 'node:fs';

const base: PgBouncerSettings = {
  listenHost: '127.0.0.1',
  listenPort: 6543,
  dir: '/srv/part/pgbouncer',
  socketDir: '/srv/part/pgbouncer',
  server: { host: '10.0.0.2', port: 5432 },
  databases: ['app', 'crm'],
  users: [],
  adminUser: 'hox_router',
  tls: { clientSslmode: 'require', keyFile: '/srv/k', certFile: '/srv/c', caFile: '/srv/ca' },
  queryWaitTimeoutS: 30,
  poolSize: 20,
  maxClientConnections: 1000,
};

describe('PgBouncer configuration', () => {
  it('lists each database on the primary, a fallback, transaction pooling, TLS both ways', () => {
    const ini = renderPgBouncerIni(base);
    expect(ini).toContain('app = host=10.0.0.2 port=5432 dbname=app\n');
    expect(ini).toContain('* = host=10.0.0.2 port=5432\n');
    expect(ini).toContain('pool_mode = transaction\n');
    expect(ini).toContain('server_reset_query_always = 1\n');
    expect(ini).toContain('client_tls_sslmode = require\n');
    expect(ini).toContain('server_tls_sslmode = verify-full\n');
    expect(ini).toContain('server_tls_ca_file = /srv/ca\n');
    expect(ini).toContain('listen_addr = 127.0.0.1\n');
    expect(renderPgBouncerIni({ ...base, tls: { ...base.tls!, clientSslmode: 'allow' } })).toContain(
      'client_tls_sslmode = allow\n',
    );
  });

  it('doubles double quotes in the auth file and refuses newlines, control characters and odd names', () => {
    expect(renderAuthFile([{ name: 'app', password: 'a"b' }])).toBe('"app" "a""b"\n');
    expect(() => renderAuthFile([{ name: 'app', password: 'a\nb' }])).toThrow(/newline/);
    expect(() => renderAuthFile([{ name: 'app', password: 'a\rb' }])).toThrow(/newline/);
    expect(() => renderAuthFile([{ name: 'app', password: '' }])).toThrow(/empty/);
    expect(() => renderAuthFile([{ name: 'a"pp', password: 'x' }])).toThrow(/not a plain identifier/);
    expect(() => renderAuthFile([{ name: 'app\n"root"', password: 'x' }])).toThrow(/not a plain identifier/);
    expect(() =>
      renderAuthFile([
        { name: 'app', password: 'x' },
        { name: 'app', password: 'y' },
      ]),
    ).toThrow(/twice/);
  });

  it('refuses a database, host or path that would break the ini file', () => {
    expect(() => renderPgBouncerIni({ ...base, databases: ['app\n[pgbouncer]'] })).toThrow(/not a plain identifier/);
    expect(() => renderPgBouncerIni({ ...base, databases: ['pgbouncer'] })).toThrow(/admin console/);
    expect(() => renderPgBouncerIni({ ...base, server: { host: '10.0.0.2 dbname=x', port: 5432 } })).toThrow(/IPv4/);
    expect(() => renderPgBouncerIni({ ...base, dir: '/srv/a\nauth_type = any' })).toThrow(/cannot be written/);
    expect(() => renderPgBouncerIni({ ...base, dir: '/srv/a;b' })).toThrow(/cannot be written/);
    expect(() => renderPgBouncerIni({ ...base, server: { host: '10.0.0.2', port: 0 } })).toThrow(/port/);
  });
});

/** PgBouncer refuses to run as root: under root it runs as the `postgres` system user (as the test servers do). */
function postgresUser(): { uid: number; gid: number } {
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('postgres:'));
  const [, , uid, gid] = line?.split(':') ?? [];
  if (uid === undefined || gid === undefined) throw new Error('no postgres system user (package postgresql-15)');
  return { uid: Number(uid), gid: Number(gid) };
}
const runAs = process.getuid?.() === 0 ? postgresUser() : undefined;

describe.skipIf(!existsSync(PGBOUNCER_BINARY) && process.env.CI !== 'true')('PgBouncer in front of two servers', () => {
  let a: PostgresServer;
  let b: PostgresServer;
  let dir: string;
  let bouncer: PgBouncer;
  let port: number;
  const logs: string[] = [];
  const password = 'p"w \\ \'x';

  beforeAll(async () => {
    [a, b] = await Promise.all([startPostgres(), startPostgres()]);
    for (const server of [a, b]) {
      const c = new pg.Client({ connectionString: server.connectionString });
      await c.connect();
      await c.query(`CREATE ROLE app LOGIN PASSWORD 'unused: the servers trust'`);
      await c.query('CREATE DATABASE app OWNER app');
      await c.end();
      const d = new pg.Client({ connectionString: server.connectionString.replace(/\/postgres$/, '/app') });
      await d.connect();
      await d.query('CREATE TABLE t (id bigserial primary key, who text) ');
      await d.query('ALTER TABLE t OWNER TO app');
      await d.end();
    }
    dir = mkdtempSync(join(tmpdir(), 'hox-pgb-'));
    if (runAs) chownSync(dir, runAs.uid, runAs.gid);
    port = await freePort();
    bouncer = new PgBouncer({
      partitionPath: dir,
      adminUser: 'hox_router',
      adminPassword: () => 'admin-secret',
      log: (l) => logs.push(l),
      ...(runAs ? { runAs } : {}),
    });
    await bouncer.configure(wanted(a.port));
    await bouncer.start();
  }, 120_000);

  afterAll(async () => {
    await bouncer?.stop();
    await Promise.all([a?.stop(), b?.stop()]);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  function wanted(serverPort: number) {
    return {
      listenHost: '127.0.0.1',
      listenPort: port,
      server: { host: '127.0.0.1', port: serverPort },
      databases: ['app'],
      users: [{ name: 'app', password }],
      tls: null,
      queryWaitTimeoutS: 30,
      poolSize: 10,
      maxClientConnections: 200,
    };
  }
  const clientConfig = { host: '127.0.0.1', user: 'app', password, database: 'app' };

  it('writes its files 0600 in its directory; the admin console answers', async () => {
    for (const f of ['pgbouncer.ini', 'users.txt']) expect(statSync(join(bouncer.dir, f)).mode & 0o777).toBe(0o600);
    expect(statSync(bouncer.dir).mode & 0o777).toBe(0o700);
    expect(readFileSync(join(bouncer.dir, 'users.txt'), 'utf8')).toContain(`"app" "p""w \\ 'x"`);
    const { rows } = await bouncer.admin('SHOW DATABASES');
    expect(rows.map((r: { name: string }) => r.name)).toContain('app');
  });

  it('pause, point at the other server, resume: a pool of 4 and fresh clients without retries see no failure; a session moves with it', async () => {
    const pool = new pg.Pool({ ...clientConfig, port, max: 4 });
    const failures: string[] = [];
    const acked: number[] = [];
    let running = true;
    const loops = Array.from({ length: 4 }, async () => {
      while (running) {
        await pool.query<{ id: string }>("INSERT INTO t (who) VALUES ('pool') RETURNING id").then(
          (r) => acked.push(Number(r.rows[0]!.id)),
          (e: Error) => failures.push(`pool: ${e.message}`),
        );
      }
    });
    let fresh = 0;
    const freshLoop = (async () => {
      while (running) {
        const c = new pg.Client({ ...clientConfig, port });
        try {
          await c.connect();
          await c.query("INSERT INTO t (who) VALUES ('fresh')");
          fresh++;
        } catch (e) {
          failures.push(`fresh: ${(e as Error).message}`);
        } finally {
          await c.end().catch(() => {});
        }
      }
    })();
    const session = new pg.Client({ ...clientConfig, port });
    await session.connect();
    const serverPort = async () =>
      Number((await session.query<{ p: number }>('SELECT inet_server_port() AS p')).rows[0]!.p);
    expect(await serverPort()).toBe(a.port);
    await new Promise((r) => setTimeout(r, 500));
    const paused = await bouncer.pause(5000);
    expect(paused.paused).toBe(true);
    // While paused nothing reaches a server: stop A as a switchover would.
    const countOn = async (s: PostgresServer) => {
      const c = new pg.Client({ connectionString: s.connectionString.replace(/\/postgres$/, '/app') });
      await c.connect();
      const n = Number((await c.query<{ n: string }>('SELECT count(*) AS n FROM t')).rows[0]!.n);
      await c.end();
      return n;
    };
    const onA = await countOn(a);
    await new Promise((r) => setTimeout(r, 300));
    expect(await countOn(a)).toBe(onA);
    await bouncer.configure(wanted(b.port));
    await bouncer.resume();
    await new Promise((r) => setTimeout(r, 500));
    expect(await serverPort()).toBe(b.port);
    running = false;
    await Promise.all([...loops, freshLoop]);
    await pool.end();
    await session.end();
    expect(failures).toEqual([]);
    expect(fresh).toBeGreaterThan(0);
    expect((await countOn(a)) + (await countOn(b))).toBe(acked.length + fresh);
    expect(await countOn(b)).toBeGreaterThan(0);
  }, 60_000);

  it('a session advisory lock taken through the endpoint does not outlive its transaction (no lock left on a pooled connection)', async () => {
    const first = new pg.Client({ ...clientConfig, port });
    await first.connect();
    const { rows: on } = await first.query<{ p: number }>('SELECT inet_server_port() AS p, pg_advisory_lock(42)');
    const server = [a, b].find((x) => x.port === on[0]?.p)!;
    await first.end();
    // The lock went with the server connection's reset: the server holds no advisory lock any more.
    const direct = new pg.Client({ connectionString: server.connectionString });
    await direct.connect();
    let held = -1;
    for (let i = 0; i < 50 && held !== 0; i++) {
      const { rows } = await direct.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory'",
      );
      held = rows[0]?.n ?? -1;
      if (held !== 0) await new Promise((r) => setTimeout(r, 20));
    }
    await direct.end();
    expect(held).toBe(0);
  });

  it('a pause bounded while a transaction stays open answers after the bound; resume lets work go on', async () => {
    const open = new pg.Client({ ...clientConfig, port });
    await open.connect();
    await open.query('BEGIN');
    await open.query("INSERT INTO t (who) VALUES ('open')");
    const outcome = await bouncer.pause(500);
    expect(outcome.paused).toBe(false);
    expect(outcome.waitedMs).toBeGreaterThanOrEqual(450);
    // The pause goes on past the bound: a new client's transaction waits for RESUME.
    const other = new pg.Client({ ...clientConfig, port });
    await other.connect();
    let answered = false;
    const waiting = other.query<{ n: number }>('SELECT 2 AS n').then((r) => {
      answered = true;
      return r.rows[0]?.n;
    });
    await new Promise((r) => setTimeout(r, 700));
    expect(answered).toBe(false);
    await open.query('COMMIT');
    await bouncer.resume();
    expect(await waiting).toBe(2);
    const { rows } = await open.query<{ n: number }>('SELECT 1 AS n');
    expect(rows[0]?.n).toBe(1);
    await Promise.all([open.end(), other.end()]);
  });

  it('a PgBouncer left running by a killed router is stopped before a new one starts', async () => {
    await bouncer.stop();
    // The orphan: a PgBouncer on the same files that no supervisor knows (its router died by SIGKILL).
    const orphan = spawn(PGBOUNCER_BINARY, [join(bouncer.dir, 'pgbouncer.ini')], {
      cwd: bouncer.dir,
      stdio: 'ignore',
      ...(runAs ?? {}),
    });
    const orphanExit = new Promise((r) => orphan.once('exit', r));
    for (let i = 0; i < 100; i++) {
      const pidFile = join(bouncer.dir, 'pgbouncer.pid');
      if (existsSync(pidFile) && Number(readFileSync(pidFile, 'utf8').trim()) === orphan.pid) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    bouncer = new PgBouncer({
      partitionPath: dir,
      adminUser: 'hox_router',
      adminPassword: () => 'admin-secret',
      log: (l) => logs.push(l),
      ...(runAs ? { runAs } : {}),
    });
    await bouncer.configure(wanted(b.port));
    await bouncer.start();
    await orphanExit;
    expect(logs.join('\n')).toContain(`stopping the one left running (pid ${orphan.pid})`);
    const c = new pg.Client({ ...clientConfig, port });
    await c.connect();
    expect((await c.query<{ p: number }>('SELECT inet_server_port() AS p')).rows[0]?.p).toBe(b.port);
    await c.end();
  });

  it('survives write probes whose commit waits for standbys and is cancelled through it (PgBouncer 1.18 died on a half-closed cancel)', async () => {
    const pidFile = join(bouncer.dir, 'pgbouncer.pid');
    const pid = Number(readFileSync(pidFile, 'utf8').trim());
    const admin = async (server: PostgresServer, text: string) => {
      const c = new pg.Client({ connectionString: server.connectionString });
      await c.connect();
      try {
        await c.query(text);
      } finally {
        await c.end();
      }
    };
    const waiting = async (server: PostgresServer) => {
      const c = new pg.Client({ connectionString: server.connectionString });
      await c.connect();
      try {
        const { rows } = await c.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM pg_stat_activity WHERE usename = 'app' AND wait_event = 'SyncRep'`,
        );
        return rows[0]?.n;
      } finally {
        await c.end();
      }
    };
    // Commits wait for a synchronous standby that never comes, on whichever server PgBouncer points at.
    for (const server of [a, b]) {
      await admin(server, `ALTER SYSTEM SET synchronous_standby_names = 'nobody'`);
      await admin(server, `ALTER ROLE app SET synchronous_commit = 'on'`);
      await admin(server, 'SELECT pg_reload_conf()');
      // Pooled server sessions read role settings when they start: new ones.
      await admin(server, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'app'`);
    }
    try {
      // Anyone who reaches the port may send CancelRequests (no login): unknown keys, half-closed at once.
      for (let i = 0; i < 20; i++)
        await new Promise<void>((resolve) => {
          const packet = Buffer.alloc(16);
          packet.writeInt32BE(16, 0);
          packet.writeInt32BE(80877102, 4);
          packet.writeInt32BE(randomInt(1, 2 ** 31 - 1), 8);
          packet.writeInt32BE(randomInt(1, 2 ** 31 - 1), 12);
          const socket = net.connect({ host: '127.0.0.1', port }, () => socket.end(packet));
          socket.on('close', () => resolve()).on('error', () => resolve());
        });
      const config = {
        host: '127.0.0.1',
        port,
        role: 'app',
        password,
        database: 'app',
        caCertificate: null,
        setup: null,
        writeTimeoutMs: 500,
      };
      for (let i = 0; i < 5; i++)
        expect(await probeWrite(config)).toEqual({ ok: false, cause: 'the commit was not acknowledged within 500 ms' });
      expect(Number(readFileSync(pidFile, 'utf8').trim()), logs.join('\n')).toBe(pid);
      expect(logs.join('\n')).not.toMatch(/pgbouncer exited/);
      // The probes' sessions were cancelled, not left waiting.
      for (const server of [a, b]) {
        for (let i = 0; i < 50 && (await waiting(server)) !== 0; i++) await new Promise((r) => setTimeout(r, 100));
        expect(await waiting(server)).toBe(0);
      }
    } finally {
      for (const server of [a, b]) {
        await admin(server, 'ALTER SYSTEM RESET synchronous_standby_names');
        await admin(server, 'ALTER ROLE app RESET synchronous_commit');
        await admin(server, 'SELECT pg_reload_conf()');
      }
    }
  });

  it('restarts PgBouncer when it dies', async () => {
    const pid = Number(readFileSync(join(bouncer.dir, 'pgbouncer.pid'), 'utf8').trim());
    process.kill(pid, 'SIGKILL');
    let ok = false;
    for (let i = 0; i < 100 && !ok; i++) {
      await new Promise((r) => setTimeout(r, 100));
      const c = new pg.Client({ ...clientConfig, port, connectionTimeoutMillis: 1000 });
      c.on('error', () => {});
      ok = await c.connect().then(
        () => c.query('SELECT 1').then(() => true),
        () => false,
      );
      await c.end().catch(() => {});
    }
    expect(ok).toBe(true);
    expect(logs.join('\n')).toMatch(/pgbouncer exited .*restarting/);
  });
});
