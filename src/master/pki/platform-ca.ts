/**
 * The platform CA, held by the master: a root CA and an issuing CA (ECDSA P-256, see `src/shared/pki/x509.ts`),
 * issuing the certificates of the master's HTTPS server, of compute nodes and instances (TLS clients) and of
 * hyper_db members (TLS servers and clients of each other). The master opens it on its store
 * (`master-tls.ts`: `openPlatformCa`), with the store's {@link SecretBox}.
 *
 * Keys at rest: each CA key is exported as PKCS#8 and sealed with the store's key (AES-256-GCM, `secret-box.ts`),
 * bound to its place (`pki.key:<serial>`), in the state the store keeps. No key is ever written in clear; loaded
 * keys are imported non-extractable.
 *
 * Lifetimes and revocation. Issue 14 asks that "a destroyed node's or instance's certificate stops working at once".
 * Short lifetimes alone cannot give that (a certificate works until it expires), so the CA keeps a list of revoked
 * serials and signs a CRL per CA from it: the master, which revokes, checks the live list at once
 * (`revokedSerials()`, or a new TLS context with the new CRL); other verifiers fetch the bundle's CRLs, which live
 * only {@link DEFAULT_LIFETIMES}.crlMs (a day) so a verifier that stops fetching fails closed rather than trusting
 * forever. Leaves still live briefly (a week by default, 30 days at most, renewed by their holders) because that
 * bounds what a stolen key is worth if a CRL is missed, keeps the CRL short (an entry is dropped once its
 * certificate expires) and makes renewal a routine path rather than a rare one.
 *
 * Rotation with overlap. `rotateIssuingCa` makes a new issuing CA under the current root; the old one stays in the
 * trust bundle (and its CRL stays signed) until its last possible leaf expires, so nothing it issued breaks.
 * `rotateRoot` makes a new root and a new issuing CA under it, and a cross-certificate of the new root signed by the
 * old one: verifiers that hold the whole bundle trust both roots; a verifier that knows only the old root (or its
 * pin) can still follow new chains through the cross-certificate until it learns the new root. The old root leaves
 * the bundle when its issuing CAs have all expired.
 */
import { randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import { HoxError } from '../../shared/errors.js';
import { caPin } from '../../shared/pki/ca-pin.js';
import { subjectName, type CertificateKind } from '../../shared/pki/certificate-profile.js';
import { readCertificateRequest, readPublicKey } from '../../shared/pki/certificate-request.js';
import type { TrustBundlePem } from '../../shared/pki/trust-bundle.js';
import type { TrustMaterial } from '../../shared/pki/verify-certificate.js';
import {
  crlToPem,
  generateKeyPair,
  KEY_ALGORITHM,
  newSerial,
  normalizeSerial,
  SIGNING_ALGORITHM,
  subtle,
  x509,
} from '../../shared/pki/x509.js';
import type { SecretBox } from '../../store/secret-box.js';

const DAY_MS = 24 * 3600 * 1000;

/** Loads and saves the CA's state text: the store's `pki_state` row (`src/master/pki/master-tls.ts`). */
export interface PkiStateStorage {
  /** The saved text, or undefined before the first save. */
  load(): Promise<string | undefined>;
  save(text: string): Promise<void>;
  /** Names the place in errors and logs. */
  readonly description: string;
}

export interface PkiLifetimes {
  rootMs: number;
  issuingCaMs: number;
  /** Default leaf lifetime. */
  leafMs: number;
  /** Longest leaf lifetime a caller may ask for. */
  maxLeafMs: number;
  /** How long a CRL is current (its `nextUpdate - thisUpdate`). */
  crlMs: number;
}

/** Root 10 years, issuing CA 1 year (rotate it at half life), leaves a week (30 days at most), CRLs a day. */
export const DEFAULT_LIFETIMES: Readonly<PkiLifetimes> = Object.freeze({
  rootMs: 3650 * DAY_MS,
  issuingCaMs: 365 * DAY_MS,
  leafMs: 7 * DAY_MS,
  maxLeafMs: 30 * DAY_MS,
  crlMs: DAY_MS,
});

/** Certificates start this long before issuance, for clocks slightly behind the master's. */
const BACKDATE_MS = 5 * 60 * 1000;
const MAX_NAMES = 32;
const DNS_NAME = /^(?=.{1,253}$)(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/;

interface CaRecord {
  certPem: string;
  /** PKCS#8 of the private key, sealed with the store key for `pki.key:<serial>`. */
  sealedKey: string;
}

interface RevokedRecord {
  serial: string;
  revokedAtMs: number;
  /** Until when the certificate could have been used; the entry leaves the CRLs after. */
  notAfterMs: number;
  reason: x509.X509CrlReason;
}

interface PkiState {
  version: 1;
  /** Random id of this PKI, in CA names so two platforms' CAs never share a name. */
  pkiId: string;
  generation: number;
  /** Newest first; the first is current. */
  roots: CaRecord[];
  /** Newest first; the first is current (issued by the first root). */
  issuers: CaRecord[];
  /** New roots signed by older ones (PEM). */
  crossCertificates: string[];
  revoked: RevokedRecord[];
}

interface LoadedCa {
  cert: x509.X509Certificate;
  key: CryptoKey;
}

/** Where the holder's public key comes from: a PKCS#10 CSR (signature checked) or a PEM SubjectPublicKeyInfo. */
export type KeySource = { csrPem: string } | { publicKeyPem: string };

export interface IssuedCertificate {
  certificate: x509.X509Certificate;
  /** The leaf's PEM. */
  certificatePem: string;
  /** Leaf then issuing CA: what the holder presents in TLS (`cert` option). */
  chainPem: string;
  serial: string;
  notAfter: Date;
}

export interface PkiStatus {
  pin: string;
  roots: { subject: string; serial: string; pin: string; notAfter: Date; current: boolean }[];
  issuers: { subject: string; serial: string; notAfter: Date; current: boolean }[];
  crossCertificates: number;
  revoked: number;
}

export interface PlatformCaOptions {
  storage: PkiStateStorage;
  /** The store's key: seals the CA keys. */
  box: SecretBox;
  now?: () => Date;
  lifetimes?: Partial<PkiLifetimes>;
  /**
   * What its CAs are called: `HyperOpenX` (the platform CA) by default; the sites CA (`site-certificates.ts`) is
   * `HyperOpenX sites`, so nobody mistakes one for the other.
   */
  name?: string;
}

export class PlatformCa {
  private constructor(
    private state: PkiState,
    private readonly keys: Map<string, CryptoKey>,
    private readonly options: PlatformCaOptions,
    private readonly lifetimes: PkiLifetimes,
  ) {}

  /** Opens the CA kept in `storage`, creating a root and an issuing CA if it holds none. */
  static async open(options: PlatformCaOptions): Promise<PlatformCa> {
    const lifetimes = { ...DEFAULT_LIFETIMES, ...options.lifetimes };
    if (lifetimes.maxLeafMs > lifetimes.issuingCaMs / 2 || lifetimes.issuingCaMs > lifetimes.rootMs / 2)
      throw new HoxError(
        'HOX_BAD_REQUEST',
        'PKI lifetimes: a leaf must live at most half an issuing CA, which lives at most half a root',
        {
          field: 'lifetimes',
        },
      );
    const text = await options.storage.load();
    if (text === undefined) {
      const ca = new PlatformCa(
        {
          version: 1,
          pkiId: randomBytes(4).toString('hex'),
          generation: 0,
          roots: [],
          issuers: [],
          crossCertificates: [],
          revoked: [],
        },
        new Map(),
        options,
        lifetimes,
      );
      await ca.rotateRoot();
      return ca;
    }
    const state = parseState(text, options.storage.description);
    const keys = new Map<string, CryptoKey>();
    for (const record of [...state.roots, ...state.issuers]) {
      const serial = normalizeSerial(new x509.X509Certificate(record.certPem).serialNumber);
      const pkcs8 = Buffer.from(options.box.open(record.sealedKey, `pki.key:${serial}`), 'base64');
      keys.set(serial, await subtle.importKey('pkcs8', pkcs8, KEY_ALGORITHM, false, ['sign']));
    }
    return new PlatformCa(state, keys, options, lifetimes);
  }

  private now(): Date {
    return this.options.now?.() ?? new Date();
  }

  private get caName(): string {
    return this.options.name ?? 'HyperOpenX';
  }

  private load(record: CaRecord): LoadedCa {
    const cert = new x509.X509Certificate(record.certPem);
    const key = this.keys.get(normalizeSerial(cert.serialNumber));
    if (key === undefined) throw new HoxError('HOX_INTERNAL', `PKI: no key for CA '${cert.subject}'`);
    return { cert, key };
  }

  private currentIssuer(): LoadedCa {
    const record = this.state.issuers[0];
    if (record === undefined) throw new HoxError('HOX_INTERNAL', 'PKI: no issuing CA');
    return this.load(record);
  }

  /** The pin of the current root (`sha256:<hex>`), for registration tokens and `hox login`. */
  get pin(): string {
    return caPin(new x509.X509Certificate(this.state.roots[0]!.certPem));
  }

  /** Issues the master's HTTPS server certificate, for its DNS names and IP addresses. */
  async issueMasterServer(request: { dnsNames?: string[]; ipAddresses?: string[]; lifetimeMs?: number } & KeySource) {
    const names = checkNames(request.dnsNames ?? [], request.ipAddresses ?? []);
    const commonName = request.dnsNames?.[0] ?? request.ipAddresses?.[0] ?? 'master';
    return this.issue('master', commonName, request, names, [x509.ExtendedKeyUsage.serverAuth]);
  }

  /** Issues a compute node's client certificate (mutual TLS with the master); the subject is the node id. */
  async issueComputeNode(request: { nodeId: string; lifetimeMs?: number } & KeySource) {
    return this.issue('compute-node', request.nodeId, request, [], [x509.ExtendedKeyUsage.clientAuth]);
  }

  /** Issues a user's client certificate (SlapOS's clients, `slapos request`); the subject is the user id. */
  async issueUser(request: { userId: string; lifetimeMs?: number } & KeySource) {
    return this.issue('user', request.userId, request, [], [x509.ExtendedKeyUsage.clientAuth]);
  }

  /** Issues an instance's client certificate; the subject is its guid (`SOFTINST-…`). */
  async issueInstance(request: { instanceGuid: string; lifetimeMs?: number } & KeySource) {
    return this.issue('instance', request.instanceGuid, request, [], [x509.ExtendedKeyUsage.clientAuth]);
  }

  /** Issues a hyper_db member's certificate: a server for its IPs (and names), and a client of its peers. */
  async issueHyperDbMember(
    request: { memberName: string; ipAddresses: string[]; dnsNames?: string[]; lifetimeMs?: number } & KeySource,
  ) {
    const names = checkNames(request.dnsNames ?? [], request.ipAddresses);
    return this.issue('hyper-db-member', request.memberName, request, names, [
      x509.ExtendedKeyUsage.serverAuth,
      x509.ExtendedKeyUsage.clientAuth,
    ]);
  }

  /**
   * Issues a web site's server certificate (hyper_cdn's sites): its host names, or the IP addresses of the server
   * that answers for it. Only the sites CA issues these (`site-certificates.ts` checks who may have which name).
   */
  async issueSite(
    request: { siteId: string; dnsNames: string[]; ipAddresses?: string[]; lifetimeMs?: number } & KeySource,
  ) {
    const names = checkNames(request.dnsNames, request.ipAddresses ?? []);
    return this.issue('site', request.siteId, request, names, [x509.ExtendedKeyUsage.serverAuth]);
  }

  private async issue(
    kind: CertificateKind,
    id: string,
    request: { lifetimeMs?: number } & KeySource,
    names: x509.JsonGeneralNames,
    usages: x509.ExtendedKeyUsage[],
  ): Promise<IssuedCertificate> {
    const subject = subjectName({ kind, id });
    if (kind === 'master' || kind === 'hyper-db-member' || kind === 'site') {
      if (names.length === 0)
        throw new HoxError('HOX_BAD_REQUEST', `a ${kind} certificate needs at least one DNS name or IP address`, {
          field: 'ipAddresses',
        });
    }
    const lifetimeMs = request.lifetimeMs ?? this.lifetimes.leafMs;
    if (!Number.isInteger(lifetimeMs) || lifetimeMs < 60_000 || lifetimeMs > this.lifetimes.maxLeafMs)
      throw new HoxError(
        'HOX_BAD_REQUEST',
        `lifetimeMs: ${lifetimeMs} is not between a minute and ${this.lifetimes.maxLeafMs} ms`,
        { field: 'lifetimeMs' },
      );
    const publicKey =
      'csrPem' in request
        ? (await readCertificateRequest(request.csrPem, 'csrPem')).publicKey
        : readPublicKey(request.publicKeyPem, 'publicKeyPem');
    const issuer = this.currentIssuer();
    const now = this.now();
    const notAfter = new Date(Math.min(now.getTime() + lifetimeMs, issuer.cert.notAfter.getTime()));
    const extensions: x509.Extension[] = [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension(usages, false),
      await x509.SubjectKeyIdentifierExtension.create(publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(issuer.cert.publicKey),
    ];
    if (names.length > 0) extensions.push(new x509.SubjectAlternativeNameExtension(names, false));
    const certificate = await x509.X509CertificateGenerator.create({
      serialNumber: newSerial(),
      subject,
      issuer: issuer.cert.subject,
      notBefore: new Date(now.getTime() - BACKDATE_MS),
      notAfter,
      publicKey,
      signingKey: issuer.key,
      signingAlgorithm: SIGNING_ALGORITHM,
      extensions,
    });
    const certificatePem = certificate.toString('pem');
    return {
      certificate,
      certificatePem,
      chainPem: `${certificatePem}\n${issuer.cert.toString('pem')}\n`,
      serial: normalizeSerial(certificate.serialNumber),
      notAfter,
    };
  }

  /**
   * Revokes a certificate by serial from now on: in `revokedSerials()` at once and in every CRL signed from now.
   * `notAfter` (the certificate's) lets the entry leave the CRLs once it expired; unknown, it stays as long as the
   * longest leaf could live.
   */
  async revoke(serial: string, options: { notAfter?: Date; reason?: x509.X509CrlReason } = {}): Promise<void> {
    const normalized = normalizeSerial(serial);
    if (!/^[0-9a-f]{1,40}$/.test(normalized))
      throw new HoxError('HOX_BAD_REQUEST', `serial: '${serial.slice(0, 60)}' is not a certificate serial (hex)`, {
        field: 'serial',
      });
    if (this.state.revoked.some((entry) => entry.serial === normalized)) return;
    const now = this.now().getTime();
    this.state.revoked.push({
      serial: normalized,
      revokedAtMs: now,
      notAfterMs: options.notAfter?.getTime() ?? now + this.lifetimes.maxLeafMs,
      reason: options.reason ?? x509.X509CrlReason.cessationOfOperation,
    });
    await this.save();
  }

  /** The serials revoked and not yet expired: what the master checks on every mutual-TLS call. */
  revokedSerials(): Set<string> {
    const now = this.now().getTime();
    return new Set(this.state.revoked.filter((entry) => entry.notAfterMs >= now).map((entry) => entry.serial));
  }

  /** Fresh CRLs, one per CA in the bundle (roots and issuing CAs), each listing every live revoked serial. */
  async crls(): Promise<x509.X509Crl[]> {
    const now = this.now();
    const entries = this.state.revoked
      .filter((entry) => entry.notAfterMs >= now.getTime())
      .map((entry) => ({
        serialNumber: entry.serial,
        revocationDate: new Date(entry.revokedAtMs),
        reason: entry.reason,
      }));
    const crls: x509.X509Crl[] = [];
    for (const record of [...this.state.roots, ...this.state.issuers]) {
      const ca = this.load(record);
      crls.push(
        await x509.X509CrlGenerator.create({
          issuer: ca.cert.subject,
          thisUpdate: new Date(now.getTime() - BACKDATE_MS),
          nextUpdate: new Date(now.getTime() + this.lifetimes.crlMs),
          entries,
          signingKey: ca.key,
          signingAlgorithm: SIGNING_ALGORITHM,
          extensions: [await x509.AuthorityKeyIdentifierExtension.create(ca.cert.publicKey)],
        }),
      );
    }
    return crls;
  }

  /** The CA certificates as PEM, newest first, without CRLs (nothing to sign): what TLS contexts need. */
  certificates(): { roots: string[]; issuers: string[]; crossCertificates: string[] } {
    return {
      roots: this.state.roots.map((record) => record.certPem),
      issuers: this.state.issuers.map((record) => record.certPem),
      crossCertificates: [...this.state.crossCertificates],
    };
  }

  /** Roots, issuing CAs and cross-certificates, and fresh CRLs: what every verifier needs. */
  async trustMaterial(): Promise<TrustMaterial> {
    return {
      roots: this.state.roots.map((record) => new x509.X509Certificate(record.certPem)),
      intermediates: [
        ...this.state.issuers.map((record) => new x509.X509Certificate(record.certPem)),
        ...this.state.crossCertificates.map((pem) => new x509.X509Certificate(pem)),
      ],
      crls: await this.crls(),
    };
  }

  /** The trust bundle as PEM (JSON for the API). */
  async trustBundle(): Promise<TrustBundlePem> {
    const trust = await this.trustMaterial();
    return {
      roots: trust.roots.map((cert) => cert.toString('pem')),
      intermediates: trust.intermediates.map((cert) => cert.toString('pem')),
      crls: trust.crls.map(crlToPem),
    };
  }

  /** What `hox pki status` will print. */
  status(): PkiStatus {
    const roots = this.state.roots.map((record) => new x509.X509Certificate(record.certPem));
    return {
      pin: this.pin,
      roots: roots.map((cert, index) => ({
        subject: cert.subject,
        serial: normalizeSerial(cert.serialNumber),
        pin: caPin(cert),
        notAfter: cert.notAfter,
        current: index === 0,
      })),
      issuers: this.state.issuers.map((record, index) => {
        const cert = new x509.X509Certificate(record.certPem);
        return {
          subject: cert.subject,
          serial: normalizeSerial(cert.serialNumber),
          notAfter: cert.notAfter,
          current: index === 0,
        };
      }),
      crossCertificates: this.state.crossCertificates.length,
      revoked: this.revokedSerials().size,
    };
  }

  /** A new issuing CA under the current root becomes current; the old one stays trusted until it expires. */
  async rotateIssuingCa(): Promise<void> {
    const root = this.load(this.state.roots[0]!);
    const now = this.now();
    this.state.generation++;
    const { record } = await this.makeCa({
      subject: `CN=${this.caName} issuing CA ${this.state.generation} (${this.state.pkiId}), O=HyperOpenX`,
      issuer: root,
      notAfter: new Date(Math.min(now.getTime() + this.lifetimes.issuingCaMs, root.cert.notAfter.getTime())),
      pathLength: 0,
    });
    this.state.issuers.unshift(record);
    this.prune();
    await this.save();
  }

  /**
   * A new root, cross-signed by the current one, and a new issuing CA under it become current. Roots and issuing CAs
   * of before stay in the bundle until the last certificate they could have issued expires.
   */
  async rotateRoot(): Promise<void> {
    const now = this.now();
    this.state.generation++;
    const subject = `CN=${this.caName} root CA ${this.state.generation} (${this.state.pkiId}), O=HyperOpenX`;
    const notAfter = new Date(now.getTime() + this.lifetimes.rootMs);
    // Path length 2: under an old root, a new root's cross-certificate and its issuing CA.
    const { record, loaded } = await this.makeCa({ subject, notAfter, pathLength: 2 });
    const oldRoot = this.state.roots[0] === undefined ? undefined : this.load(this.state.roots[0]);
    if (oldRoot !== undefined) {
      const cross = await x509.X509CertificateGenerator.create({
        serialNumber: newSerial(),
        subject,
        issuer: oldRoot.cert.subject,
        notBefore: new Date(now.getTime() - BACKDATE_MS),
        notAfter: new Date(Math.min(notAfter.getTime(), oldRoot.cert.notAfter.getTime())),
        publicKey: loaded.cert.publicKey,
        signingKey: oldRoot.key,
        signingAlgorithm: SIGNING_ALGORITHM,
        extensions: await caExtensions(loaded.cert.publicKey, oldRoot.cert.publicKey, 1),
      });
      this.state.crossCertificates.unshift(cross.toString('pem'));
    }
    this.state.roots.unshift(record);
    await this.rotateIssuingCa();
  }

  /** Drops what no certificate in use can need: expired issuing CAs, roots with no issuing CA left, old CRL entries. */
  private prune(): void {
    const now = this.now().getTime();
    const alive = (pem: string) => new x509.X509Certificate(pem).notAfter.getTime() > now;
    this.state.issuers = this.state.issuers.filter((record, index) => index === 0 || alive(record.certPem));
    const issuerNames = new Set(this.state.issuers.map((record) => new x509.X509Certificate(record.certPem).issuer));
    this.state.roots = this.state.roots.filter(
      (record, index) => index === 0 || issuerNames.has(new x509.X509Certificate(record.certPem).subject),
    );
    const rootNames = new Set(this.state.roots.map((record) => new x509.X509Certificate(record.certPem).subject));
    this.state.crossCertificates = this.state.crossCertificates.filter((pem) => {
      const cert = new x509.X509Certificate(pem);
      return alive(pem) && rootNames.has(cert.issuer) && rootNames.has(cert.subject);
    });
    this.state.revoked = this.state.revoked.filter((entry) => entry.notAfterMs >= now);
    const kept = new Set(
      [...this.state.roots, ...this.state.issuers].map((record) =>
        normalizeSerial(new x509.X509Certificate(record.certPem).serialNumber),
      ),
    );
    for (const serial of [...this.keys.keys()]) if (!kept.has(serial)) this.keys.delete(serial);
  }

  private async makeCa(spec: {
    subject: string;
    issuer?: LoadedCa;
    notAfter: Date;
    pathLength: number;
  }): Promise<{ record: CaRecord; loaded: LoadedCa }> {
    const now = this.now();
    const pair = await generateKeyPair(true);
    const serialNumber = newSerial();
    const publicKey = await x509.PublicKey.create(pair.publicKey);
    const common = {
      serialNumber,
      notBefore: new Date(now.getTime() - BACKDATE_MS),
      notAfter: spec.notAfter,
      signingAlgorithm: SIGNING_ALGORITHM,
    };
    const cert =
      spec.issuer === undefined
        ? await x509.X509CertificateGenerator.createSelfSigned({
            ...common,
            name: spec.subject,
            keys: pair,
            extensions: await caExtensions(publicKey, publicKey, spec.pathLength),
          })
        : await x509.X509CertificateGenerator.create({
            ...common,
            subject: spec.subject,
            issuer: spec.issuer.cert.subject,
            publicKey,
            signingKey: spec.issuer.key,
            extensions: await caExtensions(publicKey, spec.issuer.cert.publicKey, spec.pathLength),
          });
    const serial = normalizeSerial(cert.serialNumber);
    const pkcs8 = Buffer.from(await subtle.exportKey('pkcs8', pair.privateKey));
    const sealedKey = this.options.box.seal(pkcs8.toString('base64'), `pki.key:${serial}`);
    pkcs8.fill(0);
    const key = await subtle.importKey(
      'pkcs8',
      Buffer.from(this.options.box.open(sealedKey, `pki.key:${serial}`), 'base64'),
      KEY_ALGORITHM,
      false,
      ['sign'],
    );
    this.keys.set(serial, key);
    return { record: { certPem: cert.toString('pem'), sealedKey }, loaded: { cert, key } };
  }

  private async save(): Promise<void> {
    await this.options.storage.save(`${JSON.stringify(this.state, null, 2)}\n`);
  }
}

async function caExtensions(
  subjectKey: x509.PublicKey,
  issuerKey: x509.PublicKey,
  pathLength: number,
): Promise<x509.Extension[]> {
  return [
    new x509.BasicConstraintsExtension(true, pathLength, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
    await x509.SubjectKeyIdentifierExtension.create(subjectKey),
    await x509.AuthorityKeyIdentifierExtension.create(issuerKey),
  ];
}

function checkNames(dnsNames: string[], ipAddresses: string[]): x509.JsonGeneralNames {
  if (dnsNames.length + ipAddresses.length > MAX_NAMES)
    throw new HoxError('HOX_BAD_REQUEST', `at most ${MAX_NAMES} DNS names and IP addresses in one certificate`, {
      field: 'dnsNames',
    });
  for (const name of dnsNames)
    if (typeof name !== 'string' || !DNS_NAME.test(name))
      throw new HoxError('HOX_BAD_REQUEST', `dnsNames: '${String(name).slice(0, 80)}' is not a lowercase DNS name`, {
        field: 'dnsNames',
      });
  for (const address of ipAddresses)
    if (typeof address !== 'string' || isIP(address) === 0)
      throw new HoxError('HOX_BAD_REQUEST', `ipAddresses: '${String(address).slice(0, 80)}' is not an IP address`, {
        field: 'ipAddresses',
      });
  return [
    ...dnsNames.map((value) => ({ type: 'dns' as const, value })),
    ...ipAddresses.map((value) => ({ type: 'ip' as const, value })),
  ];
}

function parseState(text: string, source: string): PkiState {
  let state: PkiState;
  try {
    state = JSON.parse(text) as PkiState;
  } catch (error) {
    throw new HoxError('HOX_BAD_REQUEST', `PKI state ${source} is not JSON`, { field: 'pki state', cause: error });
  }
  if (
    state?.version !== 1 ||
    !Array.isArray(state.roots) ||
    !Array.isArray(state.issuers) ||
    state.roots.length === 0 ||
    state.issuers.length === 0 ||
    !Array.isArray(state.crossCertificates) ||
    !Array.isArray(state.revoked)
  )
    throw new HoxError('HOX_BAD_REQUEST', `PKI state ${source} is not a version 1 PKI state`, { field: 'pki state' });
  return state;
}
