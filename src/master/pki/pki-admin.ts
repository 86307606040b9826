/**
 * `hox pki status` and `hox pki rotate`: the platform CA read and rotated inside the request's transaction, so a
 * rotation starts from what the store holds now (another master may have rotated since this one started) and
 * commits with its audit entry. Once committed, the answering master presents a certificate from the new issuing
 * CA at once; other masters move to it at their next renewal, and what the old CAs issued stays valid meanwhile.
 */
import type { Body } from '../../protocol/schemas.js';
import type { OpContext } from '../context.js';
import { openCaInTransaction, type ServerIdentity } from './master-tls.js';
import type { PlatformCa } from './platform-ca.js';

type PkiStatusResult = Body<'pkiStatusResult'>;

/** What the PKI routes need of the master that answers. */
export interface PkiHandlerEnv {
  /** The certificate this master presents; undefined when it speaks plain HTTP (in-process tests). */
  masterCertificate(): ServerIdentity | undefined;
  /** Called after a rotation committed: present a certificate from the new issuing CA. */
  rotated(): Promise<void>;
}

export async function pkiStatus(ctx: OpContext, env: PkiHandlerEnv): Promise<PkiStatusResult> {
  const ca = await openCaInTransaction(ctx.tx, ctx.box, () => ctx.clock.nowMs());
  return describe(ca, env.masterCertificate());
}

export async function rotatePki(
  ctx: OpContext,
  what: 'issuing-ca' | 'root',
  env: PkiHandlerEnv,
): Promise<PkiStatusResult> {
  const ca = await openCaInTransaction(ctx.tx, ctx.box, () => ctx.clock.nowMs());
  if (what === 'root') await ca.rotateRoot();
  else await ca.rotateIssuingCa();
  ctx.afterCommit?.(() => env.rotated());
  // The answer describes the CA as committed; the master's own certificate is renewed right after.
  return describe(ca, env.masterCertificate());
}

function describe(ca: PlatformCa, identity: ServerIdentity | undefined): PkiStatusResult {
  const status = ca.status();
  return {
    ca_pin: status.pin,
    roots: status.roots.map((r) => ({
      subject: r.subject,
      serial: r.serial,
      pin: r.pin,
      not_after: r.notAfter.toISOString(),
      current: r.current,
    })),
    issuing_cas: status.issuers.map((i) => ({
      subject: i.subject,
      serial: i.serial,
      not_after: i.notAfter.toISOString(),
      current: i.current,
    })),
    cross_certificates: status.crossCertificates,
    revoked: status.revoked,
    master_certificate:
      identity === undefined
        ? null
        : {
            source: identity.source,
            not_after: identity.notAfter.toISOString(),
            dns_names: identity.dnsNames,
            ip_addresses: identity.ipAddresses,
          },
  };
}
