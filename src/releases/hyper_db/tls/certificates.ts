/**
 * hyper_db's small PKI: one certificate authority per cluster, and server
 * certificates for the members' PostgreSQL (ECDSA P-256, SHA-256).
 *
 * The CA is DERIVED from a seed (the root partition's secret `tls-ca`), so
 * the root's profile — a pure function — renders the same CA certificate at
 * every convergence and can publish it in the cluster's and every database's
 * connection parameters. Its private key only ever reaches the root
 * partition (the router's 0600 configuration); members never see it: they
 * send a public key to the router, which signs a certificate for the
 * addresses it knows for that member.
 *
 * A stable CA certificate needs a deterministic signature, which ECDSA is not
 * as Node.js signs. The self-signature therefore picks its nonce k the way
 * RFC 6979 intends (a keyed hash of the private key and the message, so two
 * different messages never share a k) and gets k·G from OpenSSL through ECDH.
 * Only the CA's self-signature is made this way; server certificates are
 * signed by `crypto.sign`.
 */
import {
  createECDH,
  createHash,
  createHmac,
  createPrivateKey,
  createPublicKey,
  randomBytes,
  sign,
  verify,
  type KeyObject,
} from 'node:crypto';
import { isIPv4 } from 'node:net';
import {
  bigintBytes,
  bitString,
  boolean,
  explicit,
  implicit,
  integer,
  octetString,
  oid,
  readTlv,
  sequence,
  set,
  time,
  utf8String,
} from './der.js';

/** The order of the P-256 group. */
const N = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;
const ECDSA_WITH_SHA256 = sequence(oid('1.2.840.10045.4.3.2'));
const CA_NOT_BEFORE = new Date('2025-01-01T00:00:00Z');
/** RFC 5280 4.1.2.5: "no well-defined expiration date". The CA changes with its generation instead. */
const CA_NOT_AFTER = new Date('9999-12-31T23:59:59Z');
/** Tolerated clock difference between the router and a client, for a certificate issued just now. */
const CLOCK_SKEW_MS = 5 * 60_000;

export interface ClusterCa {
  certificatePem: string;
  privateKeyPem: string;
}

export interface ServerCertificateRequest {
  /** The CA's certificate and private key (PEM). */
  ca: ClusterCa;
  /** The server's public key, SPKI PEM. */
  publicKeyPem: string;
  /** Subject common name (the member's name). */
  commonName: string;
  /** IPv4 addresses the certificate is valid for (subjectAltName iPAddress). */
  ipAddresses: string[];
  validityMs: number;
  /** @default new Date() */
  now?: Date;
}

/** The cluster CA derived from `seed` (same seed, same certificate and key, byte for byte). */
export function deriveClusterCa(seed: string): ClusterCa {
  const d = scalarFrom(createHmac('sha512', seed).update('hyper_db cluster CA').digest());
  const key = p256PrivateKey(d);
  const spki = createPublicKey(key).export({ type: 'spki', format: 'der' });
  const keyId = keyIdentifier(spki);
  const name = distinguishedName(`hyper_db cluster CA ${keyId.subarray(0, 6).toString('hex')}`);
  const tbs = sequence(
    explicit(0, integer(2n)),
    integer(createHmac('sha256', seed).update('hyper_db CA serial').digest().subarray(0, 16)),
    ECDSA_WITH_SHA256,
    name,
    sequence(time(CA_NOT_BEFORE), time(CA_NOT_AFTER)),
    name,
    spki,
    explicit(
      3,
      sequence(
        extension('2.5.29.19', true, sequence(boolean(true), integer(0n))),
        // keyCertSign (bit 5) and cRLSign (bit 6).
        extension('2.5.29.15', true, bitString(Buffer.from([0x06]), 7)),
        extension('2.5.29.14', false, octetString(keyId)),
      ),
    ),
  );
  const signature = deterministicEcdsa(d, tbs);
  if (!verify('sha256', tbs, createPublicKey(key), signature))
    throw new Error('cluster CA: the derived self-signature does not verify');
  return {
    certificatePem: pem('CERTIFICATE', sequence(tbs, ECDSA_WITH_SHA256, bitString(signature))),
    privateKeyPem: key.export({ type: 'pkcs8', format: 'pem' }).toString(),
  };
}

/** A server certificate (PEM) for `publicKeyPem`, signed by the CA, valid for the given addresses. */
export function issueServerCertificate(request: ServerCertificateRequest): string {
  const { ca } = request;
  for (const ip of request.ipAddresses) if (!isIPv4(ip)) throw new Error(`'${ip}' is not an IPv4 address`);
  if (request.ipAddresses.length === 0) throw new Error('a server certificate needs at least one address');
  const caKey = createPrivateKey(ca.privateKeyPem);
  const caSpki = createPublicKey(caKey).export({ type: 'spki', format: 'der' });
  const spki = createPublicKey(request.publicKeyPem).export({ type: 'spki', format: 'der' });
  const now = request.now ?? new Date();
  const serial = randomBytes(16);
  serial[0] = (serial[0] ?? 0) & 0x7f;
  const san = sequence(...request.ipAddresses.map((ip) => implicit(7, Buffer.from(ip.split('.').map(Number)))));
  const tbs = sequence(
    explicit(0, integer(2n)),
    integer(serial),
    ECDSA_WITH_SHA256,
    subjectOf(ca.certificatePem),
    sequence(time(new Date(now.getTime() - CLOCK_SKEW_MS)), time(new Date(now.getTime() + request.validityMs))),
    distinguishedName(request.commonName),
    spki,
    explicit(
      3,
      sequence(
        extension('2.5.29.19', true, sequence()),
        // digitalSignature (bit 0): an ECDSA server key signs the handshake.
        extension('2.5.29.15', true, bitString(Buffer.from([0x80]), 1)),
        extension('2.5.29.37', false, sequence(oid('1.3.6.1.5.5.7.3.1'))),
        extension('2.5.29.17', false, san),
        extension('2.5.29.14', false, octetString(keyIdentifier(spki))),
        extension('2.5.29.35', false, sequence(implicit(0, keyIdentifier(caSpki)))),
      ),
    ),
  );
  return pem('CERTIFICATE', sequence(tbs, ECDSA_WITH_SHA256, bitString(sign('sha256', tbs, caKey))));
}

function extension(id: string, critical: boolean, value: Buffer): Buffer {
  return sequence(oid(id), ...(critical ? [boolean(true)] : []), octetString(value));
}

function distinguishedName(commonName: string): Buffer {
  const attribute = (type: string, value: string) => set(sequence(oid(type), utf8String(value)));
  return sequence(attribute('2.5.4.10', 'hyper_db'), attribute('2.5.4.3', commonName));
}

/** The subject Name of a certificate, as encoded there (the issuer of what it signs). */
function subjectOf(certificatePem: string): Buffer {
  const der = fromPem(certificatePem);
  const cert = readTlv(der, 0);
  const tbs = readTlv(der, cert.start);
  // TBSCertificate: [0] version, serialNumber, signature, issuer, validity, subject.
  let at = tbs.start;
  for (let i = 0; i < 5; i++) at = readTlv(der, at).end;
  const subject = readTlv(der, at);
  return der.subarray(at, subject.end);
}

/** RFC 5280 4.2.1.2 method 1: SHA-1 of the subjectPublicKey BIT STRING's bits. */
function keyIdentifier(spki: Buffer): Buffer {
  const outer = readTlv(spki, 0);
  const algorithm = readTlv(spki, outer.start);
  const bits = readTlv(spki, algorithm.end);
  return createHash('sha1')
    .update(spki.subarray(bits.start + 1, bits.end))
    .digest();
}

/** A scalar in [1, n − 1] from 64 uniform bytes (the reduction's bias is 2^-256). */
function scalarFrom(bytes: Buffer): bigint {
  return (BigInt(`0x${bytes.toString('hex')}`) % (N - 1n)) + 1n;
}

function p256PrivateKey(d: bigint): KeyObject {
  const ecdh = createECDH('prime256v1');
  ecdh.setPrivateKey(bigintBytes(d, 32));
  const point = ecdh.getPublicKey();
  return createPrivateKey({
    key: {
      kty: 'EC',
      crv: 'P-256',
      d: bigintBytes(d, 32).toString('base64url'),
      x: point.subarray(1, 33).toString('base64url'),
      y: point.subarray(33, 65).toString('base64url'),
    },
    format: 'jwk',
  });
}

/** ECDSA P-256/SHA-256 of `message` with a nonce derived from the key and the message (DER signature). */
function deterministicEcdsa(d: bigint, message: Buffer): Buffer {
  const digest = createHash('sha256').update(message).digest();
  const e = BigInt(`0x${digest.toString('hex')}`);
  const k = scalarFrom(createHmac('sha512', bigintBytes(d, 32)).update(digest).digest());
  const ecdh = createECDH('prime256v1');
  ecdh.setPrivateKey(bigintBytes(k, 32));
  const r = BigInt(`0x${ecdh.getPublicKey().subarray(1, 33).toString('hex')}`) % N;
  const s = (modPow(k, N - 2n, N) * ((e + r * d) % N)) % N;
  if (r === 0n || s === 0n) throw new Error('deterministic ECDSA: degenerate nonce');
  return sequence(integer(r), integer(s));
}

function modPow(base: bigint, exponent: bigint, modulus: bigint): bigint {
  let result = 1n;
  let b = base % modulus;
  for (let x = exponent; x > 0n; x >>= 1n) {
    if (x & 1n) result = (result * b) % modulus;
    b = (b * b) % modulus;
  }
  return result;
}

function pem(label: string, der: Buffer): string {
  const lines = der.toString('base64').match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

function fromPem(text: string): Buffer {
  const body = /-----BEGIN CERTIFICATE-----([\s\S]+?)-----END CERTIFICATE-----/.exec(text)?.[1];
  if (body === undefined) throw new Error('not a PEM certificate');
  return Buffer.from(body.replace(/\s+/g, ''), 'base64');
}
