/**
 * The router: runs in the cluster's root partition.
 *
 * - Read-write endpoint: PgBouncer in transaction pooling mode (pgbouncer.ts),
 *   pointed at the member that is primary (the one reporting a valid lease in
 *   the highest term). It terminates the clients' TLS with a certificate for
 *   the router's address signed by the cluster CA, and verifies the primary's
 *   (verify-full). A new primary: its databases point there, RELOAD (server
 *   connections to the old one close as their transaction ends), RESUME. No
 *   primary: PAUSE (new transactions wait, up to query_wait_timeout). A planned
 *   switchover: the old primary's keeper asks `POST /pause` first, so nothing
 *   runs on it when it stops; client connections survive the handover.
 * - Read-only endpoint: a TCP proxy (TLS passed through) to the streaming
 *   standbys in turn (the primary when none streams).
 * - Databases: the shared instances' databases and roles, created on the
 *   primary (least privilege: each role owns its database, nothing else;
 *   PUBLIC cannot connect), passwords kept in step, dropped when gone.
 * - Cluster status for the master: `.hox/publish.json`.
 * - The cluster CA: signs the members' server certificates (`POST
 *   /tls/certificate` on the backup API), valid for the member's address and
 *   the router's (the read-only endpoint passes TLS through to the member
 *   untouched), and PgBouncer's.
 */
import { createHmac, generateKeyPairSync } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { join } from 'node:path';
import pg from 'pg';
import { callPeer, type PeerAuth } from '../keeper/peer-api.js';
import type { TlsIdentity } from '../cluster-tls.js';
import { issueServerCertificate } from '../../../shared/pki/local-ca.js';
import { renewalAtMs } from '../../../shared/pki/renewal.js';
import { BackupStore, type CertificateAnswer } from './backup-store.js';
import { PgBouncer, type PgBouncerWanted } from './pgbouncer.js';
import {
  SUPERUSER,
  type MemberAddress,
  type MemberStatus,
  type PauseRequestBody,
  type PauseAnswer,
  type RouterConfig,
} from '../protocol.js';

const POLL_MS = 150;
/** Bound on one member's answer to GET /status. */
const STATUS_TIMEOUT_MS = 1000;
const RECONCILE_EVERY_MS = 15_000;
const RETRY_FAILED_MS = 2000;
const ORPHAN_SWITCHOVER_MS = 15_000;
/** How long a switchover's PAUSE waits for running transactions before the keeper goes on (they get cut). */
const PAUSE_DRAIN_MS = 5000;
/** How long the router waits for PAUSE's answer when the primary is gone (the pause holds anyway). */
const NO_PRIMARY_PAUSE_WAIT_MS = 300;
/** A switchover's PAUSE ends by itself after this long without a new primary: apps never stay frozen. */
const PAUSE_RESUME_AFTER_MS = 15_000;
/** Seconds a transaction waits for a primary (paused endpoint) before its client gets an error. */
const QUERY_WAIT_TIMEOUT_S = 30;
/** How long the endpoint waits for a new primary to leave recovery before resuming on it anyway. */
const WRITABLE_WAIT_MS = 10_000;
/** PgBouncer's admin console user (its password derives from the peer token). */
const ADMIN_USER = 'hox_router_admin';

export class Router {
  private config: RouterConfig;
  private mtimeMs = 0;
  private statuses = new Map<string, { status: MemberStatus | null; error: string | null }>();
  private primary: MemberAddress | null = null;
  /** Read-only sessions by member (`host:port`). */
  private readonly sessions = new Map<string, Set<net.Socket>>();
  private readonly bouncer: PgBouncer;
  /** The server PgBouncer's databases point at (the primary, or the last one while there is none). */
  private bouncerServer: MemberAddress | null = null;
  /** PgBouncer's key and certificate (for the router's address), renewed once two thirds of it have passed. */
  private endpointTls: { keyPem: string; certificatePem: string; renewAt: number; key: string } | null = null;
  /** Why the endpoint is paused: no primary, or a switchover away from `from` (auto-resumed at `until`). */
  private pauseReason: { kind: 'no-primary' } | { kind: 'switchover'; id: string; from: string; until: number } | null =
    null;
  /** Endpoint changes (configure, pause, resume) run one at a time, in order. */
  private endpointQueue: Promise<unknown> = Promise.resolve();
  private roServer: net.Server | undefined;
  private roNext = 0;
  private timer: NodeJS.Timeout | undefined;
  private polling = false;
  /** Members whose answer to GET /status is awaited. */
  private readonly asking = new Set<string>();
  private reconciledKey = '';
  private reconciledAt = 0;
  private reconcileError: string | null = null;
  private presentDatabases: string[] = [];
  /** Per database present, the shared instance it belongs to. */
  private databaseOwners: Record<string, string> = {};
  /** Per database, why the last reconciliation could not set it up. */
  private databaseErrors: Record<string, string> = {};
  private reconciling = false;
  private orphanSwitchover: { id: string; since: number } | null = null;
  private lastPublished = '';
  private readonly backups: BackupStore;
  private lastBackupAttempt = 0;
  private backupRequest: { id: string; result: 'running' | 'done' | 'failed'; backup?: string; error?: string } | null =
    null;

  constructor(
    private readonly configPath: string,
    private readonly partitionPath: string,
    private readonly log: (line: string) => void,
  ) {
    this.config = this.read();
    this.backups = new BackupStore({
      partitionPath,
      binDir: this.config.binDir,
      peerToken: () => this.config.peerToken,
      backupToken: () => this.config.backupToken,
      superuserPassword: () => this.config.superuserPassword,
      tlsEnv: (): Record<string, string> =>
        this.config.tls === null
          ? {}
          : { PGSSLMODE: 'verify-full', PGSSLROOTCERT: join(partitionPath, 'cluster-ca.crt') },
      issueCertificate: (member, publicKey) => this.issueCertificate(member, publicKey),
      pause: (body) => this.pauseForSwitchover(body),
      log,
    });
    this.bouncer = new PgBouncer({
      partitionPath,
      adminUser: ADMIN_USER,
      adminPassword: () => createHmac('sha256', this.config.peerToken).update('pgbouncer admin').digest('base64url'),
      log,
    });
  }

  private async issueCertificate(member: string, publicKeyPem: string): Promise<CertificateAnswer> {
    const c = this.config;
    if (c.tls === null) return { refused: 'TLS is not enabled on this cluster', status: 404 };
    const address = c.members.find((m) => m.name === member);
    if (address === undefined) return { refused: `member '${member}' is not known to the router (yet)`, status: 404 };
    const certificate = await issueServerCertificate({
      ca: { certificatePem: c.tls.caCertificate, privateKeyPem: c.tls.caPrivateKey },
      publicKeyPem,
      commonName: member,
      ipAddresses: [...new Set([address.host, c.host])],
      validityMs: c.tls.certificateValidityMs,
      // The member presents it too, to its peers and to this router (mutual TLS: cluster-tls.ts).
      clientAuth: true,
    });
    this.log(`server certificate signed for ${member} (${address.host}, ${c.host})`);
    return { certificate };
  }

  private read(): RouterConfig {
    this.mtimeMs = statSync(this.configPath).mtimeMs;
    return JSON.parse(readFileSync(this.configPath, 'utf8')) as RouterConfig;
  }

  async start(): Promise<void> {
    await this.backups.start(this.config.host, this.config.backupPort, await this.apiTls());
    // No primary is known yet: PgBouncer starts paused (a client's first transaction waits for one).
    await this.bouncer.configure(await this.bouncerSettings());
    await this.bouncer.start();
    this.pauseReason = { kind: 'no-primary' };
    await this.bouncer.pause(1000);
    this.roServer = await this.listen(this.config.roPort, () => this.pickReader());
    this.timer = setInterval(() => void this.poll(), POLL_MS);
    this.log(
      `router listening: rw ${this.config.host}:${this.config.rwPort} (pgbouncer, transaction pooling), ro ${this.config.host}:${this.config.roPort}`,
    );
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.backups.stop();
    await this.bouncer.stop();
    for (const set of this.sessions.values()) for (const s of set) s.destroy();
    await new Promise<void>((r) => (this.roServer ? this.roServer.close(() => r()) : r()));
  }

  /** PgBouncer's settings from the router's configuration and the primary it follows. */
  private async bouncerSettings(): Promise<PgBouncerWanted> {
    const c = this.config;
    const server = this.bouncerServer ?? c.members[0] ?? null;
    return {
      listenHost: c.host,
      listenPort: c.rwPort,
      // Only a placeholder while no primary is known: the endpoint is paused then.
      server: server === null ? { host: c.host, port: 1 } : { host: server.host, port: server.pgPort },
      databases: c.databases.filter((d) => d.state === 'present').map((d) => d.name),
      users: [
        ...c.databases.filter((d) => d.state === 'present').map((d) => ({ name: d.role, password: d.password })),
        ...(c.endpointLogins ?? []).map((l) => ({ name: l.role, password: l.password })),
      ],
      tls:
        c.tls === null
          ? null
          : {
              clientSslmode: c.tls.clientTls === 'optional' ? 'allow' : 'require',
              ...(await this.tlsFiles()),
              caPem: c.tls.caCertificate,
            },
      queryWaitTimeoutS: QUERY_WAIT_TIMEOUT_S,
      poolSize: 20,
      maxClientConnections: 2000,
    };
  }

  /** The router's API and its calls to the keepers: its certificate and the cluster CA (null: no TLS). */
  private async apiTls(): Promise<{ ca: string; identity: TlsIdentity } | null> {
    const c = this.config;
    if (c.tls === null) return null;
    const files = await this.tlsFiles();
    return { ca: c.tls.caCertificate, identity: { key: files.keyPem, cert: files.certificatePem } };
  }

  /** How the router calls a keeper: the peer token, the cluster CA and its own certificate (mutual TLS). */
  private peerAuth(): PeerAuth {
    const c = this.config;
    const own = this.endpointTls;
    return {
      token: c.peerToken,
      tls:
        c.tls === null
          ? null
          : { ca: c.tls.caCertificate, identity: own === null ? null : { key: own.keyPem, cert: own.certificatePem } },
    };
  }

  /**
   * The router's key and certificate for its address, signed by the cluster CA (server and client): PgBouncer's
   * endpoint and the router's API present it, and the router presents it to the keepers; renewed in time.
   */
  private async tlsFiles(): Promise<{ keyPem: string; certificatePem: string }> {
    const c = this.config;
    if (c.tls === null) throw new Error('no TLS');
    const key = `${c.host}|${c.tls.caCertificate}|${c.tls.certificateValidityMs}`;
    if (this.endpointTls === null || this.endpointTls.key !== key || Date.now() > this.endpointTls.renewAt) {
      const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
      const certificatePem = await issueServerCertificate({
        ca: { certificatePem: c.tls.caCertificate, privateKeyPem: c.tls.caPrivateKey },
        publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
        commonName: 'hyper_db router',
        ipAddresses: [c.host],
        validityMs: c.tls.certificateValidityMs,
        clientAuth: true,
      });
      const signedAt = Date.now();
      this.endpointTls = {
        keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
        certificatePem,
        renewAt: renewalAtMs(signedAt, signedAt + c.tls.certificateValidityMs),
        key,
      };
      this.log(`router certificate signed for ${c.host} (read-write endpoint, API, calls to the keepers)`);
      this.backups.renewTls({
        ca: c.tls.caCertificate,
        identity: { key: this.endpointTls.keyPem, cert: this.endpointTls.certificatePem },
      });
    }
    return { keyPem: this.endpointTls.keyPem, certificatePem: this.endpointTls.certificatePem };
  }

  /** Runs endpoint changes one after the other (a RELOAD never overtakes a PAUSE asked before it). */
  private endpoint<T>(work: () => Promise<T>): Promise<T> {
    const next = this.endpointQueue.then(work, work);
    this.endpointQueue = next.catch(() => {});
    return next;
  }

  /**
   * `POST /pause` from the old primary's keeper, before its PostgreSQL stops: PAUSE (answered once the
   * running transactions have ended, or after PAUSE_DRAIN_MS: those still running are cut by the stop),
   * RESUMEd on the new primary as soon as it is followed, or after PAUSE_RESUME_AFTER_MS without one.
   */
  private async pauseForSwitchover(body: PauseRequestBody): Promise<PauseAnswer> {
    const until = Date.now() + PAUSE_RESUME_AFTER_MS;
    this.pauseReason = { kind: 'switchover', id: body.switchoverId, from: body.from, until };
    this.log(`switchover ${body.switchoverId}: pausing the read-write endpoint (the primary ${body.from} stops next)`);
    const outcome = await this.endpoint(() => this.bouncer.pause(PAUSE_DRAIN_MS));
    if (outcome.paused)
      this.log(`switchover ${body.switchoverId}: read-write endpoint paused in ${outcome.waitedMs} ms`);
    else
      this.log(
        `switchover ${body.switchoverId}: transactions still running after ${outcome.waitedMs} ms: going on, they are cut when ${body.from} stops (${outcome.reason})`,
      );
    setTimeout(() => void this.endSwitchoverPause(body.switchoverId), PAUSE_RESUME_AFTER_MS + 50).unref();
    return {
      paused: outcome.paused,
      waitedMs: outcome.waitedMs,
      ...(outcome.paused ? {} : { reason: outcome.reason }),
    };
  }

  /** A switchover's pause that no new primary ended: resumed on whatever primary there is (or stays paused without one). */
  private async endSwitchoverPause(id: string): Promise<void> {
    const r = this.pauseReason;
    if (r?.kind !== 'switchover' || r.id !== id || Date.now() < r.until) return;
    if (this.primary === null) {
      this.pauseReason = { kind: 'no-primary' };
      this.log(
        `switchover ${id}: no primary ${PAUSE_RESUME_AFTER_MS} ms after the pause: the endpoint stays paused until there is one`,
      );
      return;
    }
    this.log(
      `switchover ${id}: no new primary ${PAUSE_RESUME_AFTER_MS} ms after the pause: resuming on ${this.primary.name}`,
    );
    await this.pointEndpoint(this.primary);
  }

  /**
   * Points PgBouncer at `primary` (RELOAD when it changed) and resumes it, once `primary` accepts writes:
   * a member reports itself primary as soon as it won, while its PostgreSQL may still be finishing its
   * promotion (read-only for a moment); the endpoint holds the waiting transactions until then.
   */
  private async pointEndpoint(primary: MemberAddress): Promise<void> {
    await this.endpoint(async () => {
      if (this.primary?.name !== primary.name) return; // followed elsewhere meanwhile
      const writable = await this.waitWritable(primary, WRITABLE_WAIT_MS);
      if (this.primary?.name !== primary.name) return;
      if (!writable)
        this.log(
          `${primary.name} did not accept writes within ${WRITABLE_WAIT_MS} ms: resuming the endpoint on it anyway`,
        );
      this.bouncerServer = primary;
      this.pauseReason = null;
      await this.bouncer.configure(await this.bouncerSettings());
      await this.bouncer.resume();
    });
  }

  /** Whether `member`'s PostgreSQL is out of recovery (asked as the superuser, TLS verified), polled up to `boundMs`. */
  private async waitWritable(member: MemberAddress, boundMs: number): Promise<boolean> {
    const end = performance.now() + boundMs;
    while (performance.now() < end && this.primary?.name === member.name) {
      const client = new pg.Client({
        host: member.host,
        port: member.pgPort,
        user: SUPERUSER,
        password: this.config.superuserPassword,
        database: 'postgres',
        connectionTimeoutMillis: 1000,
        query_timeout: 1000,
        application_name: 'hyper_db router',
        ...(this.config.tls === null ? {} : { ssl: { ca: this.config.tls.caCertificate } }),
      });
      client.on('error', () => {});
      try {
        await client.connect();
        const { rows } = await client.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r');
        if (rows[0]?.r === false) return true;
      } catch {
        // not up yet, or going away: asked again below
      } finally {
        await withTimeout(client.end(), 500, 'closing').catch(() => {});
      }
      await new Promise((r) => setTimeout(r, 25));
    }
    return false;
  }

  private listen(port: number, pick: () => MemberAddress | null): Promise<net.Server> {
    const server = net.createServer((client) => {
      const target = pick();
      if (target === null) {
        client.destroy();
        return;
      }
      const key = `${target.host}:${target.pgPort}`;
      const upstream = net.connect({ host: target.host, port: target.pgPort });
      const set = this.sessions.get(key) ?? new Set<net.Socket>();
      this.sessions.set(key, set);
      set.add(client);
      const close = (): void => {
        set.delete(client);
        client.destroy();
        upstream.destroy();
      };
      client.on('error', close).on('close', close);
      upstream.on('error', close).on('close', close);
      client.setNoDelay(true);
      upstream.setNoDelay(true);
      client.pipe(upstream).pipe(client);
    });
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, this.config.host, () => resolve(server));
    });
  }

  private pickReader(): MemberAddress | null {
    const readers = this.config.members.filter((m) => {
      const s = this.statuses.get(m.name)?.status;
      return s?.role === 'standby' && s.streaming && !s.maintenance;
    });
    if (readers.length === 0) return this.primary;
    return readers[this.roNext++ % readers.length] ?? null;
  }

  /** PgBouncer's configuration is behind the router's; a reconfiguration is queued or running. */
  private bouncerStale = false;
  private reconfiguring = false;

  private async poll(): Promise<void> {
    if (this.polling) return;
    this.polling = true;
    try {
      // New databases, roles, passwords or TLS mode, or a certificate due for renewal: PgBouncer rewritten
      // and reloaded — queued behind the endpoint's other changes, never awaited here: a change waiting
      // for a new primary to accept writes must not hold back the status questions that find it.
      let reconfigure = false;
      if (statSync(this.configPath).mtimeMs !== this.mtimeMs) {
        this.config = this.read();
        reconfigure = true;
      } else if (this.config.tls !== null && this.endpointTls !== null && Date.now() > this.endpointTls.renewAt)
        reconfigure = true;
      if (reconfigure) this.bouncerStale = true;
      if (this.bouncerStale && !this.reconfiguring) {
        this.reconfiguring = true;
        void this.endpoint(async () => {
          // A change read while this one waited in the queue or ran is applied too.
          while (this.bouncerStale) {
            this.bouncerStale = false;
            await this.bouncer.configure(await this.bouncerSettings());
          }
        })
          .catch((error: unknown) => this.log(`read-write endpoint: ${(error as Error).message}`))
          .finally(() => (this.reconfiguring = false));
      }
      const c = this.config;
      for (const name of this.statuses.keys()) if (!c.members.some((m) => m.name === name)) this.statuses.delete(name);
      for (const m of c.members) this.askStatus(m);
      // Never awaited here: a database call stuck on a dying primary must not freeze primary tracking.
      if (!this.reconciling) {
        this.reconciling = true;
        void withTimeout(this.reconcileDatabases(), 30_000, 'reconciling databases')
          .catch((error: unknown) => this.log(`databases: ${(error as Error).message}`))
          .finally(() => (this.reconciling = false));
      }
      this.maybeBackUp();
      await this.publish();
    } catch (error) {
      this.log(`poll: ${(error as Error).message}`);
    } finally {
      this.polling = false;
    }
  }

  /**
   * Asks one member for its status (unless a question to it is still open) and follows the primary as
   * soon as the answer arrives. Each member on its own: one that does not answer (frozen, cut off) holds
   * back nobody else's answer until its timeout — a new primary is followed on its own word at once.
   */
  private askStatus(m: MemberAddress): void {
    if (this.asking.has(m.name)) return;
    this.asking.add(m.name);
    void callPeer<MemberStatus>(m, this.peerAuth(), '/status', undefined, STATUS_TIMEOUT_MS)
      .then(
        (status) => ({ status, error: null }),
        (reason: Error) => ({ status: null, error: String(reason) }),
      )
      .then((entry) => {
        this.asking.delete(m.name);
        if (!this.config.members.some((x) => x.name === m.name)) return;
        this.statuses.set(m.name, entry);
        this.followPrimary();
      })
      .catch((error: unknown) => this.log(`status of ${m.name}: ${(error as Error).message}`));
  }

  /**
   * The member reporting a valid lease in the highest term. A new one: the read-write endpoint points
   * there and resumes; none: the endpoint pauses (nothing is sent to a member that is not primary).
   */
  private followPrimary(): void {
    const leaders = this.config.members
      .map((m) => ({ m, s: this.statuses.get(m.name)?.status }))
      .filter((x) => x.s?.role === 'primary' && x.s.leaseValid && x.s.pgRunning)
      .sort((a, b) => (b.s?.term ?? 0) - (a.s?.term ?? 0));
    const next = leaders[0]?.m ?? null;
    if (next?.name === this.primary?.name) {
      // Paused for a switchover that did not happen (refused late, failed): the same primary is back for good.
      const r = this.pauseReason;
      if (next !== null && r?.kind === 'switchover' && Date.now() > r.until) void this.endSwitchoverPause(r.id);
      return;
    }
    this.log(`primary: ${this.primary?.name ?? 'none'} → ${next?.name ?? 'none'}`);
    this.primary = next;
    if (next !== null) {
      const t0 = performance.now();
      void this.pointEndpoint(next).then(
        () => this.log(`read-write endpoint on ${next.name} (${Math.round(performance.now() - t0)} ms)`),
        (error: unknown) => this.log(`read-write endpoint on ${next.name}: ${(error as Error).message}`),
      );
    } else if (this.pauseReason === null) {
      this.pauseReason = { kind: 'no-primary' };
      // Not waited for: on a frozen primary a transaction may never end, and the pause holds new work
      // from the moment it is asked (a new primary must not wait behind it).
      void this.endpoint(() => this.bouncer.pause(NO_PRIMARY_PAUSE_WAIT_MS)).then((o) =>
        this.log(
          o.paused
            ? `read-write endpoint paused: no primary (new transactions wait up to ${QUERY_WAIT_TIMEOUT_S} s)`
            : `read-write endpoint paused: no primary; transactions still running on the old one (${o.reason})`,
        ),
      );
    }
  }

  private async reconcileDatabases(): Promise<void> {
    const primary = this.primary;
    if (primary === null) return;
    const key = `${primary.name}|${JSON.stringify(this.config.databases)}`;
    if (key === this.reconciledKey && Date.now() - this.reconciledAt < RECONCILE_EVERY_MS) return;
    const client = new pg.Client({
      host: primary.host,
      port: primary.pgPort,
      user: SUPERUSER,
      password: this.config.superuserPassword,
      database: 'postgres',
      connectionTimeoutMillis: 2000,
      statement_timeout: 10_000,
      application_name: 'hyper_db router',
      ...(this.config.tls === null ? {} : { ssl: { ca: this.config.tls.caCertificate } }),
    });
    client.on('error', () => {});
    try {
      await client.connect();
      const { present, errors } = await reconcileOnPrimary(
        client,
        this.config.clusterId,
        this.config.databases,
        this.log,
      );
      this.presentDatabases = [...present.keys()];
      this.databaseOwners = Object.fromEntries(present);
      this.databaseErrors = errors;
      const failed = Object.keys(errors);
      const message = failed.length === 0 ? null : `${failed.length} database(s) not set up: ${failed.join(', ')}`;
      // A failed database is retried after RETRY_FAILED_MS rather than RECONCILE_EVERY_MS.
      this.reconciledKey = key;
      this.reconciledAt = Date.now() - (failed.length === 0 ? 0 : RECONCILE_EVERY_MS - RETRY_FAILED_MS);
      if (message !== this.reconcileError) {
        for (const [name, error] of Object.entries(errors)) this.log(`database ${name}: ${error}`);
        if (message === null) this.log('databases reconciled');
      }
      this.reconcileError = message;
    } catch (error) {
      const message = (error as Error).message;
      if (message !== this.reconcileError) this.log(`databases: ${message}`);
      this.reconcileError = message;
    } finally {
      await withTimeout(client.end(), 1000, 'closing').catch(() => {});
    }
  }

  /** A base backup when none exists yet, then every backupIntervalMs (0: only the first). */
  private maybeBackUp(): void {
    const primary = this.primary;
    if (primary === null) return;
    const request = this.config.backupRequest;
    if (request !== null && request !== this.backupRequest?.id && !this.backups.isRunning()) {
      this.backupRequest = { id: request, result: 'running' };
      void this.backups.takeBaseBackup(primary).then((backupId) => {
        this.backupRequest =
          backupId === null
            ? { id: request, result: 'failed', error: this.backups.status().error ?? 'unknown error' }
            : { id: request, result: 'done', backup: backupId };
      });
      return;
    }
    const { last } = this.backups.status();
    const interval = this.config.backupIntervalMs;
    const due =
      last === null
        ? Date.now() - this.lastBackupAttempt > 10_000
        : interval > 0 &&
          Date.now() - Date.parse(last.finishedAt) > interval &&
          Date.now() - this.lastBackupAttempt > 60_000;
    if (!due) return;
    this.lastBackupAttempt = Date.now();
    void this.backups.takeBaseBackup(primary);
  }

  private async publish(): Promise<void> {
    const members = this.config.members.map((m) => {
      const entry = this.statuses.get(m.name);
      const s = entry?.status;
      return {
        name: m.name,
        host: m.host,
        port: m.pgPort,
        role: s?.role ?? 'unreachable',
        term: s?.term ?? null,
        timeline: s?.timeline ?? null,
        streaming: s?.streaming ?? false,
        lag_mib: s?.lagBytes == null ? null : Math.floor(s.lagBytes / 1048576),
        maintenance: s?.maintenance ?? false,
        sync_state: this.syncStateOf(m.name),
        tls: s?.tls == null ? null : { serial: s.tls.serial, not_after: s.tls.notAfter, rotation: s.tls.rotation },
      };
    });
    const events = this.config.members
      .flatMap((m) => (this.statuses.get(m.name)?.status?.events ?? []).map((e) => ({ member: m.name, ...e })))
      .sort((a, b) => a.at.localeCompare(b.at));
    const lastFailover = [...events].reverse().find((e) => e.kind === 'failover' || e.kind === 'forced-promotion');
    const switchovers = this.config.members
      .map((m) => this.statuses.get(m.name)?.status?.switchover)
      .filter((s): s is NonNullable<typeof s> => s != null);
    const want = this.config.switchover;
    let switchover = want ? (switchovers.find((s) => s.id === want.id) ?? null) : null;
    // A request no primary takes up (there is none, for long) is answered here, so the CLI does not wait forever.
    if (want && switchover === null && this.primary === null) {
      if (this.orphanSwitchover?.id !== want.id) this.orphanSwitchover = { id: want.id, since: Date.now() };
      else if (Date.now() - this.orphanSwitchover.since > ORPHAN_SWITCHOVER_MS)
        switchover = { id: want.id, result: 'refused', reason: 'the cluster has no primary' };
    } else this.orphanSwitchover = null;
    const doc = {
      primary: this.primary?.name ?? null,
      members,
      last_failover: lastFailover ?? null,
      switchover,
      /** Databases present on the primary, as of the last reconciliation (connection parameters work once listed). */
      databases: this.presentDatabases,
      databases_error: this.reconcileError,
      database_owners: this.databaseOwners,
      database_errors: this.databaseErrors,
      backups: (() => {
        const b = this.backups.status();
        return {
          count: b.count,
          last:
            b.last === null
              ? null
              : { id: b.last.id, finished_at: b.last.finishedAt, bytes: b.last.bytes, verified: b.last.verified },
          age_s: b.ageS === null ? null : Math.floor(b.ageS / 60) * 60,
          wal_files: b.walFiles,
          // The newest RECENT_BACKUPS base backups, newest last (hox db backups), and the archived WAL range.
          list: b.recent.map((x) => ({
            id: x.id,
            started_at: x.startedAt,
            finished_at: x.finishedAt,
            member: x.member,
            bytes: x.bytes,
            verified: x.verified,
          })),
          wal:
            b.wal === null
              ? null
              : {
                  segments: b.wal.segments,
                  first: b.wal.first,
                  last: b.wal.last,
                  last_archived_at: b.wal.lastArchivedAt,
                },
          error: b.error,
          request: this.backupRequest,
        };
      })(),
      events: events.slice(-10),
    };
    const text = JSON.stringify(doc);
    if (text === this.lastPublished) return;
    const dir = join(this.partitionPath, '.hox');
    if (!existsSync(dir)) await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'publish.json.tmp'), text);
    await rename(join(dir, 'publish.json.tmp'), join(dir, 'publish.json'));
    this.lastPublished = text;
  }

  private syncStateOf(name: string): string | null {
    if (this.primary === null) return null;
    const replicas = this.statuses.get(this.primary.name)?.status?.replicas ?? [];
    if (name === this.primary.name) return 'primary';
    return replicas.find((r) => r.name === name)?.syncState ?? 'disconnected';
  }
}

function withTimeout<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

const IDENT = /^[a-z_][a-z0-9_]{0,62}$/;
/** Marks the databases the router made; the owning shared instance and the cluster follow. */
const MANAGED = 'hyper_db managed database';
const RECORD = /^hyper_db managed database(?:; owner (\S+); cluster (\S+))?$/;
const REFERENCE = /^[A-Za-z0-9_-]{1,100}$/;

type WantedDatabase = RouterConfig['databases'][number];

/**
 * Makes the primary hold exactly the wanted databases, each owned by its shared instance.
 *
 * Ownership is recorded on the database itself (its comment, replicated with the cluster, so it survives
 * failovers): a database made for one shared instance is never handed to another. Another shared instance
 * asking for that name gets an error while the owner exists; once the owner is gone (the master forgot it),
 * the database is dropped with its role, then made anew, empty, for the newcomer.
 *
 * A database recorded by another cluster (restored from its backup) or by an older router (no owner) is
 * adopted by the shared instance the profile gives its name to; a restored one is kept, not dropped, until
 * one asks for it. A database of that name not made by hyper_db is left alone (an error for its asker).
 *
 * One database failing (a name PostgreSQL refuses, a role it cannot alter) never stops the others.
 */
async function reconcileOnPrimary(
  client: pg.Client,
  clusterId: string,
  wanted: readonly WantedDatabase[],
  log: (line: string) => void,
): Promise<{ present: Map<string, string>; errors: Record<string, string> }> {
  const { rows } = await client.query<{ datname: string; owner_role: string; comment: string }>(
    `SELECT d.datname, r.rolname AS owner_role, shobj_description(d.oid, 'pg_database') AS comment
     FROM pg_database d JOIN pg_roles r ON r.oid = d.datdba
     WHERE shobj_description(d.oid, 'pg_database') LIKE $1`,
    [`${MANAGED}%`],
  );
  const present = new Map(wanted.filter((d) => d.state === 'present').map((d) => [d.name, d]));
  const owners = new Set([...present.values()].map((d) => d.owner));
  /** Managed databases by name: their owner here, or null when anyone the profile names may adopt them. */
  const recorded = new Map<string, string | null>();
  const errors: Record<string, string> = {};
  for (const row of rows) {
    const match = RECORD.exec(row.comment);
    if (match === null || !IDENT.test(row.datname)) continue;
    const restored = match[2] !== undefined && match[2] !== clusterId;
    const owner = restored ? null : (match[1] ?? null);
    const want = present.get(row.datname);
    const ownerGone = owner !== null && !owners.has(owner);
    const unwanted = want === undefined && !restored;
    if (unwanted || (want !== undefined && ownerGone && want.owner !== owner)) {
      const why = unwanted ? 'no shared instance asks for it any more' : 'its shared instance is gone';
      try {
        log(`dropping database ${row.datname}: ${why}`);
        await dropDatabase(client, row.datname, row.owner_role);
      } catch (error) {
        errors[row.datname] = `could not drop it: ${(error as Error).message}`;
        recorded.set(row.datname, owner);
      }
      continue;
    }
    recorded.set(row.datname, owner);
  }
  const existing = new Set(
    (await client.query<{ datname: string }>('SELECT datname FROM pg_database')).rows.map((r) => r.datname),
  );
  const made = new Map<string, string>();
  for (const db of wanted) {
    if (errors[db.name] !== undefined) continue;
    if (db.state === 'present' && existing.has(db.name) && !recorded.has(db.name)) {
      errors[db.name] = 'a database of that name exists and was not made by hyper_db: it is left alone';
      continue;
    }
    const owner = recorded.get(db.name);
    // Only a database this shared instance owns is ever dropped for it.
    if (db.state === 'absent' && (owner === undefined || (owner !== null && owner !== db.owner))) continue;
    if (db.state === 'present' && owner !== undefined && owner !== null && owner !== db.owner) {
      errors[db.name] = 'it holds the data of another shared instance of this cluster, which still exists';
      continue;
    }
    try {
      await applyDatabase(client, db, clusterId);
      if (db.state === 'present') made.set(db.name, db.owner);
    } catch (error) {
      errors[db.name] = (error as Error).message;
    }
  }
  return { present: made, errors };
}

async function dropDatabase(client: pg.Client, name: string, ownerRole: string): Promise<void> {
  await client.query(`DROP DATABASE ${name} WITH (FORCE)`);
  if (ownerRole === name && IDENT.test(ownerRole)) await client.query(`DROP ROLE IF EXISTS ${ownerRole}`);
}

async function applyDatabase(client: pg.Client, db: WantedDatabase, clusterId: string): Promise<void> {
  if (!IDENT.test(db.name) || !IDENT.test(db.role)) throw new Error(`invalid database or role name '${db.name}'`);
  const exists = async (sql: string, name: string): Promise<boolean> =>
    ((await client.query(sql, [name])).rowCount ?? 0) > 0;
  if (db.state === 'absent') {
    if (await exists('SELECT 1 FROM pg_database WHERE datname = $1', db.name))
      await client.query(`DROP DATABASE ${db.name} WITH (FORCE)`);
    if (await exists('SELECT 1 FROM pg_roles WHERE rolname = $1', db.role)) await client.query(`DROP ROLE ${db.role}`);
    return;
  }
  const password = `'${db.password.replace(/'/g, "''")}'`;
  if (await exists('SELECT 1 FROM pg_roles WHERE rolname = $1', db.role))
    await client.query(`ALTER ROLE ${db.role} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD ${password}`);
  else await client.query(`CREATE ROLE ${db.role} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD ${password}`);
  if (!(await exists('SELECT 1 FROM pg_database WHERE datname = $1', db.name)))
    await client.query(`CREATE DATABASE ${db.name} OWNER ${db.role}`);
  // Master ids and the derived cluster id are letters, digits, '-' and '_': checked anyway, they go into a literal.
  if (!REFERENCE.test(db.owner) || !REFERENCE.test(clusterId))
    throw new Error(`invalid shared instance reference or cluster id for '${db.name}'`);
  await client.query(`COMMENT ON DATABASE ${db.name} IS '${MANAGED}; owner ${db.owner}; cluster ${clusterId}'`);
  await client.query(`REVOKE ALL ON DATABASE ${db.name} FROM PUBLIC`);
  await client.query(`GRANT CONNECT, TEMPORARY ON DATABASE ${db.name} TO ${db.role}`);
}
