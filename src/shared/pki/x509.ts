/**
 * The one place that loads `@peculiar/x509` and points it at Node's webcrypto: every PKI file imports the library
 * through here, so the provider is set before any certificate is parsed or made.
 *
 * Algorithm: ECDSA on P-256 with SHA-256 everywhere (roots, issuing CAs, leaves, CRLs). Not Ed25519, though it is
 * smaller and deterministic: browsers' TLS stacks (Chromium, Firefox, Safari) do not accept Ed25519 certificates,
 * PostgreSQL's libpq and most Go/Java/Python TLS clients validate P-256 chains everywhere but Ed25519 chains only on
 * recent builds, and hyper_db's TLS already uses P-256. Nonces are the webcrypto's (OpenSSL's), never ours.
 */
import 'reflect-metadata';
import { randomBytes, webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

export { x509 };

/** Key generation and import parameters of every PKI key. */
export const KEY_ALGORITHM: EcKeyGenParams & EcKeyImportParams = { name: 'ECDSA', namedCurve: 'P-256' };
/** Signature algorithm of every certificate, CSR and CRL the platform makes. */
export const SIGNING_ALGORITHM: EcdsaParams = { name: 'ECDSA', hash: 'SHA-256' };

/** The webcrypto the PKI uses (Node's). */
export const subtle: SubtleCrypto = webcrypto.subtle as unknown as SubtleCrypto;

/** Serial numbers as hex compare equal whatever their case or leading zeros. */
export function normalizeSerial(serialHex: string): string {
  return serialHex.toLowerCase().replace(/^0+(?=.)/, '');
}

/** A certificate from PEM text or DER bytes. Throws if it is not one. */
export function readCertificate(pemOrDer: string | Uint8Array): x509.X509Certificate {
  return new x509.X509Certificate(pemOrDer as string);
}

/** Splits a PEM bundle into its certificates (order kept). */
export function readCertificateBundle(pem: string): x509.X509Certificate[] {
  return [...pem.matchAll(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g)].map(
    (match) => new x509.X509Certificate(match[0]),
  );
}

/** Exports a private key as PKCS#8 PEM, for the holder of a leaf key (a node's TLS key file, a test). */
export async function privateKeyToPem(key: CryptoKey): Promise<string> {
  return x509.PemConverter.encode(await subtle.exportKey('pkcs8', key), 'PRIVATE KEY');
}

/** A fresh P-256 key pair; `extractable` only where the private key must be written for a TLS stack. */
export async function generateKeyPair(extractable: boolean): Promise<CryptoKeyPair> {
  return await subtle.generateKey(KEY_ALGORITHM, extractable, ['sign', 'verify']);
}

/** A CRL as PEM with OpenSSL's header (`X509 CRL`): the library's own `CRL` header is not read by OpenSSL or Node. */
export function crlToPem(crl: x509.X509Crl): string {
  return x509.PemConverter.encode(crl.rawData, 'X509 CRL');
}

/** 16 random bytes, positive and without a leading zero byte (RFC 5280: at most 20 octets, unpredictable). */
export function newSerial(): string {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0]! & 0x7f) | 0x40;
  return bytes.toString('hex');
}
