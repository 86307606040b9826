/**
 * The server certificate a member's PostgreSQL presents, and its renewal.
 *
 * The member generates its key pair itself and sends only the public key to
 * the router (`POST /tls/certificate`, peer token), which signs a
 * certificate with the cluster CA for the addresses it knows for the member
 * (its own and the router's, since the router's endpoints forward TLS
 * untouched). A new certificate is due when there is none, when two thirds
 * of its life have passed, when the cluster CA changed, or when a rotation
 * request (`tls_rotate`) has a new id.
 *
 * Files (`pgconf/tls/`, 0600, the partition user's): `server-<serial>.key`
 * and `.crt` are written first, then `pgconf/tls.conf` is switched to them
 * atomically; the caller then reloads PostgreSQL, which applies the new
 * certificate to new connections only — open sessions keep theirs, so a
 * rotation interrupts nothing. The previous pair is kept until the next
 * renewal.
 */
import { X509Certificate, generateKeyPairSync } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { callJson, type TlsIdentity } from '../cluster-tls.js';
import type { CertificateRequestBody, KeeperTls, MemberTlsStatus } from '../protocol.js';
import { renewalAtMs } from '../../../shared/pki/renewal.js';

const ISSUE_TIMEOUT_MS = 3000;
/** Extended key usage id-kp-clientAuth (RFC 5280 4.2.1.12). */
const CLIENT_AUTH_OID = '1.3.6.1.5.5.7.3.2';
/** Between two failed requests (the router may not know this member yet, right after it was created). */
const RETRY_MS = 1000;
/** After a certificate for servers only (a router of an older version): when to ask for a client-capable one. */
const SERVER_ONLY_RETRY_MS = 60_000;

interface Installed extends MemberTlsStatus {
  notBefore: string;
  /** The CA that signed it. */
  ca: string;
  /** Also a client certificate (the member presents it to its peers and the router); absent before that. */
  clientAuth?: boolean;
}

export class ServerCertificate {
  private installed: Installed | null;
  private renewing = false;
  private retryAt = 0;
  private lastError = '';
  private cachedIdentity: { serial: string; identity: TlsIdentity } | null = null;
  private readonly dir: string;
  private readonly stateFile: string;

  constructor(
    private readonly options: {
      confDir: string;
      member: string;
      /** This member's address: the certificate must be valid for it. */
      host: string;
      log: (line: string) => void;
    },
  ) {
    this.dir = join(options.confDir, 'tls');
    this.stateFile = join(this.dir, 'server.json');
    this.installed = readInstalled(this.stateFile);
  }

  status(): MemberTlsStatus | null {
    const i = this.installed;
    return i === null ? null : { serial: i.serial, notAfter: i.notAfter, rotation: i.rotation };
  }

  /**
   * The installed key and certificate, which the keeper also serves its peer API with and presents to
   * its peers and the router; null before the first one (or if its files are gone).
   */
  identity(): TlsIdentity | null {
    const i = this.installed;
    if (i === null) return null;
    if (this.cachedIdentity?.serial === i.serial) return this.cachedIdentity.identity;
    try {
      const identity = {
        key: readFileSync(join(this.dir, `server-${i.serial}.key`), 'utf8'),
        cert: readFileSync(join(this.dir, `server-${i.serial}.crt`), 'utf8'),
      };
      this.cachedIdentity = { serial: i.serial, identity };
      return identity;
    } catch {
      return null;
    }
  }

  /** The installed identity if it may also serve as a client certificate (see {@link identity}); else null. */
  clientIdentity(): TlsIdentity | null {
    return this.installed?.clientAuth === true ? this.identity() : null;
  }

  /** Why a new certificate is needed now, or null. */
  due(tls: KeeperTls, nowMs = Date.now()): string | null {
    const i = this.installed;
    if (i === null || !existsSync(join(this.options.confDir, 'tls.conf'))) return 'no certificate yet';
    if (i.ca !== tls.caCertificate) return 'the cluster CA changed';
    if (i.clientAuth !== true) return 'it is not a client certificate yet (peers require one)';
    if (tls.rotation !== null && tls.rotation !== i.rotation) return `rotation ${tls.rotation} requested`;
    if (nowMs > renewalAtMs(Date.parse(i.notBefore), Date.parse(i.notAfter))) return `it expires at ${i.notAfter}`;
    return null;
  }

  /**
   * Starts a renewal when one is due and none is running; `installed` runs once the new files are in
   * place (the caller reloads PostgreSQL). Never throws: a failure is logged and retried after a pause.
   */
  maintain(tls: KeeperTls, token: string, installed: () => Promise<void>): void {
    if (this.renewing || Date.now() < this.retryAt) return;
    const reason = this.due(tls);
    if (reason === null) return;
    this.renewing = true;
    void this.renew(tls, token, reason)
      .then(installed)
      .then(() => {
        this.lastError = '';
        // A router older than mutual TLS signs for servers only: ask again in a while, not at every tick.
        if (this.installed?.clientAuth !== true) this.retryAt = Date.now() + SERVER_ONLY_RETRY_MS;
      })
      .catch((error: unknown) => {
        this.retryAt = Date.now() + RETRY_MS;
        const message = (error as Error).message;
        if (message !== this.lastError) this.options.log(`server certificate: ${message}`);
        this.lastError = message;
      })
      .finally(() => (this.renewing = false));
  }

  private async renew(tls: KeeperTls, token: string, reason: string): Promise<void> {
    const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const body: CertificateRequestBody = {
      member: this.options.member,
      publicKey: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    };
    // The router's certificate is verified against the cluster CA; the member's current one goes along.
    const answer = await callJson<{ certificate?: unknown }>(new URL('/tls/certificate', tls.issuerUrl), {
      token,
      body,
      tls: { ca: tls.caCertificate, identity: this.clientIdentity() },
      timeoutMs: ISSUE_TIMEOUT_MS,
    }).catch((error: unknown) => {
      throw new Error(`asking the router: ${(error as Error).message}`);
    });
    const pem = answer.certificate;
    if (typeof pem !== 'string') throw new Error('the router answered without a certificate');
    const cert = new X509Certificate(pem);
    // Checked before PostgreSQL is pointed at it: a wrong certificate would fail every new TLS session.
    if (!cert.checkPrivateKey(privateKey)) throw new Error('the certificate is not for the key sent');
    if (!cert.verify(new X509Certificate(tls.caCertificate).publicKey))
      throw new Error('the certificate is not signed by the cluster CA');
    if (cert.checkIP(this.options.host) === undefined)
      throw new Error(`the certificate is not valid for ${this.options.host}`);

    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const serial = cert.serialNumber;
    const keyFile = join(this.dir, `server-${serial}.key`);
    const certFile = join(this.dir, `server-${serial}.crt`);
    await writeFile(keyFile, privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), { mode: 0o600 });
    await writeFile(certFile, pem, { mode: 0o600 });
    const conf = join(this.options.confDir, 'tls.conf');
    await writeFile(
      `${conf}.tmp`,
      [
        '# written by the hyper_db keeper (server-certificate.ts)',
        'ssl = on',
        `ssl_cert_file = '${certFile}'`,
        `ssl_key_file = '${keyFile}'`,
        "ssl_min_protocol_version = 'TLSv1.2'",
        '',
      ].join('\n'),
      { mode: 0o600 },
    );
    await rename(`${conf}.tmp`, conf);
    const previous = this.installed?.serial;
    const next: Installed = {
      serial,
      notBefore: new Date(cert.validFrom).toISOString(),
      notAfter: new Date(cert.validTo).toISOString(),
      rotation: tls.rotation,
      ca: tls.caCertificate,
      // A router older than mutual TLS signs for servers only: asked again once it is upgraded.
      clientAuth: cert.keyUsage?.includes(CLIENT_AUTH_OID) === true,
    };
    await writeFile(`${this.stateFile}.tmp`, JSON.stringify(next), { mode: 0o600 });
    await rename(`${this.stateFile}.tmp`, this.stateFile);
    this.installed = next;
    const keep = new Set([serial, previous]);
    for (const f of readdirSync(this.dir)) {
      const match = /^server-([0-9A-F]+)\.(key|crt)$/.exec(f);
      if (match !== null && !keep.has(match[1])) await rm(join(this.dir, f), { force: true });
    }
    this.options.log(`server certificate ${serial} installed (${reason}); valid until ${next.notAfter}`);
  }
}

function readInstalled(path: string): Installed | null {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as Installed;
  } catch {
    return null;
  }
}
