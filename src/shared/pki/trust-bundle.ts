/**
 * The trust bundle: what the master hands every verifier (nodes, instances, hyper_db members, the CLI) as JSON.
 * During a rotation it holds both roots and both issuing CAs, so certificates of the old and the new generation
 * verify alike until the old ones expire. A node checks `roots` against its CA pin (see `ca-pin.ts`) before trusting
 * the rest.
 */
import { HoxError } from '../errors.js';
import type { TrustMaterial } from './verify-certificate.js';
import { crlToPem, x509 } from './x509.js';

export interface TrustBundlePem {
  /** Self-signed roots, newest first. */
  roots: string[];
  /** Issuing CAs still in use and cross-certificates (a new root signed by the old), newest first. */
  intermediates: string[];
  /** Current CRLs: one per root (revoking issuing CAs) and one per issuing CA (revoking leaves). */
  crls: string[];
}

/** The largest bundle a verifier parses (a handful of certificates and CRLs are a few kB). */
const MAX_BUNDLE_ITEMS = 64;

/** Parses a bundle received as JSON; throws `HOX_BAD_REQUEST` naming the bad item. */
export function readTrustBundle(bundle: TrustBundlePem): TrustMaterial {
  const parse = <T>(items: unknown, name: string, make: (pem: string) => T): T[] => {
    if (!Array.isArray(items) || items.length > MAX_BUNDLE_ITEMS)
      throw new HoxError('HOX_BAD_REQUEST', `trust bundle: ${name} is not a list of at most ${MAX_BUNDLE_ITEMS}`, {
        field: name,
      });
    return items.map((item, index) => {
      try {
        if (typeof item !== 'string') throw new Error('not a string');
        return make(item);
      } catch (error) {
        throw new HoxError('HOX_BAD_REQUEST', `trust bundle: ${name}[${index}] is not PEM of the right kind`, {
          field: `${name}[${index}]`,
          cause: error,
        });
      }
    });
  };
  return {
    roots: parse(bundle.roots, 'roots', (pem) => new x509.X509Certificate(pem)),
    intermediates: parse(bundle.intermediates, 'intermediates', (pem) => new x509.X509Certificate(pem)),
    crls: parse(bundle.crls, 'crls', (pem) => new x509.X509Crl(pem)),
  };
}

/** The PEM form of trust material, for JSON. */
export function trustBundleToPem(trust: TrustMaterial): TrustBundlePem {
  return {
    roots: trust.roots.map((cert) => cert.toString('pem')),
    intermediates: trust.intermediates.map((cert) => cert.toString('pem')),
    crls: trust.crls.map(crlToPem),
  };
}

/**
 * Options for Node's `tls` (`createServer`, `connect`, `createSecureContext`): trust only the roots, check CRLs of
 * every link. Peers send their own chain (leaf and issuing CA, see `IssuedCertificate.chainPem`). Replace the
 * context (`server.setSecureContext`) when a new CRL arrives.
 */
export function tlsTrustOptions(bundle: TrustBundlePem): { ca: string[]; crl: string[] } {
  return { ca: [...bundle.roots], crl: [...bundle.crls] };
}
