/**
 * Verifies a platform certificate the way every verifier of the platform must: a chain of valid signatures up to a
 * trusted root, every link valid at `now`, CA links marked as CAs, the leaf fit for its use, and no link revoked.
 *
 * Revocation fails closed: each non-root link needs a CRL from its issuer that is correctly signed and current
 * (`thisUpdate <= now < nextUpdate`); a missing or stale CRL refuses the certificate, as OpenSSL does with
 * `X509_V_FLAG_CRL_CHECK_ALL` (what Node's `tls` turns on when given `crl`). A verifier that also knows the
 * master's live list of revoked serials (the master itself) passes it as `revokedSerials`, so a revocation counts
 * before the next CRL is fetched. See docs/security/pki.md.
 */
import { certificateIdentity, type CertificateIdentity, type CertificateKind } from './certificate-profile.js';
import { normalizeSerial, x509 } from './x509.js';

/** What a verifier trusts: roots, the intermediates (issuing CAs and cross-certificates) it may chain through, CRLs. */
export interface TrustMaterial {
  roots: readonly x509.X509Certificate[];
  intermediates: readonly x509.X509Certificate[];
  crls: readonly x509.X509Crl[];
}

export interface VerifyOptions {
  /** When to judge validity (default: now). */
  now?: Date;
  /** What the leaf must be fit for: a TLS server or a TLS client. */
  purpose: 'server' | 'client';
  /** If given, the leaf must be issued to a holder of one of these kinds. */
  kinds?: readonly CertificateKind[];
  /** Serials revoked by the master and not yet in a CRL the verifier holds (normalized or not). */
  revokedSerials?: ReadonlySet<string>;
}

export type VerifyResult =
  | { ok: true; chain: x509.X509Certificate[]; identity: CertificateIdentity | undefined }
  | { ok: false; reason: string };

/** The longest chain followed: leaf, issuing CA, cross-certificate, root. */
const MAX_CHAIN_LENGTH = 4;

/** Verifies `leaf` against `trust` (see the file comment). Never throws for a bad certificate: it says why. */
export async function verifyCertificate(
  leaf: x509.X509Certificate,
  trust: TrustMaterial,
  options: VerifyOptions,
): Promise<VerifyResult> {
  const now = options.now ?? new Date();
  const leafProblem = checkLeaf(leaf, options);
  if (leafProblem !== undefined) return { ok: false, reason: leafProblem };
  const chain = await buildChain(leaf, trust, now);
  if (typeof chain === 'string') return { ok: false, reason: chain };
  const revokedSerials = new Set([...(options.revokedSerials ?? [])].map(normalizeSerial));
  for (let index = 0; index < chain.length - 1; index++) {
    const cert = chain[index]!;
    const issuer = chain[index + 1]!;
    if (revokedSerials.has(normalizeSerial(cert.serialNumber)))
      return { ok: false, reason: `${describe(cert)} is revoked (master's list)` };
    const problem = await checkCrl(cert, issuer, trust.crls, now);
    if (problem !== undefined) return { ok: false, reason: problem };
  }
  const identity = certificateIdentity(leaf);
  if (options.kinds !== undefined && (identity === undefined || !options.kinds.includes(identity.kind)))
    return {
      ok: false,
      reason: `${describe(leaf)} is not issued to a ${options.kinds.join(' or ')}`,
    };
  return { ok: true, chain, identity };
}

function describe(cert: x509.X509Certificate): string {
  return `certificate '${cert.subject}' (serial ${normalizeSerial(cert.serialNumber)})`;
}

function isValidAt(cert: x509.X509Certificate, now: Date): boolean {
  return cert.notBefore.getTime() <= now.getTime() && now.getTime() <= cert.notAfter.getTime();
}

function checkLeaf(leaf: x509.X509Certificate, options: VerifyOptions): string | undefined {
  const constraints = leaf.getExtension(x509.BasicConstraintsExtension);
  if (constraints?.ca === true) return `${describe(leaf)} is a CA, not a leaf`;
  const usage = leaf.getExtension(x509.ExtendedKeyUsageExtension);
  const wanted = options.purpose === 'server' ? x509.ExtendedKeyUsage.serverAuth : x509.ExtendedKeyUsage.clientAuth;
  if (usage === null || !usage.usages.includes(wanted))
    return `${describe(leaf)} is not for TLS ${options.purpose} authentication`;
  return undefined;
}

function isCa(cert: x509.X509Certificate): boolean {
  const constraints = cert.getExtension(x509.BasicConstraintsExtension);
  const usage = cert.getExtension(x509.KeyUsagesExtension);
  return constraints?.ca === true && usage !== null && (usage.usages & x509.KeyUsageFlags.keyCertSign) !== 0;
}

async function signedBy(cert: x509.X509Certificate, issuer: x509.X509Certificate): Promise<boolean> {
  if (cert.issuer !== issuer.subject) return false;
  try {
    return await cert.verify({ publicKey: issuer.publicKey, signatureOnly: true });
  } catch {
    return false;
  }
}

/** Depth-first search from the leaf to a trusted root, roots tried first at each step. */
async function buildChain(
  leaf: x509.X509Certificate,
  trust: TrustMaterial,
  now: Date,
): Promise<x509.X509Certificate[] | string> {
  let lastProblem = `${describe(leaf)} does not chain to a trusted root`;
  const walk = async (path: x509.X509Certificate[]): Promise<x509.X509Certificate[] | undefined> => {
    const current = path[path.length - 1]!;
    if (!isValidAt(current, now)) {
      lastProblem = `${describe(current)} is not valid at ${now.toISOString()} (valid ${current.notBefore.toISOString()} to ${current.notAfter.toISOString()})`;
      return undefined;
    }
    for (const root of trust.roots) if (current.equal(root)) return path;
    if (path.length >= MAX_CHAIN_LENGTH) return undefined;
    for (const candidate of [...trust.roots, ...trust.intermediates]) {
      if (path.some((seen) => seen.equal(candidate))) continue;
      if (!isCa(candidate) || !(await signedBy(current, candidate))) continue;
      const pathLength = candidate.getExtension(x509.BasicConstraintsExtension)?.pathLength;
      if (pathLength !== undefined && path.length - 1 > pathLength) {
        lastProblem = `path length constraint of '${candidate.subject}' exceeded`;
        continue;
      }
      const found = await walk([...path, candidate]);
      if (found !== undefined) return found;
    }
    return undefined;
  };
  return (await walk([leaf])) ?? lastProblem;
}

async function checkCrl(
  cert: x509.X509Certificate,
  issuer: x509.X509Certificate,
  crls: readonly x509.X509Crl[],
  now: Date,
): Promise<string | undefined> {
  let found = false;
  for (const crl of crls) {
    if (crl.issuer !== issuer.subject) continue;
    if (crl.thisUpdate.getTime() > now.getTime()) continue;
    if (crl.nextUpdate === undefined || crl.nextUpdate.getTime() <= now.getTime()) continue;
    let signed = false;
    try {
      signed = await crl.verify({ publicKey: issuer.publicKey });
    } catch {
      signed = false;
    }
    if (!signed) continue;
    found = true;
    if (crl.findRevoked(cert.serialNumber) !== null) return `${describe(cert)} is revoked (CRL of '${issuer.subject}')`;
  }
  return found ? undefined : `no current CRL from '${issuer.subject}' to check ${describe(cert)} against`;
}
