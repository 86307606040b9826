/**
 * The write probe: does a primary accept writes through the read-write
 * endpoint now? The `cluster` profile runs it as its `rw-endpoint` promise,
 * so its verdict becomes the root instance's error and the tree's health.
 *
 * The claim it upholds: it passes only when a commit made through the
 * endpoint, as an application would make it, was acknowledged within a
 * bound. So it connects to the endpoint's host and port (not to a member),
 * with TLS verified against the cluster CA for that host (`verify-full`:
 * the proxy passes TLS through to a member whose certificate names the
 * router's address; a pooler in front presents one for it), as a role made
 * for it, and upserts one row. Everything that makes applications fail
 * makes it fail: no primary (the endpoint closes), a hung one (no answer
 * within `connectTimeoutMs`), a full disk or a read-only server (an error),
 * and a commit that synchronous standbys never confirm (no answer within
 * `writeTimeoutMs`; the wait is then cancelled, PostgreSQL arming no
 * statement timeout over it, so the session does not linger — and should
 * anything else cancel it, PostgreSQL's "canceling wait for synchronous
 * replication" warning, which turns the commit into a success that is not
 * replicated, counts as a failure).
 *
 * Least privilege: the probe role (`hyperdb_probe`) is no superuser, may log
 * in at most {@link PROBE_CONNECTION_LIMIT} times at once and owns only its
 * database (`hyperdb_probe`, closed to PUBLIC) with one table of one row.
 * They are made on the primary by {@link setUpProbe}, as the superuser and
 * straight on the members, the first time a login as the probe role is
 * refused (a new cluster, or one restored from another's backup); the
 * superuser never goes through the endpoint.
 */
import net from 'node:net';
import pg from 'pg';

/** What the probe needs (`probe.json`, written by the cluster profile). */
export interface WriteProbeConfig {
  /** The read-write endpoint. */
  host: string;
  port: number;
  role: string;
  password: string;
  database: string;
  /** The cluster CA (PEM): TLS with the server verified for `host` against it; null: no TLS. */
  caCertificate: string | null;
  /** How to make the probe role and database when a login is refused; null: never. */
  setup: { members: { host: string; port: number }[]; superuser: string; superuserPassword: string } | null;
  /** Bound on the connection (TCP, TLS, authentication). @default 2500 */
  connectTimeoutMs?: number;
  /** Bound on the write and its commit. @default 2500 */
  writeTimeoutMs?: number;
}

export type WriteProbeResult =
  | {
      ok: true;
      /** The address and port of the server that took the write, as it sees itself. */ server: string;
      ms: number;
    }
  | { ok: false; cause: string };

export const PROBE_ROLE = 'hyperdb_probe';
export const PROBE_DATABASE = 'hyperdb_probe';
export const PROBE_CONNECTION_LIMIT = 3;
const DEFAULT_CONNECT_TIMEOUT_MS = 2500;
const DEFAULT_WRITE_TIMEOUT_MS = 2500;
const IDENT = /^[a-z_][a-z0-9_]{0,62}$/;

const UPSERT = `INSERT INTO probe (id, written_at, writes) VALUES (1, now(), 1)
  ON CONFLICT (id) DO UPDATE SET written_at = now(), writes = probe.writes + 1
  RETURNING host(inet_server_addr()) AS addr, inet_server_port() AS port`;
const CREATE_TABLE =
  'CREATE TABLE IF NOT EXISTS probe (id integer PRIMARY KEY, written_at timestamptz NOT NULL, writes bigint NOT NULL)';
/** PostgreSQL's warning when a commit's wait for synchronous standbys is cancelled: committed here only. */
const SYNC_WAIT_CANCELLED = /canceling wait for synchronous replication/i;

/**
 * A refused login or a missing database: what {@link setUpProbe} repairs. A pooler in front relays the
 * server's login errors with its own SQLSTATE (08P01), so the message counts too.
 */
function needsSetUp(error: unknown): boolean {
  const { code, message } = error as { code?: unknown; message?: unknown };
  if (code === '28P01' || code === '28000' || code === '3D000') return true;
  return (
    typeof message === 'string' &&
    /password authentication failed|no such user|no such database|(database|role) "[^"]*" does not exist/i.test(message)
  );
}

function describe(error: unknown): string {
  const e = error as { message?: unknown; code?: unknown };
  const message = typeof e.message === 'string' && e.message !== '' ? e.message : String(error);
  return typeof e.code === 'string' && /^[0-9A-Z]{5}$/.test(e.code) ? `${message} (SQLSTATE ${e.code})` : message;
}

/** Rejects after `ms` with `what`; the caller tears the connection down. */
function within<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} within ${ms} ms`)), ms);
  });
  return Promise.race([work, late]).finally(() => clearTimeout(timer));
}

function client(
  config: WriteProbeConfig,
  target: { host: string; port: number; user: string; password: string; database: string },
): pg.Client {
  const c = new pg.Client({
    ...target,
    connectionTimeoutMillis: config.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
    application_name: 'hyper_db write probe',
    ...(config.caCertificate === null ? {} : { ssl: { ca: config.caCertificate } }),
  });
  c.on('error', () => {});
  return c;
}

/** Closes without waiting on a server that may never answer. */
function drop(c: pg.Client): void {
  const stream = (c as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream;
  stream?.destroy();
  void c.end().catch(() => {});
}

type Row = { addr: string | null; port: number | null };

/**
 * PostgreSQL's CancelRequest for `c`'s session (plain TCP), sent as libpq's PQcancel does: the packet,
 * then wait for the server to close the connection once it has handled it — never a half-close right
 * after the packet: PgBouncer 1.18 (Debian 12's) then frees the cancelling client twice and dies ("FATAL
 * … disconnect_client(): bad client state: 0", pgbouncer/pgbouncer#801), cutting every session through
 * the read-write endpoint. Bounded by 3 s. Never throws.
 */
function cancelRequest(host: string, port: number, c: pg.Client): Promise<void> {
  const { processID, secretKey } = c as unknown as { processID: number | null; secretKey: number | null };
  if (processID === null || secretKey === null) return Promise.resolve();
  return new Promise((resolve) => {
    const packet = Buffer.alloc(16);
    packet.writeInt32BE(16, 0);
    packet.writeInt32BE(80877102, 4);
    packet.writeInt32BE(processID, 8);
    packet.writeInt32BE(secretKey, 12);
    const socket = net.connect({ host, port }, () => socket.write(packet));
    const done = (): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve();
    };
    const timer = setTimeout(done, 3000);
    socket.on('close', done).on('error', done);
  });
}

/** The upsert's rows, from the answer to a string of statements (one result each). */
function rowsOf(answer: pg.QueryResult | pg.QueryResult[]): Row[] {
  const results = Array.isArray(answer) ? answer : [answer];
  return (results.find((r) => r.command === 'INSERT')?.rows ?? []) as Row[];
}

async function writeOnce(config: WriteProbeConfig): Promise<{ server: string }> {
  const c = client(config, {
    host: config.host,
    port: config.port,
    user: config.role,
    password: config.password,
    database: config.database,
  });
  let syncCancelled = false;
  c.on('notice', (notice: { message?: string }) => {
    if (SYNC_WAIT_CANCELLED.test(notice.message ?? '')) syncCancelled = true;
  });
  const connectMs = config.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  const writeMs = config.writeTimeoutMs ?? DEFAULT_WRITE_TIMEOUT_MS;
  try {
    // pg's own connection timeout, and this one in case TLS or authentication hangs past it.
    await within(c.connect(), connectMs + 250, 'no connection');
    let abandoned = false;
    const upsert = async (): Promise<Row[]> => {
      try {
        return rowsOf(await c.query(UPSERT));
      } catch (error) {
        if ((error as { code?: unknown }).code !== '42P01') throw error;
        await c.query(CREATE_TABLE);
        // Its commit waited past the bound and was cancelled: no second statement to wait on after we leave.
        if (abandoned) throw error;
        return rowsOf(await c.query(UPSERT));
      }
    };
    let rows: Row[];
    const write = upsert();
    write.catch(() => {});
    try {
      rows = await within(write, writeMs, 'the commit was not acknowledged');
    } catch (error) {
      abandoned = true;
      // PostgreSQL arms no statement timeout over a commit's wait for standbys: cancel it, or the session
      // would wait on after we leave, holding one of the probe role's few connections. Then leave once
      // the statement has answered (≤ 1 s): a session dropped while a cancel is in flight is what trips
      // PgBouncer 1.18 (see cancelRequest).
      await cancelRequest(config.host, config.port, c);
      await within(write, 1000, 'no answer to the cancel').catch(() => {});
      throw error;
    }
    if (syncCancelled)
      throw new Error(
        `the commit was not confirmed by the synchronous standbys within ${writeMs} ms (committed on the primary only)`,
      );
    const row = rows[0];
    return { server: row?.addr == null ? 'unknown' : `${row.addr}:${String(row.port)}` };
  } finally {
    drop(c);
  }
}

/**
 * Makes the probe role (password kept in step) and its database on whichever member is the primary.
 * Refuses to touch a role of that name that owns another database (a shared instance's).
 */
export async function setUpProbe(config: WriteProbeConfig): Promise<void> {
  const setup = config.setup;
  if (setup === null) throw new Error('no way to make the probe role');
  if (!IDENT.test(config.role) || !IDENT.test(config.database))
    throw new Error(`invalid probe role or database '${config.role}', '${config.database}'`);
  const problems: string[] = [];
  for (const member of setup.members) {
    const c = client(config, {
      host: member.host,
      port: member.port,
      user: setup.superuser,
      password: setup.superuserPassword,
      database: 'postgres',
    });
    try {
      await within(c.connect(), (config.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS) + 250, 'no connection');
      const work = async (): Promise<boolean> => {
        const { rows } = await c.query<{ standby: boolean }>('SELECT pg_is_in_recovery() AS standby');
        if (rows[0]?.standby !== false) return false;
        const owned = await c.query<{ datname: string }>(
          'SELECT d.datname FROM pg_database d JOIN pg_roles r ON r.oid = d.datdba WHERE r.rolname = $1 AND d.datname <> $2',
          [config.role, config.database],
        );
        if (owned.rows.length > 0)
          throw new Error(`role '${config.role}' exists and owns database '${owned.rows[0]?.datname}': left alone`);
        const password = `'${config.password.replace(/'/g, "''")}'`;
        const attributes = `LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS CONNECTION LIMIT ${PROBE_CONNECTION_LIMIT} PASSWORD ${password}`;
        const role = await c.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [config.role]);
        await c.query(`${(role.rowCount ?? 0) > 0 ? 'ALTER' : 'CREATE'} ROLE ${config.role} WITH ${attributes}`);
        const db = await c.query('SELECT 1 FROM pg_database WHERE datname = $1', [config.database]);
        if ((db.rowCount ?? 0) === 0) {
          await c.query(`CREATE DATABASE ${config.database} OWNER ${config.role}`);
          await c.query(`REVOKE ALL ON DATABASE ${config.database} FROM PUBLIC`);
          await c.query(`GRANT CONNECT ON DATABASE ${config.database} TO ${config.role}`);
        }
        return true;
      };
      if (await within(work(), 10_000, 'setting up the probe role took too long')) return;
      problems.push(`${member.host}:${member.port} is a standby`);
    } catch (error) {
      problems.push(`${member.host}:${member.port}: ${describe(error)}`);
    } finally {
      drop(c);
    }
  }
  throw new Error(`no primary to make the probe role on (${problems.join('; ') || 'no members'})`);
}

/**
 * One write through the endpoint, within the configured bounds; on a refused login (role or database
 * not made yet) makes them on the primary and writes once more. Never throws.
 *
 * @example
 * const result = await probeWrite(config);
 * // { ok: false, cause: 'no connection within 2750 ms' }
 */
export async function probeWrite(config: WriteProbeConfig): Promise<WriteProbeResult> {
  const started = performance.now();
  const elapsed = (): number => Math.round(performance.now() - started);
  try {
    return { ok: true, ...(await writeOnce(config)), ms: elapsed() };
  } catch (error) {
    if (!needsSetUp(error) || config.setup === null) return { ok: false, cause: describe(error) };
    try {
      await setUpProbe(config);
    } catch (setupError) {
      return { ok: false, cause: `${describe(error)}; and ${describe(setupError)}` };
    }
    try {
      return { ok: true, ...(await writeOnce(config)), ms: elapsed() };
    } catch (again) {
      return { ok: false, cause: describe(again) };
    }
  }
}

/** The promise's one line: what an operator reads in the instance's error and `hox db status`. */
export function describeProbe(config: Pick<WriteProbeConfig, 'host' | 'port'>, result: WriteProbeResult): string {
  const endpoint = `${config.host}:${config.port}`;
  return result.ok
    ? `a write committed through ${endpoint} on ${result.server} in ${result.ms} ms`
    : `no primary accepts writes through ${endpoint}: ${result.cause}`;
}
