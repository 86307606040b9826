/**
 * Tenants on one shared hyper_db cluster (issue 11, findings 1, 6 and 10), tried as an attacker would: a
 * platform whose admin runs a cluster, two users with their own tokens, real PostgreSQL.
 *
 * - A database name belongs to the shared instance that got it first: another user asking for it (again
 *   and again: shared instance references are random) is refused and never gets the owner's data, the
 *   owner keeps working; `hox db database` says so at once with exit 2 and leaves nothing behind.
 * - Names PostgreSQL reserves are refused; one database the router cannot set up does not stop the others.
 * - Once the owner is gone, the name is free again, for an empty database.
 * - Internal software types (`member`) are refused to users at request time.
 * - Logins need TLS by default, and every published URL asks for it.
 */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isNotReady, MasterClient } from '../src/client/master-client.js';
import { HoxError } from '../src/shared/errors.js';
import { clientConfigFromUrl, startHyperDbPlatform, type HyperDbPlatform } from '../src/testing/hyperdb-platform.js';
import { runHox, type HoxRun } from './support/hox-cli.js';

const CLUSTER = 'shared-db';
const isRoot = process.getuid?.() === 0;

describe.skipIf(!isRoot && process.env.CI !== 'true')('hyper_db: tenants on a shared cluster', () => {
  let p: HyperDbPlatform;
  let alice: MasterClient;
  let bob: MasterClient;
  let ca: string;
  let home: string;

  beforeAll(async () => {
    if (!isRoot) throw new Error('needs root: members run as partition users');
    p = await startHyperDbPlatform({ nodes: 1, partitions: 3, nodeIdPrefix: 'tenant-node' });
    await p.requestCluster(CLUSTER, { members: 1 });
    const s = await p.waitForCluster(CLUSTER, (x) => x.primary !== null, 120_000);
    ca = String(s.ca_cert);
    const user = async (name: string) => {
      const { token } = await p.admin.call('createUser', { name });
      return new MasterClient({ url: p.master.url, token });
    };
    alice = await user('alice');
    bob = await user('bob');
    home = mkdtempSync(join(tmpdir(), 'hox-tenants-cli-'));
  }, 180_000);

  afterAll(async () => {
    await p?.stop();
    if (home !== undefined) rmSync(home, { recursive: true, force: true });
  }, 120_000);

  /** Requests a database as `client` (no SLA: the admin's cluster is the only host) and waits for its answer. */
  async function database(client: MasterClient, title: string, dbname: string): Promise<Record<string, unknown>> {
    const end = Date.now() + 30_000;
    for (;;) {
      const answer = await client.call('requestInstance', {
        title,
        software_release_uri: 'hyper_db',
        software_type: 'cluster',
        shared: true,
        parameters: { database: dbname },
      });
      const published = isNotReady(answer) ? {} : answer.connection_parameters;
      if (typeof published.error === 'string') return published;
      if (typeof published.dbname === 'string') {
        const status = await p.clusterStatus(CLUSTER);
        const errors = (status?.database_errors ?? {}) as Record<string, string>;
        if (errors[dbname] !== undefined) return { ...published, router_error: errors[dbname] };
        const owners = (status?.database_owners ?? {}) as Record<string, string>;
        if (!isNotReady(answer) && owners[dbname] === answer.instance_guid) return published;
      }
      if (Date.now() > end) throw new Error(`${title}: no answer within 30 s: ${JSON.stringify(published)}`);
      await sleep(100);
    }
  }

  async function destroy(client: MasterClient, title: string): Promise<void> {
    await client.call('requestInstance', {
      title,
      software_release_uri: 'hyper_db',
      software_type: 'cluster',
      shared: true,
      state: 'destroyed',
    });
  }

  async function query(url: string, sql: string): Promise<pg.QueryResult<Record<string, unknown>>> {
    const client = new pg.Client({ ...clientConfigFromUrl(url, ca), connectionTimeoutMillis: 3000 });
    client.on('error', () => {});
    await client.connect();
    try {
      return await client.query<Record<string, unknown>>(sql);
    } finally {
      await client.end();
    }
  }

  const hox = (args: string[]): Promise<HoxRun> =>
    runHox(
      args,
      {
        ...process.env,
        HOX_CONFIG: join(home, 'config.json'),
        HOX_MASTER_URL: p.master.url,
        HOX_TOKEN: p.master.adminToken,
      },
      120_000,
    );

  it("a taken database name is refused to another user, however often asked; the owner's data and password stay its own", async () => {
    const mine = await database(alice, 'crm', 'crm');
    expect(mine.error).toBeUndefined();
    await query(String(mine.rw_url), "CREATE TABLE secrets AS SELECT 'alice-only' AS value");

    // Shared instance references are random: before the fix, a few tries made bob's sort first.
    for (let i = 1; i <= 6; i++) {
      const theirs = await database(bob, `grab-${i}`, 'crm');
      expect(theirs.error, `try ${i}`).toMatch(/database 'crm' is taken/);
      expect(theirs.password, `try ${i}`).toBeUndefined();
      expect(theirs.rw_url, `try ${i}`).toBeUndefined();
    }
    // The router keeps alice's password: she still reads her row, after its next reconciliation too.
    await sleep(1000);
    const rows = await query(String(mine.rw_url), 'SELECT value FROM secrets');
    expect(rows.rows).toEqual([{ value: 'alice-only' }]);
    const again = await database(alice, 'crm', 'crm');
    expect(again.password).toBe(mine.password);
    for (let i = 1; i <= 6; i++) await destroy(bob, `grab-${i}`);
  }, 120_000);

  it('hox db database on a taken name exits 2 at once with the reason, and leaves no request behind', async () => {
    const run = await hox(['db', 'database', CLUSTER, 'crm']);
    expect(run.code, run.stderr).toBe(2);
    expect(run.stderr).toMatch(/database 'crm' is taken/);
    const trees = (await p.admin.call('listTreeStatus', {})).result_list.map((t) => t.title);
    const end = Date.now() + 10_000;
    let left = trees.includes(`${CLUSTER}.crm`);
    while (left && Date.now() < end) {
      await sleep(100);
      left = (await p.admin.call('listTreeStatus', {})).result_list.some((t) => t.title === `${CLUSTER}.crm`);
    }
    expect(left).toBe(false);
  }, 120_000);

  it('names PostgreSQL reserves are refused, by the CLI before asking and by the cluster', async () => {
    for (const name of ['pg_catalog_copy', 'postgres', 'template1', 'hox_super']) {
      const refused = await database(bob, `reserved-${name.replace(/_/g, '-')}`, name);
      expect(refused.error, name).toMatch(/reserved/);
    }
    const run = await hox(['db', 'database', CLUSTER, 'pg_mine']);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/pg_/);
  }, 120_000);

  it('one database the router cannot set up does not stop the others', async () => {
    // A database made by hand, not by hyper_db: the router must neither take it over nor stall on it.
    const su = await p.superuserClient(CLUSTER, 'member-1');
    try {
      await su.query('CREATE DATABASE handmade');
    } finally {
      await su.end();
    }
    const blocked = await database(bob, 'handmade', 'handmade');
    expect(blocked.router_error).toMatch(/not made by hyper_db/);
    const other = await database(bob, 'notes', 'notes');
    expect(other.router_error).toBeUndefined();
    const rows = await query(String(other.rw_url), 'SELECT current_database() AS db');
    expect(rows.rows).toEqual([{ db: 'notes' }]);
  }, 120_000);

  it("once its owner is gone, the name is free again — for an empty database, never the owner's data", async () => {
    await destroy(alice, 'crm');
    const end = Date.now() + 30_000;
    let fresh = await database(bob, 'crm-later', 'crm');
    while (fresh.error !== undefined && Date.now() < end) {
      await sleep(200);
      fresh = await database(bob, 'crm-later', 'crm');
    }
    expect(fresh.error).toBeUndefined();
    const tables = await query(
      String(fresh.rw_url),
      "SELECT count(*)::int AS n FROM pg_tables WHERE tablename = 'secrets'",
    );
    expect(tables.rows).toEqual([{ n: 0 }]);
  }, 120_000);

  it('hox db psql runs psql on your database as its role through the read-write endpoint; names one when you have several; finds none that is not yours', async () => {
    for (const db of ['psqlnotes', 'psqlother']) {
      const made = await hox(['db', 'database', CLUSTER, db]);
      expect(made.code, made.stderr).toBe(0);
    }
    const [tree] = (await p.admin.call('listTreeStatus', { title: `${CLUSTER}.psqlnotes` })).result_list;
    const role = String(tree?.instance_list[0]?.connection_parameters.user);
    const sql = "SELECT current_user || ' ' || current_database() || ' ' || pg_is_in_recovery()";
    const run = await hox(['db', 'psql', CLUSTER, 'psqlnotes', '--', '-At', '-c', sql]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout.trim()).toBe(`${role} psqlnotes false`);
    expect(run.stderr).toMatch(/^psql: psqlnotes as \S+ on [\d.]+:\d+ \(read-write endpoint of shared-db\)$/m);
    expect(run.stdout + run.stderr).not.toContain(String(tree?.instance_list[0]?.connection_parameters.password));
    // The pgpass and CA files are gone once psql exits.
    expect(readdirSync(tmpdir()).filter((f) => f.startsWith('hox-psql-'))).toEqual([]);
    // psql's own failure is hox's failure.
    const failing = await hox(['db', 'psql', CLUSTER, 'psqlnotes', '--', '-c', 'SELECT * FROM no_such_table']);
    expect(failing.code).toBe(1);
    expect(failing.stderr).toMatch(/no_such_table/);
    const unnamed = await hox(['db', 'psql', CLUSTER]);
    expect(unnamed.code).toBe(2);
    expect(unnamed.stderr).toContain('name one (psqlnotes, psqlother)');
    const { token } = await p.admin.call('createUser', { name: 'carol' });
    const carol = await runHox(['db', 'psql', CLUSTER, 'psqlnotes'], {
      ...process.env,
      HOX_CONFIG: join(home, 'carol.json'),
      HOX_MASTER_URL: p.master.url,
      HOX_TOKEN: token,
    });
    expect(carol.code).toBe(1);
    expect(carol.stderr).toContain(`you have no database 'psqlnotes' on cluster '${CLUSTER}'`);
  }, 180_000);

  it("a user cannot request a release's internal software type (a member with its own settings)", async () => {
    const attempt = bob.call('requestInstance', {
      title: 'my-member',
      software_release_uri: 'hyper_db',
      software_type: 'member',
      parameters: {
        cluster_secret: 'x'.repeat(40),
        settings: { archive_command: 'cp /etc/shadow /tmp/x' },
      },
    });
    await expect(attempt).rejects.toSatisfy(
      (e: unknown) => e instanceof HoxError && e.code === 'HOX_BAD_REQUEST' && /internal/.test(e.message),
    );
    const trees = (await bob.call('listTreeStatus', {})).result_list.map((t) => t.title);
    expect(trees).not.toContain('my-member');
  }, 60_000);

  it('TLS is required by default: a plain-text login is refused and every published URL asks for verify-full', async () => {
    const s = await p.clusterStatus(CLUSTER);
    expect(s?.client_tls).toBe('required');
    const notes = await database(bob, 'notes', 'notes');
    for (const key of ['database_url', 'rw_url', 'ro_url'])
      expect(String(notes[key]), key).toMatch(/[?&]sslmode=verify-full&sslrootcert=hyper_db-ca-[0-9a-f]{16}\.crt$/);
    const plain = new pg.Client({
      ...clientConfigFromUrl(String(notes.rw_url)),
      ssl: false,
      connectionTimeoutMillis: 3000,
    });
    plain.on('error', () => {});
    // rw_url is PgBouncer, which refuses the plain client itself (a member says "no encryption").
    await expect(plain.connect()).rejects.toThrow(/SSL required/);
    await plain.end().catch(() => {});
  }, 60_000);
});
