/**
 * A real, throwaway PostgreSQL server for tests and benchmarks.
 *
 * {@link startPostgres} runs `initdb` into a fresh temporary directory, starts
 * `postgres` on 127.0.0.1 (a free port unless one is given) with durability
 * turned off for speed, and waits until it accepts connections. The server
 * trusts every local connection for the superuser `hox`. {@link createDatabase}
 * makes one fresh database per test file or case; `stop()` shuts the server
 * down fast and deletes the directory.
 *
 * The binaries come from the Debian package `postgresql-15`
 * (`/usr/lib/postgresql/15/bin`), installed by `scripts/install-system-deps.sh`.
 * PostgreSQL refuses to run as root, so under root the server runs as the
 * `postgres` system user, which then owns the temporary directory.
 *
 * Nothing is registered globally: a caller that never calls `stop()` leaves the
 * server running until its own process tree is torn down.
 */
import { freePort } from './free-port.js';
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants as fsConstants, readdirSync, readFileSync } from 'node:fs';
import { chown, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';

/** A running throwaway PostgreSQL server. */
export interface PostgresServer {
  /** `postgres://hox@127.0.0.1:PORT/postgres`: the superuser `hox` on the maintenance database. */
  connectionString: string;
  /** The TCP port the server listens on (127.0.0.1 only). */
  port: number;
  /** The temporary directory holding the cluster (`pgdata/`) and the unix socket; removed by `stop()`. */
  dataDir: string;
  /** Fast shutdown (SIGINT to the postmaster, bounded wait, then SIGKILL), then removes `dataDir`. Idempotent. */
  stop(): Promise<void>;
}

/** Options of {@link startPostgres}. */
export interface StartPostgresOptions {
  /** TCP port to listen on; by default a free one is picked. */
  port?: number;
  /** Receives every output line of `initdb` and of the server. */
  log?: (line: string) => void;
}

/** Where Debian installs versioned PostgreSQL binaries (`<root>/<version>/bin`). */
const DEBIAN_PG_ROOT = '/usr/lib/postgresql';
/** The database superuser created by `initdb`. */
const SUPERUSER = 'hox';
/** The system user the server runs as when this process is root. */
const SYSTEM_USER = 'postgres';
const MISSING_BINARIES_MESSAGE =
  'PostgreSQL server binaries (initdb, postgres) not found in /usr/lib/postgresql/<version>/bin or on PATH; ' +
  'install the Debian package postgresql-15, e.g. by running scripts/install-system-deps.sh';
const READY_TIMEOUT_MS = 30_000;
const INITDB_TIMEOUT_MS = 120_000;
const STOP_TIMEOUT_MS = 20_000;
const KILL_TIMEOUT_MS = 5_000;
const LOG_TAIL_LINES = 40;
/** Attempts to start on a picked port, in case another process grabs it first. */
const PORT_ATTEMPTS = 3;
/** Unix socket paths are limited to 107 bytes; beyond this the socket is disabled. */
const MAX_SOCKET_DIR_LENGTH = 80;
/** Server settings tuned for tests: no durability, many connections. */
const SERVER_SETTINGS: readonly (readonly [string, string])[] = [
  ['listen_addresses', '127.0.0.1'],
  ['fsync', 'off'],
  ['synchronous_commit', 'off'],
  ['full_page_writes', 'off'],
  ['max_connections', '200'],
];

function isExecutable(file: string): boolean {
  try {
    accessSync(file, fsConstants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function hasServerBinaries(dir: string): boolean {
  return isExecutable(path.join(dir, 'initdb')) && isExecutable(path.join(dir, 'postgres'));
}

/**
 * Finds the directory holding the PostgreSQL server binaries (`initdb`,
 * `postgres`): the newest `/usr/lib/postgresql/<version>/bin` first, then the
 * directories of `PATH`.
 *
 * @returns e.g. `/usr/lib/postgresql/15/bin`, or `undefined` when none is installed.
 */
export function findPostgresBinDir(): string | undefined {
  let versions: string[] = [];
  try {
    versions = readdirSync(DEBIAN_PG_ROOT).filter((name) => /^\d+(\.\d+)?$/.test(name));
  } catch {
    // No Debian-style installation.
  }
  versions.sort((a, b) => Number.parseFloat(b) - Number.parseFloat(a));
  for (const version of versions) {
    const dir = path.join(DEBIAN_PG_ROOT, version, 'bin');
    if (hasServerBinaries(dir)) return dir;
  }
  for (const dir of (process.env['PATH'] ?? '').split(path.delimiter)) {
    if (dir !== '' && hasServerBinaries(dir)) return dir;
  }
  return undefined;
}

interface RunAs {
  uid: number;
  gid: number;
}

/** The uid/gid of the `postgres` system user, read from the user database. */
function systemUser(): RunAs {
  let passwd = '';
  try {
    passwd = readFileSync('/etc/passwd', 'utf8');
  } catch {
    // Fall through to the error below.
  }
  for (const line of passwd.split('\n')) {
    const fields = line.split(':');
    if (fields[0] === SYSTEM_USER && fields.length >= 4) {
      const uid = Number(fields[2]);
      const gid = Number(fields[3]);
      if (Number.isInteger(uid) && Number.isInteger(gid)) return { uid, gid };
    }
  }
  throw new Error(
    `PostgreSQL refuses to run as root and there is no "${SYSTEM_USER}" system user to run it as; ` +
      'install the Debian package postgresql-15 (scripts/install-system-deps.sh creates the user) or run as a non-root user',
  );
}

/** Finds a free TCP port on 127.0.0.1 by binding port 0 and closing the server. */

/** The environment for the PostgreSQL binaries: ours without `PG*` variables, which would override the arguments. */
function childEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!key.startsWith('PG')) env[key] = value;
  }
  env['LC_ALL'] = 'C';
  env['TZ'] = env['TZ'] ?? 'UTC';
  return env;
}

/** Collects a child's output into lines: forwards each to `log` and keeps the last few for error messages. */
class OutputLog {
  private readonly tail: string[] = [];
  private readonly partial = new Map<NodeJS.ReadableStream, string>();

  constructor(private readonly log: ((line: string) => void) | undefined) {}

  attach(child: ChildProcess, prefix: string): void {
    for (const stream of [child.stdout, child.stderr]) {
      if (!stream) continue;
      stream.setEncoding('utf8');
      stream.on('data', (chunk: string) => {
        const text = (this.partial.get(stream) ?? '') + chunk;
        const lines = text.split('\n');
        this.partial.set(stream, lines.pop() ?? '');
        for (const line of lines) this.push(prefix + line);
      });
      stream.on('end', () => {
        const rest = this.partial.get(stream);
        if (rest) this.push(prefix + rest);
        this.partial.delete(stream);
      });
    }
  }

  private push(line: string): void {
    this.tail.push(line);
    if (this.tail.length > LOG_TAIL_LINES) this.tail.shift();
    try {
      this.log?.(line);
    } catch {
      // A failing logger must not break the server.
    }
  }

  /** The last lines of output, for an error message. */
  text(): string {
    return this.tail.length === 0 ? '(no output)' : this.tail.join('\n');
  }
}

/** A spawned PostgreSQL binary and the promise of its end. */
interface Proc {
  child: ChildProcess;
  /** Resolves with the exit code, the signal name, or the spawn error message; never rejects. */
  done: Promise<number | string>;
}

function spawnAs(
  command: string,
  args: string[],
  cwd: string,
  runAs: RunAs | undefined,
  output: OutputLog,
  prefix: string,
): Proc {
  const child = spawn(command, args, {
    cwd,
    env: childEnv(),
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(runAs ? { uid: runAs.uid, gid: runAs.gid } : {}),
  });
  output.attach(child, prefix);
  const done = new Promise<number | string>((resolve) => {
    child.once('error', (error) => resolve(`spawn error: ${error.message}`));
    child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown'));
  });
  return { child, done };
}

function hasExited(proc: Proc): boolean {
  return proc.child.exitCode !== null || proc.child.signalCode !== null;
}

/** Waits for the process to end for at most `ms`; returns whether it did. */
async function waitExit(proc: Proc, ms: number): Promise<boolean> {
  const controller = new AbortController();
  try {
    return await Promise.race([proc.done.then(() => true), sleep(ms, false, { signal: controller.signal })]);
  } finally {
    controller.abort();
  }
}

/** Fast shutdown: SIGINT, then SIGKILL if the postmaster is still alive after the bounded wait. */
async function killServer(proc: Proc): Promise<void> {
  if (proc.child.pid === undefined || hasExited(proc)) return;
  proc.child.kill('SIGINT');
  if (await waitExit(proc, STOP_TIMEOUT_MS)) return;
  proc.child.kill('SIGKILL');
  await waitExit(proc, KILL_TIMEOUT_MS);
}

async function runInitdb(
  binDir: string,
  tempDir: string,
  pgData: string,
  runAs: RunAs | undefined,
  output: OutputLog,
): Promise<void> {
  const args = ['-D', pgData, '-A', 'trust', '-U', SUPERUSER, '--no-sync', '-E', 'UTF8', '--locale=C'];
  const proc = spawnAs(path.join(binDir, 'initdb'), args, tempDir, runAs, output, '[initdb] ');
  if (!(await waitExit(proc, INITDB_TIMEOUT_MS))) {
    proc.child.kill('SIGKILL');
    await waitExit(proc, KILL_TIMEOUT_MS);
    throw new Error(`initdb did not finish within ${INITDB_TIMEOUT_MS} ms`);
  }
  const result = await proc.done;
  if (result !== 0) throw new Error(`initdb failed (${result})`);
}

/**
 * Polls until the server accepts a connection; fails early when the process
 * exits. Checks the data directory so that another server already on the port
 * is never mistaken for ours.
 */
async function waitReady(proc: Proc, connectionString: string, pgData: string): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let lastError: unknown;
  while (Date.now() < deadline) {
    if (hasExited(proc) || proc.child.pid === undefined) {
      throw new Error(`postgres exited during startup (${await proc.done})`);
    }
    const client = new pg.Client({ connectionString, connectionTimeoutMillis: 2_000 });
    client.on('error', () => {});
    try {
      await client.connect();
      const { rows } = await client.query<{ dir: string }>(`select current_setting('data_directory') as dir`);
      if (rows[0]?.dir === pgData) return;
      lastError = new Error(`port ${new URL(connectionString).port} is served by another server (${rows[0]?.dir})`);
    } catch (error) {
      lastError = error;
    } finally {
      await client.end().catch(() => {});
    }
    await sleep(100);
  }
  const reason = lastError instanceof Error ? `: ${lastError.message}` : '';
  throw new Error(`postgres did not accept connections within ${READY_TIMEOUT_MS} ms${reason}`);
}

function connectionStringFor(port: number, database: string): string {
  return `postgres://${SUPERUSER}@127.0.0.1:${port}/${encodeURIComponent(database)}`;
}

/**
 * Starts a fresh PostgreSQL server in a new temporary directory and waits
 * until it accepts connections (at most 30 s).
 *
 * The server listens on 127.0.0.1 only, keeps its unix socket inside the
 * temporary directory, trusts the superuser `hox` and runs with `fsync`,
 * `synchronous_commit` and `full_page_writes` off and `max_connections=200`.
 * Under root it runs as the `postgres` system user.
 *
 * On failure everything started is torn down (process killed, directory
 * removed) and the error message ends with the tail of the server's output.
 *
 * @throws Error naming the package `postgresql-15` and `scripts/install-system-deps.sh` when the binaries are missing.
 */
export async function startPostgres(options: StartPostgresOptions = {}): Promise<PostgresServer> {
  const binDir = findPostgresBinDir();
  if (binDir === undefined) throw new Error(MISSING_BINARIES_MESSAGE);
  const runAs = process.getuid?.() === 0 ? systemUser() : undefined;

  const tempDir = await mkdtemp(path.join(os.tmpdir(), 'hox-pg-'));
  const pgData = path.join(tempDir, 'pgdata');
  const output = new OutputLog(options.log);
  let child: Proc | undefined;
  try {
    if (runAs) await chown(tempDir, runAs.uid, runAs.gid);
    await runInitdb(binDir, tempDir, pgData, runAs, output);

    const socketDir = tempDir.length <= MAX_SOCKET_DIR_LENGTH ? tempDir : '';
    const attempts = options.port === undefined ? PORT_ATTEMPTS : 1;
    for (let attempt = 1; ; attempt += 1) {
      const port = options.port ?? (await freePort());
      const args = ['-D', pgData, '-p', String(port), '-k', socketDir];
      for (const [name, value] of SERVER_SETTINGS) args.push('-c', `${name}=${value}`);
      const server = spawnAs(path.join(binDir, 'postgres'), args, tempDir, runAs, output, '[postgres] ');
      child = server;
      const connectionString = connectionStringFor(port, 'postgres');
      try {
        await waitReady(server, connectionString, pgData);
      } catch (error) {
        await killServer(server);
        const portTaken = /could not bind|address already in use/i.test(output.text());
        if (attempt < attempts && portTaken) continue;
        throw error;
      }
      let stopping: Promise<void> | undefined;
      return {
        connectionString,
        port,
        dataDir: tempDir,
        stop(): Promise<void> {
          stopping ??= (async () => {
            await killServer(server);
            await rm(tempDir, { recursive: true, force: true });
          })();
          return stopping;
        },
      };
    }
  } catch (error) {
    if (child) await killServer(child).catch(() => {});
    await rm(tempDir, { recursive: true, force: true }).catch(() => {});
    const message = error instanceof Error ? error.message : String(error);
    throw new Error(
      `could not start PostgreSQL from ${binDir}: ${message}\n--- server log tail ---\n${output.text()}`,
      {
        cause: error,
      },
    );
  }
}

/**
 * Creates a fresh, empty database on `server` (from `template1`, owned by `hox`).
 *
 * @param name database name; any string PostgreSQL accepts (it is quoted), at most 63 bytes.
 * @returns the connection string of the new database.
 */
export async function createDatabase(
  server: Pick<PostgresServer, 'connectionString' | 'port'>,
  name: string,
): Promise<string> {
  if (name === '' || name.includes('\0') || Buffer.byteLength(name) > 63) {
    throw new Error(`invalid database name ${JSON.stringify(name)}: must be 1–63 bytes without NUL`);
  }
  const client = new pg.Client({ connectionString: server.connectionString });
  client.on('error', () => {});
  await client.connect();
  try {
    await client.query(`CREATE DATABASE "${name.replaceAll('"', '""')}"`);
  } finally {
    await client.end().catch(() => {});
  }
  return connectionStringFor(server.port, name);
}
