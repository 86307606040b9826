/**
 * What a platform certificate says about its holder: the kind of holder (organizational unit) and its id (common
 * name), under the organization `HyperOpenX`. The master decides both when it issues; a CSR's own subject is
 * ignored. Verifiers read them back with {@link certificateIdentity} and must check the kind, so an instance whose
 * guid looked like a node id could not pose as that node.
 */
import { HoxError } from '../errors.js';
import type { x509 } from './x509.js';

/**
 * Who holds a leaf certificate. A `site` certificate comes from the sites CA only, never from the platform CA, and
 * is no platform identity: {@link certificateIdentity} does not recognize it. A `user` certificate is a person's,
 * for the master's API only (SlapOS's clients): no platform part, so not among {@link CERTIFICATE_KINDS} either.
 */
export type CertificateKind = 'master' | 'compute-node' | 'instance' | 'user' | 'hyper-db-member' | 'site';

/** The kinds of platform identities (what mutual TLS between the platform's parts accepts). */
export const CERTIFICATE_KINDS: readonly CertificateKind[] = ['master', 'compute-node', 'instance', 'hyper-db-member'];

export const ORGANIZATION = 'HyperOpenX';

/** Ids carried in a subject: a compute node id, an instance guid (`SOFTINST-…`), a member name. */
const SUBJECT_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

export interface CertificateIdentity {
  kind: CertificateKind;
  id: string;
}

/** Throws `HOX_BAD_REQUEST` unless `id` may be a subject's common name (it is also kept out of DN syntax). */
export function checkSubjectId(id: string, field: string): string {
  if (!SUBJECT_ID.test(id))
    throw new HoxError(
      'HOX_BAD_REQUEST',
      `${field}: '${id.slice(0, 80)}' is not an id a certificate can name (1–63 letters, digits, '.', '-', '_')`,
      { field },
    );
  return id;
}

/** The subject's distinguished name for a holder. */
export function subjectName(identity: CertificateIdentity): string {
  checkSubjectId(identity.id, `${identity.kind} id`);
  return `CN=${identity.id}, OU=${identity.kind}, O=${ORGANIZATION}`;
}

/** Who a platform leaf certificate was issued to, or undefined if its subject is not one of ours. */
export function certificateIdentity(cert: x509.X509Certificate): CertificateIdentity | undefined {
  const name = cert.subjectName;
  const [id, ...moreIds] = name.getField('CN');
  const [kind, ...moreKinds] = name.getField('OU');
  const [organization] = name.getField('O');
  if (id === undefined || kind === undefined || moreIds.length > 0 || moreKinds.length > 0) return undefined;
  if (organization !== ORGANIZATION || !(CERTIFICATE_KINDS as readonly string[]).includes(kind)) return undefined;
  if (!SUBJECT_ID.test(id)) return undefined;
  return { kind: kind as CertificateKind, id };
}
