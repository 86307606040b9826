/**
 * The master's store at rest (issue 11, finding 7): what someone holding a
 * copy of the store — a backup, the SQLite file read by another local user,
 * a SELECT on the PostgreSQL database — learns of the secrets in it: nothing.
 * Instance parameters and connection parameters (cluster secrets, database
 * passwords, backup tokens) are sealed with a key kept outside the store; the
 * SQLite file, its WAL and the key are mode 0600 whatever they were before.
 */
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import SqliteDatabase from 'better-sqlite3';
import pg from 'pg';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { MasterClient } from '../src/client/master-client.js';
import { createMaster, type Master } from '../src/master/create-master.js';
import { resolveMasterConfig } from '../src/master/master-config.js';
import { newStoreKeyText } from '../src/store/secret-box.js';
import { freePort } from '../src/testing/free-port.js';
import { addTestNode, startTestMaster, type TestMaster } from '../src/testing/test-master.js';
import type { StoreKind } from '../src/testing/test-master.js';
import { describeEachStore } from './support/store-matrix.js';
import { RELEASE, expectError, getDoc, request } from './support/helpers.js';

const mode = (path: string): number => statSync(path).mode & 0o777;

/** Every byte of the SQLite store as another local user (or a backup) would copy it: the file, its WAL and shm. */
function sqliteBytes(dataDir: string): string {
  return readdirSync(dataDir)
    .filter((name) => name.startsWith('master.sqlite'))
    .map((name) => readFileSync(join(dataDir, name)).toString('latin1'))
    .join('\n');
}

/** What a SELECT on the PostgreSQL store returns for every instance row, as text. */
async function postgresRows(databaseUrl: string): Promise<{ dump: string; values: string[] }> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const rows = await client.query<{ row: string; parameters: string; connection_parameters: string }>(
      'select row_to_json(i)::text as row, parameters, connection_parameters from instance i',
    );
    return {
      dump: rows.rows.map((r) => r.row).join('\n'),
      values: rows.rows.flatMap((r) => [r.parameters, r.connection_parameters]),
    };
  } finally {
    await client.end();
  }
}

/** The platform CA's state as PostgreSQL holds it. */
async function pkiStates(databaseUrl: string): Promise<string[]> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    return (await client.query<{ state: string }>('SELECT state FROM pki_state')).rows.map((r) => r.state);
  } finally {
    await client.end();
  }
}

/** Every PKCS#8 DER of a P-256 key starts so in base64 (the algorithm identifiers), whatever the key. */
const P256_PKCS8_PREFIX = 'MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEH';

/** Writes the two secret columns of one instance in clear, as a version before encryption did. */
async function writeInClear(
  kind: StoreKind,
  where: { dataDir: string; databaseUrl: string | undefined },
  id: string,
  parameters: object,
  connectionParameters: object,
): Promise<void> {
  const values = [JSON.stringify(parameters), JSON.stringify(connectionParameters), id];
  if (kind === 'sqlite') {
    const db = new SqliteDatabase(join(where.dataDir, 'master.sqlite'));
    db.prepare('update instance set parameters = ?, connection_parameters = ? where id = ?').run(...values);
    db.close();
    return;
  }
  const client = new pg.Client({ connectionString: where.databaseUrl });
  await client.connect();
  await client.query('update instance set parameters = $1, connection_parameters = $2 where id = $3', values);
  await client.end();
}

/**
 * Starts a master again on the data (and database) of a halted test master, on a new port: a client of the new
 * one shares no kept-alive connection with the old (a request sent on one is cut: 'other side closed').
 */
async function reopen(
  m: TestMaster,
  databaseUrl: string | undefined,
  reopened: Master[],
  lines: string[] = [],
): Promise<MasterClient> {
  const master = createMaster(
    resolveMasterConfig({
      dataDir: m.dataDir,
      listen: '127.0.0.1:0',
      adminToken: m.adminToken,
      ...(databaseUrl === undefined ? {} : { databaseUrl }),
    }),
    { logger: pino({ level: 'info' }, { write: (line: string) => lines.push(line) }) },
  );
  const { url } = await master.start();
  reopened.push(master);
  return new MasterClient({ url, token: m.adminToken, ca: await master.caRootsPem() });
}

function secret(label: string): string {
  return `${label}-${randomBytes(12).toString('hex')}`;
}

describeEachStore('the store at rest', (env) => {
  const masters: TestMaster[] = [];
  const reopened: Master[] = [];
  const dirs: string[] = [];
  afterEach(async () => {
    while (reopened.length > 0) await reopened.pop()!.stop();
    while (masters.length > 0) await masters.pop()!.stop();
    while (dirs.length > 0) rmSync(dirs.pop()!, { recursive: true, force: true });
  });

  async function start(
    options: Parameters<typeof startTestMaster>[0] = {},
  ): Promise<{ m: TestMaster; databaseUrl: string | undefined }> {
    const databaseUrl = options?.databaseUrl ?? (env.kind === 'postgres' ? await env.newDatabaseUrl() : undefined);
    const m = await startTestMaster({ ...options, ...(databaseUrl === undefined ? {} : { databaseUrl }) });
    masters.push(m);
    return { m, databaseUrl };
  }

  /** Requests an instance with a secret parameter and publishes a secret connection parameter for it. */
  async function instanceWithSecrets(m: TestMaster): Promise<{ id: string; password: string; clusterSecret: string }> {
    const node = await addTestNode(m.admin, 'n1', { partitions: 2, releases: [RELEASE] });
    const password = secret('db-password');
    const clusterSecret = secret('cluster-secret');
    const doc = await request(m.admin, 'db', { parameters: { password, size: 3 } });
    await node.client.call('publishConnectionParameters', {
      instance_guid: doc.instance_guid,
      connection_parameter_dict: { cluster_secret: clusterSecret, url: 'postgres://db.example/app' },
    });
    return { id: doc.instance_guid, password, clusterSecret };
  }

  it('never holds instance parameters or connection parameters in clear: the raw store does not contain them', async () => {
    const { m, databaseUrl } = await start();
    const { id, password, clusterSecret } = await instanceWithSecrets(m);
    // Through the API they read back intact.
    const doc = await getDoc(m.admin, id);
    expect(doc.parameters).toEqual({ password, size: 3 });
    expect(doc.connection_parameters).toMatchObject({ cluster_secret: clusterSecret });
    if (env.kind === 'sqlite') {
      const raw = sqliteBytes(m.dataDir);
      expect(raw).toContain('CREATE TABLE'); // the bytes are the store's: the search below means something
      expect(raw).not.toContain(password);
      expect(raw).not.toContain(clusterSecret);
      // The platform CA's state is there, its keys sealed: no PKCS#8 P-256 key, in PEM or base64 DER.
      expect(raw).toContain('"sealedKey": "hox:v1:');
      expect(raw).not.toContain(P256_PKCS8_PREFIX);
      expect(raw).not.toContain('PRIVATE KEY');
    } else {
      const { dump, values } = await postgresRows(databaseUrl!);
      expect(dump).toContain(id);
      expect(dump).not.toContain(password);
      expect(dump).not.toContain(clusterSecret);
      const pki = await pkiStates(databaseUrl!);
      expect(pki).toHaveLength(1);
      expect(pki[0]).toContain('"sealedKey": "hox:v1:');
      expect(pki[0]).not.toContain(P256_PKCS8_PREFIX);
      expect(pki[0]).not.toContain('PRIVATE KEY');
      for (const value of values) expect(value.startsWith('hox:v1:')).toBe(true);
    }
    // The key is outside the store, readable by the master's user only.
    expect(mode(join(m.dataDir, 'store.key'))).toBe(0o600);
  });

  it('seals, on its next start, what a version before encryption left in clear, and reads it as before', async () => {
    const { m, databaseUrl } = await start();
    const { id } = await instanceWithSecrets(m);
    await m.halt();
    const password = secret('old-password');
    const clusterSecret = secret('old-cluster-secret');
    await writeInClear(
      env.kind,
      { dataDir: m.dataDir, databaseUrl },
      id,
      { password },
      { cluster_secret: clusterSecret },
    );
    // What an older version left: the secrets are there in clear.
    if (env.kind === 'sqlite') expect(sqliteBytes(m.dataDir)).toContain(password);
    else expect((await postgresRows(databaseUrl!)).dump).toContain(password);

    const lines: string[] = [];
    const admin = await reopen(m, databaseUrl, reopened, lines);
    expect(lines.join('')).toContain('sealed 2 secret value(s) that an older version had stored in clear');
    if (env.kind === 'sqlite') {
      const raw = sqliteBytes(m.dataDir);
      expect(raw).not.toContain(password); // not in the rows, nor in freed pages or the WAL
      expect(raw).not.toContain(clusterSecret);
    } else {
      const { dump } = await postgresRows(databaseUrl!);
      expect(dump).not.toContain(password);
      expect(dump).not.toContain(clusterSecret);
    }
    const doc = await getDoc(admin, id);
    expect(doc.parameters).toEqual({ password });
    expect(doc.connection_parameters).toEqual({ cluster_secret: clusterSecret });
  });

  it('refuses to start with another key, naming both keys and the file; the right key reads the secrets again', async () => {
    const { m, databaseUrl } = await start();
    const { id, password } = await instanceWithSecrets(m);
    await m.halt();
    const keyFile = join(m.dataDir, 'store.key');
    const original = readFileSync(keyFile, 'utf8');
    writeFileSync(keyFile, newStoreKeyText(), { mode: 0o600 });
    await expectError(
      reopen(m, databaseUrl, reopened),
      'HOX_STORE_KEY',
      new RegExp(`sealed with store key k-[0-9a-f]{16}, but ${keyFile} holds k-[0-9a-f]{16}: give this master`),
    );
    writeFileSync(keyFile, original);
    expect((await getDoc(await reopen(m, databaseUrl, reopened), id)).parameters).toEqual({ password, size: 3 });
  });

  if (env.kind === 'postgres') {
    it('lets a second master on the same PostgreSQL store in only with the first one’s key', async () => {
      const { m, databaseUrl } = await start();
      const { id, clusterSecret } = await instanceWithSecrets(m);

      // A master given no key file generates one; the store refuses it, and it does not stay behind.
      const dataDir = mkdtempSync(join(tmpdir(), 'hox-master-'));
      dirs.push(dataDir);
      const stranger = createMaster(
        resolveMasterConfig({ dataDir, listen: '127.0.0.1:0', adminToken: secret('admin-token'), databaseUrl }),
        { logger: pino({ level: 'silent' }) },
      );
      await expectError(stranger.start(), 'HOX_STORE_KEY', /postgres store's secrets are sealed with store key/);
      expect(existsSync(join(dataDir, 'store.key'))).toBe(false);

      // Given the first master's key file, it starts and reads what the first one sealed.
      const second = await start({ databaseUrl, storeKeyFile: join(m.dataDir, 'store.key') });
      expect((await getDoc(second.m.admin, id)).connection_parameters).toMatchObject({
        cluster_secret: clusterSecret,
      });
    });
  }
});

describe("the master's files [sqlite]", () => {
  const dirs: string[] = [];
  const masters: TestMaster[] = [];
  afterEach(async () => {
    while (masters.length > 0) await masters.pop()!.stop();
    while (dirs.length > 0) rmSync(dirs.pop()!, { recursive: true, force: true });
  });

  it('creates the store, its WAL and shm, the key and the admin token 0600, in a data dir others cannot list', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'hox-master-'));
    dirs.push(dataDir);
    chmodSync(dataDir, 0o755); // an existing dir made by hand, under umask 022
    const config = resolveMasterConfig({ dataDir, listen: '127.0.0.1:0' });
    const first = createMaster(config, { logger: pino({ level: 'silent' }) });
    await first.start();
    try {
      const ca = await first.caRootsPem();
      await new MasterClient({ url: first.url, token: config.adminToken, ca }).call('createUser', { name: 'alice' });
      for (const name of ['master.sqlite', 'master.sqlite-wal', 'master.sqlite-shm', 'store.key', 'admin-token'])
        expect(mode(join(dataDir, name)), name).toBe(0o600);
      expect(mode(dataDir) & 0o066).toBe(0);
    } finally {
      await first.stop();
    }
    // An admin token file someone made readable is narrowed on the next start.
    chmodSync(join(dataDir, 'admin-token'), 0o644);
    const again = createMaster(resolveMasterConfig({ dataDir, listen: '127.0.0.1:0' }), {
      logger: pino({ level: 'silent' }),
    });
    await again.start();
    await again.stop();
    expect(mode(join(dataDir, 'admin-token'))).toBe(0o600);
  });

  it('narrows a store, its WAL and shm, its key and the data dir left readable by others, and says so', async () => {
    const lines: string[] = [];
    const listen = `127.0.0.1:${await freePort()}`;
    const m = await startTestMaster({ listen, logStream: { write: (line) => lines.push(line) } });
    masters.push(m);
    await m.halt();
    // As an older version left them (its WAL and shm too, had it crashed).
    for (const name of ['master.sqlite-wal', 'master.sqlite-shm']) writeFileSync(join(m.dataDir, name), '');
    for (const name of ['master.sqlite', 'master.sqlite-wal', 'master.sqlite-shm', 'store.key'])
      chmodSync(join(m.dataDir, name), 0o644);
    chmodSync(m.dataDir, 0o755);
    await m.restart();
    for (const name of ['master.sqlite', 'master.sqlite-wal', 'master.sqlite-shm', 'store.key'])
      expect(mode(join(m.dataDir, name)), name).toBe(0o600);
    expect(mode(m.dataDir)).toBe(0o711);
    const log = lines.join('');
    expect(log).toContain(`${join(m.dataDir, 'master.sqlite')} was mode 0644, readable by other users: now 0600`);
    expect(log).toContain(`${join(m.dataDir, 'store.key')} was mode 0644`);
    expect(log).toContain(`data dir ${m.dataDir} was mode 0755, listable by other users: now 0711`);
  });

  it('refuses a data dir every user may write to, where another user could plant the store', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'hox-master-'));
    dirs.push(dataDir);
    chmodSync(dataDir, 0o1777);
    const master = createMaster(resolveMasterConfig({ dataDir, listen: '127.0.0.1:0', adminToken: secret('admin') }), {
      logger: pino({ level: 'silent' }),
    });
    await expectError(master.start(), 'HOX_BAD_REQUEST', /writable by every user \(mode 1777\)/);
    expect(existsSync(join(dataDir, 'master.sqlite'))).toBe(false);
  });
});
