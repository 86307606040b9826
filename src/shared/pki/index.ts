/** The platform PKI's public side: what every verifier (master, agent, hyper_db, CLI) needs; no key is held here. */
export { caPin, matchesCaPin, parseCaPin, pinnedRoots } from './ca-pin.js';
export {
  CERTIFICATE_KINDS,
  certificateIdentity,
  checkSubjectId,
  subjectName,
  type CertificateIdentity,
  type CertificateKind,
} from './certificate-profile.js';
export {
  createKeyAndRequest,
  readCertificateRequest,
  readPublicKey,
  type KeyAndRequest,
} from './certificate-request.js';
export { renewalAtMs } from './renewal.js';
export { readTrustBundle, trustBundleToPem, tlsTrustOptions, type TrustBundlePem } from './trust-bundle.js';
export { verifyCertificate, type TrustMaterial, type VerifyOptions, type VerifyResult } from './verify-certificate.js';
export {
  crlToPem,
  generateKeyPair,
  normalizeSerial,
  privateKeyToPem,
  readCertificate,
  readCertificateBundle,
  x509,
} from './x509.js';
