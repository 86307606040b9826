/**
 * The master's side of the platform PKI: the platform CA it holds (state in the store, keys sealed with the store
 * key, so every master of one PostgreSQL store serves the same CA) and the identity its HTTPS server presents.
 *
 * The server's certificate is either given by the operator (`--tls-cert/--tls-key`, PEM files: a certificate chain
 * from another CA, served as is) or issued by the platform CA for the names the master is reached by: the listen
 * address (every local address when it listens on all of them), `localhost`, the public URL's host and any
 * `--tls-name`. An issued certificate's key lives only in the master's memory; the master asks for a new
 * certificate at two thirds of its life (and after a CA rotation) and swaps it in without closing connections.
 *
 * @example
 * const ca = await openPlatformCa(store, clock);
 * const identity = await masterServerIdentity(ca, config);
 * Fastify({ https: { key: identity.keyPem, cert: identity.certPem } });
 */
import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { hostname, networkInterfaces } from 'node:os';
import { isIP } from 'node:net';
import type { Clock } from '../../shared/clock.js';
import { HoxError } from '../../shared/errors.js';
import { generateKeyPair, privateKeyToPem, readCertificateBundle, subtle, x509 } from '../../shared/pki/x509.js';
import { renewalAtMs } from '../../shared/pki/renewal.js';
import type { SecretBox } from '../../store/secret-box.js';
import type { PkiStateId, Store, StoreTx } from '../../store/store.js';
import { PlatformCa } from './platform-ca.js';

export interface MasterTlsSettings {
  /** A PEM certificate chain (leaf first) and its key, given by the operator; otherwise the platform CA issues one. */
  files?: { certFile: string; keyFile: string };
  /** More DNS names or IP addresses for the issued certificate (`--tls-name`). */
  names: readonly string[];
}

export interface ServerIdentity {
  keyPem: string;
  /** The leaf, then the CAs a client may need to reach a root it trusts (issuing CA, cross-certificates). */
  certPem: string;
  notAfter: Date;
  /** `platform`: issued by the platform CA (renewed by the master); `files`: the operator's. */
  source: 'platform' | 'files';
  /** The platform CA's issuing CA when it was made (it signed it, for `platform`): a rotation is noticed by it. */
  issuerSerial: string;
  /** What clients' certificates must chain to (mutual TLS): the platform CA's roots and issuing CAs, PEM. */
  clientCaPem: string;
  dnsNames: string[];
  ipAddresses: string[];
}

/** Opens the platform CA kept in the store, creating it on first use (once, even with several masters starting). */
export async function openPlatformCa(store: Store, clock: Clock): Promise<PlatformCa> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await store.transaction((tx) => openCaInTransaction(tx, store.box, () => clock.nowMs()));
    } catch (error) {
      // Another master created it between our read and our write: open theirs.
      if (attempt < 3 && error instanceof HoxError && error.code === 'HOX_CONFLICT') continue;
      throw error;
    }
  }
}

/**
 * The platform CA (or, with `which` = `sites`, the sites CA: `site-certificates.ts`) as this transaction sees it; a
 * CA that does not exist yet is created in it.
 */
export async function openCaInTransaction(
  tx: StoreTx,
  box: SecretBox,
  nowMs: () => number,
  which: PkiStateId = 'platform',
): Promise<PlatformCa> {
  let exists = true;
  return await PlatformCa.open({
    box,
    now: () => new Date(nowMs()),
    ...(which === 'sites' ? SITES_CA : {}),
    storage: {
      description: `the store's ${which} CA`,
      load: async () => {
        const text = await tx.loadPkiState(which);
        exists = text !== undefined;
        return text;
      },
      save: async (text) => {
        await tx.savePkiState(text, { create: !exists, atMs: nowMs(), id: which });
        exists = true;
      },
    },
  });
}

const DAY_MS = 86_400_000;

/**
 * The sites CA: its own name and keys, never the platform CA's (a site's owner chooses its host names; from the
 * platform CA, a certificate for the master's name would let them pose as the master). Its leaves live up to 90
 * days, as a public CA's do; its issuing CA a year, its root ten.
 */
const SITES_CA = {
  name: 'HyperOpenX sites',
  lifetimes: { rootMs: 3650 * DAY_MS, issuingCaMs: 365 * DAY_MS, leafMs: 30 * DAY_MS, maxLeafMs: 90 * DAY_MS },
} as const;

/** The names an issued master certificate covers, from the listen host, the public URL and `--tls-name`s. */
export function masterCertificateNames(
  listenHost: string,
  publicUrl: string | undefined,
  extra: readonly string[],
): { dnsNames: string[]; ipAddresses: string[] } {
  const dns = new Set<string>(['localhost']);
  const ips = new Set<string>(['127.0.0.1', '::1']);
  const add = (name: string): void => {
    const bare = name.replace(/^\[|\]$/g, '').toLowerCase();
    if (bare === '') return;
    if (isIP(bare) !== 0) ips.add(bare);
    // A machine's hostname may not be a valid DNS name (underscores…): then it is simply not covered.
    else if (/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/.test(bare)) dns.add(bare);
  };
  if (isWildcard(listenHost)) {
    add(hostname());
    // Every local address, up to a bound (a certificate names 32 at most): past it, name the others with --tls-name.
    const local = Object.values(networkInterfaces())
      .flatMap((addresses) => addresses ?? [])
      .filter((a) => !a.internal && !a.address.startsWith('fe80:'))
      .map((a) => a.address);
    for (const address of local.slice(0, 16)) add(address);
  } else add(listenHost);
  if (publicUrl !== undefined) add(new URL(publicUrl).hostname);
  for (const name of extra) {
    const bare = name.trim().toLowerCase();
    const before = dns.size + ips.size;
    add(bare);
    if (dns.size + ips.size === before && !dns.has(bare) && !ips.has(bare))
      throw new HoxError(
        'HOX_BAD_REQUEST',
        `--tls-name: '${name.slice(0, 80)}' is neither a DNS name nor an IP address`,
        {
          field: '--tls-name',
        },
      );
  }
  if (dns.size + ips.size > 32)
    throw new HoxError(
      'HOX_BAD_REQUEST',
      `--tls-name: a certificate names 32 hosts at most, this one would name ${dns.size + ips.size}`,
      { field: '--tls-name' },
    );
  return { dnsNames: [...dns], ipAddresses: [...ips] };
}

/** Whether the master listens on every address (its own clients then reach it on the loopback). */
export function isWildcard(host: string): boolean {
  return host === '0.0.0.0' || host === '::';
}

/** The identity the HTTPS server presents now: the operator's files, or a fresh certificate from the platform CA. */
export async function masterServerIdentity(
  ca: PlatformCa,
  settings: MasterTlsSettings,
  names: { dnsNames: string[]; ipAddresses: string[] },
): Promise<ServerIdentity> {
  const { roots, issuers, crossCertificates } = ca.certificates();
  const clientCaPem = pemText([...roots, ...issuers, ...crossCertificates]);
  const issuerSerial = ca.status().issuers[0]!.serial;
  if (settings.files !== undefined) return { ...identityFromFiles(settings.files), clientCaPem, issuerSerial };
  const keys = await generateKeyPair(true);
  const publicKeyPem = x509.PemConverter.encode(await subtle.exportKey('spki', keys.publicKey), 'PUBLIC KEY');
  const issued = await ca.issueMasterServer({ ...names, publicKeyPem });
  return {
    keyPem: await privateKeyToPem(keys.privateKey),
    // Cross-certificates let a client that trusts only an older root follow the chain to the current one.
    certPem: pemText([issued.chainPem, ...crossCertificates]),
    notAfter: issued.notAfter,
    source: 'platform',
    issuerSerial,
    clientCaPem,
    ...names,
  };
}

/** When to ask for the next certificate: at two thirds of this one's life, at least a minute from now. */
export function renewalDelayMs(identity: ServerIdentity, nowMs: number): number {
  const notBefore = readCertificateBundle(identity.certPem)[0]!.notBefore.getTime();
  const at = renewalAtMs(notBefore, identity.notAfter.getTime());
  return Math.max(60_000, at - nowMs);
}

/** The roots a client of this master trusts, as one PEM text (`<data dir>/ca.pem`, the CLI config). */
export function rootsPem(ca: PlatformCa): string {
  return pemText(ca.certificates().roots);
}

/** PEM texts as one, each on its own lines. */
function pemText(pems: readonly string[]): string {
  return `${pems.map((pem) => pem.trim()).join('\n')}\n`;
}

function identityFromFiles(files: {
  certFile: string;
  keyFile: string;
}): Omit<ServerIdentity, 'clientCaPem' | 'issuerSerial'> {
  const read = (path: string, what: string): string => {
    try {
      return readFileSync(path, 'utf8');
    } catch (error) {
      throw new HoxError('HOX_BAD_REQUEST', `${what} '${path}' cannot be read: ${(error as Error).message}`, {
        field: what,
        cause: error,
      });
    }
  };
  const certPem = read(files.certFile, '--tls-cert');
  const keyPem = read(files.keyFile, '--tls-key');
  let chain: x509.X509Certificate[];
  try {
    chain = readCertificateBundle(certPem);
  } catch (error) {
    throw new HoxError('HOX_BAD_REQUEST', `--tls-cert '${files.certFile}' holds no PEM certificate`, {
      field: '--tls-cert',
      cause: error,
    });
  }
  if (chain.length === 0 || !keyPem.includes('PRIVATE KEY-----'))
    throw new HoxError(
      'HOX_BAD_REQUEST',
      chain.length === 0
        ? `--tls-cert '${files.certFile}' holds no PEM certificate`
        : `--tls-key '${files.keyFile}' holds no PEM private key`,
      { field: chain.length === 0 ? '--tls-cert' : '--tls-key' },
    );
  const leaf = chain[0]!;
  let key: KeyObject;
  try {
    key = createPrivateKey(keyPem);
  } catch (error) {
    throw new HoxError(
      'HOX_BAD_REQUEST',
      `--tls-key '${files.keyFile}' is not a usable PEM private key (an encrypted key is not supported)`,
      { field: '--tls-key', cause: error },
    );
  }
  if (!new X509Certificate(certPem).checkPrivateKey(key))
    throw new HoxError(
      'HOX_BAD_REQUEST',
      `--tls-key '${files.keyFile}' is not the key of the certificate in '${files.certFile}'`,
      { field: '--tls-key' },
    );
  if (leaf.notAfter.getTime() <= Date.now())
    throw new HoxError(
      'HOX_BAD_REQUEST',
      `--tls-cert '${files.certFile}' expired on ${leaf.notAfter.toISOString()}: renew it first`,
      { field: '--tls-cert' },
    );
  const san = leaf.getExtension(x509.SubjectAlternativeNameExtension);
  const names = san?.names.toJSON() ?? [];
  return {
    keyPem,
    certPem,
    notAfter: leaf.notAfter,
    source: 'files',
    dnsNames: names.filter((n) => n.type === 'dns').map((n) => n.value),
    ipAddresses: names.filter((n) => n.type === 'ip').map((n) => n.value),
  };
}

/** An issuing CA with less than this left is replaced when the master renews its certificate (half its life). */
const ISSUER_RENEWAL_MS = 182 * 86_400_000;

/**
 * The identity the master's HTTPS server presents, kept current: renewed at two thirds of its life (retried every
 * minute on failure, never after stop), after a rotation, and when another master of the store rotated the CA; the
 * issuing CA itself is rotated once half its life is gone. Writes the roots to `<data dir>/ca.pem` (public).
 */
export class MasterTlsIdentity {
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private renewing = false;
  private server: { setSecureContext(options: { key: string; cert: string; ca: string }): void } | undefined;

  private constructor(
    private identity: ServerIdentity,
    private readonly options: {
      store: Store;
      clock: Clock;
      logger: Logger;
      settings: MasterTlsSettings;
      names: { dnsNames: string[]; ipAddresses: string[] };
      dataDir: string;
      /** Reopens the CA from the store (and makes it the master's current one). */
      reopenCa: () => Promise<PlatformCa>;
    },
  ) {}

  static async create(options: MasterTlsIdentity['options']): Promise<MasterTlsIdentity> {
    if (options.settings.files === undefined) await rotateAgingIssuer(options.store, options.clock);
    const ca = await options.reopenCa();
    return new MasterTlsIdentity(await masterServerIdentity(ca, options.settings, options.names), options);
  }

  get current(): ServerIdentity {
    return this.identity;
  }

  /** The server now listens: keep what it presents current. */
  attach(server: { setSecureContext(options: { key: string; cert: string; ca: string }): void }, ca: PlatformCa): void {
    this.server = server;
    this.writeRoots(ca);
    this.schedule(renewalDelayMs(this.identity, this.options.clock.nowMs()));
  }

  /**
   * A new certificate now, from the current issuing CA (the operator's files read again), and the CAs clients'
   * certificates are checked against.
   */
  async renew(): Promise<void> {
    if (this.stopped) return;
    this.renewing = true;
    let ca: PlatformCa;
    try {
      await rotateAgingIssuer(this.options.store, this.options.clock);
      ca = await this.options.reopenCa();
      if (this.stopped) return;
      this.identity = await masterServerIdentity(ca, this.options.settings, this.options.names);
    } finally {
      this.renewing = false;
    }
    this.server?.setSecureContext({
      key: this.identity.keyPem,
      cert: this.identity.certPem,
      ca: this.identity.clientCaPem,
      // (requestCert and rejectUnauthorized stay as the server was made: they are not context options)
    });
    this.writeRoots(ca);
    this.schedule(renewalDelayMs(this.identity, this.options.clock.nowMs()));
  }

  /** The CA was read again: if its issuing CA changed (a rotation by another master), present a new certificate. */
  noticeCa(ca: PlatformCa): void {
    if (this.stopped || this.renewing) return;
    if (ca.status().issuers[0]?.serial !== this.identity.issuerSerial) this.schedule(0);
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.renew().catch((err: unknown) => {
        this.options.logger.error({ err }, 'renewing the master certificate failed; trying again in a minute');
        this.schedule(60_000);
      });
    }, delayMs);
    this.timer.unref();
  }

  private writeRoots(ca: PlatformCa): void {
    const path = join(this.options.dataDir, 'ca.pem');
    // With the operator's certificate the platform roots do not verify this master: no ca.pem to mislead.
    if (this.identity.source !== 'platform') return rmSync(path, { force: true });
    writeFileSync(`${path}.tmp`, rootsPem(ca), { mode: 0o644 });
    renameSync(`${path}.tmp`, path);
  }
}

/**
 * Rotates the issuing CA when less than half its life is left, the root when less than a year is (one transaction:
 * a racing master sees it done).
 */
async function rotateAgingIssuer(store: Store, clock: Clock): Promise<void> {
  await store.transaction(async (tx) => {
    await rotateIfAging(await openCaInTransaction(tx, store.box, () => clock.nowMs()), clock.nowMs());
  });
}

/**
 * Rotates a CA's issuing CA when less than half a year of it is left, its root when less than a year is (the
 * platform CA at the master's renewals, the sites CA at each issuance).
 */
export async function rotateIfAging(ca: PlatformCa, nowMs: number): Promise<void> {
  const { roots, issuers } = ca.status();
  const left = (notAfter: Date | undefined) => (notAfter?.getTime() ?? 0) - nowMs;
  // A root near its end caps its issuing CAs' lives: renew the root (cross-signed: pinned clients follow).
  if (left(roots[0]?.notAfter) < 2 * ISSUER_RENEWAL_MS) await ca.rotateRoot();
  else if (left(issuers[0]?.notAfter) < ISSUER_RENEWAL_MS) await ca.rotateIssuingCa();
}
