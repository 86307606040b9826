/**
 * A certificate authority held by one component, not by the platform: hyper_db's cluster CA, which signs
 * its members' and its router's server certificates. Made with `@peculiar/x509` on Node's webcrypto
 * (ECDSA P-256, SHA-256; see x509.ts), never with hand-written encoding or signatures.
 *
 * The CA is generated once (`createLocalCa`) and kept by whoever needs it to stay the same — for hyper_db,
 * the node agent, next to the root partition's secret (src/agent/partition-secret.ts): its certificate is
 * published and pinned by clients, so it must not change at every convergence.
 */
import { isIPv4 } from 'node:net';
import { DNS_NAME } from '../dns-name.js';
import {
  generateKeyPair,
  KEY_ALGORITHM,
  newSerial,
  normalizeSerial,
  privateKeyToPem,
  SIGNING_ALGORITHM,
  subtle,
  x509,
} from './x509.js';

/** A CA's certificate and private key, PEM (PKCS#8 for the key). */
export interface LocalCa {
  certificatePem: string;
  privateKeyPem: string;
}

export interface ServerCertificateRequest {
  ca: LocalCa;
  /** The server's public key, SPKI PEM (its private key never leaves the server). */
  publicKeyPem: string;
  /** Subject common name (a member's name). */
  commonName: string;
  /** IPv4 addresses the certificate is valid for (subjectAltName iPAddress). */
  ipAddresses: string[];
  /** DNS names it is valid for (subjectAltName dNSName; `*.` wildcards allowed). At least one name or address. */
  dnsNames?: string[];
  validityMs: number;
  /** Also a client certificate (extended key usage clientAuth): the holder presents it when it calls its peers. */
  clientAuth?: boolean;
  /** @default new Date() */
  now?: Date;
}

/** Tolerated clock difference between the signer and a client, for a certificate issued just now. */
const CLOCK_SKEW_MS = 5 * 60_000;
/** RFC 5280 4.1.2.5: "no well-defined expiration date". A CA is replaced by generating another. */
const CA_NOT_AFTER = new Date('9999-12-31T23:59:59Z');

/**
 * A new self-signed CA: `CN=<commonName> <8 hex of its key id>, O=<organization>` (the suffix tells two
 * generations apart in a client's trust store), basic constraints CA with path length 0 (it signs
 * servers only), key usage keyCertSign and cRLSign.
 */
export async function createLocalCa(commonName: string, organization: string, now = new Date()): Promise<LocalCa> {
  const keys = await generateKeyPair(true);
  const publicKey = await x509.PublicKey.create(keys.publicKey);
  const keyId = Buffer.from(await publicKey.getKeyIdentifier()).toString('hex');
  const name = `CN=${escapeRdn(`${commonName} ${keyId.slice(0, 8)}`)}, O=${escapeRdn(organization)}`;
  const certificate = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: newSerial(),
    name,
    notBefore: new Date(now.getTime() - CLOCK_SKEW_MS),
    notAfter: CA_NOT_AFTER,
    signingAlgorithm: SIGNING_ALGORITHM,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(publicKey),
    ],
  });
  return { certificatePem: certificate.toString('pem'), privateKeyPem: await privateKeyToPem(keys.privateKey) };
}

/** A TLS server certificate (PEM) for `publicKeyPem`, signed by the CA, valid for the given names and addresses. */
export async function issueServerCertificate(request: ServerCertificateRequest): Promise<string> {
  for (const ip of request.ipAddresses) if (!isIPv4(ip)) throw new Error(`'${ip}' is not an IPv4 address`);
  const dnsNames = request.dnsNames ?? [];
  for (const name of dnsNames) if (!DNS_NAME.test(name)) throw new Error(`'${name}' is not a DNS name`);
  if (request.ipAddresses.length + dnsNames.length === 0)
    throw new Error('a server certificate needs at least one name or address');
  const caCertificate = new x509.X509Certificate(request.ca.certificatePem);
  const signingKey = await subtle.importKey(
    'pkcs8',
    x509.PemConverter.decodeFirst(request.ca.privateKeyPem),
    KEY_ALGORITHM,
    false,
    ['sign'],
  );
  const publicKey = new x509.PublicKey(x509.PemConverter.decodeFirst(request.publicKeyPem));
  const now = request.now ?? new Date();
  const certificate = await x509.X509CertificateGenerator.create({
    serialNumber: newSerial(),
    subject: `CN=${escapeRdn(request.commonName)}, O=${escapeRdn(organizationOf(caCertificate))}`,
    issuer: caCertificate.subject,
    notBefore: new Date(now.getTime() - CLOCK_SKEW_MS),
    notAfter: new Date(now.getTime() + request.validityMs),
    signingAlgorithm: SIGNING_ALGORITHM,
    publicKey,
    signingKey,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      // digitalSignature: an ECDSA server key signs the handshake.
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([
        x509.ExtendedKeyUsage.serverAuth,
        ...(request.clientAuth === true ? [x509.ExtendedKeyUsage.clientAuth] : []),
      ]),
      new x509.SubjectAlternativeNameExtension([
        ...dnsNames.map((value) => ({ type: 'dns' as const, value })),
        ...request.ipAddresses.map((value) => ({ type: 'ip' as const, value })),
      ]),
      await x509.SubjectKeyIdentifierExtension.create(publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(caCertificate),
    ],
  });
  return certificate.toString('pem');
}

/** The CA's serial, normalised (for logs and tests). */
export function localCaSerial(ca: LocalCa): string {
  return normalizeSerial(new x509.X509Certificate(ca.certificatePem).serialNumber);
}

function organizationOf(certificate: x509.X509Certificate): string {
  return certificate.subjectName.getField('O')[0] ?? 'HyperOpenX';
}

/** RFC 4514 escaping of an attribute value. */
function escapeRdn(value: string): string {
  return value.replace(/[,+"\\<>;=]/g, (c) => `\\${c}`).replace(/^[ #]|[ ]$/g, (c) => `\\${c}`);
}
