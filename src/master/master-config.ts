/** Options in, config out: the one place master settings get defaults and validation. */
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HoxError, badRequest } from '../shared/errors.js';
import { newToken } from '../shared/ids.js';
import { resolveArtifactSettings, type ArtifactSettings } from './artifact-collector.js';
import { resolveAuditSettings, type AuditSettings } from './audit-trail.js';
import type { MasterTlsSettings } from './pki/master-tls.js';

export interface MasterOptions {
  /** Directory for the SQLite file and the generated admin token. */
  dataDir: string;
  /** `HOST:PORT`. @default '127.0.0.1:8470' */
  listen?: string;
  /** `postgres://…` to use PostgreSQL instead of SQLite in the data dir. */
  databaseUrl?: string;
  /**
   * The key sealing the store's secrets (a file holding 32 random bytes in base64; every master of one PostgreSQL
   * store needs the same). Given, it must exist and be mode 0600.
   * @default '<dataDir>/store.key', generated on first start
   */
  storeKeyFile?: string;
  /** The admin token itself (e.g. from env HOX_ADMIN_TOKEN). */
  adminToken?: string;
  /** A file holding the admin token. */
  adminTokenFile?: string;
  /** URL clients should use, if not `https://listen`. */
  publicUrl?: string;
  /** pino level. @default 'info' */
  logLevel?: string;
  /** Artifact upload limit, per-user quota, grace period and collection interval. @default ARTIFACT_DEFAULTS */
  artifacts?: Partial<ArtifactSettings>;
  /** How long and how many audit entries are kept, and how often they are pruned. @default AUDIT_DEFAULTS */
  audit?: Partial<AuditSettings>;
  /** `--tls-cert` and `--tls-key`: the operator's certificate chain and key (PEM), both or neither. */
  tlsCertFile?: string;
  tlsKeyFile?: string;
  /** `--tls-name`: more names for the certificate the platform CA issues to the master. */
  tlsNames?: string[];
  /**
   * A call made with a node's token must also present that node's certificate (mutual TLS), except the call
   * that asks for one. On by default over HTTPS; `--allow-nodes-without-certificates` (false) lets nodes of an
   * older version, which present none, in while they are upgraded. Plain HTTP cannot carry certificates.
   */
  requireNodeCertificates?: boolean;
  /** Where the built web console is (scripts/bundle-console.mjs). @default this package's dist/console */
  consoleDir?: string;
  /**
   * Plain HTTP instead of HTTPS. Only for masters created inside a test process, whose clients are in the same
   * process; `hox master` and `hox up` have no such option.
   */
  insecurePlainHttp?: boolean;
}

export interface MasterConfig {
  readonly dataDir: string;
  readonly host: string;
  readonly port: number;
  readonly databaseUrl: string | undefined;
  readonly storeKeyFile: string;
  /** True when {@link storeKeyFile} is the default one, which the master generates if absent. */
  readonly generateStoreKey: boolean;
  readonly adminToken: string;
  /** Where the admin token is, when it came from a file (generated or given). */
  readonly adminTokenFile: string | undefined;
  readonly publicUrl: string | undefined;
  readonly logLevel: string;
  readonly artifacts: ArtifactSettings;
  readonly audit: AuditSettings;
  /** HTTPS settings; false: plain HTTP (in-process test masters only). */
  readonly tls: MasterTlsSettings | false;
  readonly requireNodeCertificates: boolean;
  readonly consoleDir: string;
}

/** dist/console of this package, from src/master (tsx) and dist/master (built) alike. */
const DEFAULT_CONSOLE_DIR = fileURLToPath(new URL('../../dist/console/', import.meta.url));

export const MASTER_DEFAULTS = { listen: '127.0.0.1:8470', logLevel: 'info' } as const;

export function parseListen(listen: string): { host: string; port: number } {
  const match = /^(\[[0-9a-fA-F:]+\]|[^:]+):(\d{1,5})$/.exec(listen);
  const port = match === null ? NaN : Number(match[2]);
  if (match === null || !(port >= 0 && port <= 65535)) throw badRequest('--listen', `'${listen}' is not HOST:PORT`);
  return { host: match[1]!.replace(/^\[|\]$/g, ''), port };
}

/**
 * Resolves and freezes the master's config. Creates the data dir. The admin
 * token comes from `adminToken`, else `adminTokenFile`, else
 * `<dataDir>/admin-token`, generated (mode 0600) on first start.
 */
export function resolveMasterConfig(options: MasterOptions): MasterConfig {
  const dataDir = resolve(options.dataDir);
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const { host, port } = parseListen(options.listen ?? MASTER_DEFAULTS.listen);
  if (options.databaseUrl !== undefined && !/^postgres(ql)?:\/\//.test(options.databaseUrl))
    throw badRequest('--database', 'must be a postgres:// URL');
  let adminToken = options.adminToken?.trim();
  let adminTokenFile: string | undefined;
  if (adminToken === undefined || adminToken === '') {
    adminTokenFile = resolve(options.adminTokenFile ?? join(dataDir, 'admin-token'));
    if (existsSync(adminTokenFile)) {
      adminToken = readFileSync(adminTokenFile, 'utf8').trim();
    } else if (options.adminTokenFile !== undefined) {
      throw new HoxError('HOX_BAD_REQUEST', `admin token file '${adminTokenFile}' does not exist`, {
        field: '--admin-token-file',
      });
    } else {
      adminToken = newToken('admin');
      writeFileSync(adminTokenFile, `${adminToken}\n`, { mode: 0o600 });
      chmodSync(adminTokenFile, 0o600);
    }
  }
  if (adminToken.length < 16) throw badRequest('admin token', 'must be at least 16 characters');
  if ((options.tlsCertFile === undefined) !== (options.tlsKeyFile === undefined))
    throw badRequest(
      options.tlsCertFile === undefined ? '--tls-cert' : '--tls-key',
      'give --tls-cert and --tls-key together (or neither: the platform CA issues the certificate)',
    );
  if (options.tlsCertFile !== undefined && (options.tlsNames ?? []).length > 0)
    throw badRequest('--tls-name', 'names the certificate the platform CA issues: not with --tls-cert');
  if (options.publicUrl !== undefined && !options.insecurePlainHttp && !/^https:\/\//.test(options.publicUrl))
    throw badRequest('--public-url', `'${options.publicUrl}' is not an https:// URL: the master speaks HTTPS only`);
  if (options.requireNodeCertificates === true && options.insecurePlainHttp === true)
    throw badRequest('requireNodeCertificates', 'needs HTTPS (node certificates are presented over TLS)');
  const tls: MasterTlsSettings | false = options.insecurePlainHttp
    ? false
    : {
        names: options.tlsNames ?? [],
        ...(options.tlsCertFile === undefined || options.tlsKeyFile === undefined
          ? {}
          : { files: { certFile: resolve(options.tlsCertFile), keyFile: resolve(options.tlsKeyFile) } }),
      };
  return Object.freeze({
    dataDir,
    host,
    port,
    databaseUrl: options.databaseUrl,
    storeKeyFile: resolve(options.storeKeyFile ?? join(dataDir, 'store.key')),
    generateStoreKey: options.storeKeyFile === undefined,
    adminToken,
    adminTokenFile,
    publicUrl: options.publicUrl,
    logLevel: options.logLevel ?? MASTER_DEFAULTS.logLevel,
    artifacts: resolveArtifactSettings(options.artifacts),
    audit: resolveAuditSettings(options.audit),
    tls,
    requireNodeCertificates: options.requireNodeCertificates ?? options.insecurePlainHttp !== true,
    consoleDir: resolve(options.consoleDir ?? DEFAULT_CONSOLE_DIR),
  });
}
