/**
 * PKCS#10 certificate requests: a compute node or an instance makes its key pair and sends only a CSR (its public
 * key, signed by its private key, proving it holds it); the master reads it with {@link readCertificateRequest},
 * which checks that signature. The names a CSR asks for are ignored: the master names the holder.
 */
import { HoxError } from '../errors.js';
import { generateKeyPair, privateKeyToPem, SIGNING_ALGORITHM, x509 } from './x509.js';

/** The largest CSR accepted (a P-256 CSR is about 500 bytes of PEM). */
export const MAX_CSR_PEM_CHARS = 8192;

export interface KeyAndRequest {
  /** PKCS#8 PEM of the new private key: the caller writes it mode 0600 and never sends it. */
  privateKeyPem: string;
  /** The CSR to send to the master. */
  csrPem: string;
}

/** A new P-256 key and a CSR for it, named `commonName` (informative only: the master decides the subject). */
export async function createKeyAndRequest(commonName: string): Promise<KeyAndRequest> {
  const keys = await generateKeyPair(true);
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: [{ CN: [commonName] }],
    keys,
    signingAlgorithm: SIGNING_ALGORITHM,
  });
  return { privateKeyPem: await privateKeyToPem(keys.privateKey), csrPem: csr.toString('pem') };
}

/** Parses a CSR and checks its signature and key type; throws `HOX_BAD_REQUEST` naming `field` otherwise. */
export async function readCertificateRequest(pem: string, field = 'csr'): Promise<x509.Pkcs10CertificateRequest> {
  if (typeof pem !== 'string' || pem.length > MAX_CSR_PEM_CHARS)
    throw new HoxError(
      'HOX_BAD_REQUEST',
      `${field}: not a PEM certificate request of at most ${MAX_CSR_PEM_CHARS} characters`,
      {
        field,
      },
    );
  let csr: x509.Pkcs10CertificateRequest;
  try {
    csr = new x509.Pkcs10CertificateRequest(pem);
  } catch (error) {
    throw new HoxError('HOX_BAD_REQUEST', `${field}: not a PKCS#10 certificate request`, { field, cause: error });
  }
  checkP256(csr.publicKey, field);
  let valid = false;
  try {
    valid = await csr.verify();
  } catch (error) {
    throw new HoxError('HOX_BAD_REQUEST', `${field}: its signature cannot be checked`, { field, cause: error });
  }
  if (!valid)
    throw new HoxError('HOX_BAD_REQUEST', `${field}: its signature does not match its public key (altered or forged)`, {
      field,
    });
  return csr;
}

/** Parses a PEM SubjectPublicKeyInfo; throws `HOX_BAD_REQUEST` naming `field` unless it is a P-256 key. */
export function readPublicKey(pem: string, field = 'public key'): x509.PublicKey {
  let key: x509.PublicKey;
  try {
    key = new x509.PublicKey(pem);
  } catch (error) {
    throw new HoxError('HOX_BAD_REQUEST', `${field}: not a PEM public key`, { field, cause: error });
  }
  checkP256(key, field);
  return key;
}

function checkP256(key: x509.PublicKey, field: string): void {
  const algorithm = key.algorithm as EcKeyAlgorithm;
  if (algorithm.name !== 'ECDSA' || algorithm.namedCurve !== 'P-256')
    throw new HoxError(
      'HOX_BAD_REQUEST',
      `${field}: the key is ${algorithm.name} ${algorithm.namedCurve ?? ''}, not ECDSA P-256`,
      {
        field,
      },
    );
}
