/**
 * The router's read-write endpoint: a real PgBouncer (Debian's `pgbouncer`) in transaction pooling mode,
 * run as a child of the router, in the router's partition.
 *
 * - Its files (ini, auth file, TLS key and certificate, pidfile, unix socket) live in `pgbouncer/`,
 *   0600/0700. Its admin console is reached by the router only: over the unix socket (mode 0700) as the
 *   admin user, whose password derives from the router's peer token.
 * - Following the primary: the databases point at it; a change rewrites the ini and RELOADs (server
 *   connections to the old host close as they are released: between transactions).
 * - PAUSE: new transactions wait (up to query_wait_timeout); PgBouncer answers once every running
 *   transaction has ended and its server connection is closed. RESUME lets the waiting ones go, on the
 *   server the ini then names. A client connection itself is never cut by either: a planned
 *   switchover is invisible to a client between transactions.
 * - Supervision: restarted when it dies (a second later), stopped with the router.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { chmod, chown, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import pg from 'pg';
import { renderAuthFile, renderPgBouncerIni, type PgBouncerSettings } from './pgbouncer-config.js';

export const PGBOUNCER_BINARY = '/usr/sbin/pgbouncer';
/** Unix socket paths are limited to 107 bytes (`<dir>/.s.PGSQL.<port>`). */
const MAX_SOCKET_DIR_LENGTH = 90;
const RESTART_DELAY_MS = 1000;
const ADMIN_TIMEOUT_MS = 5000;
const STOP_TIMEOUT_MS = 5000;

export type PauseOutcome = { paused: true; waitedMs: number } | { paused: false; waitedMs: number; reason: string };

export interface PgBouncerOptions {
  partitionPath: string;
  binary?: string;
  adminUser: string;
  adminPassword: () => string;
  log: (line: string) => void;
  /** Run PgBouncer as this user (it refuses root): tests run as root; the router is a partition user already. */
  runAs?: { uid: number; gid: number };
}

/** Settings the caller decides; the paths are this module's. */
export type PgBouncerWanted = Omit<PgBouncerSettings, 'dir' | 'socketDir' | 'adminUser' | 'tls'> & {
  tls: { clientSslmode: 'require' | 'allow'; keyPem: string; certificatePem: string; caPem: string } | null;
};

export class PgBouncer {
  readonly dir: string;
  readonly socketDir: string | null;
  private child: ChildProcess | undefined;
  private stopping = false;
  private restartTimer: NodeJS.Timeout | undefined;
  private written = { ini: '', auth: '', tls: '' };
  private listenHost = '';
  private listenPort = 0;
  /** Whether PgBouncer is paused (as far as this side asked): a restarted PgBouncer is paused again. */
  private pausedWanted = false;
  private exitWaiters: (() => void)[] = [];

  constructor(private readonly options: PgBouncerOptions) {
    this.dir = join(options.partitionPath, 'pgbouncer');
    this.socketDir = this.dir.length <= MAX_SOCKET_DIR_LENGTH ? this.dir : null;
  }

  isPaused(): boolean {
    return this.pausedWanted;
  }

  /** Writes the files; RELOADs a running PgBouncer when they changed. Returns whether anything changed. */
  async configure(wanted: PgBouncerWanted): Promise<boolean> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    await chmod(this.dir, 0o700);
    const runAs = this.options.runAs;
    if (runAs !== undefined) await chown(this.dir, runAs.uid, runAs.gid);
    const tlsFiles =
      wanted.tls === null
        ? null
        : {
            clientSslmode: wanted.tls.clientSslmode,
            keyFile: join(this.dir, 'server.key'),
            certFile: join(this.dir, 'server.crt'),
            caFile: join(this.dir, 'ca.crt'),
          };
    const settings: PgBouncerSettings = {
      ...wanted,
      dir: this.dir,
      socketDir: this.socketDir,
      adminUser: this.options.adminUser,
      tls: tlsFiles,
    };
    const ini = renderPgBouncerIni(settings);
    const auth = renderAuthFile([
      ...wanted.users.filter((u) => u.name !== this.options.adminUser),
      { name: this.options.adminUser, password: this.options.adminPassword() },
    ]);
    const tls = wanted.tls === null ? '' : `${wanted.tls.keyPem}${wanted.tls.certificatePem}${wanted.tls.caPem}`;
    if (ini === this.written.ini && auth === this.written.auth && tls === this.written.tls) return false;
    if (wanted.tls !== null && tls !== this.written.tls) {
      await writeSecret(join(this.dir, 'server.key'), wanted.tls.keyPem, runAs);
      await writeSecret(join(this.dir, 'server.crt'), wanted.tls.certificatePem, runAs);
      await writeSecret(join(this.dir, 'ca.crt'), wanted.tls.caPem, runAs);
    }
    await writeSecret(join(this.dir, 'users.txt'), auth, runAs);
    await writeSecret(join(this.dir, 'pgbouncer.ini'), ini, runAs);
    const restartNeeded =
      this.child !== undefined && (wanted.listenHost !== this.listenHost || wanted.listenPort !== this.listenPort);
    this.written = { ini, auth, tls };
    this.listenHost = wanted.listenHost;
    this.listenPort = wanted.listenPort;
    if (restartNeeded) {
      this.options.log('pgbouncer: listen address changed: restarting it');
      this.child?.kill('SIGTERM');
    } else if (this.child !== undefined) await this.admin('RELOAD');
    return true;
  }

  /** Starts PgBouncer (configure() first) and waits until its admin console answers. */
  async start(): Promise<void> {
    this.stopping = false;
    await this.spawn();
    await this.waitReady(10_000);
  }

  async stop(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.restartTimer);
    const child = this.child;
    if (child === undefined) return;
    const exited = new Promise<void>((resolve) => this.exitWaiters.push(resolve));
    // SIGTERM: immediate shutdown (SIGINT would wait for every client to leave).
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
    await exited;
    clearTimeout(timer);
  }

  /**
   * PAUSE, answered once every running transaction has ended, or after `boundMs` (the pause goes on:
   * the transactions still running are cut when their server goes away).
   */
  async pause(boundMs: number): Promise<PauseOutcome> {
    const t0 = performance.now();
    this.pausedWanted = true;
    const waited = (): number => Math.round(performance.now() - t0);
    try {
      await this.admin('PAUSE', boundMs);
      return { paused: true, waitedMs: waited() };
    } catch (error) {
      const message = (error as Error).message;
      if (/already (paused|suspended)/i.test(message)) return { paused: true, waitedMs: waited() };
      return { paused: false, waitedMs: waited(), reason: message };
    }
  }

  async resume(): Promise<void> {
    this.pausedWanted = false;
    await this.admin('RESUME').catch((error: unknown) => {
      if (!/not paused/i.test((error as Error).message)) throw error;
    });
  }

  /** One admin console command on its own connection, bounded. */
  async admin(command: string, timeoutMs = ADMIN_TIMEOUT_MS): Promise<pg.QueryResult> {
    const client = new pg.Client({
      host: this.socketDir ?? this.listenHost,
      port: this.listenPort,
      user: this.options.adminUser,
      password: this.options.adminPassword(),
      database: 'pgbouncer',
      connectionTimeoutMillis: Math.min(timeoutMs, ADMIN_TIMEOUT_MS),
      // Over TCP (socket path too long) the admin console is reached like any client: TLS when required.
      ...(this.socketDir === null && this.written.tls !== '' ? { ssl: { rejectUnauthorized: false } } : {}),
    });
    client.on('error', () => {});
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        (async () => {
          await client.connect();
          return client.query(command);
        })(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new Error(`pgbouncer ${command}: no answer within ${timeoutMs} ms`)),
            timeoutMs,
          );
        }),
      ]);
    } finally {
      clearTimeout(timer);
      void client.end().catch(() => {});
    }
  }

  private async spawn(): Promise<void> {
    const pidFile = join(this.dir, 'pgbouncer.pid');
    // A pidfile left by a killed PgBouncer makes the next one refuse to start; a PgBouncer left running
    // by a router that was killed (SIGKILL reaches no child) still holds the port: stopped first.
    if (existsSync(pidFile)) {
      const pid = Number((await readFile(pidFile, 'utf8').catch(() => '')).trim());
      if (pid > 0 && processAlive(pid) && ownPgBouncer(pid, join(this.dir, 'pgbouncer.ini'))) {
        this.options.log(`pgbouncer: stopping the one left running (pid ${pid})`);
        process.kill(pid, 'SIGTERM');
        for (let i = 0; i < 50 && processAlive(pid); i++) await new Promise((r) => setTimeout(r, 100));
        if (processAlive(pid)) process.kill(pid, 'SIGKILL');
      }
      if (!(pid > 0 && processAlive(pid))) await rm(pidFile, { force: true });
    }
    const child = spawn(this.options.binary ?? PGBOUNCER_BINARY, [join(this.dir, 'pgbouncer.ini')], {
      cwd: this.dir,
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(this.options.runAs ?? {}),
    });
    this.child = child;
    const relay = (chunk: Buffer): void => {
      for (const line of chunk.toString('utf8').split('\n'))
        if (line.trim() !== '' && !/ LOG stats: /.test(line)) this.options.log(`pgbouncer: ${line.trim()}`);
    };
    child.stdout?.on('data', relay);
    child.stderr?.on('data', relay);
    child.on('error', (error) => this.options.log(`pgbouncer: cannot run ${PGBOUNCER_BINARY}: ${error.message}`));
    child.on('exit', (code, signal) => {
      if (this.child === child) this.child = undefined;
      for (const w of this.exitWaiters.splice(0)) w();
      if (this.stopping) return;
      this.options.log(`pgbouncer exited (${signal ?? `code ${code}`}): restarting it in ${RESTART_DELAY_MS} ms`);
      this.restartTimer = setTimeout(() => void this.restart(), RESTART_DELAY_MS);
    });
  }

  private async restart(): Promise<void> {
    if (this.stopping) return;
    try {
      await this.spawn();
      await this.waitReady(10_000);
      // A fresh PgBouncer is not paused: pause it again if this side wants it.
      if (this.pausedWanted) await this.admin('PAUSE', 1000).catch(() => {});
      this.options.log('pgbouncer restarted');
    } catch (error) {
      this.options.log(`pgbouncer restart: ${(error as Error).message}`);
    }
  }

  private async waitReady(timeoutMs: number): Promise<void> {
    const end = performance.now() + timeoutMs;
    let last = '';
    while (performance.now() < end) {
      if (this.child === undefined) throw new Error(`pgbouncer exited at start ${last}`);
      try {
        await this.admin('SHOW VERSION', 1000);
        return;
      } catch (error) {
        last = (error as Error).message;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`pgbouncer did not answer within ${timeoutMs} ms: ${last}`);
  }
}

async function writeSecret(path: string, content: string, owner?: { uid: number; gid: number }): Promise<void> {
  const tmp = `${path}.tmp`;
  await writeFile(tmp, content, { mode: 0o600 });
  await chmod(tmp, 0o600);
  if (owner !== undefined) await chown(tmp, owner.uid, owner.gid);
  await rename(tmp, path);
}

/** Whether `pid` runs PgBouncer on this ini file (a pid reused by another process is left alone). */
function ownPgBouncer(pid: number, ini: string): boolean {
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    return argv.some((a) => a.endsWith('pgbouncer')) && argv.includes(ini);
  } catch {
    return false;
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
