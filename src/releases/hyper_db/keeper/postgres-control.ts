/**
 * The keeper's hands on its PostgreSQL: initdb, clone, start, stop, promote,
 * rewind, and a few queries. Everything runs as the partition's user.
 *
 * Per-member settings live OUTSIDE the data directory (`pgconf/`): pg_rewind
 * and pg_basebackup copy the source's data directory, config files included,
 * so nothing that differs between members may live there. The server starts
 * with `-c config_file=pgconf/postgresql.conf`, which includes
 * `pgconf/dynamic.conf` (primary_conninfo, synchronous_standby_names) that
 * the keeper rewrites and reloads on role changes, and `pgconf/tls.conf`
 * (the server certificate in use, see server-certificate.ts).
 *
 * TLS: remote logins go through `hostssl` lines; connections this member
 * opens to another (replication, pg_rewind, pg_basebackup) verify the
 * other's certificate against the cluster CA (`sslmode=verify-full`).
 */
import { execFile, spawn } from 'node:child_process';
import {
  existsSync,
  lstatSync,
  openSync,
  closeSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  realpathSync,
  statSync,
  statfsSync,
} from 'node:fs';
import { chmod, cp, mkdir, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import pg from 'pg';
import { callJson, tlsRequest } from '../cluster-tls.js';
import {
  allowedSettings,
  REPLICATION_USER,
  SUPERUSER,
  type KeeperConfig,
  type MemberAddress,
  type RestoreSpec,
} from '../protocol.js';

const exec = promisify(execFile);

export interface PgObservation {
  running: boolean;
  inRecovery: boolean | null;
  timeline: number | null;
  lsn: string | null;
  /** Standby: is the WAL receiver streaming, and from which host:port. */
  streaming: boolean;
  upstream: string | null;
  /** Settings changed in the configuration that only a restart applies. */
  pendingRestart: boolean;
  /**
   * On a primary, its standbys. `lagBytes` is how far a standby's REPLAY is behind (what a switchover to it
   * would wait for, and what its readers miss); what it has received and flushed is never further behind.
   */
  replicas: { name: string; state: string; syncState: string; lagBytes: number }[];
}

/** What `PostgresControl.stats` reads (null: not known, e.g. never archived). */
export interface PgStats {
  commits: number | null;
  rollbacks: number | null;
  connections: number | null;
  maxConnections: number | null;
  walBytes: number | null;
  walFiles: number | null;
  archived: number | null;
  archiveFailed: number | null;
  lastArchivedS: number | null;
  lastArchiveFailedS: number | null;
  databaseBytes: number | null;
  /** wal_keep_size: how far behind a standby may fall and still stream (no replication slots here). */
  walKeepBytes: number | null;
}

/** What is known of a PostgreSQL that does not run. */
export const NOT_RUNNING: PgObservation = {
  running: false,
  inRecovery: null,
  timeline: null,
  lsn: null,
  streaming: false,
  upstream: null,
  pendingRestart: false,
  replicas: [],
};

export class PostgresControl {
  readonly dataDir: string;
  readonly confDir: string;
  readonly runDir: string;
  readonly logFile: string;
  /** The cluster CA, for verifying the members this one connects to. */
  readonly caFile: string;

  constructor(private config: KeeperConfig) {
    this.dataDir = join(config.partitionPath, 'pgdata');
    this.confDir = join(config.partitionPath, 'pgconf');
    this.caFile = join(this.confDir, 'tls', 'ca.crt');
    this.runDir = join(config.partitionPath, 'run');
    this.logFile = join(config.partitionPath, 'var', 'postgresql.log');
  }

  setConfig(config: KeeperConfig): void {
    this.config = config;
  }

  private bin(name: string): string {
    return join(this.config.binDir, name);
  }

  hasData(): boolean {
    return existsSync(join(this.dataDir, 'PG_VERSION'));
  }

  /** The newest timeline this data directory has a history file for (1 when none). */
  historyTimeline(): number {
    try {
      return readdirSync(join(this.dataDir, 'pg_wal'))
        .filter((f) => /^[0-9A-F]{8}\.history$/.test(f))
        .reduce((max, f) => Math.max(max, parseInt(f.slice(0, 8), 16)), 1);
    } catch {
      return 1;
    }
  }

  /**
   * WAL files PostgreSQL has yet to archive (`.ready` in pg_wal/archive_status). A server archives them
   * all, one archive_command at a time, before it finishes a shutdown.
   */
  archiveBacklog(): number {
    try {
      return readdirSync(join(this.dataDir, 'pg_wal', 'archive_status')).filter((f) => f.endsWith('.ready')).length;
    } catch {
      return 0;
    }
  }

  /** The data directory was last started as a standby. */
  wasStandby(): boolean {
    return existsSync(join(this.dataDir, 'standby.signal'));
  }

  /** The postmaster's pid when one runs on this data directory. */
  postmasterPid(): number | null {
    try {
      const pid = Number(readFileSync(join(this.dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
      if (!Number.isInteger(pid) || pid <= 0) return null;
      process.kill(pid, 0);
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      if (!cmdline.includes('postgres')) return null;
      // A stale postmaster.pid whose pid now belongs to another cluster's postgres (pids wrap): a postmaster
      // works in its own data directory.
      return readlinkSync(`/proc/${pid}/cwd`) === realpathSync(this.dataDir) ? pid : null;
    } catch {
      return null;
    }
  }

  async prepareDirs(): Promise<void> {
    for (const dir of [this.confDir, this.runDir, join(this.config.partitionPath, 'var')]) {
      await mkdir(dir, { recursive: true, mode: 0o700 });
      await chmod(dir, 0o700);
    }
  }

  /** Static settings and pg_hba; the dynamic part is written by {@link writeDynamic}. */
  async writeStaticConfig(): Promise<void> {
    const c = this.config;
    const settings: Record<string, string | number | boolean> = {
      data_directory: this.dataDir,
      hba_file: join(this.confDir, 'pg_hba.conf'),
      ident_file: join(this.confDir, 'pg_ident.conf'),
      listen_addresses: c.host,
      port: c.pgPort,
      unix_socket_directories: this.runDir,
      unix_socket_permissions: '0700',
      wal_level: 'replica',
      wal_log_hints: true,
      max_wal_senders: 16,
      max_replication_slots: 16,
      wal_keep_size: '1GB',
      hot_standby: true,
      hot_standby_feedback: true,
      synchronous_commit: 'on',
      recovery_target_timeline: 'latest',
      wal_retrieve_retry_interval: '200ms',
      wal_receiver_status_interval: '1s',
      wal_sender_timeout: '5s',
      wal_receiver_timeout: '5s',
      password_encryption: 'scram-sha-256',
      max_connections: 200,
      shared_buffers: '128MB',
      logging_collector: false,
      log_line_prefix: '%m [%p] ',
      // The profile refuses others; filtered again here, so no parameter can reach archive_command & co.
      ...allowedSettings(c.settings).kept,
    };
    if (c.archive !== null) {
      await writeAtomic(
        join(this.confDir, 'archive.json'),
        JSON.stringify({
          url: c.archive.url,
          token: c.archive.token,
          ...(c.tls === null ? {} : { ca: c.tls.caCertificate, identity_dir: join(this.confDir, 'tls') }),
        }),
      );
      settings.archive_mode = 'on';
      settings.archive_command = shellCommand([
        ...walArchiveCommand(),
        'push',
        join(this.confDir, 'archive.json'),
        '%p',
        '%f',
      ]);
      settings.archive_timeout = c.archive.timeoutS;
    }
    const lines = Object.entries(settings).map(([k, v]) => `${k} = ${quoteSetting(v)}`);
    // tls.conf appears (ssl = on and the certificate files) once this member has a certificate.
    if (c.tls !== null) lines.push(`include_if_exists = ${quoteSetting(join(this.confDir, 'tls.conf'))}`);
    lines.push(`include_if_exists = ${quoteSetting(join(this.confDir, 'dynamic.conf'))}`);
    await writeAtomic(join(this.confDir, 'postgresql.conf'), `${lines.join('\n')}\n`);
    if (c.tls !== null) {
      await mkdir(join(this.confDir, 'tls'), { recursive: true, mode: 0o700 });
      await writeAtomic(this.caFile, c.tls.caCertificate);
    }
    // Passwords (43 random characters each, derived from the cluster secret) are the gate: on one machine
    // loopback connections come from 127.0.0.1 whatever the member's address, so source addresses prove nothing.
    // TLS keeps them (and the data) off the wire: `hostssl` lines match TLS connections only, and a plain
    // connection that matches no line is refused ("no encryption").
    const host = c.tls === null ? 'host' : 'hostssl';
    const hba = [
      '# written by the hyper_db keeper; first match wins',
      'local all all trust',
      `${host} replication ${REPLICATION_USER} all scram-sha-256`,
      `${host} replication ${SUPERUSER} all scram-sha-256`,
      'host replication all all reject',
      `${host} all ${SUPERUSER} all scram-sha-256`,
      `host all ${REPLICATION_USER} all reject`,
      `host all ${SUPERUSER} all reject`,
      `${c.tls?.clientTls === 'optional' ? 'host' : host} all all all scram-sha-256`,
    ];
    await writeAtomic(join(this.confDir, 'pg_hba.conf'), `${hba.join('\n')}\n`);
    await writeAtomic(join(this.confDir, 'pg_ident.conf'), '');
    await writeAtomic(join(this.confDir, 'pgpass'), `*:*:*:${REPLICATION_USER}:${c.replicationPassword}\n`);
  }

  /** Rewrites the role-dependent settings; returns whether they changed. */
  async writeDynamic(settings: {
    primaryConninfo: string;
    syncStandbyNames: string;
    /** Settings of a point-in-time restore in progress. */
    recovery?: Record<string, string>;
  }): Promise<boolean> {
    const content =
      `primary_conninfo = ${quoteSetting(settings.primaryConninfo)}\n` +
      `synchronous_standby_names = ${quoteSetting(settings.syncStandbyNames)}\n` +
      Object.entries(settings.recovery ?? {})
        .map(([k, v]) => `${k} = ${quoteSetting(v)}\n`)
        .join('');
    const path = join(this.confDir, 'dynamic.conf');
    const before = existsSync(path) ? readFileSync(path, 'utf8') : '';
    if (before === content) return false;
    await writeAtomic(path, content);
    return true;
  }

  conninfoFor(upstream: MemberAddress): string {
    return [
      `host=${upstream.host}`,
      `port=${upstream.pgPort}`,
      `user=${REPLICATION_USER}`,
      // A passfile, not password=: PostgreSQL logs primary_conninfo's value when it changes.
      `passfile=${join(this.confDir, 'pgpass')}`,
      `application_name=${this.config.name}`,
      ...(this.config.tls === null ? [] : ['sslmode=verify-full', `sslrootcert=${this.caFile}`]),
      'connect_timeout=2',
      'keepalives_idle=2',
      'keepalives_interval=1',
      'keepalives_count=2',
    ].join(' ');
  }

  async initdb(): Promise<void> {
    await rm(this.dataDir, { recursive: true, force: true });
    await exec(
      this.bin('initdb'),
      [
        '-D',
        this.dataDir,
        '-U',
        SUPERUSER,
        '--auth-local=trust',
        '--auth-host=scram-sha-256',
        '-E',
        'UTF8',
        '--locale=C',
      ],
      { timeout: 120_000 },
    );
    await this.writeDataDirConfig();
  }

  /**
   * The data directory's own postgresql.conf, read only by the single-user server pg_rewind runs to finish
   * crash recovery (the real server uses pgconf/postgresql.conf). It travels to every member with
   * pg_basebackup and pg_rewind, so it holds nothing member-specific. wal_log_hints must stay on through
   * that recovery, and wal_keep_size keeps its end-of-recovery checkpoint from recycling the WAL since the
   * last common checkpoint, which pg_rewind reads next ("could not open file … pg_wal/…" otherwise).
   */
  private async writeDataDirConfig(): Promise<void> {
    await writeFile(
      join(this.dataDir, 'postgresql.conf'),
      'wal_log_hints = on\nwal_level = replica\nwal_keep_size = 1GB\n',
      { mode: 0o600 },
    );
  }

  /**
   * A fresh copy of the primary's data directory, into a temp dir moved into place when complete: until
   * then the old data stays, for a later rewind. `emptyFirst` throws the old data away before copying,
   * when it takes the room the copy needs (a nearly full disk).
   */
  async cloneFrom(source: MemberAddress, options: { emptyFirst?: boolean } = {}): Promise<void> {
    const tmp = `${this.dataDir}.clone`;
    await rm(tmp, { recursive: true, force: true });
    if (options.emptyFirst === true) await this.emptyDataDir();
    await exec(
      this.bin('pg_basebackup'),
      ['-h', source.host, '-p', String(source.pgPort), '-U', REPLICATION_USER, '-D', tmp, '-X', 'stream', '-c', 'fast'],
      {
        timeout: 600_000,
        env: { ...process.env, ...this.tlsEnv(), PGPASSWORD: this.config.replicationPassword, PGCONNECT_TIMEOUT: '3' },
      },
    );
    await this.replaceDataDir(tmp);
  }

  /**
   * pg_wal is a filesystem of its own (a mount point) or a link to one, as operators set up to keep WAL
   * off the data disk: the data directory cannot be removed or replaced whole (EBUSY), and a new one would
   * quietly put WAL back on the data disk.
   */
  private externalWal(): boolean {
    try {
      const wal = join(this.dataDir, 'pg_wal');
      return lstatSync(wal).isSymbolicLink() || statSync(wal).dev !== statSync(this.dataDir).dev;
    } catch {
      return false;
    }
  }

  /** Removes the data directory's contents; an external pg_wal stays in place, emptied. */
  private async emptyDataDir(): Promise<void> {
    if (!this.externalWal()) return rm(this.dataDir, { recursive: true, force: true });
    const wal = join(this.dataDir, 'pg_wal');
    // PG_VERSION first: a crash half-way leaves a directory hasData() calls empty, never a broken one.
    await rm(join(this.dataDir, 'PG_VERSION'), { force: true });
    for (const entry of await readdir(this.dataDir))
      if (entry !== 'pg_wal') await rm(join(this.dataDir, entry), { recursive: true, force: true });
    for (const entry of await readdir(wal)) await rm(join(wal, entry), { recursive: true, force: true });
  }

  /** Puts the complete data directory `from` (a clone, a restored backup) in place of this member's. */
  private async replaceDataDir(from: string): Promise<void> {
    await this.emptyDataDir();
    if (!this.externalWal()) {
      await rename(from, this.dataDir);
      await chmod(this.dataDir, 0o700);
      return;
    }
    // WAL into the external pg_wal (another filesystem: copied), then the rest by rename, PG_VERSION last.
    const wal = join(this.dataDir, 'pg_wal');
    for (const entry of await readdir(join(from, 'pg_wal')))
      await cp(join(from, 'pg_wal', entry), join(wal, entry), { recursive: true, preserveTimestamps: true });
    await rm(join(from, 'pg_wal'), { recursive: true, force: true });
    const entries = await readdir(from);
    for (const entry of [...entries.filter((e) => e !== 'PG_VERSION'), ...entries.filter((e) => e === 'PG_VERSION')])
      await rename(join(from, entry), join(this.dataDir, entry));
    await rm(from, { recursive: true, force: true });
  }

  /**
   * What freeBytes() would be once this member's own PostgreSQL files (its data directory, a clone's
   * leftovers) were gone: whether a fresh clone can get a member with a nearly full disk going again.
   */
  freeBytesWithoutOwnData(): number | null {
    const own = new Map<number, number>();
    const walk = (path: string): void => {
      let st;
      try {
        st = lstatSync(path);
      } catch {
        return;
      }
      own.set(st.dev, (own.get(st.dev) ?? 0) + st.blocks * 512);
      if (!st.isDirectory()) return;
      let entries: string[] = [];
      try {
        entries = readdirSync(path);
      } catch {
        return;
      }
      for (const entry of entries) walk(join(path, entry));
    };
    walk(this.dataDir);
    const wal = join(this.dataDir, 'pg_wal');
    if (this.externalWal() && lstatSync(wal).isSymbolicLink()) walk(realpathSync(wal));
    walk(`${this.dataDir}.clone`);
    let least: number | null = null;
    for (const path of existsSync(this.dataDir) ? [this.dataDir, join(this.dataDir, 'pg_wal')] : [])
      try {
        const fs = statfsSync(path);
        least = Math.min(least ?? Infinity, fs.bavail * fs.bsize + (own.get(statSync(path).dev) ?? 0));
      } catch {
        // not there
      }
    return least;
  }

  /** Point-in-time restore, step 1: the base backup from a backup location, into an empty data directory. */
  async restoreBaseBackup(restore: RestoreSpec): Promise<string> {
    // Another cluster's API: its certificate chains to its own CA (given with the restore request).
    const source = { token: restore.token, tls: restore.ca === null ? null : { ca: restore.ca, identity: null } };
    const list = await callJson<{ id: string; finishedAt: string }[]>(new URL('/backups', restore.url), {
      ...source,
      timeoutMs: 30_000,
    }).catch((error: unknown) => {
      throw new Error(`listing backups at ${restore.url}: ${(error as Error).message}`);
    });
    const target = restore.targetTime === null ? Infinity : Date.parse(restore.targetTime);
    const chosen =
      restore.backup !== null
        ? list.find((b) => b.id === restore.backup)
        : list.filter((b) => Date.parse(b.finishedAt) < target).at(-1);
    if (chosen === undefined)
      throw new Error(
        restore.backup !== null
          ? `backup '${restore.backup}' not found at ${restore.url}`
          : restore.targetTime === null
            ? `no base backup at ${restore.url}`
            : `no base backup finished before ${restore.targetTime} at ${restore.url}`,
      );
    const tmp = `${this.dataDir}.restore`;
    await rm(tmp, { recursive: true, force: true });
    await mkdir(tmp, { mode: 0o700 });
    const response = await tlsRequest(new URL(`/backups/${chosen.id}.tar`, restore.url), {
      method: 'GET',
      headers: { authorization: `Bearer ${restore.token}` },
      tls: source.tls,
      timeoutMs: 60_000,
    });
    if (response.statusCode !== 200) {
      response.resume();
      throw new Error(`backup ${chosen.id}: HTTP ${response.statusCode ?? '?'}`);
    }
    const tar = spawn('tar', ['-x', '-C', tmp, '-f', '-'], { stdio: ['pipe', 'ignore', 'pipe'] });
    let stderr = '';
    tar.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => tar.on('close', resolve));
    await pipeline(response, tar.stdin);
    const code = await exited;
    if (code !== 0) throw new Error(`extracting backup ${chosen.id}: ${stderr.trim() || `tar exited ${String(code)}`}`);
    await rm(join(tmp, 'postmaster.pid'), { force: true });
    await rm(join(tmp, 'standby.signal'), { force: true });
    await this.replaceDataDir(tmp);
    return chosen.id;
  }

  /**
   * Point-in-time restore, step 2: replay archived WAL up to just before the target, then pause there;
   * without a target (latest), no recovery_target at all: the member starts as a standby without an
   * upstream, which replays the whole archive and keeps asking it for the next file
   * ({@link PostgresControl.archiveExhausted} says when it has nothing more to give).
   */
  recoverySettings(restore: RestoreSpec): Record<string, string> {
    const fetchConfig = join(this.confDir, 'restore.json');
    const restoreCommand = shellCommand([...walArchiveCommand(), 'fetch', fetchConfig, '%f', '%p']);
    if (restore.targetTime === null) return { restore_command: restoreCommand, recovery_target_timeline: 'latest' };
    return {
      restore_command: restoreCommand,
      // PostgreSQL's own timestamp syntax: '2026-11-27 23:13:38.930+00' (it refuses ISO's T and Z here).
      recovery_target_time: new Date(restore.targetTime).toISOString().replace('T', ' ').replace('Z', '+00'),
      recovery_target_inclusive: 'off',
      recovery_target_action: 'pause',
      recovery_target_timeline: 'latest',
    };
  }

  /**
   * A restore to latest has replayed the whole archive: `wal-archive fetch` found no next segment, and
   * no fetch has succeeded for `quietMs` since (PostgreSQL tries each timeline in turn for a segment;
   * a miss on one followed at once by a hit on another is not the end).
   */
  archiveExhausted(quietMs = 3000): boolean {
    try {
      const state = JSON.parse(readFileSync(join(this.confDir, 'restore.json.missing'), 'utf8')) as { since?: unknown };
      const since = typeof state.since === 'string' ? Date.parse(state.since) : Number.NaN;
      return !Number.isNaN(since) && Date.now() - since >= quietMs;
    } catch {
      return false;
    }
  }

  /** Where the finished recovery stopped: its last replayed WAL position and last transaction's commit time. */
  async recoveredTo(): Promise<{ lsn: string | null; last_transaction_at: string | null }> {
    const [row] = await this.query<{ lsn: string | null; at: Date | null }>(
      'SELECT pg_last_wal_replay_lsn()::text AS lsn, pg_last_xact_replay_timestamp() AS at',
      [],
      { session: true },
    );
    return { lsn: row?.lsn ?? null, last_transaction_at: row?.at == null ? null : new Date(row.at).toISOString() };
  }

  async writeRestoreCredentials(restore: RestoreSpec): Promise<void> {
    await rm(join(this.confDir, 'restore.json.missing'), { force: true });
    await writeAtomic(
      join(this.confDir, 'restore.json'),
      JSON.stringify({ url: restore.url, token: restore.token, ...(restore.ca === null ? {} : { ca: restore.ca }) }),
    );
  }

  /** 'paused' once a targeted recovery reached its target. */
  async replayPauseState(): Promise<string | null> {
    const [row] = await this.query<{ state: string }>('SELECT pg_get_wal_replay_pause_state() AS state', [], {
      session: true,
    });
    return row?.state ?? null;
  }

  /**
   * An immediate CHECKPOINT on `source`, before pg_rewind reads it: a just-promoted source still shows its
   * old timeline in pg_control until its end-of-recovery checkpoint completes, and pg_rewind would then
   * answer "no rewind required" and leave the diverged WAL in place. Also the proof that the source
   * answers, before this member stops its own server to rejoin it.
   */
  async checkpointOn(source: MemberAddress): Promise<void> {
    const admin = new pg.Client({
      host: source.host,
      port: source.pgPort,
      user: SUPERUSER,
      password: this.config.superuserPassword,
      database: 'postgres',
      connectionTimeoutMillis: 3000,
      statement_timeout: 120_000,
      query_timeout: 120_000,
      ...(this.config.tls === null ? {} : { ssl: { ca: this.config.tls.caCertificate } }),
    });
    admin.on('error', () => {});
    try {
      await admin.connect();
      await admin.query('CHECKPOINT');
    } finally {
      await admin.end().catch(() => {});
    }
  }

  /** pg_rewind against the current primary (the target must be stopped; checkpointOn(source) first). */
  async rewindFrom(source: MemberAddress): Promise<void> {
    await this.writeDataDirConfig(); // also for data directories made before it kept WAL
    // After a crash pg_rewind first finishes crash recovery in a single-user server, which refuses to run
    // with standby.signal ("standby mode is not supported by single-user servers"). start() writes the
    // signal files again for whatever role follows.
    await rm(join(this.dataDir, 'standby.signal'), { force: true });
    await rm(join(this.dataDir, 'recovery.signal'), { force: true });
    const conn = `host=${source.host} port=${source.pgPort} user=${SUPERUSER} dbname=postgres connect_timeout=3`;
    await exec(this.bin('pg_rewind'), ['-D', this.dataDir, `--source-server=${conn}`], {
      timeout: 600_000,
      env: { ...process.env, ...this.tlsEnv(), PGPASSWORD: this.config.superuserPassword },
    }).catch((error: unknown) => {
      // "Command failed: <argv>" says nothing; pg_rewind's own error line says why (it becomes the event).
      const lines = ((error as { stderr?: string }).stderr ?? '')
        .split('\n')
        .map((l) => l.trim())
        .filter((l) => l !== '');
      const reason = lines.find((l) => /\b(error|fatal):/i.test(l)) ?? lines.at(-1) ?? (error as Error).message;
      throw new Error(reason, { cause: error });
    });
  }

  /** libpq environment of the tools this member runs against another (pg_basebackup, pg_rewind). */
  private tlsEnv(): Record<string, string> {
    return this.config.tls === null ? {} : { PGSSLMODE: 'verify-full', PGSSLROOTCERT: this.caFile };
  }

  /** Starts the postmaster, detached (it outlives a crashed keeper, which adopts it on restart). */
  async start(options: { standby: boolean; targetedRecovery?: boolean }): Promise<void> {
    const signal = join(this.dataDir, 'standby.signal');
    if (options.standby && options.targetedRecovery !== true) await writeFile(signal, '', { mode: 0o600 });
    else await rm(signal, { force: true });
    if (options.targetedRecovery === true) await writeFile(join(this.dataDir, 'recovery.signal'), '', { mode: 0o600 });
    else await rm(join(this.dataDir, 'recovery.signal'), { force: true });
    const log = openSync(this.logFile, 'a', 0o600);
    try {
      const child = spawn(this.bin('postgres'), ['-c', `config_file=${join(this.confDir, 'postgresql.conf')}`], {
        detached: true,
        stdio: ['ignore', log, log],
      });
      child.unref();
    } finally {
      closeSync(log);
    }
    const started = Date.now();
    for (;;) {
      if (await this.ping()) return;
      // A server that exited (bad timeline, corrupt data…) fails at once, with its last words.
      if (Date.now() - started > 1000 && this.postmasterPid() === null)
        throw new Error(`PostgreSQL exited while starting: ${this.lastLogLine()}`);
      if (Date.now() - started > 60_000)
        throw new Error(`PostgreSQL did not accept connections within 60 s (see ${this.logFile})`);
      await sleep(50);
    }
  }

  lastLogLine(): string {
    try {
      const lines = readFileSync(this.logFile, 'utf8').trimEnd().split('\n');
      return lines.reverse().find((l) => /FATAL|PANIC/.test(l)) ?? lines[0] ?? '';
    } catch {
      return `(no ${this.logFile})`;
    }
  }

  async stop(mode: 'fast' | 'immediate'): Promise<void> {
    if (this.postmasterPid() === null) return;
    await exec(this.bin('pg_ctl'), ['stop', '-D', this.dataDir, '-m', mode, '-w', '-t', '60'], {
      timeout: 70_000,
    }).catch(async (error: unknown) => {
      const pid = this.postmasterPid();
      if (pid === null) return;
      process.kill(pid, 'SIGQUIT');
      await sleep(500);
      if (this.postmasterPid() !== null) throw error;
    });
  }

  /** Where a cleanly stopped server's WAL ends, from pg_controldata (null if it did not stop cleanly). */
  async cleanShutdownPosition(): Promise<{ lsn: string; timeline: number } | null> {
    if (!this.hasData() || this.postmasterPid() !== null) return null;
    const { stdout } = await exec(this.bin('pg_controldata'), ['-D', this.dataDir], {
      env: { ...process.env, LC_ALL: 'C' },
    });
    const field = (name: string): string | undefined =>
      stdout
        .split('\n')
        .find((l) => l.startsWith(`${name}:`))
        ?.slice(name.length + 1)
        .trim();
    const state = field('Database cluster state');
    if (state !== 'shut down' && state !== 'shut down in recovery') return null;
    const lsn = field('Latest checkpoint location');
    const timeline = Math.max(Number(field("Latest checkpoint's TimeLineID")), this.historyTimeline());
    return lsn && Number.isInteger(timeline) ? { lsn, timeline } : null;
  }

  /**
   * A client on the unix socket. Every wait is bounded on this side too: a frozen server (SIGSTOP, a hung
   * disk) never answers, and statement_timeout is the server's to enforce.
   */
  private client(queryTimeoutMs = 10_000, connectTimeoutMs = 2000): pg.Client {
    return new pg.Client({
      host: this.runDir,
      port: this.config.pgPort,
      user: SUPERUSER,
      database: 'postgres',
      connectionTimeoutMillis: connectTimeoutMs,
      statement_timeout: 5000,
      query_timeout: queryTimeoutMs,
      application_name: 'hyper_db keeper',
    });
  }

  /**
   * A query on its own connection, or (`session`) on the keeper's one kept-open session: the tick's
   * observations run ten times a second, and a backend forked for each would load the machine for
   * nothing. A session whose query fails or times out is dropped (its state is unknown) and the next
   * query opens a new one. Long or session-altering statements (promote, CHECKPOINT, SET) never use it.
   */
  async query<R extends pg.QueryResultRow>(
    sql: string,
    params: unknown[] = [],
    options: { timeoutMs?: number; connectTimeoutMs?: number; session?: boolean } = {},
  ): Promise<R[]> {
    if (options.session === true) {
      const session = await this.openSession();
      try {
        // node-postgres reads `query_timeout` per query too; its types only know it on the client.
        const config = { text: sql, values: params, query_timeout: options.timeoutMs ?? 10_000 } as pg.QueryConfig;
        return (await session.query<R>(config)).rows;
      } catch (error) {
        this.dropSession(session);
        throw error;
      }
    }
    const client = this.client(options.timeoutMs, options.connectTimeoutMs);
    client.on('error', () => {});
    await client.connect();
    try {
      return (await client.query<R>(sql, params)).rows;
    } finally {
      await endWithin(client, 500);
    }
  }

  private session: Promise<pg.Client> | null = null;

  private openSession(): Promise<pg.Client> {
    if (this.session === null) {
      const client = this.client();
      const opening = client.connect().then(() => client);
      this.session = opening;
      const drop = (): void => {
        if (this.session === opening) this.session = null;
      };
      client.on('error', drop);
      client.on('end', drop);
      opening.catch(() => {
        drop();
        client.removeAllListeners('error');
        client.on('error', () => {});
      });
    }
    return this.session;
  }

  private dropSession(client: pg.Client): void {
    void this.session?.then((current) => {
      if (current === client) this.session = null;
    });
    void endWithin(client, 200);
  }

  async ping(): Promise<boolean> {
    try {
      await this.query('SELECT 1');
      return true;
    } catch {
      return false;
    }
  }

  async observe(): Promise<PgObservation> {
    if (this.postmasterPid() === null) return NOT_RUNNING;
    try {
      const [row] = await this.query<{
        in_recovery: boolean;
        lsn: string | null;
        tli: number | null;
        wr_status: string | null;
        wr_tli: number | null;
        upstream: string | null;
        pending: number;
      }>(
        `SELECT pg_is_in_recovery() AS in_recovery,
           CASE WHEN pg_is_in_recovery()
             THEN greatest(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())::text
             ELSE pg_current_wal_lsn()::text END AS lsn,
           CASE WHEN pg_is_in_recovery() THEN (SELECT timeline_id FROM pg_control_checkpoint())
             ELSE ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int END AS tli,
           (SELECT status FROM pg_stat_wal_receiver) AS wr_status,
           (SELECT received_tli FROM pg_stat_wal_receiver) AS wr_tli,
           (SELECT sender_host || ':' || sender_port FROM pg_stat_wal_receiver) AS upstream,
           (SELECT count(*)::int FROM pg_settings WHERE pending_restart) AS pending`,
        [],
        { session: true, timeoutMs: 3000 },
      );
      if (row === undefined) return NOT_RUNNING;
      let replicas: PgObservation['replicas'] = [];
      if (!row.in_recovery)
        replicas = (
          await this.query<{ name: string; state: string; sync_state: string; lag: string | null }>(
            `SELECT application_name AS name, state, sync_state,
               (pg_current_wal_lsn() - coalesce(replay_lsn, flush_lsn, '0/0'))::text AS lag
             FROM pg_stat_replication ORDER BY application_name`,
            [],
            { session: true, timeoutMs: 3000 },
          )
        ).map((r) => ({ name: r.name, state: r.state, syncState: r.sync_state, lagBytes: Number(r.lag ?? 0) }));
      return {
        running: true,
        inRecovery: row.in_recovery,
        // A standby's checkpoint timeline lags (restartpoints are rare) and its WAL receiver may be down:
        // the history files it fetched when it followed a timeline switch tell which timeline it is on.
        timeline: Math.max(row.tli ?? 0, row.wr_tli ?? 0, row.in_recovery ? this.historyTimeline() : 0) || null,
        lsn: row.lsn,
        streaming: row.wr_status === 'streaming',
        upstream: row.upstream,
        pendingRestart: row.pending > 0,
        replicas,
      };
    } catch {
      return { ...NOT_RUNNING, running: true };
    }
  }

  /**
   * The server's activity for the member's metrics (`keeper-report.ts`): commits and rollbacks, client
   * connections and their limit, the WAL directory's size and files, the WAL archiver's counts and last times,
   * the databases' size, and how much WAL the server keeps for its standbys. Null when the server does not answer (a bounded query on the keeper's session).
   */
  async stats(): Promise<PgStats | null> {
    if (this.postmasterPid() === null) return null;
    try {
      const [row] = await this.query<Record<keyof PgStats, string | null>>(
        `SELECT (SELECT sum(xact_commit) FROM pg_stat_database)::text AS commits,
           (SELECT sum(xact_rollback) FROM pg_stat_database)::text AS rollbacks,
           (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')::text AS connections,
           current_setting('max_connections') AS "maxConnections",
           (SELECT sum(size) FROM pg_ls_waldir())::text AS "walBytes",
           (SELECT count(*) FROM pg_ls_waldir())::text AS "walFiles",
           archived_count::text AS archived,
           failed_count::text AS "archiveFailed",
           extract(epoch FROM last_archived_time)::text AS "lastArchivedS",
           extract(epoch FROM last_failed_time)::text AS "lastArchiveFailedS",
           (SELECT sum(pg_database_size(oid)) FROM pg_database WHERE datallowconn)::text AS "databaseBytes",
           pg_size_bytes(current_setting('wal_keep_size'))::text AS "walKeepBytes"
         FROM pg_stat_archiver`,
        [],
        { session: true, timeoutMs: 3000 },
      );
      if (row === undefined) return null;
      const n = (v: string | null) => (v === null ? null : Number(v));
      return {
        commits: n(row.commits),
        rollbacks: n(row.rollbacks),
        connections: n(row.connections),
        maxConnections: n(row.maxConnections),
        walBytes: n(row.walBytes),
        walFiles: n(row.walFiles),
        archived: n(row.archived),
        archiveFailed: n(row.archiveFailed),
        lastArchivedS: n(row.lastArchivedS),
        lastArchiveFailedS: n(row.lastArchiveFailedS),
        databaseBytes: n(row.databaseBytes),
        walKeepBytes: n(row.walKeepBytes),
      };
    } catch {
      return null;
    }
  }

  /**
   * Whether the server answers now: a bounded query. On a primary, also whether WAL still reaches the disk
   * when sessions wait for it: WAL flushed must move while any session has waited on a WAL write or sync
   * for longer than `stuckMs` (a hung or failing disk answers SELECT 1 but commits nothing).
   */
  async probe(
    timeoutMs: number,
    stuckMs: number,
  ): Promise<{ ok: true; flushLsn: string | null } | { ok: false; reason: string }> {
    if (this.postmasterPid() === null) return { ok: false, reason: 'PostgreSQL is not running' };
    const t0 = Date.now();
    try {
      const [row] = await this.query<{ flush: string | null; stuck: number }>(
        `SELECT CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_current_wal_flush_lsn()::text END AS flush,
           (SELECT count(*)::int FROM pg_stat_activity
             WHERE state = 'active' AND wait_event IN ('WALWrite', 'WALSync', 'WALInitSync', 'WALInitWrite')
               AND now() - state_change > $1 * interval '1 millisecond') AS stuck`,
        [stuckMs],
        { timeoutMs, connectTimeoutMs: timeoutMs },
      );
      if (row === undefined) return { ok: false, reason: 'no answer to the probe query' };
      const flushLsn = row.flush;
      const previous = this.lastFlush;
      this.lastFlush = flushLsn;
      if (row.stuck > 0 && flushLsn !== null && previous === flushLsn)
        return {
          ok: false,
          reason: `${row.stuck} session(s) wait over ${stuckMs} ms on WAL writes and WAL does not advance`,
        };
      return { ok: true, flushLsn };
    } catch (error) {
      const message = (error as Error).message;
      return {
        ok: false,
        reason: /timeout/i.test(message) ? `no answer within ${Date.now() - t0} ms` : firstLine(message),
      };
    }
  }

  private lastFlush: string | null = null;

  /** Bytes available to this member on the filesystem of its data directory (null when unknown). */
  freeBytes(): number | null {
    // pg_wal may be a filesystem of its own: the fuller of the two decides.
    const paths = existsSync(this.dataDir) ? [this.dataDir, join(this.dataDir, 'pg_wal')] : [this.config.partitionPath];
    let least: number | null = null;
    for (const path of paths)
      try {
        const st = statfsSync(path);
        least = Math.min(least ?? Infinity, st.bavail * st.bsize);
      } catch {
        // not there (yet)
      }
    return least;
  }

  /** The server's last FATAL or PANIC line, when it mentions a full disk. */
  diskFullInLog(): string | null {
    const line = this.lastLogLine();
    return /No space left on device/i.test(line) ? line : null;
  }

  /**
   * SIGKILL to the postmaster and every process it started, and waits (≤ 5 s) until they are gone.
   * The only signal a frozen (SIGSTOPped) process acts on; a backend left behind would keep the shared
   * memory and port a restarted server needs.
   */
  async killServer(): Promise<void> {
    const pid = this.postmasterPid();
    if (pid === null) return;
    const pids = [pid, ...childrenOf(pid)];
    for (const p of pids) {
      try {
        process.kill(p, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    const deadline = Date.now() + 5000;
    while (pids.some(alive) && Date.now() < deadline) await sleep(20);
  }

  async promote(): Promise<void> {
    const [row] = await this.query<{ ok: boolean }>('SELECT pg_promote(true, 30) AS ok', [], { timeoutMs: 40_000 });
    if (row?.ok !== true) throw new Error('pg_promote() did not complete within 30 s');
  }

  async reload(): Promise<void> {
    await this.query('SELECT pg_reload_conf()', [], { session: true });
  }

  /** Reloads and waits (≤ 3 s) until the server has read the files: pending_restart is then accurate. */
  async reloadAndWait(): Promise<void> {
    const loadTime = async () =>
      (await this.query<{ t: string }>('SELECT pg_conf_load_time()::text AS t', [], { session: true }))[0]?.t ?? '';
    const before = await loadTime();
    await this.reload();
    const deadline = Date.now() + 3000;
    while ((await loadTime()) === before && Date.now() < deadline) await sleep(20);
  }

  /**
   * Roles every primary must have; passwords follow the cluster secret.
   * Committed locally: at bootstrap no standby exists yet to acknowledge it.
   */
  async ensureRoles(): Promise<void> {
    const c = this.config;
    await this.query(
      `SET synchronous_commit = local;
       ALTER ROLE ${SUPERUSER} PASSWORD ${literal(c.superuserPassword)};
       DO $do$ BEGIN
         IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '${REPLICATION_USER}') THEN
           CREATE ROLE ${REPLICATION_USER} WITH REPLICATION LOGIN;
         END IF;
       END $do$;
       ALTER ROLE ${REPLICATION_USER} WITH REPLICATION LOGIN PASSWORD ${literal(c.replicationPassword)};
       REVOKE CONNECT, TEMPORARY ON DATABASE postgres FROM PUBLIC;
       REVOKE CONNECT, TEMPORARY ON DATABASE template1 FROM PUBLIC;
       REVOKE CREATE ON SCHEMA public FROM PUBLIC;`,
    );
  }

  async checkpoint(): Promise<void> {
    await this.query('CHECKPOINT');
  }
}

/** argv running wal-archive.mjs (plain JavaScript: started for every WAL file, it must start fast). */
function walArchiveCommand(): string[] {
  return [process.execPath, fileURLToPath(new URL('./wal-archive.mjs', import.meta.url))];
}

/** A /bin/sh command line (archive_command, restore_command): each word single-quoted, %-placeholders as they are. */
function shellCommand(argv: string[]): string {
  return argv.map((a) => (/^%[pf]$/.test(a) ? `"${a}"` : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
}

function quoteSetting(value: string | number | boolean): string {
  if (typeof value === 'boolean') return value ? 'on' : 'off';
  if (typeof value === 'number') return String(value);
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;
}

/** A SQL string literal (passwords are base64url, but quote properly anyway). */
export function literal(value: string): string {
  return `'${value.replace(/'/g, "''")}'`;
}

/** Direct children of `pid` (a postmaster's backends and auxiliary processes), from /proc. */
function childrenOf(pid: number): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // "pid (comm) state ppid …": comm may hold spaces and parentheses; the last ')' ends it.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) found.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return !readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z ');
  } catch {
    return false;
  }
}

/** The first non-blank line of an error's text (the keeper's events and logs use it too). */
export function firstLine(text: string): string {
  return text.split('\n').find((l) => l.trim() !== '') ?? text;
}

/** Closes a client, dropping its socket if the server does not answer the goodbye (a frozen server never does). */
async function endWithin(client: pg.Client, ms: number): Promise<void> {
  const ended = await Promise.race([
    client.end().then(
      () => true,
      () => true,
    ),
    sleep(ms).then(() => false),
  ]);
  if (!ended) (client as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream?.destroy();
}

/**
 * Writes a private (0600) file that PostgreSQL or a command it runs may read at any moment (archive_command reads
 * archive.json for every WAL file; a reload reads the .conf files): a reader sees the old content or the new, never
 * a truncated one ("Unexpected end of JSON input" failed an archive_command once).
 */
async function writeAtomic(path: string, content: string): Promise<void> {
  await writeFile(`${path}.tmp`, content, { mode: 0o600 });
  await rename(`${path}.tmp`, path);
}
