/**
 * The master as an object: `createMaster(config)`, then `start()` / `stop()`.
 * Used by `hox master`, `hox up` and the tests alike.
 *
 * @example
 * const master = createMaster(resolveMasterConfig({ dataDir: '/var/lib/hox' }));
 * const { url } = await master.start();
 */
import { dirname, join, resolve } from 'node:path';
import { pino, type Logger } from 'pino';
import { systemClock, type Clock } from '../shared/clock.js';
import { hashToken } from '../shared/ids.js';
import { PostgresStore } from '../store/postgres/postgres-store.js';
import { restrictDirectory, restrictFile, type StoreLog } from '../store/private-files.js';
import { SqliteStore } from '../store/sqlite/sqlite-store.js';
import { readStoreKeyFile } from '../store/store-key-file.js';
import type { Store } from '../store/store.js';
import { readBuiltinInternalTypes } from './builtin-releases.js';
import { collectArtifacts } from './artifact-collector.js';
import { ChangeFeed } from './change-feed.js';
import { buildHttpServer } from './http/server.js';
import { readConsoleAssets } from './http/console-assets.js';
import { isWildcard, masterCertificateNames, MasterTlsIdentity, openPlatformCa, rootsPem } from './pki/master-tls.js';
import type { PlatformCa } from './pki/platform-ca.js';
import type { TrustBundlePem } from '../shared/pki/trust-bundle.js';
import type { MasterConfig } from './master-config.js';

export interface Master {
  /** Opens the store, runs migrations, listens. Resolves with the URL it listens on. */
  start(): Promise<{ url: string }>;
  stop(): Promise<void>;
  readonly store: Store;
  readonly url: string;
  /** The platform CA as this master last read it from the store (once started). */
  readonly pki: PlatformCa;
  /** Presents a new certificate now (issued by the CA, or the operator's files read again). */
  renewCertificate(): Promise<void>;
  /** The PEM roots clients trust this master by (as `<data dir>/ca.pem`). */
  caRootsPem(): Promise<string>;
}

export interface MasterDeps {
  clock?: Clock;
  logger?: Logger;
  /** An already open store (tests); otherwise opened from the config. */
  store?: Store;
}

/** Change records are only needed by watchers that are behind; keep an hour. */
const CHANGE_RETENTION_MS = 3_600_000;

export function createMaster(config: MasterConfig, deps: MasterDeps = {}): Master {
  const clock = deps.clock ?? systemClock;
  const logger =
    deps.logger ??
    // Logs go to stderr: stdout is for what commands print (and --json).
    pino(
      { level: config.logLevel, redact: ['req.headers.authorization', '*.token', '*.adminToken'] },
      pino.destination(2),
    );
  let store: Store | undefined = deps.store;
  let feed: ChangeFeed | undefined;
  let app: Awaited<ReturnType<typeof buildHttpServer>> | undefined;
  let pruneTimer: NodeJS.Timeout | undefined;
  let artifactTimer: NodeJS.Timeout | undefined;
  let auditTimer: NodeJS.Timeout | undefined;
  let stopTls: (() => void) | undefined;
  let renewIdentity: (() => Promise<void>) | undefined;
  let pki: PlatformCa | undefined;
  let currentPki: (() => Promise<PlatformCa>) | undefined;
  let url = '';

  return {
    get store(): Store {
      if (store === undefined) throw new Error('master not started');
      return store;
    },
    get url(): string {
      return url;
    },
    get pki(): PlatformCa {
      if (pki === undefined) throw new Error('master not started');
      return pki;
    },
    async renewCertificate() {
      await renewIdentity?.();
    },
    async caRootsPem() {
      if (currentPki === undefined) throw new Error('master not started');
      return rootsPem(await currentPki());
    },
    async start() {
      store ??= await openStore(config, (message, level = 'info') => logger[level](message));
      feed = new ChangeFeed(store);
      const s0 = store;
      // The CA as the store holds it: reopened after a rotation (by this master or another), and at most a minute
      // old for what is served (the trust bundle), so every master of one store follows a rotation.
      let caOpenedAtMs = clock.nowMs();
      pki = await openPlatformCa(s0, clock);
      let tlsIdentity: MasterTlsIdentity | undefined;
      let bundle: { ca: PlatformCa; pem: TrustBundlePem } | undefined;
      let reopening: Promise<PlatformCa> | undefined;
      const freshCa = (): Promise<PlatformCa> =>
        (reopening ??= openPlatformCa(s0, clock)
          .then((ca) => {
            pki = ca;
            caOpenedAtMs = clock.nowMs();
            tlsIdentity?.noticeCa(ca);
            return ca;
          })
          .finally(() => (reopening = undefined)));
      const currentCa = async (): Promise<PlatformCa> =>
        pki !== undefined && clock.nowMs() - caOpenedAtMs < 60_000 ? pki : await freshCa();
      currentPki = currentCa;
      const tls = config.tls;
      const scheme = tls === false ? 'http' : 'https';
      // Listening on every address, its own clients (hox up, this machine) use the loopback.
      const urlHost = isWildcard(config.host) ? (config.host === '::' ? '::1' : '127.0.0.1') : config.host;
      const hostInUrl = urlHost.includes(':') ? `[${urlHost}]` : urlHost;
      const baseUrl = config.publicUrl ?? `${scheme}://${hostInUrl}:${config.port}`;
      if (tls !== false)
        tlsIdentity = await MasterTlsIdentity.create({
          store: s0,
          clock,
          logger,
          settings: tls,
          names: masterCertificateNames(config.host, config.publicUrl, tls.names),
          dataDir: config.dataDir,
          reopenCa: freshCa,
        });
      stopTls = () => tlsIdentity?.stop();
      renewIdentity = async () => await tlsIdentity?.renew();
      const identity = tlsIdentity?.current;
      app = await buildHttpServer({
        store,
        feed,
        clock,
        logger,
        adminTokenHash: hashToken(config.adminToken),
        env: {
          // Known once listening (a port of 0 is chosen then).
          get baseUrl() {
            return url === '' ? baseUrl : url;
          },
          internalSoftwareTypes: readBuiltinInternalTypes(),
          pki: {
            masterCertificate: () => tlsIdentity?.current,
            rotated: async () => {
              await freshCa();
              await tlsIdentity?.renew();
            },
          },
        },
        artifacts: config.artifacts,
        console: readConsoleAssets(config.consoleDir),
        requireNodeCertificates: config.requireNodeCertificates,
        // Anyone may ask (no token): one bundle (CRLs signed) per CA reading, not per request.
        trustBundle: async () => {
          const ca = await currentCa();
          if (bundle?.ca !== ca) bundle = { ca, pem: await ca.trustBundle() };
          return bundle.pem;
        },
        ...(identity === undefined
          ? {}
          : { https: { key: identity.keyPem, cert: identity.certPem, ca: identity.clientCaPem } }),
      });
      await app.listen({ host: config.host, port: config.port });
      const address = app.server.address();
      const port = typeof address === 'object' && address !== null ? address.port : config.port;
      url = config.publicUrl ?? `${scheme}://${hostInUrl}:${port}`;
      if (tlsIdentity !== undefined && identity !== undefined) {
        tlsIdentity.attach(
          app.server as unknown as { setSecureContext(options: { key: string; cert: string; ca: string }): void },
          pki,
        );
        logger.info(
          { certificate: identity.source, notAfter: identity.notAfter.toISOString(), caPin: pki.pin },
          'master speaks HTTPS',
        );
      }
      const s = store;
      pruneTimer = setInterval(() => {
        s.pruneChanges(clock.nowMs() - CHANGE_RETENTION_MS).catch((err: unknown) =>
          logger.warn({ err }, 'pruning the change log failed'),
        );
      }, 600_000);
      pruneTimer.unref();
      artifactTimer = setInterval(() => {
        collectArtifacts(s, clock.nowMs(), config.artifacts.graceMs)
          .then((deleted) => {
            if (deleted > 0) logger.info({ deleted }, 'deleted unreferenced artifacts');
          })
          .catch((err: unknown) => logger.warn({ err }, 'collecting unreferenced artifacts failed'));
      }, config.artifacts.collectIntervalMs);
      artifactTimer.unref();
      const pruneAudit = () =>
        s
          .pruneAudit(clock.nowMs() - config.audit.maxAgeMs, config.audit.maxRows)
          .then((deleted) => {
            if (deleted > 0) logger.info({ deleted }, 'pruned old audit entries');
          })
          .catch((err: unknown) => logger.warn({ err }, 'pruning the audit trail failed'));
      await pruneAudit();
      auditTimer = setInterval(() => void pruneAudit(), config.audit.pruneIntervalMs);
      auditTimer.unref();
      return { url };
    },
    async stop() {
      if (pruneTimer !== undefined) clearInterval(pruneTimer);
      if (artifactTimer !== undefined) clearInterval(artifactTimer);
      if (auditTimer !== undefined) clearInterval(auditTimer);
      stopTls?.();
      feed?.close();
      await app?.close();
      if (deps.store === undefined) await store?.close();
    },
  };
}

/**
 * The data dir made private, the store key read (or generated), the store opened with it. A key generated here and
 * refused by the store (a PostgreSQL store other masters sealed with their key) is removed again.
 */
async function openStore(config: MasterConfig, log: StoreLog): Promise<Store> {
  restrictDirectory(config.dataDir, log);
  if (config.adminTokenFile !== undefined && dirname(config.adminTokenFile) === resolve(config.dataDir))
    restrictFile(config.adminTokenFile, log);
  const key = readStoreKeyFile(config.storeKeyFile, { generate: config.generateStoreKey }, log);
  try {
    return config.databaseUrl === undefined
      ? await SqliteStore.open({ filename: join(config.dataDir, 'master.sqlite'), secrets: key.box, log })
      : await PostgresStore.open({ connectionString: config.databaseUrl, secrets: key.box, log });
  } catch (error) {
    if (key.created) key.discard();
    throw error;
  }
}
