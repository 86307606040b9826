/**
 * The CA pin: `sha256:<64 hex>`, the SHA-256 of the root certificate's DER SubjectPublicKeyInfo, as kubeadm's
 * `--discovery-token-ca-cert-hash`. A node given the pin (in its registration token) can fetch the trust bundle over
 * an unauthenticated channel and keep only a root whose key hashes to it. It pins the key, not the certificate: a
 * root re-issued with the same key keeps its pin; a rotated root (a new key) has a new pin.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { HoxError } from '../errors.js';
import type { x509 } from './x509.js';
import { readCertificate } from './x509.js';

const PIN = /^sha256:([0-9a-f]{64})$/;

/** The pin of a root certificate (PEM, DER or parsed). */
export function caPin(root: x509.X509Certificate | string): string {
  const cert = typeof root === 'string' ? readCertificate(root) : root;
  return `sha256:${createHash('sha256').update(new Uint8Array(cert.publicKey.rawData)).digest('hex')}`;
}

/** Validates a pin's text (as typed by a user or carried in a token); throws `HOX_BAD_REQUEST` naming `field`. */
export function parseCaPin(text: string, field = 'ca pin'): string {
  const pin = text.trim().toLowerCase();
  if (!PIN.test(pin))
    throw new HoxError('HOX_BAD_REQUEST', `${field}: '${text.slice(0, 80)}' is not a CA pin (sha256:<64 hex digits>)`, {
      field,
    });
  return pin;
}

/** Whether `root` has the pin `pin` (compared in constant time). */
export function matchesCaPin(root: x509.X509Certificate | string, pin: string): boolean {
  const expected = Buffer.from(parseCaPin(pin).slice('sha256:'.length), 'hex');
  const actual = Buffer.from(caPin(root).slice('sha256:'.length), 'hex');
  return timingSafeEqual(expected, actual);
}

/** Keeps the roots of a fetched bundle that match the pin; throws if none does (the bundle is not our master's). */
export function pinnedRoots(roots: readonly x509.X509Certificate[], pin: string): x509.X509Certificate[] {
  const kept = roots.filter((root) => matchesCaPin(root, pin));
  if (kept.length === 0)
    throw new HoxError(
      'HOX_FORBIDDEN',
      `none of the ${roots.length} root certificate(s) offered matches the CA pin ${pin}: not the expected master`,
    );
  return kept;
}
